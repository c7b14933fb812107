// Which published frequency scheme reproduces measured theta_i, and with which parameters.
//
// Every scheme is tried the same way: its parameters are estimated from theta in closed form,
// rounded to the fewest significant digits that still fit, written as a RopeConfig, and handed to
// compute_frequencies. A scheme fits only when rotary's own float32 frequencies for that config
// reproduce every theta_i within its tolerance, so a fit never rests on a second copy of a formula.
//
// One function per rope type (fit_<type>), each self-contained, and one describing its result
// (describe_<type>); kSchemes lists them in the order they are tried.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "internal.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {
namespace {

constexpr double kTwoPi = 2 * std::numbers::pi;

// Parameters are rounded to the fewest significant digits that fit.
double nice(double x, int digits) { return text::round_to_digits(x, digits); }

// A parameter as the descriptions print it: an integral value as an integer, another to seven
// significant digits.
std::string number(double x) {
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

FamilyFit candidate(RopeType type, Params params, RopeConfig config) {
  FamilyFit fit;
  fit.rope_type = type;
  fit.params = std::move(params);
  fit.config = std::move(config);
  return fit;
}

// The first (simplest) candidate that fits, else the closest one; nullopt for no candidates.
std::optional<FamilyFit> first_fit(const FitContext& ctx, const std::vector<FamilyFit>& list) {
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
std::optional<std::pair<double, double>> log_fit(std::span<const double> theta,
                                                 std::span<const double> tol,
                                                 const std::vector<std::size_t>& pairs,
                                                 double denominator,
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
std::vector<std::size_t> pairs_where(std::size_t count, Keep keep) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < count; ++i) {
    if (keep(i)) out.push_back(i);
  }
  return out;
}

std::vector<std::size_t> first_pairs(std::size_t count) {
  return pairs_where(count, [](std::size_t) { return true; });
}

std::vector<std::size_t> rotating_pairs(const FitContext& ctx) {
  return pairs_where(ctx.pairs(), [&](std::size_t i) { return ctx.theta[i] > 0; });
}

// (base, factor) rounded to 1 .. 7 and 1 .. 5 significant digits, fewest first.
std::vector<std::pair<double, double>> rounded_pairs(double base, double factor) {
  std::vector<std::pair<double, double>> out;
  for (int digits = 1; digits <= 7; ++digits) {
    for (int f_digits = 1; f_digits <= 5; ++f_digits) {
      out.emplace_back(nice(base, digits), nice(factor, f_digits));
    }
  }
  return out;
}

// The base rounded to 1 .. 7 significant digits, distinct values, fewest digits first.
std::vector<double> rounded_bases(double base) {
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

std::optional<Bands> scaled_bands(const FitContext& ctx, double base) {
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
std::pair<double, double> weighted_line(const std::vector<double>& x, const std::vector<double>& y,
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

// ---- the schemes -------------------------------------------------------------------------------

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

// Llama 3.1's band edges, in wavelengths: s = (original / wavelength - low) / (high - low) is
// linear in 1 / wavelength, and the blend is kept * s + divided * (1 - s). Only the edges
// (original / high_freq_factor, original / low_freq_factor) can be identified.
std::optional<std::pair<double, double>> llama3_edges(const Bands& b) {
  std::vector<double> wavelength;
  for (double t : b.theta_default) wavelength.push_back(kTwoPi / t);
  const auto& blended = b.blended;
  double high_edge = 0, low_edge = 0;
  if (blended.size() >= 2) {
    std::vector<double> x, s, w;
    for (std::size_t i : blended) {
      x.push_back(1 / wavelength[i]);
      s.push_back((b.ratio[i] - 1 / b.factor) / (1 - 1 / b.factor));
      w.push_back(1 / b.ratio[i]);
    }
    const auto [slope, intercept] = weighted_line(x, s, w);
    if (slope <= 0) return std::nullopt;
    low_edge = intercept < 0 ? -slope / intercept : HUGE_VAL;
    high_edge = slope / (1 - intercept);
  } else {
    // Without two blended pairs the edges are only bracketed: take the bracket's ends.
    high_edge = 0, low_edge = HUGE_VAL;
    for (std::size_t i : b.kept) high_edge = std::max(high_edge, wavelength[i] * 1.0000001);
    for (std::size_t i : b.divided) low_edge = std::min(low_edge, wavelength[i] * 0.9999999);
    for (std::size_t i : blended) high_edge = std::min(high_edge, wavelength[i]);
  }
  if (!std::isfinite(low_edge) || !(0 < high_edge && high_edge <= low_edge)) return std::nullopt;
  return std::pair{low_edge, high_edge};
}

std::optional<FamilyFit> fit_llama3(const FitContext& ctx) {
  const auto base = head_base(ctx.theta, ctx.tolerance, ctx.rotary_dim);
  const auto bands = base ? scaled_bands(ctx, *base) : std::nullopt;
  if (!bands || bands->kept.empty() || bands->divided.empty()) {
    return std::nullopt;
  }
  const auto edges = llama3_edges(*bands);
  if (!edges) return std::nullopt;
  std::vector<FamilyFit> list;
  for (const double b : rounded_bases(*base)) {
    for (int digits = 1; digits <= 6; ++digits) {
      const double factor = nice(bands->factor, std::min(digits, 5));
      // original_max_position_embeddings is an integer (rounded half to even, as Python does).
      const double low = std::nearbyint(nice(edges->first, digits));
      const double high = nice(edges->second, digits);
      if (!(low > 0 && 0 < high && high <= low)) continue;
      RopeConfig c = ctx.base_config(b);
      c.rope_type = RopeType::kLlama3;
      c.factor = factor;
      c.original_max_position_embeddings = static_cast<int64_t>(low);
      c.low_freq_factor = 1.0;
      c.high_freq_factor = low / high;
      list.push_back(candidate(
          RopeType::kLlama3,
          {{"base", b}, {"factor", factor}, {"low_wavelength", low}, {"high_wavelength", high}},
          c));
    }
  }
  return first_fit(ctx, list);
}

// YaRN: ratio = 1 - ramp (1 - 1/factor), the ramp (i - low) / (high - low) linear in the pair
// index. Any original context works: the betas put the ramp where it was measured.
std::optional<FamilyFit> fit_yarn(const FitContext& ctx) {
  const auto base = head_base(ctx.theta, ctx.tolerance, ctx.rotary_dim);
  const auto bands = base ? scaled_bands(ctx, *base) : std::nullopt;
  if (!bands) return std::nullopt;
  std::vector<double> index, ramp, weight;
  for (std::size_t i : bands->blended) {
    index.push_back(static_cast<double>(i));
    ramp.push_back((1 - bands->ratio[i]) / (1 - 1 / bands->factor));
    // A measured ratio's error is proportional to it: pairs far into the ramp pin it best.
    weight.push_back(1 / bands->ratio[i]);
  }
  if (index.size() < 2) return std::nullopt;
  const auto [slope, intercept] = weighted_line(index, ramp, weight);
  if (slope <= 0) return std::nullopt;
  const double low = -intercept / slope, high = (1 - intercept) / slope;
  constexpr int64_t kOriginal = 4096;
  const auto d = static_cast<double>(ctx.rotary_dim);
  std::vector<FamilyFit> list;
  for (const double b : rounded_bases(*base)) {
    for (int digits = 1; digits <= 9; ++digits) {
      const double factor = nice(bands->factor, std::min(digits, 5));
      const double lo = nice(low, digits), hi = nice(high, digits);
      if (!(0 <= lo && lo < hi)) continue;
      // YaRN's correction range: pair = d ln(original / (2 pi beta)) / (2 ln base), so the betas
      // that put the ramp's ends at lo and hi are original / (2 pi) * base^(-2 pair / d).
      RopeConfig c = ctx.base_config(b);
      c.rope_type = RopeType::kYarn;
      c.factor = factor;
      c.original_max_position_embeddings = kOriginal;
      c.beta_fast = static_cast<double>(kOriginal) / kTwoPi * std::pow(b, -2 * lo / d);
      c.beta_slow = static_cast<double>(kOriginal) / kTwoPi * std::pow(b, -2 * hi / d);
      c.truncate = false;
      c.max_position_embeddings = static_cast<int64_t>(static_cast<double>(kOriginal) * factor);
      list.push_back(
          candidate(RopeType::kYarn,
                    {{"base", b}, {"factor", factor}, {"ramp_low", lo}, {"ramp_high", hi}}, c));
    }
  }
  return first_fit(ctx, list);
}

// Without a hint, the largest 1-2-5 x 10^k base that keeps every LongRoPE factor >= 1 (its
// factors stretch wavelengths, they do not shrink them).
double longrope_base(const FitContext& ctx) {
  double limit = HUGE_VAL;
  bool live = false;
  for (std::size_t i = 1; i < ctx.pairs(); ++i) {
    if (ctx.theta[i] <= 0) continue;
    live = true;
    // Pair i has factor >= 1 while base <= (theta_0 / theta_i)^(d / 2i).
    const double exponent = static_cast<double>(ctx.rotary_dim) / (2.0 * static_cast<double>(i));
    limit = std::min(limit, std::pow(ctx.theta[0] / ctx.theta[i], exponent));
  }
  if (!live || ctx.theta[0] <= 0) return 10000.0;
  const double exponent = std::floor(std::log10(limit));
  for (const double mantissa : {5.0, 2.0, 1.0}) {
    if (mantissa * std::pow(10.0, exponent) <= limit) return mantissa * std::pow(10.0, exponent);
  }
  return std::pow(10.0, exponent - 1) * 5;
}

// LongRoPE: one factor per pair, which any positive theta satisfies; a call of `length`
// positions reads the same list as short or long factors. Tried only where the high-frequency
// head follows a base, and only a fitting config counts.
std::optional<FamilyFit> fit_longrope(const FitContext& ctx) {
  if (!head_base(ctx.theta, ctx.tolerance, ctx.rotary_dim)) return std::nullopt;
  const double base = ctx.hint_base.value_or(longrope_base(ctx));
  const auto theta_default = ctx.frequencies(ctx.base_config(base));
  if (!theta_default) return std::nullopt;
  std::vector<double> factors;
  for (std::size_t i = 0; i < ctx.pairs(); ++i) {
    if (ctx.theta[i] <= 0) return std::nullopt;
    factors.push_back((*theta_default)[i] / ctx.theta[i]);
  }
  const int64_t original = std::max<int64_t>(ctx.length, 1);
  RopeConfig c = ctx.base_config(nice(base, 7));
  c.rope_type = RopeType::kLongRope;
  c.short_factor = factors;
  c.long_factor = factors;
  c.original_max_position_embeddings = original;
  c.factor = 1.0;
  c.max_position_embeddings = original;
  FamilyFit fit = ctx.score(candidate(RopeType::kLongRope, {{"base", nice(base, 7)}}, c));
  fit.factors = std::move(factors);
  return fit.worst <= 1 ? std::optional(fit) : std::nullopt;
}

// ---- their descriptions ------------------------------------------------------------------------

std::string head(const FamilyFit& f) {
  return std::string(to_string(*f.rope_type)) + ": base " + number(f.param("base").value_or(0));
}

std::string describe_proportional(const FamilyFit& f) {
  const double factor = f.param("factor").value_or(1);
  return head(f) + " over head_dim, " + number(*f.param("rotated_pairs")) + " pairs rotate, " +
         number(*f.param("zero_pairs")) + " at θ 0" +
         (factor != 1 ? ", factor " + number(factor) : "");
}

std::string describe_default(const FamilyFit& f) { return head(f); }

std::string describe_linear(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + " (every θ divided by it)";
}

std::string describe_llama3(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + ", kept below wavelength " +
         number(*f.param("high_wavelength")) + ", divided above " +
         number(*f.param("low_wavelength")) +
         " (original context / high_freq_factor, / low_freq_factor)";
}

std::string describe_yarn(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + ", ramp over pairs " +
         number(*f.param("ramp_low")) + " .. " + number(*f.param("ramp_high"));
}

std::string describe_longrope(const FamilyFit& f) {
  const auto [low, high] = std::minmax_element(f.factors.begin(), f.factors.end());
  return head(f) +
         " with one factor per pair (LongRoPE-style; the base is a choice, the factors are "
         "relative to it): " +
         text::format("%.7g", *low) + " .. " + text::format("%.7g", *high);
}

struct Scheme {
  RopeType type;
  std::optional<FamilyFit> (*fit)(const FitContext&);
  std::string (*describe)(const FamilyFit&);
};

// Simplest first; the first that fits wins.
constexpr Scheme kSchemes[] = {
    {RopeType::kProportional, fit_proportional, describe_proportional},
    {RopeType::kDefault, fit_default, describe_default},
    {RopeType::kLinear, fit_linear, describe_linear},
    {RopeType::kLlama3, fit_llama3, describe_llama3},
    {RopeType::kYarn, fit_yarn, describe_yarn},
    {RopeType::kLongRope, fit_longrope, describe_longrope},
};

}  // namespace

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
  for (const Scheme& scheme : kSchemes) {
    std::optional<FamilyFit> fit = scheme.fit(ctx);
    if (!fit) continue;
    if (fit->worst <= 1) return *fit;
    if (!best || fit->worst < best->worst) best = std::move(fit);
  }
  return best.value_or(FamilyFit{});
}

std::string describe(const FamilyFit& fit) {
  if (!fit.rope_type) return "no published scheme fits";
  for (const Scheme& scheme : kSchemes) {
    if (scheme.type == *fit.rope_type) return scheme.describe(fit);
  }
  return head(fit);
}

}  // namespace rotary::verify
