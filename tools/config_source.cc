#include "config_source.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "builtin_configs.h"
#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/json.h"

namespace rotary::tools {

ConfigText config_text(const std::string& argument) {
  if (std::filesystem::exists(argument)) return {read_json_file(argument), argument, argument};
  const BuiltinConfig* builtin = find_builtin_config(argument);
  if (builtin == nullptr) {
    throw Error(
        ErrorCode::kIoError, argument,
        "no such file, and not a built-in config (built-ins: " + builtin_config_names() + ")");
  }
  // Compiled-in data, but read like any other JSON: one reader, one set of limits.
  const nlohmann::json record = parse_bounded_json(builtin->record, std::string(builtin->name));
  const nlohmann::json& source = record.at("source");
  return {record.at("config").dump(), record.at("model").get<std::string>(),
          source.at("repository").get<std::string>() + " " + source.at("path").get<std::string>()};
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
