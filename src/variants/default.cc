// rope_type "default": RoFormer's theta_i = base^(-2i/d), d the rotated width
// (transformers' _compute_default_rope_parameters).
#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::detail {
namespace {

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  return f;
}

// ---- how verify recognises it ----

using verify::candidate;
using verify::FamilyFit;
using verify::first_fit;
using verify::FitContext;
using verify::head;
using verify::log_fit;
using verify::nice;
using verify::rotating_pairs;

// Default RoPE: theta_0 = 1 exactly, only the base.
std::optional<FamilyFit> fit_default(const FitContext& ctx) {
  const auto fitted = log_fit(ctx.theta, ctx.tolerance, rotating_pairs(ctx),
                              static_cast<double>(ctx.rotary_dim), 0.0);
  if (!fitted) return std::nullopt;
  std::vector<FamilyFit> list;
  for (int digits = 1; digits <= 7; ++digits) {
    const double base = nice(fitted->first, digits);
    list.push_back(candidate(RopeType::kDefault, {{"base", base}}, ctx.base_config(base)));
  }
  return first_fit(ctx, list);
}

std::string describe_default(const FamilyFit& f) { return head(f); }

}  // namespace

extern const RopeVariant kDefaultVariant{
    .validate = [](const RopeConfig&, int64_t) {},
    .frequencies = frequencies,
    .fit = fit_default,
    .describe_fit = describe_default,
    .fit_rank = 20,
};

}  // namespace rotary::detail
