// llama.cpp's architectures: how each pairs the channels, and whether its converter reorders the
// Q/K rows. Private to gguf_rope.cc.
#pragma once

#include <string_view>

namespace rotary::detail {

// llama_model_rope_type()'s answer, or the rule it decides by.
enum class GgufModeRule {
  kNone,
  kNorm,
  kNeox,
  kMrope,
  kImrope,
  kNormOrMrope,  // mrope when the file's M-RoPE sections make use_mrope() true, else norm
  kNeoxOrMrope,  // mrope when use_mrope(), else neox
  kDflash,       // mrope when any section is set, else norm with hyper-connections, else neox
};

struct GgufArchitecture {
  std::string_view name;  // general.architecture
  GgufModeRule mode;
  // convert_hf_to_gguf reorders this architecture's Q/K rows (for glm4: only with M-RoPE).
  bool qk_rows_permuted;
};

// The entry for `name`, or nullptr when llama.cpp does not know it.
const GgufArchitecture* find_gguf_architecture(std::string_view name);

// What the architecture's own loader (src/models/<arch>.cpp) reads beyond the common rope keys;
// every other architecture keeps the defaults of src/llama-hparams.h (betas 32 and 1, no YaRN
// blend override, no log multiplier, sliding-window base 10000 and scale 1).
bool reads_yarn_betas(std::string_view arch);         // rope.scaling.yarn_beta_fast/slow
bool reads_yarn_ext_and_attn(std::string_view arch);  // rope.scaling.yarn_ext/attn_factor
bool reads_yarn_log_mul(std::string_view arch);       // rope.scaling.yarn_log_multiplier
bool divides_yarn_log_mul(std::string_view arch);     // ... and divides it by 0.1
// The loader gives sliding-window layers the other layers' base (scale) where the file states
// none (llama_model::get_rope_freq_base/scale use the _swa values for those layers).
bool copies_base_to_swa(std::string_view arch);
bool copies_scale_to_swa(std::string_view arch);

}  // namespace rotary::detail
