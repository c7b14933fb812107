// RopeConfig: names, resolution of derived sizes, validation.
#include "rotary/config.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string>

#include "rotary/error.h"
#include "rotary/positions.h"

namespace rotary {
namespace {

[[noreturn]] void config_error(const std::string& field, const std::string& message) {
  throw Error(ErrorCode::kInvalidConfig, field, message);
}

// The shortest text that reads back as `value` ("0.5", not "0.500000"; "nan", "inf").
std::string show(double value) {
  std::array<char, 32> text{};
  const auto end = std::to_chars(text.data(), text.data() + text.size(), value).ptr;
  return std::string(text.data(), end);
}

std::string required_for(RopeType type) {
  return "required for rope_type '" + std::string(to_string(type)) + "'";
}

void require_finite_positive(const std::optional<double>& value, const char* field, RopeType type) {
  if (!value) config_error(field, required_for(type));
  if (!std::isfinite(*value) || *value <= 0) {
    config_error(field, "expected a finite number > 0, got " + show(*value));
  }
}

// transformers documents factor >= 1 for every scaling type; its validation only logs a warning,
// but a factor below 1 shrinks the context the scheme exists to stretch: a mistake (1/8 for 8).
void require_factor(const std::optional<double>& factor, RopeType type) {
  if (!factor) config_error("factor", required_for(type));
  if (!std::isfinite(*factor) || *factor < 1) {
    config_error("factor", "expected a finite number >= 1, got " + show(*factor));
  }
}

// The sections must give every pair exactly one axis, and each axis exactly its section's count.
void validate_sections(const RopeConfig& c, int64_t dim) {
  if (c.mrope_section.empty()) return;
  if (c.rope_type == RopeType::kAxial) {
    config_error("mrope_section",
                 "not used by axial RoPE (rows and columns take rotary_dim / 4 "
                 "pairs each)");
  }
  const auto n = static_cast<int64_t>(c.mrope_section.size());
  if (n > Positions::kMaxAxes) {
    config_error("mrope_section", "expected at most " + std::to_string(Positions::kMaxAxes) +
                                      " axes, got " + std::to_string(n));
  }
  int64_t total = 0;
  for (int64_t s : c.mrope_section) {
    if (s < 0) config_error("mrope_section", "expected sections >= 0, got " + std::to_string(s));
    total += s;
  }
  // Interleaved sections may leave pairs to axis 0 (transformers' Qwen3-VL and Qwen4 classes run
  // such configs); chunked and alternating ones must give every pair exactly one axis.
  const bool exact = c.mrope_order != MropeOrder::kInterleaved;
  if (exact ? total != dim / 2 : total > dim / 2) {
    config_error("mrope_section", "the sections sum to " + std::to_string(total) +
                                      " pairs; expected " + (exact ? "" : "at most ") +
                                      "rotary_dim / 2 = " + std::to_string(dim / 2));
  }
  if (c.mrope_order == MropeOrder::kSpatialAlternating &&
      (n != 3 || c.mrope_section[0] != c.mrope_section[1])) {
    config_error("mrope_section",
                 "the alternating order (ERNIE-4.5-VL) takes three sections, the first two equal");
  }
  if (c.mrope_order == MropeOrder::kInterleaved) {
    // Axis a >= 1 owns the pairs j = a, a + n, ... below n * section[a]; they must all exist.
    for (int64_t a = 1; a < n; ++a) {
      if (c.mrope_section[a] > 0 && a + n * (c.mrope_section[a] - 1) >= dim / 2) {
        config_error("mrope_section", "interleaved section " + std::to_string(a) + " (" +
                                          std::to_string(c.mrope_section[a]) +
                                          " pairs) runs past the last pair");
      }
    }
  }
}

}  // namespace

std::string_view to_string(MropeOrder order) {
  switch (order) {
    case MropeOrder::kChunked:
      return "chunked";
    case MropeOrder::kInterleaved:
      return "interleaved";
    case MropeOrder::kSpatialAlternating:
      return "spatial_alternating";
  }
  return "?";
}

std::string_view to_string(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kDynamic:
      return "dynamic";
    case RopeType::kYarn:
      return "yarn";
    case RopeType::kLongRope:
      return "longrope";
    case RopeType::kLlama3:
      return "llama3";
    case RopeType::kProportional:
      return "proportional";
    case RopeType::kAxial:
      return "axial";
  }
  return "?";
}

