#include "config_source.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "builtin_configs.h"
#include "rotary/config_json.h"
#include "rotary/error.h"

namespace rotary::tools {

LoadedConfig load_config(const std::string& argument, const std::string& layer_type) {
  if (std::filesystem::exists(argument)) {
    return {config_from_json_file(argument, layer_type), argument, argument};
  }
  const BuiltinConfig* builtin = find_builtin_config(argument);
  if (builtin == nullptr) {
    throw Error(ErrorCode::kIoError, argument,
                "no such file, and not a built-in config (built-ins: " + builtin_config_names() + ")");
  }
  const nlohmann::json record = nlohmann::json::parse(builtin->record);
  const nlohmann::json& source = record.at("source");
  try {
    return {config_from_json(record.at("config").dump(), layer_type),
            record.at("model").get<std::string>(),
            source.at("repository").get<std::string>() + " " + source.at("path").get<std::string>()};
  } catch (const Error& e) {
    throw Error(e.code(), std::string(builtin->name) + (e.argument().empty() ? "" : ": " + e.argument()),
                e.message());
  }
}

}  // namespace rotary::tools
