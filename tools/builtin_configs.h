// Real model configurations bundled with the tool (their RoPE fields, copied from each model's
// published config.json), so that the demo runs with no download.
#pragma once

#include <string_view>
#include <vector>

namespace rotary::tools {

struct BuiltinConfig {
  std::string_view name;    // what the user types, e.g. "llama-3.1-8b"
  std::string_view model;   // the model it comes from
  std::string_view json;    // the RoPE-relevant fields of its config.json
};

const std::vector<BuiltinConfig>& builtin_configs();
// nullptr when `name` is not a built-in.
const BuiltinConfig* find_builtin_config(std::string_view name);

}  // namespace rotary::tools
