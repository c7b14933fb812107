// Inverse frequencies for every rope_type, transcribed from transformers' modeling_rope_utils
// (v5.24) operation by operation.
//
// Why float32 step by step: transformers computes theta_i with float32 tensor operations, each of
// which rounds. Models were trained with those rounded values, so rotary reproduces each rounding
// in the same order (the library is built with -ffp-contract=off so no multiply-add is fused).
// Python scalars (factors, logarithms, the YaRN correction range) are doubles, and so are ours; a
// Python scalar meeting a float32 tensor is rounded to float32 first, as PyTorch does.
#include "rotary/frequencies.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "frequencies_of_valid.h"
#include "rotary/error.h"

namespace rotary {
namespace {

// The default exponent base^(2i/d) in float32: float(2i) / float(d), then powf(float(base), e).
float base_power(double base, int64_t pair, int64_t dim) {
  const float exponent = static_cast<float>(2 * pair) / static_cast<float>(dim);
  return std::pow(static_cast<float>(base), exponent);
}

std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> inv(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) inv[i] = 1.0f / base_power(base, i, dim);
  return inv;
}

std::vector<float> dynamic_ntk_inv_freq(const RopeConfig& c, int64_t dim,
                                        std::optional<int64_t> seq_len) {
  const double factor = *c.factor;
  const double d = static_cast<double>(dim);
  if (c.alpha) {
    // HunYuan (compute_ntk_alpha_rope_parameters): Python doubles, then the default recipe; its
    // class renames the type so that no per-call update follows.
    return default_inv_freq(c.rope_theta * std::pow(*c.alpha, d / (d - 2)), dim);
  }
  if (!seq_len || *seq_len <= c.max_position_embeddings) {
    // Initialisation (and any call within the trained context): Python doubles with
    // L = max_position_embeddings, so the multiplier is exactly 1 and the base is unchanged.
    const double max_pos = static_cast<double>(c.max_position_embeddings);
    const double base =
        c.rope_theta * std::pow(factor * max_pos / max_pos - (factor - 1), d / (d - 2));
    return default_inv_freq(base, dim);
  }
  // Past the trained context transformers recomputes with seq_len = max(position_ids) + 1 held in
  // a tensor, so the new base is float32 tensor arithmetic; each step below is one such op.
  const float scaled = static_cast<float>(factor) * static_cast<float>(*seq_len);
  const float ratio = scaled / static_cast<float>(c.max_position_embeddings);
  const float stretch = ratio - static_cast<float>(factor - 1);
  // tensor ** python_float: PyTorch raises the float32 value to the double exponent in double and
  // rounds once (powf with the exponent rounded to float32 differs in ~70% of lengths).
  const auto grown = static_cast<float>(std::pow(static_cast<double>(stretch), d / (d - 2)));
  const float base = static_cast<float>(c.rope_theta) * grown;
  return default_inv_freq(base, dim);
}

// Axial 2D RoPE: rotary_dim / 4 row frequencies, then as many column frequencies.
std::vector<float> axial_inv_freq(const RopeConfig& c, int64_t dim) {
  if (c.axial_frequencies == AxialFrequencies::kShared) {
    // Qwen2-VL: a RoPE over dim / 2 channels, its dim / 4 frequencies used once per axis.
    std::vector<float> inv = default_inv_freq(c.rope_theta, dim / 2);
    inv.insert(inv.end(), inv.begin(), inv.end());
    return inv;
  }
  // Pixtral: the dim / 2 frequencies of a dim-channel RoPE; the even ones to rows, odd to columns.
  const std::vector<float> all = default_inv_freq(c.rope_theta, dim);
  std::vector<float> inv;
  for (int parity : {0, 1}) {
    for (std::size_t i = static_cast<std::size_t>(parity); i < all.size(); i += 2)
      inv.push_back(all[i]);
  }
  return inv;
}

// YaRN's m-scale: 0.1 * m * ln(s) + 1 for s > 1.
double yarn_mscale(double scale, double m) {
  return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
}

double yarn_factor(const RopeConfig& c) {
  // v5: the explicit factor wins; only a missing factor is derived from the context lengths.
  return c.factor ? *c.factor
                  : static_cast<double>(c.max_position_embeddings) /
                        static_cast<double>(c.resolved_original_max_position_embeddings());
}

Frequencies yarn(const RopeConfig& c, int64_t dim) {
  const double base = c.rope_theta;
  const double factor = yarn_factor(c);
  Frequencies f;
  if (c.attention_factor) {
    f.attention_factor = *c.attention_factor;
  } else if (c.mscale.value_or(0) != 0 && c.mscale_all_dim.value_or(0) != 0) {
    // DeepSeek: the ratio of two m-scales (1.0 when mscale == mscale_all_dim).
    f.attention_factor = yarn_mscale(factor, *c.mscale) / yarn_mscale(factor, *c.mscale_all_dim);
  } else {
    f.attention_factor = yarn_mscale(factor, 1.0);
  }
  const YarnCorrectionRange range = yarn_correction_range(c);
  double low = range.low, high = range.high;
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp

  const int64_t half = dim / 2;
  f.inv_freq.resize(static_cast<std::size_t>(half));
  const float low_f = static_cast<float>(low);
  const float width_f = static_cast<float>(high - low);  // a Python double, then one rounding
  const float factor_f = static_cast<float>(factor);
  for (int64_t i = 0; i < half; ++i) {
    const float pos_freq = base_power(base, i, dim);
    const float inv_extrapolation = 1.0f / pos_freq;
    const float inv_interpolation = 1.0f / (factor_f * pos_freq);
    const float ramp = std::clamp((static_cast<float>(i) - low_f) / width_f, 0.0f, 1.0f);
    const float extrapolation_weight = 1.0f - ramp;
    const float a = inv_interpolation * (1.0f - extrapolation_weight);
    const float b = inv_extrapolation * extrapolation_weight;
    f.inv_freq[i] = a + b;
  }
  return f;
}

Frequencies longrope(const RopeConfig& c, int64_t dim, std::optional<int64_t> seq_len) {
  const double orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  const double factor =
      c.factor ? *c.factor : static_cast<double>(c.max_position_embeddings) / orig;
  Frequencies f;
  if (c.attention_factor) {
    f.attention_factor = *c.attention_factor;
  } else {
    f.attention_factor = factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(orig));
  }
  const bool past_original = seq_len && *seq_len > 0 && static_cast<double>(*seq_len) > orig;
  // PhiMoE scales cos/sin by the length's mscale and keeps short_factor at every length.
  if (c.short_mscale) f.attention_factor = past_original ? *c.long_mscale : *c.short_mscale;
  const bool use_long = past_original && !c.short_mscale;
  const std::vector<double>& ext = use_long ? c.long_factor : c.short_factor;
  f.inv_freq.resize(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    f.inv_freq[i] = 1.0f / (static_cast<float>(ext[i]) * base_power(c.rope_theta, i, dim));
  }
  return f;
}

