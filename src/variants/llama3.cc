// rope_type "llama3": Llama 3.1's frequency smoothing (transformers' _compute_llama3_parameters).
// Wavelengths shorter than original / high_freq_factor keep their frequency, those longer than
// original / low_freq_factor are divided by the factor, and the band between is a blend linear in
// original / wavelength.
#include <numbers>

#include "variants/common.h"
#include "variants/variant.h"

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

}  // namespace

extern const RopeVariant kLlama3Variant{
    .required_keys = kRequired,
    .uses_original_context = true,
    .blends_pairs = true,
    .validate = validate,
    .frequencies = frequencies,
    .pair_rule = pair_rule,
    .summary = summary,
};

}  // namespace rotary::detail
