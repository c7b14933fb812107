// gguf_rope(): the rotation llama.cpp applies to a GGUF model, as a rotary RopeConfig.
//
// Every rule follows llama.cpp at commit 0c1e57098: the common hparams loader (src/llama-model.cpp,
// the rope keys of load_hparams), the per-architecture loaders (src/models/<arch>.cpp), the
// context's rope parameters (src/llama-context.cpp, the llama_context constructor),
// llama_model::get_rope_factors, and ggml's CPU rope (ggml/src/ggml-cpu/ops.cpp: rope_yarn,
// ggml_mrope_cache_init). The scaling rules are in gguf_scaling.cc.
#include "rotary/gguf_rope.h"

#include <algorithm>
#include <string_view>

#include "gguf_architectures.h"
#include "gguf_keys.h"
#include "gguf_scaling.h"
#include "rotary/error.h"

namespace rotary {
namespace {

using detail::GgufArchitecture;
using detail::GgufKeys;
using detail::GgufModeRule;
using detail::invalid_gguf;

const GgufArchitecture& architecture_of(const GgufMetadata& metadata) {
  const GgufArchitecture* found = detail::find_gguf_architecture(metadata.architecture);
  if (!found) {
    invalid_gguf("general.architecture", "llama.cpp (commit 0c1e57098) knows no architecture '" +
                                             metadata.architecture + "'");
  }
  return *found;
}

// The four M-RoPE sections llama.cpp reads for the architectures that use them (zeros when the
// key is absent).
std::vector<int64_t> mrope_sections(const GgufKeys& keys) {
  std::vector<int64_t> sections =
      keys.integers("rope.dimension_sections", 4).value_or(std::vector<int64_t>(4, 0));
  for (const int64_t s : sections) {
    if (s < 0 || s > RopeConfig::kMaxHeadDim) {
      invalid_gguf(keys.name("rope.dimension_sections"),
                   "expected entries in [0, " + std::to_string(RopeConfig::kMaxHeadDim) +
                       "], got " + std::to_string(s));
    }
  }
  return sections;
}

// llama_model_rope_type(), with its conditional cases decided from the file's keys.
std::string decide_mode(const GgufArchitecture& arch, const GgufKeys& keys) {
  switch (arch.mode) {
    case GgufModeRule::kNone:
      return "none";
    case GgufModeRule::kNorm:
      return "norm";
    case GgufModeRule::kNeox:
      return "neox";
    case GgufModeRule::kMrope:
      return "mrope";
    case GgufModeRule::kImrope:
      return "imrope";
    case GgufModeRule::kNormOrMrope:
    case GgufModeRule::kNeoxOrMrope: {
      // llama_hparams::use_mrope(): the first two sections both set.
      const std::vector<int64_t> s = mrope_sections(keys);
      if (s[0] > 0 && s[1] > 0) return "mrope";
      return arch.mode == GgufModeRule::kNormOrMrope ? "norm" : "neox";
    }
    case GgufModeRule::kDflash: {
      const std::vector<int64_t> s = mrope_sections(keys);
      if (std::any_of(s.begin(), s.end(), [](int64_t v) { return v != 0; })) return "mrope";
      return keys.integer("hyper_connection.count").value_or(0) > 0 ? "norm" : "neox";
    }
  }
  return "none";
}

bool is_mrope(const std::string& mode) { return mode == "mrope" || mode == "imrope"; }

struct Geometry {
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;
};

// head_dim and the rotated channels as llama.cpp's loader reads them.
Geometry geometry_of(const GgufKeys& keys, std::string_view arch, std::vector<std::string>& notes) {
  Geometry g;
  if (const auto key_length = keys.integer("attention.key_length")) {
    g.head_dim = *key_length;
  } else {
    const auto embedding = keys.integer("embedding_length");
    const auto heads = keys.integers("attention.head_count", 0);
    if (!embedding || !heads || heads->empty() || (*heads)[0] <= 0) {
      invalid_gguf(keys.name("attention.key_length"),
                   "required (or embedding_length and attention.head_count)");
    }
    g.head_dim = *embedding / (*heads)[0];
    notes.push_back("no attention.key_length: head_dim = embedding_length / head_count = " +
                    std::to_string(g.head_dim) + ", as llama.cpp computes it");
  }
  if (g.head_dim <= 0 || g.head_dim > RopeConfig::kMaxHeadDim) {
    invalid_gguf(keys.name("attention.key_length"), "expected a head size in [1, " +
                                                        std::to_string(RopeConfig::kMaxHeadDim) +
                                                        "], got " + std::to_string(g.head_dim));
  }
  g.rotary_dim = keys.integer("rope.dimension_count").value_or(g.head_dim);
  if (g.rotary_dim <= 0 || g.rotary_dim % 2 != 0 || g.rotary_dim > g.head_dim) {
    invalid_gguf(keys.name("rope.dimension_count"),
                 "expected an even number in [2, head_dim = " + std::to_string(g.head_dim) +
                     "], got " + std::to_string(g.rotary_dim));
  }
  // llama.cpp refuses to load these with a partial rotation ("invalid n_rot").
  for (const std::string_view whole : {"llama", "deci", "falcon", "llama-embed"}) {
    if (arch == whole && g.rotary_dim != g.head_dim) {
      invalid_gguf(keys.name("rope.dimension_count"),
                   "llama.cpp requires it to equal the head size for '" + std::string(arch) +
                       "' (" + std::to_string(g.head_dim) + "), got " +
                       std::to_string(g.rotary_dim));
    }
  }
  if (keys.has("attention.key_length_mla")) {
    // Multi-head latent attention: the rotated slice is a tensor of its own in llama.cpp's graph,
    // as qk_rope_head_dim is transformers' head_dim for DeepSeek's rotary embedding.
    notes.push_back("multi-head latent attention: llama.cpp rotates the rope.dimension_count = " +
                    std::to_string(g.rotary_dim) +
                    " channels on their own, so head_dim is that slice (qk_rope_head_dim)");
    g.head_dim = g.rotary_dim;
  }
  return g;
}

// Which position component ggml_mrope_cache_init gives pair j: 0..2 for the sections, 3 for the
// fourth component (0 for text tokens, llm_graph_input_pos::set_input).
int ggml_mrope_axis(const std::vector<int64_t>& s, int64_t j, bool interleaved) {
  const int64_t sector = j % (s[0] + s[1] + s[2] + s[3]);
  if (interleaved) {
    if (sector % 3 == 1 && sector < 3 * s[1]) return 1;
    if (sector % 3 == 2 && sector < 3 * s[2]) return 2;
    if (sector % 3 == 0 && sector < 3 * s[0]) return 0;
    return 3;
  }
  if (sector < s[0]) return 0;
  if (sector < s[0] + s[1]) return 1;
  if (sector < s[0] + s[1] + s[2]) return 2;
  return 3;
}

// The sections as rotary's mrope_section and order, when they give every pair the axis ggml
// gives it; refused by name otherwise.
void set_mrope(RopeConfig& c, const std::string& mode, const GgufKeys& keys,
               std::vector<std::string>& notes) {
  const std::vector<int64_t> s = mrope_sections(keys);
  const std::string key = keys.name("rope.dimension_sections");
  if (s[0] + s[1] + s[2] + s[3] == 0) invalid_gguf(key, "required for " + mode + " (all zero)");
  std::vector<int64_t> sections = s;
  while (!sections.empty() && sections.back() == 0) sections.pop_back();
  const bool interleaved = mode == "imrope";
  c.mrope_section = sections.size() > 1 ? sections : std::vector<int64_t>{};
  c.mrope_order = interleaved ? MropeOrder::kInterleaved : MropeOrder::kChunked;
  std::vector<int> axes;
  try {
    c.validate();
    axes = c.pair_axes();
  } catch (const Error& e) {
    invalid_gguf(key, "the sections do not make a rotary M-RoPE: " + e.message());
  }
  for (int64_t j = 0; j < static_cast<int64_t>(axes.size()); ++j) {
    const int llama_axis = ggml_mrope_axis(s, j, interleaved);
    if (llama_axis != axes[j]) {
      invalid_gguf(key, "pair " + std::to_string(j) + ": llama.cpp rotates it by position " +
                            "component " + std::to_string(llama_axis) +
                            (llama_axis == 3 ? " (0 for text tokens)" : "") + ", rotary's " +
                            c.pair_axes_in_words() + " M-RoPE by component " +
                            std::to_string(axes[j]) + "; not supported yet");
    }
  }
  notes.push_back(
      "M-RoPE: llama.cpp passes 4 position components per token (text tokens: the position three "
      "times, then 0); rotary's " +
      std::to_string(c.num_axes()) + " axes are its first " + std::to_string(c.num_axes()) +
      " components" +
      (s[3] > 0 ? ", so a text token's last section does not rotate in llama.cpp" : ""));
}

}  // namespace

GgufRopeMode gguf_rope_mode(const GgufMetadata& metadata) {
  const GgufArchitecture& arch = architecture_of(metadata);
  const GgufKeys keys(metadata);
  GgufRopeMode mode;
  mode.rope_mode = decide_mode(arch, keys);
  // A conditional architecture's converter reorders rows only for M-RoPE (glm4's normal_to_neox).
  const bool conditional =
      arch.mode == GgufModeRule::kNormOrMrope || arch.mode == GgufModeRule::kNeoxOrMrope;
  mode.qk_rows_permuted = arch.qk_rows_permuted && (!conditional || mode.rope_mode == "mrope");
  return mode;
}

GgufRope gguf_rope(const GgufMetadata& metadata, std::optional<int64_t> context_length) {
  const GgufRopeMode mode = gguf_rope_mode(metadata);
  if (mode.rope_mode == "none") {
    invalid_gguf("general.architecture", "llama.cpp applies no RoPE to '" + metadata.architecture +
                                             "' (llama_model_rope_type is NONE)");
  }
  const GgufKeys keys(metadata);
  GgufRope out;
  out.rope_mode = mode.rope_mode;
  out.qk_rows_permuted = mode.qk_rows_permuted;
  std::vector<std::string>& notes = out.notes;

  const Geometry g = geometry_of(keys, metadata.architecture, notes);
  RopeConfig& c = out.config;
  c.head_dim = g.head_dim;
  c.rotary_dim = g.rotary_dim;
  c.layout = mode.rope_mode == "norm" ? Layout::kInterleaved : Layout::kHalfSplit;
  if (mode.qk_rows_permuted) {
    notes.push_back("the converter reordered the Q/K rows of each head, so llama.cpp's " +
                    mode.rope_mode +
                    " pairs in the file are the pairs transformers rotates in the original "
                    "checkpoint's own layout");
  }
  detail::set_scaling(c, metadata, keys, g.rotary_dim, context_length, notes);
  for (const std::string_view nope : {"llama4", "afmoe", "smallthinker"}) {
    if (metadata.architecture == nope) {
      notes.push_back("'" + metadata.architecture +
                      "': llama.cpp leaves some layers unrotated (n_no_rope_layer_step); this is "
                      "the rotation of the others");
    }
  }
  if (is_mrope(mode.rope_mode)) {
    set_mrope(c, mode.rope_mode, keys, notes);
  } else if (keys.has("rope.dimension_sections")) {
    notes.push_back(keys.name("rope.dimension_sections") + ": llama.cpp rotates '" +
                    metadata.architecture + "' in " + mode.rope_mode +
                    " mode here and does not use the M-RoPE sections");
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(
        ErrorCode::kInvalidConfig, e.argument(),
        "the rotary configuration made from the GGUF metadata is not valid: " + e.message());
  }
  notes.push_back(
      "precision: llama.cpp computes each angle in float32 (theta = position * base^(-2i/d) by "
      "repeated float32 multiplication); rotary's frequencies are transformers' float32 values, "
      "so angles differ by about 1e-7 relative per position");
  return out;
}

}  // namespace rotary
