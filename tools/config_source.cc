#include "config_source.h"

#include <filesystem>

#include "builtin_configs.h"
#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/json.h"

namespace rotary::tools {

ConfigText config_text(const std::string& argument) {
  // An existing path wins over a built-in of the same name: a user's file is never shadowed.
  if (std::filesystem::exists(argument)) return {read_json_file(argument), argument, argument};
  const BuiltinConfig* builtin = find_builtin_config(argument);
  if (builtin == nullptr) {
    throw Error(ErrorCode::kIoError, argument,
                "no such file, and not a built-in config (built-ins: " + builtin_config_names() +
                    "; see rotary list)");
  }
  const BuiltinProvenance from = provenance(*builtin);
  return {std::string(builtin->config), from.model,
          from.repository + " " + from.path + " @ " + from.commit};
}

LoadedConfig load_config(const std::string& argument, const std::string& layer_type, bool vision) {
  ConfigText config = config_text(argument);
  const RopeConfig rope = read_config(argument, config, [&](const std::string& text) {
    return vision ? vision_config_from_json(text) : config_from_json(text, layer_type);
  });
  if (vision) config.label += " (vision tower)";
  return {rope, config.label, config.source};
}

}  // namespace rotary::tools
