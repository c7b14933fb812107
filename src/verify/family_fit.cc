// Which published frequency scheme reproduces measured theta_i, and with which parameters.
//
// Every scheme is tried the same way: its parameters are estimated from theta in closed form,
// rounded to the fewest significant digits that still fit, written as a RopeConfig, and handed to
// compute_frequencies. A scheme fits only when rotary's own float32 frequencies for that config
// reproduce every theta_i within its tolerance, so a fit never rests on a second copy of a formula.
//
// Each rope type's fit and its words live in its unit (src/variants/<name>.cc, RopeVariant::fit
// and describe_fit), on the shared toolkit of src/verify/fit_toolkit.h; here they are tried in
// their fit_rank order.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "internal.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/verify.h"
#include "validate.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::verify {

std::optional<double> head_base(std::span<const double> theta, std::span<const double> tol,
                                int64_t rotary_dim) {
  if (theta.empty() || std::fabs(theta[0] - 1) > tol[0]) return std::nullopt;
  const auto d = static_cast<double>(rotary_dim);
  std::optional<double> base;
  for (std::size_t k = 2; k <= theta.size(); ++k) {
    const auto fitted = log_fit(theta, tol, first_pairs(k), d, 0.0);
    if (!fitted) continue;
    bool follows = true;
    for (std::size_t i = 0; i < k && follows; ++i) {
      const double predicted = std::pow(fitted->first, -2.0 * static_cast<double>(i) / d);
      follows = std::fabs(predicted - theta[i]) <= 2 * tol[i];
    }
    if (follows) {
      base = fitted->first;
    } else if (base) {
      break;
    }
  }
  return base;
}

std::optional<double> FamilyFit::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return std::nullopt;
}

FamilyFit fit_family(const FitRequest& request) {
  if (request.tolerance.size() != request.theta.size()) {
    detail::invalid("tolerance", "expected one per theta (" + std::to_string(request.theta.size()) +
                                     "), got " + std::to_string(request.tolerance.size()));
  }
  const FitContext ctx{request.theta,      request.tolerance, request.head_dim,
                       request.rotary_dim, request.length,    request.hint_base};
  // Pairs of the layout that never rotate were measured as exactly 0; any other pair rotates.
  if (rotating_pairs(ctx).size() < 2) return {};
  std::optional<FamilyFit> best;
  for (const RopeType type : detail::fit_order()) {
    std::optional<FamilyFit> fit = detail::variant_of(type).fit(ctx);
    if (!fit) continue;
    if (fit->worst <= 1) return *fit;
    if (!best || fit->worst < best->worst) best = std::move(fit);
  }
  return best.value_or(FamilyFit{});
}

std::string describe(const FamilyFit& fit) {
  if (!fit.rope_type) return "no published scheme fits";
  const detail::RopeVariant& unit = detail::variant_of(*fit.rope_type);
  return unit.describe_fit ? unit.describe_fit(fit) : head(fit);
}

}  // namespace rotary::verify
