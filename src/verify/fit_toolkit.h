// What the published-scheme fit of each rope type's unit (src/variants/<name>.cc, RopeVariant::fit)
// shares: the measurement and how a candidate config is scored against it, least-squares fits in
// log space, rounding to the fewest digits, the bands of the blended schemes. fit_family
// (family_fit.cc) tries the units' fits in their fit_rank order.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/verify.h"
#include "verify/internal.h"

namespace rotary::verify {

inline constexpr double kTwoPi = 2 * std::numbers::pi;

// Parameters are rounded to the fewest significant digits that fit.
inline double nice(double x, int digits) { return text::round_to_digits(x, digits); }

// A parameter as the descriptions print it: an integral value as an integer, another to seven
// significant digits.
inline std::string number(double x) {
  if (x == std::floor(x) && std::fabs(x) < 0x1p53) return std::to_string(static_cast<int64_t>(x));
  return text::format("%.7g", x);
}

// What every scheme's fit reads: the measurement, and how to score a candidate config.
struct FitContext {
  std::span<const double> theta, tolerance;
  int64_t head_dim = 0, rotary_dim = 0, length = 0;
  std::optional<double> hint_base;

  std::size_t pairs() const { return theta.size(); }

  // rotary's frequencies for a call of `length` positions, or nullopt when rotary refuses the
  // config or it has another number of pairs.
  std::optional<std::vector<double>> frequencies(const RopeConfig& config) const {
    try {
      const Frequencies f = compute_frequencies(config, std::max<int64_t>(length - 1, 0) + 1);
      if (f.inv_freq.size() != pairs()) return std::nullopt;
      return std::vector<double>(f.inv_freq.begin(), f.inv_freq.end());
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  // Plain RoPE of `base` over this head and rotary_dim: what every scheme scales.
  RopeConfig base_config(double base) const {
    RopeConfig c;
    c.head_dim = head_dim;
    c.rotary_dim = rotary_dim;
    c.rope_theta = base;
    return c;
  }

  // The candidate scored: max_i |theta_i - config's| / tolerance_i, and that pair.
  FamilyFit score(FamilyFit fit) const {
    const auto f = frequencies(*fit.config);
    if (!f) return fit;
    fit.worst = -1;
    for (std::size_t i = 0; i < pairs(); ++i) {
      const double ratio = std::fabs((*f)[i] - theta[i]) / tolerance[i];
      if (ratio > fit.worst) fit.worst = ratio, fit.worst_pair = static_cast<int64_t>(i);
    }
    return fit;
  }
};

using Params = std::vector<std::pair<std::string, double>>;

inline FamilyFit candidate(RopeType type, Params params, RopeConfig config) {
  FamilyFit fit;
  fit.rope_type = type;
  fit.params = std::move(params);
  fit.config = std::move(config);
  return fit;
}

// The first (simplest) candidate that fits, else the closest one; nullopt for no candidates.
inline std::optional<FamilyFit> first_fit(const FitContext& ctx,
                                          const std::vector<FamilyFit>& list) {
  std::optional<FamilyFit> best;
  for (const FamilyFit& c : list) {
    FamilyFit scored = ctx.score(c);
    if (scored.worst <= 1) return scored;
    if (!best || scored.worst < best->worst) best = std::move(scored);
  }
  return best;
}

// Weighted least squares of ln theta_i = c - (2 i / denominator) ln(base) over `pairs`, each
// weighted by (theta_i / tol_i)^2 (the variance of ln theta_i is (tol_i / theta_i)^2). Returns
// (base, factor = exp(-c)); with `fixed_intercept` only the slope is fitted.
inline std::optional<std::pair<double, double>> log_fit(
    std::span<const double> theta, std::span<const double> tol,
    const std::vector<std::size_t>& pairs, double denominator,
    std::optional<double> fixed_intercept = {}) {
  if (pairs.size() < (fixed_intercept ? 1u : 2u)) return std::nullopt;
  double w = 0, wx = 0, wy = 0, wxx = 0, wxy = 0;
  bool sloped = false;
  for (const std::size_t i : pairs) {
    const double x = -2.0 * static_cast<double>(i) / denominator;
    const double y = std::log(theta[i]) - fixed_intercept.value_or(0.0);
    const double weight = (theta[i] / tol[i]) * (theta[i] / tol[i]);
    w += weight, wx += weight * x, wy += weight * y, wxx += weight * x * x, wxy += weight * x * y;
    sloped = sloped || x != 0;
  }
  if (fixed_intercept) {
    // Pair 0 has x = 0 and carries no slope.
    if (!sloped) return std::nullopt;
    return std::pair{std::exp(wxy / wxx), std::exp(-*fixed_intercept)};
  }
  const double det = w * wxx - wx * wx;
  if (det <= 0) return std::nullopt;
  const double slope = (w * wxy - wx * wy) / det;
  return std::pair{std::exp(slope), std::exp(-(wy - slope * wx) / w)};
}

// The pairs i < count where keep(i).
template <typename Keep>
inline std::vector<std::size_t> pairs_where(std::size_t count, Keep keep) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < count; ++i) {
    if (keep(i)) out.push_back(i);
  }
  return out;
}

inline std::vector<std::size_t> first_pairs(std::size_t count) {
  return pairs_where(count, [](std::size_t) { return true; });
}

inline std::vector<std::size_t> rotating_pairs(const FitContext& ctx) {
  return pairs_where(ctx.pairs(), [&](std::size_t i) { return ctx.theta[i] > 0; });
}

// (base, factor) rounded to 1 .. 7 and 1 .. 5 significant digits, fewest first.
inline std::vector<std::pair<double, double>> rounded_pairs(double base, double factor) {
  std::vector<std::pair<double, double>> out;
  for (int digits = 1; digits <= 7; ++digits) {
    for (int f_digits = 1; f_digits <= 5; ++f_digits) {
      out.emplace_back(nice(base, digits), nice(factor, f_digits));
    }
  }
  return out;
}

// The base rounded to 1 .. 7 significant digits, distinct values, fewest digits first.
inline std::vector<double> rounded_bases(double base) {
  std::vector<double> out;
  for (int digits = 1; digits <= 7; ++digits) {
    const double b = nice(base, digits);
    if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  }
  return out;
}

// theta against plain RoPE of `base`, for the schemes that keep some pairs (ratio 1), divide
// others by a factor and blend in between (Llama 3.1, YaRN); nullopt when theta is nowhere scaled
// down.
struct Bands {
  std::vector<double> theta_default, ratio;
  double factor = 1;
  std::vector<std::size_t> kept, divided, blended;
};

inline std::optional<Bands> scaled_bands(const FitContext& ctx, double base) {
  const auto theta_default = ctx.frequencies(ctx.base_config(base));
  if (!theta_default) return std::nullopt;
  Bands b;
  b.theta_default = *theta_default;
  for (std::size_t i = 0; i < ctx.pairs(); ++i)
    b.ratio.push_back(ctx.theta[i] / b.theta_default[i]);
  b.factor = 1 / *std::min_element(b.ratio.begin(), b.ratio.end());
  if (b.factor <= 1 + 1e-6) return std::nullopt;
  for (std::size_t i = 0; i < ctx.pairs(); ++i) {
    const double tol = ctx.tolerance[i] / b.theta_default[i];
    const double to_one = std::fabs(b.ratio[i] - 1),
                 to_divided = std::fabs(b.ratio[i] - 1 / b.factor);
    if (to_one <= tol && to_one <= to_divided) {
      b.kept.push_back(i);
    } else {
      (to_divided <= tol ? b.divided : b.blended).push_back(i);
    }
  }
  return b;
}

// y = slope x + intercept by least squares with residuals weighted by `weights` (NumPy's
// polyfit(x, y, 1, w=weights)); centred on the weighted mean for accuracy.
inline std::pair<double, double> weighted_line(const std::vector<double>& x,
                                               const std::vector<double>& y,
                                               const std::vector<double>& weights) {
  double w = 0, mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double wi = weights[i] * weights[i];
    w += wi, mx += wi * x[i], my += wi * y[i];
  }
  mx /= w, my /= w;
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double wi = weights[i] * weights[i];
    sxx += wi * (x[i] - mx) * (x[i] - mx), sxy += wi * (x[i] - mx) * (y[i] - my);
  }
  const double slope = sxy / sxx;
  return {slope, my - slope * mx};
}

// "<type>: base B", how every description starts.
inline std::string head(const FamilyFit& f) {
  return std::string(to_string(*f.rope_type)) + ": base " + number(f.param("base").value_or(0));
}

}  // namespace rotary::verify