std::string_view to_string(AxialFrequencies frequencies) {
  return frequencies == AxialFrequencies::kShared ? "shared" : "alternating";
}

std::string_view to_string(Layout layout) {
  return layout == Layout::kHalfSplit ? "half_split" : "interleaved";
}

RopeType parse_rope_type(std::string_view name) {
  static constexpr RopeType kAll[] = {
      RopeType::kDefault,  RopeType::kLinear, RopeType::kDynamic,      RopeType::kYarn,
      RopeType::kLongRope, RopeType::kLlama3, RopeType::kProportional, RopeType::kAxial};
  for (RopeType type : kAll) {
    if (name == to_string(type)) return type;
  }
  // Phi-3's first configs called LongRoPE "su"; transformers accepts it as longrope.
  if (name == "su") return RopeType::kLongRope;
  throw Error(ErrorCode::kInvalidConfig, "rope_type",
              "unknown value '" + std::string(name) +
                  "'; expected one of default, linear, dynamic, yarn, longrope (su), llama3, "
                  "proportional, axial");
}

int64_t RopeConfig::resolved_rotary_dim() const {
  // Checked before anything is sized by it.
  if (head_dim <= 0 || head_dim > kMaxHeadDim) {
    config_error("head_dim", "expected an integer in [1, " + std::to_string(kMaxHeadDim) +
                                 "], got " + std::to_string(head_dim));
  }
  if (rope_type == RopeType::kProportional) {
    // transformers' "proportional" always produces head_dim/2 frequencies (the unrotated ones are
    // 0).
    if (head_dim % 2 != 0) config_error("head_dim", "proportional RoPE needs an even head_dim");
    return head_dim;
  }
  int64_t dim;
  if (rotary_dim) {
    dim = *rotary_dim;
    if (dim <= 0 || dim > head_dim) {
      config_error("rotary_dim", "expected 0 < rotary_dim <= head_dim (" +
                                     std::to_string(head_dim) + "), got " + std::to_string(dim));
    }
  } else {
    if (!std::isfinite(partial_rotary_factor) || partial_rotary_factor <= 0 ||
        partial_rotary_factor > 1) {
      config_error("partial_rotary_factor",
                   "expected a number in (0, 1], got " + show(partial_rotary_factor));
    }
    // int(head_dim * partial_rotary_factor): a double product truncated, as transformers does.
    dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
    if (dim <= 0) {
      config_error("partial_rotary_factor", "head_dim * partial_rotary_factor rounds down to 0");
    }
  }
  if (dim % 2 != 0) {
    // Name what made it odd: the rotary_dim or partial_rotary_factor given, else the head itself.
    const char* field = rotary_dim                     ? "rotary_dim"
                        : partial_rotary_factor != 1.0 ? "partial_rotary_factor"
                                                       : "head_dim";
    config_error(field, "the rotary dimension must be even (pairs of channels rotate), got " +
                            std::to_string(dim));
  }
  return dim;
}

int64_t RopeConfig::resolved_original_max_position_embeddings() const {
  return original_max_position_embeddings.value_or(max_position_embeddings);
}

