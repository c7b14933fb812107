// rope_type "longrope" (Phi-3's "su"): LongRoPE (Ding et al. 2024; transformers'
// _compute_longrope_parameters). Pair i's frequency is divided by short_factor[i] for calls within
// original_max_position_embeddings and by long_factor[i] past it; cos and sin are scaled by
// sqrt(1 + ln(factor) / ln(original)) unless the config states an attention factor. PhiMoE's
// short_mscale / long_mscale replace that scale and keep short_factor at every length.
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kAliases[] = {"su"};
constexpr std::string_view kRequired[] = {"short_factor", "long_factor"};

void validate(const RopeConfig& c, int64_t dim) {
  require_context(c);
  if (c.factor) require_factor(c.factor, c.rope_type);
  const auto half = static_cast<std::size_t>(dim / 2);
  for (auto [values, name] :
       {std::pair{&c.short_factor, "short_factor"}, std::pair{&c.long_factor, "long_factor"}}) {
    if (values->size() != half) {
      invalid_config(name, "expected " + std::to_string(half) + " entries (rotary_dim / 2), got " +
                               std::to_string(values->size()));
    }
    for (double v : *values) {
      if (!std::isfinite(v) || v <= 0) invalid_config(name, "expected finite entries > 0");
    }
  }
}

bool past_original(const RopeConfig& c, std::optional<int64_t> seq_len) {
  const auto orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  return seq_len && *seq_len > 0 && static_cast<double>(*seq_len) > orig;
}

// The long list applies past the original context, except in PhiMoE's class.
bool uses_long_factor(const RopeConfig& c, std::optional<int64_t> seq_len) {
  return past_original(c, seq_len) && !c.short_mscale;
}

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t> seq_len) {
  const double orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  const double factor =
      c.factor ? *c.factor : static_cast<double>(c.max_position_embeddings) / orig;
  Frequencies f;
  if (c.attention_factor) {
    f.attention_factor = *c.attention_factor;
  } else {
    f.attention_factor = factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(orig));
  }
  if (c.short_mscale)
    f.attention_factor = past_original(c, seq_len) ? *c.long_mscale : *c.short_mscale;
  const std::vector<double>& ext = uses_long_factor(c, seq_len) ? c.long_factor : c.short_factor;
  f.inv_freq.resize(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    f.inv_freq[i] = 1.0f / (static_cast<float>(ext[i]) * base_power(c.rope_theta, i, dim));
  }
  return f;
}

std::string pair_rule(const RopeConfig& c, int64_t pair, int64_t context) {
  const bool long_set = uses_long_factor(c, context);
  return std::string(long_set ? "long_factor " : "short_factor ") +
         six_digits(long_set ? c.long_factor[pair] : c.short_factor[pair]);
}

}  // namespace

extern const RopeVariant kLongRopeVariant{
    .aliases = kAliases,
    .required_keys = kRequired,
    .uses_original_context = true,
    .validate = validate,
    .frequencies = frequencies,
    .frequencies_change_after =
        [](const RopeConfig& c) { return c.resolved_original_max_position_embeddings(); },
    .one_set_past_change = true,
    .pair_rule = pair_rule,
};

}  // namespace rotary::detail
