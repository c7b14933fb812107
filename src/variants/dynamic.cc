// rope_type "dynamic": dynamic NTK scaling (transformers' _compute_dynamic_ntk_parameters and
// dynamic_rope_update). Within max_position_embeddings it is default RoPE; a longer call grows the
// base to base * (factor * L / max_pos - (factor - 1))^(d / (d - 2)), L = the call's length.
// HunYuan's fixed NTK (`alpha`, HunYuanDenseV1RotaryEmbedding) is read as this type: one base,
// rope_theta * alpha^(d / (d - 2)), at every length.
#include <limits>

#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kRequired[] = {"factor"};

void validate(const RopeConfig& c, int64_t dim) {
  require_factor(c.factor, c.rope_type);
  if (c.alpha) {
    // HunYuan's class computes its base from head_dim and rotates the whole head.
    if (!std::isfinite(*c.alpha) || *c.alpha <= 0) {
      invalid_config("alpha", "expected a finite number > 0, got " + show(*c.alpha));
    }
    if (dim != c.head_dim) {
      invalid_config("alpha", "HunYuan's fixed NTK rotates the whole head; rotary_dim " +
                                  std::to_string(dim) + " is not head_dim " +
                                  std::to_string(c.head_dim));
    }
  }
  if (c.max_position_embeddings <= 0) {
    invalid_config("max_position_embeddings", "required (> 0) for rope_type 'dynamic'");
  }
  // The exponent d / (d - 2) divides by rotary_dim - 2.
  if (dim <= 2) invalid_config("rotary_dim", "dynamic NTK needs rotary_dim > 2");
}

// Past the trained context transformers recomputes with seq_len = max(position_ids) + 1 held in a
// tensor, so the new base is float32 tensor arithmetic; each step below is one such op.
float grown_base(const RopeConfig& c, int64_t dim, int64_t seq_len) {
  const double factor = *c.factor;
  const double d = static_cast<double>(dim);
  const float scaled = static_cast<float>(factor) * static_cast<float>(seq_len);
  const float ratio = scaled / static_cast<float>(c.max_position_embeddings);
  const float stretch = ratio - static_cast<float>(factor - 1);
  // tensor ** python_float: PyTorch raises the float32 value to the double exponent in double and
  // rounds once (powf with the exponent rounded to float32 differs in ~70% of lengths).
  const auto grown = static_cast<float>(std::pow(static_cast<double>(stretch), d / (d - 2)));
  return static_cast<float>(c.rope_theta) * grown;
}

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t> seq_len) {
  const double d = static_cast<double>(dim);
  Frequencies f;
  if (c.alpha) {
    // HunYuan (compute_ntk_alpha_rope_parameters): Python doubles, then the default recipe; its
    // class renames the type so that no per-call update follows.
    f.inv_freq = default_inv_freq(c.rope_theta * std::pow(*c.alpha, d / (d - 2)), dim);
  } else if (!seq_len || *seq_len <= c.max_position_embeddings) {
    // Initialisation (and any call within the trained context): Python doubles with
    // L = max_position_embeddings, so the multiplier is exactly 1 and the base is unchanged.
    const double factor = *c.factor;
    const double max_pos = static_cast<double>(c.max_position_embeddings);
    const double base =
        c.rope_theta * std::pow(factor * max_pos / max_pos - (factor - 1), d / (d - 2));
    f.inv_freq = default_inv_freq(base, dim);
  } else {
    f.inv_freq = default_inv_freq(grown_base(c, dim, *seq_len), dim);
  }
  return f;
}

int64_t change_after(const RopeConfig& c) {
  return c.alpha ? std::numeric_limits<int64_t>::max() : c.max_position_embeddings;
}

std::string pair_rule(const RopeConfig& c, int64_t, int64_t context) {
  if (c.alpha) return "NTK alpha " + six_digits(*c.alpha);
  return context > c.max_position_embeddings ? "NTK-grown base" : "base unchanged";
}

}  // namespace

extern const RopeVariant kDynamicVariant{
    .required_keys = kRequired,
    .validate = validate,
    .frequencies = frequencies,
    .frequencies_change_after = change_after,
    .length_change =
        [](const RopeConfig& c) {
          return c.alpha ? std::string()
                         : std::string("dynamic NTK grows the base past max_position_embeddings");
        },
    .pair_rule = pair_rule,
};

}  // namespace rotary::detail