// Validation rules.
//
// transformers 5.24 (modeling_rope_utils.py, RotaryEmbeddingConfigMixin) first standardises the
// rope dict: it is `rope_scaling` when Python finds that true, else `rope_parameters`; `type` is
// the older name of `rope_type` (default "default"); rope_theta and partial_rotary_factor move in
// from the top level; yarn, longrope and llama3 get original_max_position_embeddings from the top
// level (Phi-3's class) or from max_position_embeddings. Constructing the config class then
// checks each rope dict (every layer type's, when nested):
//   - raised: a required key missing from the dict (KeyError, even when its value is null), and a
//     head_dim > 4 that is odd and rotated whole (ValueError). The config class itself types its
//     sizes (head_dim, hidden_size, num_attention_heads, max_position_embeddings are `int`: 8192.0
//     and null are refused), some classes (Llama, Gemma 3) refuse a hidden_size that
//     num_attention_heads does not divide where the others round head_dim down, and Phi-3's
//     refuses a rope_type other than default or longrope and factor lists of the wrong length;
//   - logged only: keys it does not recognise, wrong types, the ranges below, and an unknown
//     rope_type (which fails later, when the model is built). A comparison the check makes on a
//     value of the wrong type raises (TypeError), so some wrong types are refused by accident.
//
//   rope_type      required               optional              logged unless
//   default/axial  -                      rope_theta            -
//   linear         factor                 rope_theta            factor >= 1
//   dynamic        factor                 rope_theta            factor >= 1
//   yarn           factor, original_*     rope_theta,           factor >= 1,
//                                         attention_factor,     attention_factor a float >= 0,
//                                         beta_fast, beta_slow, betas numbers,
//                                         mscale,               beta_fast >= beta_slow
//                                         mscale_all_dim,
//                                         truncate
//   longrope       short_factor,          rope_theta, factor,   factor >= 1, attention_factor >= 0,
//                  long_factor, original_* attention_factor     lists of rotary_dim/2 numbers
//   llama3         factor, rope_theta,    -                     factor >= 1, high_freq_factor >
//                  low_freq_factor,                             low_freq_factor, original_* <
//                  high_freq_factor,                            max_position_embeddings
//                  original_*
//   proportional   rope_theta             -                     partial_rotary_factor given
// (original_* is original_max_position_embeddings.) partial_rotary_factor is optional for every
// type, and model classes add keys of their own (mrope_section, llama_4_scaling_beta, ...).
//
// rotary refuses all that transformers raises on and, of what it only logs, all that would make
// the rotation wrong, undefined, or silently different from the model's:
//   - config_json.cc, on the JSON: the required keys above (yarn's null factor is derived as
//     transformers derives it); rope dict keys that are neither transformers' RoPE parameters nor
//     known to leave the rotation alone, since a model's own code may read them (HunYuan's
//     `alpha`); types: finite numbers, booleans, lists of finite numbers, integer sizes (JSON
//     integers outside the rope dict, as transformers' `int`), a known rope_type string; a null
//     where transformers would take it as the value (sizes, rope_theta, partial_rotary_factor,
//     original_max_position_embeddings, truncate); a hidden_size that num_attention_heads divides
//     when head_dim is not given; every layer type's dict, not only the one asked for; and
//     Phi-3's own checks for the phi3 family.
//   - validate(), below, on the values: 0 < head_dim <= kMaxHeadDim; an even rotary dimension
//     with 0 < rotary_dim <= head_dim and partial_rotary_factor in (0, 1]; rope_theta > 1;
//     factor >= 1 (proportional: > 0); attention_factor > 0; the context each type needs;
//     YaRN's betas >= 0 with beta_fast >= beta_slow once defaulted, and finite mscales;
//     LongRoPE's lists of rotary_dim/2 entries > 0, and PhiMoE's short_mscale / long_mscale both
//     > 0, with longrope only; Llama 3's factors > 0 with high >= low;
//     dynamic NTK's rotary_dim > 2 (its exponent divides by rotary_dim - 2).
// Accepted although transformers logs them: Llama 3's high_freq_factor == low_freq_factor
// (Llama 4), an original context not below max_position_embeddings, a YaRN factor other than
// max_position_embeddings / original (both use the explicit factor), an integer attention_factor.
namespace {

void require_context(const RopeConfig& c) {
  if (c.resolved_original_max_position_embeddings() <= 0) {
    config_error("original_max_position_embeddings",
                 "required (or max_position_embeddings) for rope_type '" +
                     std::string(to_string(c.rope_type)) + "'");
  }
}

void validate_common(const RopeConfig& c) {
  if (!std::isfinite(c.rope_theta) || c.rope_theta <= 1.0) {
    config_error("rope_theta", "expected a finite base > 1, got " + show(c.rope_theta));
  }
  if (c.max_position_embeddings < 0) {
    config_error("max_position_embeddings",
                 "expected >= 0, got " + std::to_string(c.max_position_embeddings));
  }
  if (c.original_max_position_embeddings && *c.original_max_position_embeddings <= 0) {
    config_error(
        "original_max_position_embeddings",
        "expected a positive integer, got " + std::to_string(*c.original_max_position_embeddings));
  }
  if (c.attention_factor && (!std::isfinite(*c.attention_factor) || *c.attention_factor <= 0)) {
    config_error("attention_factor",
                 "expected a finite number > 0, got " + show(*c.attention_factor));
  }
}

void validate_dynamic(const RopeConfig& c, int64_t dim) {
  require_factor(c.factor, c.rope_type);
  if (c.alpha) {
    // HunYuan's class computes its base from head_dim and rotates the whole head.
    if (!std::isfinite(*c.alpha) || *c.alpha <= 0) {
      config_error("alpha", "expected a finite number > 0, got " + show(*c.alpha));
    }
    if (dim != c.head_dim) {
      config_error("alpha", "HunYuan's fixed NTK rotates the whole head; rotary_dim " +
                                std::to_string(dim) + " is not head_dim " +
                                std::to_string(c.head_dim));
    }
  }
  if (c.max_position_embeddings <= 0) {
    config_error("max_position_embeddings", "required (> 0) for rope_type 'dynamic'");
  }
  if (dim <= 2) config_error("rotary_dim", "dynamic NTK needs rotary_dim > 2");
}

// A beta of 0 (or none) means its default, as transformers' `beta or default` does.
double yarn_beta(const std::optional<double>& beta, const char* field, double default_value) {
  if (!beta) return default_value;
  if (!std::isfinite(*beta) || *beta < 0) {
    config_error(field, "expected a finite number >= 0 (0 means the default, " +
                            show(default_value) + "), got " + show(*beta));
  }
  return *beta != 0 ? *beta : default_value;
}

void validate_yarn(const RopeConfig& c) {
  require_context(c);
  if (c.factor) {
    require_factor(c.factor, c.rope_type);
  } else if (c.max_position_embeddings <= 0) {
    config_error("factor",
                 "required for rope_type 'yarn' (or max_position_embeddings to derive it)");
  }
  for (auto [value, name] :
       {std::pair{c.mscale, "mscale"}, std::pair{c.mscale_all_dim, "mscale_all_dim"}}) {
    if (value && !std::isfinite(*value)) config_error(name, "expected a finite number");
  }
  // beta_fast < beta_slow would put the ramp's ends in the wrong order.
  const double fast = yarn_beta(c.beta_fast, "beta_fast", 32);
  const double slow = yarn_beta(c.beta_slow, "beta_slow", 1);
  if (fast < slow) {
    config_error("beta_fast", "expected beta_fast >= beta_slow, got " + show(fast) + " < " +
                                  show(slow) + " (0 or absent means 32 and 1)");
  }
}

// PhiMoE's pair of scales: both, finite and > 0, and only where its class applies them.
void validate_mscales(const RopeConfig& c) {
  if (!c.short_mscale && !c.long_mscale) return;
  if (c.rope_type != RopeType::kLongRope) {
    config_error(c.short_mscale ? "short_mscale" : "long_mscale",
                 "PhiMoE's cos/sin scales apply to rope_type 'longrope', got '" +
                     std::string(to_string(c.rope_type)) + "'");
  }
  for (auto [value, name] :
       {std::pair{c.short_mscale, "short_mscale"}, std::pair{c.long_mscale, "long_mscale"}}) {
    if (!value) config_error(name, "required with the other of short_mscale / long_mscale");
    if (!std::isfinite(*value) || *value <= 0) {
      config_error(name, "expected a finite number > 0, got " + show(*value));
    }
  }
}

void validate_longrope(const RopeConfig& c, int64_t dim) {
  require_context(c);
  if (c.factor) require_factor(c.factor, c.rope_type);
  const auto half = static_cast<std::size_t>(dim / 2);
  for (auto [values, name] :
       {std::pair{&c.short_factor, "short_factor"}, std::pair{&c.long_factor, "long_factor"}}) {
    if (values->size() != half) {
      config_error(name, "expected " + std::to_string(half) + " entries (rotary_dim / 2), got " +
                             std::to_string(values->size()));
    }
    for (double v : *values) {
      if (!std::isfinite(v) || v <= 0) config_error(name, "expected finite entries > 0");
    }
  }
}

void validate_llama3(const RopeConfig& c) {
  require_factor(c.factor, c.rope_type);
  require_finite_positive(c.low_freq_factor, "low_freq_factor", c.rope_type);
  require_finite_positive(c.high_freq_factor, "high_freq_factor", c.rope_type);
  require_context(c);
  if (*c.high_freq_factor < *c.low_freq_factor) {
    config_error("high_freq_factor", "expected high_freq_factor >= low_freq_factor (" +
                                         show(*c.low_freq_factor) + "), got " +
                                         show(*c.high_freq_factor));
  }
}

}  // namespace

