// rope_type "linear": position interpolation, every theta_i divided by `factor`
// (transformers' _compute_linear_scaling_rope_parameters).
#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kRequired[] = {"factor"};

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  // `inv_freq /= factor`: a float32 tensor divided by the factor rounded to float32.
  const auto factor = static_cast<float>(*c.factor);
  for (float& inv : f.inv_freq) inv /= factor;
  return f;
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

// Linear (position interpolation): one factor dividing every theta of a base.
std::optional<FamilyFit> fit_linear(const FitContext& ctx) {
  const auto fitted =
      log_fit(ctx.theta, ctx.tolerance, rotating_pairs(ctx), static_cast<double>(ctx.rotary_dim));
  if (!fitted || std::fabs(fitted->second - 1) <= 1e-6) return std::nullopt;
  std::vector<FamilyFit> list;
  for (const auto& [base, factor] : rounded_pairs(fitted->first, fitted->second)) {
    RopeConfig c = ctx.base_config(base);
    c.rope_type = RopeType::kLinear;
    c.factor = factor;
    list.push_back(candidate(RopeType::kLinear, {{"base", base}, {"factor", factor}}, c));
  }
  return first_fit(ctx, list);
}

std::string describe_linear(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + " (every θ divided by it)";
}

}  // namespace

extern const RopeVariant kLinearVariant{
    .required_keys = kRequired,
    .validate = [](const RopeConfig& c, int64_t) { require_factor(c.factor, c.rope_type); },
    .frequencies = frequencies,
    .fit = fit_linear,
    .describe_fit = describe_linear,
    .fit_rank = 30,
};

}  // namespace rotary::detail
