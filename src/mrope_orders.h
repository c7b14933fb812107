// Each M-RoPE order (MropeOrder, include/rotary/config.h) as one entry: its name, its words, its
// rules on the sections, and which axis it gives each pair. RopeConfig::validate(), pair_axes()
// and the words inspect prints all ask the entry, so an order is added in one place.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "rotary/config.h"

namespace rotary::detail {

struct MropeScheme {
  std::string_view name;   // as to_string(MropeOrder) writes it
  std::string_view words;  // how inspect describes it
  // Its rules on sections s (n axes) for `pairs` rotary pairs; throws Error naming
  // mrope_section.
  void (*validate)(std::span<const int64_t> sections, int64_t pairs);
  // The axis of each of the `pairs` pairs.
  std::vector<int> (*pair_axes)(std::span<const int64_t> sections, int64_t pairs);
};

const MropeScheme& mrope_scheme(MropeOrder order);

}  // namespace rotary::detail