Frequencies llama3(const RopeConfig& c, int64_t dim) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  const double factor = *c.factor, low = *c.low_freq_factor, high = *c.high_freq_factor;
  const double old_context = static_cast<double>(c.resolved_original_max_position_embeddings());
  const float low_freq_wavelen = static_cast<float>(old_context / low);
  const float high_freq_wavelen = static_cast<float>(old_context / high);
  const float two_pi = static_cast<float>(2 * std::numbers::pi);
  const float factor_f = static_cast<float>(factor);
  // transformers writes `2 * math.pi / inv_freq` and `old_context_len / wavelen`. PyTorch
  // evaluates a Python number divided by a tensor as tensor.reciprocal() * number
  // (Tensor.__rtruediv__): two float32 roundings, not one division. Llama 3.1's own context (8192,
  // a power of two) hides the difference; other contexts and 2π do not.
  const auto number_over = [](float number, float tensor) { return (1.0f / tensor) * number; };
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

Frequencies proportional(const RopeConfig& c) {
  const int64_t head_dim = c.head_dim;
  // int(proportion * head_dim // 2): Python floor division of a float.
  const auto rotated =
      static_cast<int64_t>(std::floor(c.partial_rotary_factor * static_cast<double>(head_dim) / 2));
  Frequencies f;
  f.inv_freq.assign(static_cast<std::size_t>(head_dim / 2), 0.0f);
  const float factor_f = static_cast<float>(c.factor.value_or(1.0));
  for (int64_t i = 0; i < std::min(rotated, head_dim / 2); ++i) {
    // The exponent divides by the full head_dim, not by the rotated width.
    f.inv_freq[i] = (1.0f / base_power(c.rope_theta, i, head_dim)) / factor_f;
  }
  return f;
}

}  // namespace

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

bool frequencies_depend_on_length(const RopeConfig& config) {
  return (config.rope_type == RopeType::kDynamic && !config.alpha) ||
         config.rope_type == RopeType::kLongRope;
}

Frequencies compute_frequencies(const RopeConfig& config, std::optional<int64_t> sequence_length) {
  config.validate();
  return detail::frequencies_of_valid(config, sequence_length);
}

Frequencies detail::frequencies_of_valid(const RopeConfig& config,
                                         std::optional<int64_t> sequence_length) {
  const int64_t dim = config.resolved_rotary_dim();
  Frequencies f;
  switch (config.rope_type) {
    case RopeType::kDefault:
      f.inv_freq = default_inv_freq(config.rope_theta, dim);
      break;
    case RopeType::kLinear: {
      f.inv_freq = default_inv_freq(config.rope_theta, dim);
      const float factor = static_cast<float>(*config.factor);
      for (float& inv : f.inv_freq) inv /= factor;
      break;
    }
    case RopeType::kDynamic:
      f.inv_freq = dynamic_ntk_inv_freq(config, dim, sequence_length);
      break;
    case RopeType::kYarn:
      f = yarn(config, dim);
      break;
    case RopeType::kLongRope:
      f = longrope(config, dim, sequence_length);
      break;
    case RopeType::kLlama3:
      f = llama3(config, dim);
      break;
    case RopeType::kProportional:
      f = proportional(config);
      break;
    case RopeType::kAxial:
      f.inv_freq = axial_inv_freq(config, dim);
      break;
  }
  f.rotary_dim = dim;
  return f;
}

}  // namespace rotary
