// Real model configurations bundled with the tool: the records of tests/data/configs (RoPE fields
// copied from each model's published config.json, with their source), embedded at build time so
// that `rotary demo` and `rotary inspect llama-3.1-8b` need no file and no download.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rotary::tools {

struct BuiltinConfig {
  std::string_view name;    // the record's file name without .json, e.g. "llama-3.1-8b"
  std::string_view record;  // {"model": ..., "source": {...}, "config": {...}}
};

const std::vector<BuiltinConfig>& builtin_configs();
// nullptr when `name` is not a built-in.
const BuiltinConfig* find_builtin_config(std::string_view name);
// "llama-2-7b, llama-3-8b, ..." for error messages and --help.
std::string builtin_config_names();

}  // namespace rotary::tools
