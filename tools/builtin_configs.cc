#include "builtin_configs.h"

namespace rotary::tools {

const BuiltinConfig* find_builtin_config(std::string_view name) {
  for (const BuiltinConfig& c : builtin_configs()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string builtin_config_names() {
  std::string names;
  for (const BuiltinConfig& c : builtin_configs()) {
    if (!names.empty()) names += ", ";
    names += c.name;
  }
  return names;
}

}  // namespace rotary::tools