void RopeConfig::validate() const {
  const int64_t dim = resolved_rotary_dim();
  validate_sections(*this, dim);
  validate_common(*this);
  validate_mscales(*this);
  switch (rope_type) {
    case RopeType::kDefault:
      break;
    case RopeType::kLinear:
      require_factor(factor, rope_type);
      break;
    case RopeType::kProportional:
      if (factor) require_finite_positive(factor, "factor", rope_type);
      break;
    case RopeType::kDynamic:
      validate_dynamic(*this, dim);
      break;
    case RopeType::kYarn:
      validate_yarn(*this);
      break;
    case RopeType::kLongRope:
      validate_longrope(*this, dim);
      break;
    case RopeType::kAxial:
      if (dim % 4 != 0) {
        config_error("head_dim",
                     "axial RoPE splits the pairs between rows and columns: rotary_dim "
                     "must be a multiple of 4, got " +
                         std::to_string(dim));
      }
      break;
    case RopeType::kLlama3:
      validate_llama3(*this);
      break;
  }
}

RopeConfig RopeConfig::unscaled() const {
  if (rope_type == RopeType::kAxial) return *this;
  RopeConfig plain = *this;
  plain.rope_type = RopeType::kDefault;
  plain.factor = plain.attention_factor = plain.beta_fast = plain.beta_slow = std::nullopt;
  plain.mscale = plain.mscale_all_dim = plain.alpha = std::nullopt;
  plain.low_freq_factor = plain.high_freq_factor = std::nullopt;
  plain.short_mscale = plain.long_mscale = std::nullopt;
  plain.truncate = std::nullopt;
  plain.short_factor.clear();
  plain.long_factor.clear();
  return plain;
}

