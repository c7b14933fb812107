// rope_type "ntk": fixed NTK-aware scaling as vLLM implements it (NTKScalingRotaryEmbedding,
// vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py, after Su's "NTK-RoPE",
// kexue.fm/archives/9706): the default frequencies of the base rope_theta * factor, every one then
// divided by factor^(2/d), d the rotated width. So theta_i = base^(-2i/d) * factor^(-(2i+2)/d):
// the slowest pair is interpolated by the whole factor, the others by less. It does not depend on
// the sequence length. vLLM's mixed form (`mixed_b`) is a different formula, not this one: a
// config that sets it is refused as a key rotary does not read.
#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

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

// ---- how verify recognises it ----

using verify::candidate;
using verify::FamilyFit;
using verify::first_fit;
using verify::FitContext;
using verify::head;
using verify::log_fit;
using verify::number;
using verify::rotating_pairs;
using verify::rounded_pairs;

// ln theta_i = -(2i/d) ln(base * factor) - (2/d) ln factor: linear scaling's two-parameter line
// in log space, read as NTK, whose factor is the line's factor^(d/2) and base the line's base
// divided by that. Tried after linear, whose rounded factor rarely reaches factor^(2/d).
std::optional<FamilyFit> fit_ntk(const FitContext& ctx) {
  const auto d = static_cast<double>(ctx.rotary_dim);
  const auto line = log_fit(ctx.theta, ctx.tolerance, rotating_pairs(ctx), d);
  if (!line || line->second <= 1 + 1e-6) return std::nullopt;
  const double factor = std::pow(line->second, d / 2);
  std::vector<FamilyFit> list;
  for (const auto& [b, f] : rounded_pairs(line->first / factor, factor)) {
    RopeConfig c = ctx.base_config(b);
    c.rope_type = RopeType::kNtk;
    c.factor = f;
    list.push_back(candidate(RopeType::kNtk, {{"base", b}, {"factor", f}}, c));
  }
  return first_fit(ctx, list);
}

std::string describe_ntk(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) +
         " (vLLM's fixed NTK: the base times it, then every θ divided by factor^(2/d))";
}

}  // namespace

extern const RopeVariant kNtkVariant{
    .required_keys = kRequired,
    .validate = [](const RopeConfig& c, int64_t) { require_factor(c.factor, c.rope_type); },
    .frequencies = frequencies,
    .summary = summary,
    .fit = fit_ntk,
    .describe_fit = describe_ntk,
    .fit_rank = 40,
};

}  // namespace rotary::detail
