// What a model family's own code in transformers decides about its RoPE that its config.json does
// not say: the channel pairing its apply function uses, and the schemes rotary does not implement.
//
// One table (src/families.cc), keyed by `model_type`, each entry citing where transformers decides
// it, so that a family's fix is one line and the family sweep (tests/python/test_families.py)
// proves it against the family's own module.
#pragma once

#include <optional>
#include <string_view>

#include "rotary/config.h"

namespace rotary::detail {

struct FamilyTraits {
  std::string_view model_type;
  // The pairing the family's apply function uses, when its configs do not state it.
  std::optional<Layout> layout;
  // The apply function is fixed by the model class: a config's `rope_interleave` cannot change it.
  bool layout_fixed = false;
  // Non-empty: the family rotates in a way rotary does not implement; configs are refused with
  // this reason rather than read as something close.
  std::string_view unsupported;
};

// The traits of `model_type`, or nullptr for a family with none beyond its config.
const FamilyTraits* family_traits(std::string_view model_type);

}  // namespace rotary::detail
