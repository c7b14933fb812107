// rope_type "ntk": fixed NTK-aware scaling as vLLM implements it (NTKScalingRotaryEmbedding,
// vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py, after Su's "NTK-RoPE",
// kexue.fm/archives/9706): the default frequencies of the base rope_theta * factor, every one then
// divided by factor^(2/d), d the rotated width. So theta_i = base^(-2i/d) * factor^(-(2i+2)/d):
// the slowest pair is interpolated by the whole factor, the others by less. It does not depend on
// the sequence length. vLLM's mixed form (`mixed_b`) is a different formula, not this one: a
// config that sets it is refused as a key rotary does not read.
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kRequired[] = {"factor"};

// factor^(2/d): a Python float in vLLM.
double pair_factor(const RopeConfig& c, int64_t dim) {
  return std::pow(*c.factor, 2.0 / static_cast<double>(dim));
}

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  // `self.base * self.scaling_factor` in Python doubles, then the default float32 recipe.
  f.inv_freq = default_inv_freq(c.rope_theta * *c.factor, dim);
  // A float32 tensor divided by a Python float: the divisor is rounded to float32 first.
  const auto divisor = static_cast<float>(pair_factor(c, dim));
  for (float& inv : f.inv_freq) inv /= divisor;
  return f;
}

std::optional<SchemeSummary> summary(const RopeConfig& c) {
  const int64_t dim = c.resolved_rotary_dim();
  char text[160];
  std::snprintf(text, sizeof text,
                "base %g x factor %g = %g, every theta then / factor^(2/%lld) = %.6g", c.rope_theta,
                *c.factor, c.rope_theta * *c.factor, static_cast<long long>(dim),
                pair_factor(c, dim));
  return SchemeSummary{"NTK scaling", text, "", {}};
}

}  // namespace

extern const RopeVariant kNtkVariant{
    .required_keys = kRequired,
    .validate = [](const RopeConfig& c, int64_t) { require_factor(c.factor, c.rope_type); },
    .frequencies = frequencies,
    .summary = summary,
};

}  // namespace rotary::detail
