// rope_type "proportional" (transformers' _compute_proportional_rope_parameters, Gemma 4): only
// the first int(partial_rotary_factor * head_dim // 2) pairs rotate, with the exponent over the
// whole head_dim and theta divided by an optional factor; the other pairs have theta 0. Its
// frequencies always span head_dim / 2 pairs.
#include <algorithm>

#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::detail {
namespace {

Frequencies frequencies(const RopeConfig& c, int64_t, std::optional<int64_t>) {
  const int64_t head_dim = c.head_dim;
  // int(proportion * head_dim // 2): Python floor division of a float.
  const auto rotated =
      static_cast<int64_t>(std::floor(c.partial_rotary_factor * static_cast<double>(head_dim) / 2));
  Frequencies f;
  f.inv_freq.assign(static_cast<std::size_t>(head_dim / 2), 0.0f);
  const auto factor = static_cast<float>(c.factor.value_or(1.0));
  for (int64_t i = 0; i < std::min(rotated, head_dim / 2); ++i) {
    // The exponent divides by the full head_dim, not by the rotated width.
    f.inv_freq[i] = (1.0f / base_power(c.rope_theta, i, head_dim)) / factor;
  }
  return f;
}

// ---- how verify recognises it ----

using verify::candidate;
using verify::FamilyFit;
using verify::first_fit;
using verify::first_pairs;
using verify::FitContext;
using verify::head;
using verify::log_fit;
using verify::number;
using verify::rounded_pairs;

// Proportional RoPE: a suffix of pairs at theta 0, the exponent over head_dim. Only a fitting
// config counts: a zero suffix that no proportional config reproduces is no evidence of one.
std::optional<FamilyFit> fit_proportional(const FitContext& ctx) {
  if (ctx.rotary_dim != ctx.head_dim) return std::nullopt;
  std::size_t first_zero = 0;
  while (first_zero < ctx.pairs() && ctx.theta[first_zero] > 0) ++first_zero;
  for (std::size_t i = first_zero; i < ctx.pairs(); ++i) {
    if (ctx.theta[i] > 0) return std::nullopt;
  }
  if (first_zero == ctx.pairs() || first_zero < 2) return std::nullopt;
  const auto fitted =
      log_fit(ctx.theta, ctx.tolerance, first_pairs(first_zero), static_cast<double>(ctx.head_dim));
  if (!fitted) return std::nullopt;
  std::vector<FamilyFit> list;
  for (const auto& [base, factor] : rounded_pairs(fitted->first, fitted->second)) {
    RopeConfig c;
    c.rope_type = RopeType::kProportional;
    c.head_dim = ctx.head_dim;
    c.rope_theta = base;
    c.partial_rotary_factor =
        (2.0 * static_cast<double>(first_zero) + 0.5) / static_cast<double>(ctx.head_dim);
    c.factor = factor;
    list.push_back(candidate(RopeType::kProportional,
                             {{"base", base},
                              {"factor", factor},
                              {"rotated_pairs", static_cast<double>(first_zero)},
                              {"zero_pairs", static_cast<double>(ctx.pairs() - first_zero)}},
                             c));
  }
  auto fit = first_fit(ctx, list);
  return fit && fit->worst <= 1 ? fit : std::nullopt;
}

std::string describe_proportional(const FamilyFit& f) {
  const double factor = f.param("factor").value_or(1);
  return head(f) + " over head_dim, " + number(*f.param("rotated_pairs")) + " pairs rotate, " +
         number(*f.param("zero_pairs")) + " at θ 0" +
         (factor != 1 ? ", factor " + number(factor) : "");
}

}  // namespace

extern const RopeVariant kProportionalVariant{
    .validate =
        [](const RopeConfig& c, int64_t) {
          if (c.factor) require_finite_positive(c.factor, "factor", c.rope_type);
        },
    .frequencies = frequencies,
    .fit = fit_proportional,
    .describe_fit = describe_proportional,
    .fit_rank = 10,
};

}  // namespace rotary::detail