int RopeConfig::num_axes() const {
  if (rope_type == RopeType::kAxial) return 2;
  return mrope_section.empty() ? 1 : static_cast<int>(mrope_section.size());
}

std::vector<int64_t> RopeConfig::resolved_mrope_section() const {
  const int64_t half = resolved_rotary_dim() / 2;
  if (rope_type == RopeType::kAxial) return {half / 2, half / 2};
  if (mrope_section.empty()) return {half};
  return mrope_section;
}

std::vector<int> RopeConfig::pair_axes() const {
  const std::vector<int64_t> sections = resolved_mrope_section();
  const auto n = static_cast<int64_t>(sections.size());
  const int64_t half = resolved_rotary_dim() / 2;
  std::vector<int> axes;
  if (rope_type == RopeType::kAxial) {
    const int first = axial_columns_first ? 1 : 0;
    axes.assign(static_cast<std::size_t>(sections[0]), first);
    axes.insert(axes.end(), static_cast<std::size_t>(sections[1]), 1 - first);
    return axes;
  }
  switch (mrope_order) {
    case MropeOrder::kChunked:
      for (int64_t a = 0; a < n; ++a) axes.insert(axes.end(), sections[a], static_cast<int>(a));
      break;
    case MropeOrder::kInterleaved:
      axes.assign(static_cast<std::size_t>(half), 0);
      for (int64_t j = 0; j < half; ++j) {
        const int64_t a = j % n;
        if (a >= 1 && j < n * sections[a]) axes[j] = static_cast<int>(a);
      }
      break;
    case MropeOrder::kSpatialAlternating:
      axes.assign(static_cast<std::size_t>(half), 0);
      for (int64_t j = 0; j < sections[0] + sections[1]; ++j) axes[j] = j % 2 == 0 ? 1 : 2;
      break;
  }
  return axes;
}

RopeConfig default_config(int64_t head_dim, double rope_theta, Layout layout) {
  RopeConfig config;
  config.head_dim = head_dim;
  config.rope_theta = rope_theta;
  config.layout = layout;
  config.validate();
  return config;
}

}  // namespace rotary
