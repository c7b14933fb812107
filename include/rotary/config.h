// The model of a RoPE configuration: what a model's config.json says about rotary embeddings.
//
// Field names and defaults follow Hugging Face transformers (the de-facto specification), newest
// released version: `rope_parameters` (v5) and the older `rope_scaling` (v4) dictionaries are both
// accepted by the JSON loader (config_json.h). Unset optional fields behave exactly as
// transformers' defaults; see docs in README "Configuration".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rotary {

// Every frequency-scaling scheme rotary implements, transformers' `rope_type`, one line each: the
// enumerator and the name config.json uses. Each scheme is one unit, src/variants/<name>.cc, that
// owns its rules, its frequencies and its explanation (docs/ARCHITECTURE.md, "A rope type").
#define ROTARY_ROPE_TYPES(X)                                                                     \
  X(kDefault, "default")           /* theta_i = base^(-2i/d) */                                  \
  X(kLinear, "linear")             /* position interpolation: theta_i / factor */                \
  X(kDynamic, "dynamic")           /* dynamic NTK: the base grows past the context */            \
  X(kYarn, "yarn")                 /* YaRN: a per-pair ramp, plus an attention factor */         \
  X(kLongRope, "longrope")         /* LongRoPE (Phi-3 "su"): per-pair short/long factors */      \
  X(kLlama3, "llama3")             /* Llama 3.1: smoothing between two frequency bands */        \
  X(kProportional, "proportional") /* a proportion of head_dim rotates, exponent over it */      \
  X(kAxial, "axial")               /* 2D vision RoPE: pairs rotate by a patch's row or column */ \
  X(kNtk, "ntk")                   /* vLLM's fixed NTK: base * factor, theta / factor^(2/d) */   \
  /* a new rope type: one line above this one, and its unit in src/variants/ */

enum class RopeType {
#define ROTARY_ROPE_TYPE_ENUMERATOR(id, name) id,
  ROTARY_ROPE_TYPES(ROTARY_ROPE_TYPE_ENUMERATOR)
#undef ROTARY_ROPE_TYPE_ENUMERATOR
};

// "default", "linear", ... as written in config.json.
std::string_view to_string(RopeType type);
// Parses a rope_type string (also the legacy alias "su" for longrope); throws Error on an unknown
// name.
RopeType parse_rope_type(std::string_view name);

// How channels pair up. Half-split (GPT-NeoX, transformers' rotate_half): channel j pairs with
// j + rotary_dim/2. Interleaved (GPT-J, RoFormer, Meta's complex form, DeepSeek-V3's
// rope_interleave): channel 2j pairs with 2j + 1. Both rotate pair j by position * theta_j.
enum class Layout { kHalfSplit, kInterleaved };
std::string_view to_string(Layout layout);

// How an axial (2D vision) RoPE derives its frequencies; transformers names both "axial" and the
// model class decides.
enum class AxialFrequencies {
  // Qwen2-VL's vision tower: rows and columns share the rotary_dim/4 frequencies of a
  // rotary_dim/2-channel RoPE.
  kShared,
  // Pixtral: the rotary_dim/2 frequencies of a rotary_dim-channel RoPE, dealt alternately to rows
  // (even i) and columns (odd i).
  kAlternating,
};
std::string_view to_string(AxialFrequencies frequencies);

// Which rotary pairs each position axis of a multi-axis (M-RoPE) config owns, given
// mrope_section = [s0, s1, ...] (n axes). The model class decides it, not the config.
enum class MropeOrder {
  // Qwen2-VL, GLM-4V: consecutive sections, the first s0 pairs to axis 0, the next s1 to axis 1...
  kChunked,
  // Qwen3-VL: pair j takes axis a >= 1 when j % n == a and j < n * s[a], else axis 0.
  kInterleaved,
  // ERNIE-4.5-VL: the first s0 + s1 pairs alternate between axis 1 (even j) and axis 2 (odd j),
  // the rest take axis 0; three axes, s0 == s1.
  kSpatialAlternating,
};
std::string_view to_string(MropeOrder order);

struct RopeConfig {
  // The largest head_dim (and so rotary_dim) validate() accepts. Published models use at most 512
  // channels per head (DeepSeek-V4), most 128 or 256; 2^16 is 128 times that, the same bound a
  // KvCache puts on its heads, and keeps everything sized by head_dim small: one config's
  // frequencies are at most 128 KiB. A size past it is a typing mistake (a hidden_size given as
  // head_dim, an extra zero), refused by name before anything is allocated.
  static constexpr int64_t kMaxHeadDim = int64_t{1} << 16;

