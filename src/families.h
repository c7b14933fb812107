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

// How a multi-axis (M-RoPE) family assigns position axes to pairs: as its config says, in
// consecutive sections (Qwen2-VL), interleaved (Qwen3-VL) whatever the config says, or in an order
// of its own that rotary does not model (refused).
enum class MropeOrder { kFromConfig, kChunked, kInterleaved, kOwnOrder };

struct FamilyTraits {
  std::string_view model_type;
  // The pairing the family's apply function uses, when its configs do not state it.
  std::optional<Layout> layout;
  // The apply function is fixed by the model class: a config's `rope_interleave` cannot change it.
  bool layout_fixed = false;
  // Non-empty: the family rotates in a way rotary does not implement; configs are refused with
  // this reason rather than read as something close.
  std::string_view unsupported;
  MropeOrder mrope_order = MropeOrder::kFromConfig;
  // The class supplies M-RoPE sections of its own when the config gives none: a config without
  // them would be read as one-axis RoPE, so it is refused.
  bool mrope_sections_required = false;
  // HunYuan's classes read `alpha` from a dynamic rope dict (a fixed NTK base).
  bool ntk_alpha = false;
};

// The traits of `model_type`, or nullptr for a family with none beyond its config.
const FamilyTraits* family_traits(std::string_view model_type);

}  // namespace rotary::detail
