#include "builtin_configs.h"

namespace rotary::tools {

const std::vector<BuiltinConfig>& builtin_configs() {
  static const std::vector<BuiltinConfig> configs = {
      {"llama-3.1-8b", "meta-llama/Llama-3.1-8B", R"({
        "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
        "num_key_value_heads": 8, "max_position_embeddings": 131072, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"}})"},
  };
  return configs;
}

const BuiltinConfig* find_builtin_config(std::string_view name) {
  for (const BuiltinConfig& c : builtin_configs()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace rotary::tools