  RopeType rope_type = RopeType::kDefault;
  Layout layout = Layout::kHalfSplit;  // a fact of the model family (GPT-J: interleaved)
  double rope_theta = 10000.0;         // the base
  int64_t head_dim = 0;                // required: one query/key head, 0 < head_dim <= kMaxHeadDim
  // The rotated part: rotary_dim = int(head_dim * partial_rotary_factor) unless `rotary_dim` is set
  // (GPT-J states rotary_dim directly). Must come out even.
  double partial_rotary_factor = 1.0;
  std::optional<int64_t> rotary_dim;
  // The model's context length; dynamic NTK scales from it, YaRN/LongRoPE/Llama 3 take it as the
  // default for original_max_position_embeddings. 0 means "not stated".
  int64_t max_position_embeddings = 0;

  // Scaling fields, transformers' names; std::nullopt / empty means "absent from the config".
  // `factor` is >= 1 for linear, dynamic, YaRN, LongRoPE and Llama 3 (transformers' documented
  // range); YaRN without it derives max_position_embeddings / original_max_position_embeddings.
  std::optional<double> factor;
  std::optional<int64_t> original_max_position_embeddings;
  std::optional<double> attention_factor;
  // YaRN's ramp ends, >= 0; 0 means the default (32 and 1), as in transformers, and beta_fast must
  // not fall below beta_slow once the defaults are applied.
  std::optional<double> beta_fast;
  std::optional<double> beta_slow;
  std::optional<double> mscale;          // YaRN (DeepSeek)
  std::optional<double> mscale_all_dim;  // YaRN (DeepSeek)
  std::optional<bool> truncate;          // YaRN, default true (gpt-oss sets false)
  std::vector<double> short_factor;      // LongRoPE, rotary_dim/2 entries
  std::vector<double> long_factor;       // LongRoPE, rotary_dim/2 entries
  // PhiMoE's LongRoPE (PhimoeRotaryEmbedding.forward): both or neither, > 0, only with kLongRope.
  // The cos/sin scale is long_mscale for sequences past the original context, else short_mscale,
  // and the frequencies come from short_factor at every length (its class computes them without
  // the sequence length; Microsoft's original code switches to long_factor).
  std::optional<double> short_mscale;
  std::optional<double> long_mscale;
  // HunYuan's fixed NTK (rope_type dynamic with `alpha`, HunYuanDenseV1RotaryEmbedding): the
  // frequencies of the base rope_theta * alpha^(d / (d - 2)), d = head_dim, for every length; no
  // per-call growth. > 0; only with kDynamic and a whole-head rotation.
  std::optional<double> alpha;
  // Llama 3: both > 0, high_freq_factor >= low_freq_factor (Llama 4 sets them equal).
  std::optional<double> low_freq_factor;
  std::optional<double> high_freq_factor;

  // Multi-axis RoPE. A token carries one position per axis and rotary pair j rotates by the
  // position of the axis pair_axes() gives it. mrope_section gives the number of pairs per axis
  // (Qwen2-VL's [16, 24, 24] for temporal, height, width; chunked and alternating sections sum to
  // rotary_dim / 2, interleaved ones may claim fewer); empty means one axis. mrope_order says
  // which pairs each axis owns.
  std::vector<int64_t> mrope_section;
  MropeOrder mrope_order = MropeOrder::kChunked;
  // kAxial: two axes (row, column), rotary_dim / 4 pairs each, the row's first unless
  // axial_columns_first (Llama 4's and Step3's towers put the column's first).
  AxialFrequencies axial_frequencies = AxialFrequencies::kShared;
  bool axial_columns_first = false;

  // The number of channels that rotate (even, 0 < rotary_dim <= head_dim). Throws on a bad config.
  int64_t resolved_rotary_dim() const;
  // original_max_position_embeddings, or max_position_embeddings when absent.
  int64_t resolved_original_max_position_embeddings() const;
  // Checks every field this rope_type needs, and their ranges; throws Error(kInvalidConfig)
  // naming the field. The rules, per rope_type, are listed in src/config.cc.
  void validate() const;
  // The same heads and pairs without frequency scaling: rope_type default, every scaling field
  // cleared (an axial config, whose frequencies are never scaled, is returned as it is).
  RopeConfig unscaled() const;
  // Position components per token: mrope_section.size(), 2 for kAxial, else 1.
  int num_axes() const;
  // The pairs per axis after defaults (kAxial: rotary_dim / 4 twice; one axis: rotary_dim / 2).
  std::vector<int64_t> resolved_mrope_section() const;
  // The axis of every rotary pair (rotary_dim / 2 entries), from the sections and their order.
  std::vector<int> pair_axes() const;
  // An axis's name: "row" / "column" (axial), "temporal" / "height" / "width" (three axes), else
  // "axis N".
  std::string axis_name(int axis) const;
  // How pair_axes() deals the pairs, in words: "consecutive sections", "interleaved", ...
  std::string pair_axes_in_words() const;
};

// The plain RoPE of RoFormer / Llama 2: no scaling.
RopeConfig default_config(int64_t head_dim, double rope_theta = 10000.0,
                          Layout layout = Layout::kHalfSplit);

}  // namespace rotary
