// compute_frequencies for a config already validated: the Rope driver validates its config once,
// at construction, and then derives frequencies per call (dynamic NTK past the trained context,
// LongRoPE's long set) without checking it again.
#pragma once

#include <cstdint>
#include <optional>

#include "rotary/config.h"
#include "rotary/frequencies.h"

namespace rotary::detail {

// As compute_frequencies, without RopeConfig::validate(): `config` must have passed it.
Frequencies frequencies_of_valid(const RopeConfig& config,
                                 std::optional<int64_t> sequence_length = std::nullopt);

}  // namespace rotary::detail
