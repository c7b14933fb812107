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

}  // namespace rotary::detail
