// The `<arch>.rope.*` keys gguf_scaling.cc does not read, and the sliding-window layers
// (llama.cpp at commit 0c1e57098): each key is noted where llama.cpp ignores it for the
// architecture and refused where it changes the rotation in a way rotary cannot express.
#include "gguf_key_checks.h"

#include <string_view>

#include "gguf_architectures.h"

namespace rotary::detail {

// Sliding-window layers rotate with their own base, scale and rotated channels in llama.cpp;
// rotary builds one rotation per file, so a difference is refused, and where the file cannot
// say (no freq_base_swa) the assumption is noted.
void check_sliding_window(const GgufKeys& keys, std::string_view arch, const RopeConfig& c,
                          double factor, std::vector<std::string>& notes) {
  const std::string base_key = keys.name("rope.freq_base_swa");
  const std::string dim_key = keys.name("rope.dimension_count_swa");
  const auto differs = [](const std::string& key, double value, double other) {
    invalid_gguf(key, "sliding-window layers rotate differently from the others (" + show(value) +
                          " instead of " + show(other) +
                          "); one rotation per file, not supported yet");
  };
  if (const auto dim = keys.integer("rope.dimension_count_swa")) {
    const int64_t rotary_dim = c.resolved_rotary_dim();
    if (*dim != rotary_dim)
      differs(dim_key, static_cast<double>(*dim), static_cast<double>(rotary_dim));
    notes.push_back(dim_key + ": the same as the other layers'");
  }
  const std::optional<double> base = keys.number("rope.freq_base_swa");
  if (base && *base != c.rope_theta) differs(base_key, *base, c.rope_theta);
  const bool unscaled_swa = factor != 1 && !copies_scale_to_swa(arch);
  if (base && unscaled_swa) {
    invalid_gguf(base_key, "llama.cpp rotates sliding-window layers without rope.scaling.factor " +
                               show(factor) + "; one rotation per file, not supported yet");
  }
  if (base) notes.push_back(base_key + ": the same as the other layers'");
  // A window > 0 gives the file sliding-window layers (olmo2's loader, OLMo 3's converter); they
  // rotate without the scaling where the loader does not copy it, even with no freq_base_swa.
  const bool has_window = keys.integer("attention.sliding_window").value_or(0) > 0;
  if (!base && has_window && unscaled_swa) {
    invalid_gguf(keys.name("attention.sliding_window"),
                 "llama.cpp rotates the sliding-window layers without rope.scaling.factor " +
                     show(factor) + "; one rotation per file, not supported yet");
  }
  if (!base && keys.has("attention.sliding_window") && !copies_base_to_swa(arch) &&
      c.rope_theta != 10000) {
    notes.push_back(
        "attention.sliding_window without rope.freq_base_swa: llama.cpp rotates the "
        "sliding-window layers '" +
        std::string(arch) +
        "' has (if any) with base 10000 and no scaling; this describes the others");
  }
}

// The keys under `<arch>.rope.` this file does not read: noted when llama.cpp ignores them for
// this architecture, refused when they change the rotation.
void check_other_rope_keys(const GgufMetadata& metadata, const GgufKeys& keys,
                           std::vector<std::string>& notes) {
  const std::string_view arch = metadata.architecture;
  const std::string rope_prefix = keys.name("rope.");
  const auto ignored = [&](const std::string& key, const std::string& what) {
    notes.push_back(key + ": llama.cpp ignores it for '" + std::string(arch) + "'" + what);
  };
  for (const auto& [key, value] : metadata.keys) {
    if (key.compare(0, rope_prefix.size(), rope_prefix) != 0) continue;
    const std::string suffix = key.substr(keys.prefix().size());
    if (among(suffix, {"rope.dimension_count", "rope.freq_base", "rope.scale_linear",
                       "rope.scaling.type", "rope.scaling.factor", "rope.scaling.attn_factor",
                       "rope.scaling.original_context_length", "rope.scaling.yarn_log_multiplier",
                       "rope.dimension_sections"})) {
      continue;  // read where they apply
    }
    if (suffix == "rope.freq_base_swa" || suffix == "rope.dimension_count_swa") {
      continue;  // check_sliding_window
    } else if (suffix == "rope.scaling.alpha") {
      if (arch == "hunyuan_vl" && keys.number(suffix).value_or(0) > 0) {
        invalid_gguf(key,
                     "llama.cpp grows the base by alpha^(d/(d-2)) for hunyuan_vl; not "
                     "supported yet");
      }
      ignored(key, "");
    } else if (suffix == "rope.scaling.finetuned") {
      ignored(key, " (it is only printed)");
    } else if (suffix == "rope.scaling.yarn_beta_fast" || suffix == "rope.scaling.yarn_beta_slow") {
      if (!reads_yarn_betas(arch)) {
        ignored(key, " and uses " +
                         std::string(suffix == "rope.scaling.yarn_beta_fast" ? "32" : "1") +
                         "; transformers uses the config's value");
      }
    } else if (suffix == "rope.scaling.yarn_ext_factor" ||
               suffix == "rope.scaling.yarn_attn_factor") {
      if (!reads_yarn_ext_and_attn(arch)) ignored(key, "; transformers uses the config's value");
    } else {
      invalid_gguf(key,
                   "a rope key rotary does not know what llama.cpp does with; not "
                   "supported yet");
    }
  }
  if (keys.has("rope.scaling.yarn_log_multiplier") && !reads_yarn_log_mul(arch)) {
    ignored(keys.name("rope.scaling.yarn_log_multiplier"), "");
  }
  if (arch == "deepseek4" && keys.has("attention.compress_rope_freq_base")) {
    invalid_gguf(keys.name("attention.compress_rope_freq_base"),
                 "DeepSeek-V4's compressed attention rotates with another base; not supported "
                 "yet");
  }
}

}  // namespace rotary::detail
