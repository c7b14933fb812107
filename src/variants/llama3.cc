// rope_type "llama3": Llama 3.1's frequency smoothing (transformers' _compute_llama3_parameters).
// Wavelengths shorter than original / high_freq_factor keep their frequency, those longer than
// original / low_freq_factor are divided by the factor, and the band between is a blend linear in
// original / wavelength.
#include <numbers>

#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kRequired[] = {"factor", "low_freq_factor", "high_freq_factor"};

void validate(const RopeConfig& c, int64_t) {
  require_factor(c.factor, c.rope_type);
  require_finite_positive(c.low_freq_factor, "low_freq_factor", c.rope_type);
  require_finite_positive(c.high_freq_factor, "high_freq_factor", c.rope_type);
  require_context(c);
  if (*c.high_freq_factor < *c.low_freq_factor) {
    invalid_config("high_freq_factor", "expected high_freq_factor >= low_freq_factor (" +
                                           show(*c.low_freq_factor) + "), got " +
                                           show(*c.high_freq_factor));
  }
}

// transformers writes `2 * math.pi / inv_freq` and `old_context_len / wavelen`. PyTorch evaluates
// a Python number divided by a tensor as tensor.reciprocal() * number (Tensor.__rtruediv__): two
// float32 roundings, not one division. Llama 3.1's own context (8192, a power of two) hides the
// difference; other contexts and 2π do not.
float number_over(float number, float tensor) { return (1.0f / tensor) * number; }

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  const double factor = *c.factor, low = *c.low_freq_factor, high = *c.high_freq_factor;
  const auto old_context = static_cast<double>(c.resolved_original_max_position_embeddings());
  const auto low_freq_wavelen = static_cast<float>(old_context / low);
  const auto high_freq_wavelen = static_cast<float>(old_context / high);
  const auto two_pi = static_cast<float>(2 * std::numbers::pi);
  const auto factor_f = static_cast<float>(factor);
  for (float& inv : f.inv_freq) {
    const float wavelen = number_over(two_pi, inv);
    const float scaled = wavelen > low_freq_wavelen ? inv / factor_f : inv;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      // Evaluated only inside the band: with low == high (Llama 4) the denominator is 0, and
      // transformers' torch.where discards that lane's inf/nan the same way.
      const float smooth =
          (number_over(static_cast<float>(old_context), wavelen) - static_cast<float>(low)) /
          static_cast<float>(high - low);
      inv = (1.0f - smooth) * scaled / factor_f + smooth * scaled;
    } else {
      inv = scaled;
    }
  }
  return f;
}

// The band of the unscaled wavelength, in double, for the words only.
std::string pair_rule(const RopeConfig& c, int64_t pair, int64_t) {
  const double context = static_cast<double>(c.resolved_original_max_position_embeddings());
  const int64_t dim = c.resolved_rotary_dim();
  const double wavelength = 2 * std::numbers::pi / (1.0f / base_power(c.rope_theta, pair, dim));
  return wavelength < context / *c.high_freq_factor  ? "high-frequency band"
         : wavelength > context / *c.low_freq_factor ? "low-frequency band"
                                                     : "smoothed band";
}

std::optional<SchemeSummary> summary(const RopeConfig& c) {
  char text[96];
  std::snprintf(text, sizeof text, "low_freq_factor %g, high_freq_factor %g", *c.low_freq_factor,
                *c.high_freq_factor);
  return SchemeSummary{"Llama 3 bands", text, "", {}};
}

// ---- how verify recognises it ----

using verify::Bands;
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

std::string describe_llama3(const FamilyFit& f) {
  return head(f) + ", factor " + number(*f.param("factor")) + ", kept below wavelength " +
         number(*f.param("high_wavelength")) + ", divided above " +
         number(*f.param("low_wavelength")) +
         " (original context / high_freq_factor, / low_freq_factor)";
}

}  // namespace

extern const RopeVariant kLlama3Variant{
    .required_keys = kRequired,
    .uses_original_context = true,
    .blends_pairs = true,
    .validate = validate,
    .frequencies = frequencies,
    .pair_rule = pair_rule,
    .summary = summary,
    .fit = fit_llama3,
    .describe_fit = describe_llama3,
    .fit_rank = 50,
};

}  // namespace rotary::detail
