// Frequencies of a configuration: each scheme's own recipe lives in its unit (src/variants/),
// transcribed from transformers' modeling_rope_utils (v5.24) operation by operation.
//
// Why float32 step by step: transformers computes theta_i with float32 tensor operations, each of
// which rounds. Models were trained with those rounded values, so rotary reproduces each rounding
// in the same order (the library is built with -ffp-contract=off so no multiply-add is fused).
// Python scalars (factors, logarithms, the YaRN correction range) are doubles, and so are ours; a
// Python scalar meeting a float32 tensor is rounded to float32 first, as PyTorch does.
#include "rotary/frequencies.h"

#include <limits>

#include "frequencies_of_valid.h"
#include "variants/variant.h"

namespace rotary {

bool frequencies_depend_on_length(const RopeConfig& config) {
  return detail::frequencies_change_after(config) < std::numeric_limits<int64_t>::max();
}

Frequencies compute_frequencies(const RopeConfig& config, std::optional<int64_t> sequence_length) {
  config.validate();
  return detail::frequencies_of_valid(config, sequence_length);
}

Frequencies detail::frequencies_of_valid(const RopeConfig& config,
                                         std::optional<int64_t> sequence_length) {
  const int64_t dim = config.resolved_rotary_dim();
  Frequencies f = variant_of(config.rope_type).frequencies(config, dim, sequence_length);
  f.rotary_dim = dim;
  return f;
}

}  // namespace rotary
