// rope_type "yarn": YaRN (Peng et al. 2023; transformers' _compute_yarn_parameters). Pairs below
// the correction range keep their frequency (extrapolation), pairs above it are divided by the
// factor (interpolation), and a linear ramp over the pair index blends the two in between; cos
// and sin are scaled by an attention factor, 0.1 ln(factor) + 1 unless the config states it.
#include <algorithm>
#include <numbers>

#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary {
namespace detail {
namespace {

constexpr std::string_view kRequired[] = {"factor"};

// A beta of 0 (or none) means its default, as transformers' `beta or default` does.
double beta(const std::optional<double>& value, const char* field, double default_value) {
  if (!value) return default_value;
  if (!std::isfinite(*value) || *value < 0) {
    invalid_config(field, "expected a finite number >= 0 (0 means the default, " +
                              show(default_value) + "), got " + show(*value));
  }
  return *value != 0 ? *value : default_value;
}

void validate(const RopeConfig& c, int64_t) {
  require_context(c);
  if (c.factor) {
    require_factor(c.factor, c.rope_type);
  } else if (c.max_position_embeddings <= 0) {
    invalid_config("factor",
                   "required for rope_type 'yarn' (or max_position_embeddings to derive it)");
  }
  for (auto [value, name] :
       {std::pair{c.mscale, "mscale"}, std::pair{c.mscale_all_dim, "mscale_all_dim"}}) {
    if (value && !std::isfinite(*value)) invalid_config(name, "expected a finite number");
  }
  // beta_fast < beta_slow would put the ramp's ends in the wrong order.
  const double fast = beta(c.beta_fast, "beta_fast", 32);
  const double slow = beta(c.beta_slow, "beta_slow", 1);
  if (fast < slow) {
    invalid_config("beta_fast", "expected beta_fast >= beta_slow, got " + show(fast) + " < " +
                                    show(slow) + " (0 or absent means 32 and 1)");
  }
}

// YaRN's m-scale: 0.1 * m * ln(s) + 1 for s > 1.
double mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

double factor_of(const RopeConfig& c) {
  // v5: the explicit factor wins; only a missing factor is derived from the context lengths.
  return c.factor ? *c.factor
                  : static_cast<double>(c.max_position_embeddings) /
                        static_cast<double>(c.resolved_original_max_position_embeddings());
}

double attention_factor(const RopeConfig& c, double factor) {
  if (c.attention_factor) return *c.attention_factor;
  // DeepSeek: the ratio of two m-scales (1.0 when mscale == mscale_all_dim).
  if (c.mscale.value_or(0) != 0 && c.mscale_all_dim.value_or(0) != 0) {
    return mscale(factor, *c.mscale) / mscale(factor, *c.mscale_all_dim);
  }
  return mscale(factor, 1.0);
}

// The ramp's ends with transformers' guard against a zero width.
YarnCorrectionRange ramp_of(const RopeConfig& c) {
  YarnCorrectionRange range = yarn_correction_range(c);
  if (range.low == range.high) range.high += 0.001;
  return range;
}

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  const double factor = factor_of(c);
  Frequencies f;
  f.attention_factor = attention_factor(c, factor);
  const YarnCorrectionRange range = ramp_of(c);
  f.inv_freq.resize(static_cast<std::size_t>(dim / 2));
  const auto low = static_cast<float>(range.low);
  const auto width = static_cast<float>(range.high - range.low);  // a Python double, one rounding
  const auto factor_f = static_cast<float>(factor);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float pos_freq = base_power(c.rope_theta, i, dim);
    const float inv_extrapolation = 1.0f / pos_freq;
    const float inv_interpolation = 1.0f / (factor_f * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - low) / width, 0.0f, 1.0f);
    const float extrapolation_weight = 1.0f - ramp;
    const float a = inv_interpolation * (1.0f - extrapolation_weight);
    const float b = inv_extrapolation * extrapolation_weight;
    f.inv_freq[i] = a + b;
  }
  return f;
}

// The ramp in double, for the words only (the frequencies above use float32 as transformers).
std::string pair_rule(const RopeConfig& c, int64_t pair, int64_t) {
  const YarnCorrectionRange range = ramp_of(c);
  const double position = (static_cast<double>(pair) - range.low) / (range.high - range.low);
  return "ramp " + six_digits(std::clamp(position, 0.0, 1.0));
}

std::optional<SchemeSummary> summary(const RopeConfig& c) {
  const YarnCorrectionRange r = yarn_correction_range(c);
  char text[160];
  std::snprintf(text, sizeof text, "pairs %g .. %g (beta_fast %g, beta_slow %g%s)", r.low, r.high,
                c.beta_fast.value_or(32), c.beta_slow.value_or(1),
                c.truncate.value_or(true) ? "" : ", not truncated");
  return SchemeSummary{"YaRN ramp", text, "yarn_correction_range", {r.low, r.high}};
}

// ---- how verify recognises it ----

using verify::candidate;
using verify::FamilyFit;
using verify::first_fit;
using verify::FitContext;
using verify::head;
using verify::head_base;
using verify::kTwoPi;
using verify::nice;
using verify::number;
using verify::rounded_bases;
using verify::scaled_bands;
using verify::weighted_line;

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

std::string describe_yarn(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + ", ramp over pairs " +
         number(*f.param("ramp_low")) + " .. " + number(*f.param("ramp_high"));
}

}  // namespace

extern const RopeVariant kYarnVariant{
    .required_keys = kRequired,
    .uses_original_context = true,
    .blends_pairs = true,
    .validate = validate,
    .frequencies = frequencies,
    .pair_rule = pair_rule,
    .summary = summary,
    .fit = fit_yarn,
    .describe_fit = describe_yarn,
    .fit_rank = 60,
};

}  // namespace detail

YarnCorrectionRange yarn_correction_range(const RopeConfig& c) {
  const auto dim = static_cast<double>(c.resolved_rotary_dim());
  const double base = c.rope_theta;
  const double orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  // `or` defaulting in transformers: a 0 (or absent) beta takes the paper's value.
  const double beta_fast = c.beta_fast.value_or(0) != 0 ? *c.beta_fast : 32.0;
  const double beta_slow = c.beta_slow.value_or(0) != 0 ? *c.beta_slow : 1.0;
  // The pair index whose wavelength fits `rotations` turns into the original context.
  const auto correction_dim = [&](double rotations) {
    return dim * std::log(orig / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
  };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (c.truncate.value_or(true)) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  // transformers clamps to dim - 1 (not dim/2 - 1); kept for fidelity.
  return {std::max(low, 0.0), std::min(high, dim - 1)};
}

}  // namespace rotary
