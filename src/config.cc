// RopeConfig: names, resolution of derived sizes, validation.
#include "rotary/config.h"

#include <cmath>
#include <string>

#include "mrope_orders.h"
#include "rotary/error.h"
#include "rotary/positions.h"
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary {
namespace {

using detail::invalid_config;
using detail::show;

// The sections: at most kMaxAxes, none negative, and the rules of their order (mrope_orders.cc).
void validate_sections(const RopeConfig& c, int64_t dim) {
  if (c.mrope_section.empty()) return;
  if (c.rope_type == RopeType::kAxial) {
    invalid_config("mrope_section",
                   "not used by axial RoPE (rows and columns take rotary_dim / 4 "
                   "pairs each)");
  }
  const auto n = static_cast<int64_t>(c.mrope_section.size());
  if (n > Positions::kMaxAxes) {
    invalid_config("mrope_section", "expected at most " + std::to_string(Positions::kMaxAxes) +
                                        " axes, got " + std::to_string(n));
  }
  for (int64_t s : c.mrope_section) {
    if (s < 0) invalid_config("mrope_section", "expected sections >= 0, got " + std::to_string(s));
  }
  detail::mrope_scheme(c.mrope_order).validate(c.mrope_section, dim / 2);
}

}  // namespace

std::string_view to_string(MropeOrder order) { return detail::mrope_scheme(order).name; }

std::string_view to_string(AxialFrequencies frequencies) {
  return frequencies == AxialFrequencies::kShared ? "shared" : "alternating";
}

std::string_view to_string(Layout layout) {
  return layout == Layout::kHalfSplit ? "half_split" : "interleaved";
}

RopeType parse_rope_type(std::string_view name) {
  if (const auto type = detail::find_rope_type(name)) return *type;
  throw Error(
      ErrorCode::kInvalidConfig, "rope_type",
      "unknown value '" + std::string(name) + "'; expected one of " + detail::rope_type_names());
}

int64_t RopeConfig::resolved_rotary_dim() const {
  // Checked before anything is sized by it.
  if (head_dim <= 0 || head_dim > kMaxHeadDim) {
    invalid_config("head_dim", "expected an integer in [1, " + std::to_string(kMaxHeadDim) +
                                   "], got " + std::to_string(head_dim));
  }
  if (rope_type == RopeType::kProportional) {
    // transformers' "proportional" always produces head_dim/2 frequencies (the unrotated ones are
    // 0).
    if (head_dim % 2 != 0) invalid_config("head_dim", "proportional RoPE needs an even head_dim");
    return head_dim;
  }
  int64_t dim;
  if (rotary_dim) {
    dim = *rotary_dim;
    if (dim <= 0 || dim > head_dim) {
      invalid_config("rotary_dim", "expected 0 < rotary_dim <= head_dim (" +
                                       std::to_string(head_dim) + "), got " + std::to_string(dim));
    }
  } else {
    if (!std::isfinite(partial_rotary_factor) || partial_rotary_factor <= 0 ||
        partial_rotary_factor > 1) {
      invalid_config("partial_rotary_factor",
                     "expected a number in (0, 1], got " + show(partial_rotary_factor));
    }
    // int(head_dim * partial_rotary_factor): a double product truncated, as transformers does.
    dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
    if (dim <= 0) {
      invalid_config("partial_rotary_factor", "head_dim * partial_rotary_factor rounds down to 0");
    }
  }
  if (dim % 2 != 0) {
    // Name what made it odd: the rotary_dim or partial_rotary_factor given, else the head itself.
    const char* field = rotary_dim                     ? "rotary_dim"
                        : partial_rotary_factor != 1.0 ? "partial_rotary_factor"
                                                       : "head_dim";
    invalid_config(field, "the rotary dimension must be even (pairs of channels rotate), got " +
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
//   - validate(), below, on the values (the rules of one rope_type in its unit, src/variants/): 0 <
//   head_dim <= kMaxHeadDim; an even rotary dimension
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

void validate_common(const RopeConfig& c) {
  if (!std::isfinite(c.rope_theta) || c.rope_theta <= 1.0) {
    invalid_config("rope_theta", "expected a finite base > 1, got " + show(c.rope_theta));
  }
  if (c.max_position_embeddings < 0) {
    invalid_config("max_position_embeddings",
                   "expected >= 0, got " + std::to_string(c.max_position_embeddings));
  }
  if (c.original_max_position_embeddings && *c.original_max_position_embeddings <= 0) {
    invalid_config(
        "original_max_position_embeddings",
        "expected a positive integer, got " + std::to_string(*c.original_max_position_embeddings));
  }
  if (c.attention_factor && (!std::isfinite(*c.attention_factor) || *c.attention_factor <= 0)) {
    invalid_config("attention_factor",
                   "expected a finite number > 0, got " + show(*c.attention_factor));
  }
}

// PhiMoE's pair of scales: both, finite and > 0, and only where its class applies them.
void validate_mscales(const RopeConfig& c) {
  if (!c.short_mscale && !c.long_mscale) return;
  if (c.rope_type != RopeType::kLongRope) {
    invalid_config(c.short_mscale ? "short_mscale" : "long_mscale",
                   "PhiMoE's cos/sin scales apply to rope_type 'longrope', got '" +
                       std::string(to_string(c.rope_type)) + "'");
  }
  for (auto [value, name] :
       {std::pair{c.short_mscale, "short_mscale"}, std::pair{c.long_mscale, "long_mscale"}}) {
    if (!value) invalid_config(name, "required with the other of short_mscale / long_mscale");
    if (!std::isfinite(*value) || *value <= 0) {
      invalid_config(name, "expected a finite number > 0, got " + show(*value));
    }
  }
}

}  // namespace

void RopeConfig::validate() const {
  const int64_t dim = resolved_rotary_dim();
  validate_sections(*this, dim);
  validate_common(*this);
  validate_mscales(*this);
  detail::variant_of(rope_type).validate(*this, dim);
}

RopeConfig RopeConfig::unscaled() const {
  if (rope_type == RopeType::kAxial) return *this;
  RopeConfig plain = *this;
  // The same pairs: a proportional config's unrotated pairs stay, at their default frequencies.
  plain.rotary_dim = resolved_rotary_dim();
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
  const int64_t half = resolved_rotary_dim() / 2;
  // One axis owns every pair, whatever order a family would deal several in.
  if (sections.size() == 1) return std::vector<int>(static_cast<std::size_t>(half), 0);
  std::vector<int> axes;
  if (rope_type == RopeType::kAxial) {
    const int first = axial_columns_first ? 1 : 0;
    axes.assign(static_cast<std::size_t>(sections[0]), first);
    axes.insert(axes.end(), static_cast<std::size_t>(sections[1]), 1 - first);
    return axes;
  }
  return detail::mrope_scheme(mrope_order).pair_axes(sections, half);
}

std::string RopeConfig::axis_name(int axis) const {
  if (rope_type == RopeType::kAxial) return axis == 0 ? "row" : "column";
  if (num_axes() == 3) return axis == 0 ? "temporal" : axis == 1 ? "height" : "width";
  return "axis " + std::to_string(axis);
}

std::string RopeConfig::pair_axes_in_words() const {
  if (rope_type == RopeType::kAxial) {
    return axial_columns_first ? "axial, columns first" : "axial, consecutive sections";
  }
  return std::string(detail::mrope_scheme(mrope_order).words);
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
