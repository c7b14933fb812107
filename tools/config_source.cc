#include "config_source.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "builtin_configs.h"
#include "json_read.h"
#include "rotary/config_json.h"
#include "rotary/error.h"

namespace rotary::tools {

namespace {

RopeConfig parse(const std::string& json_text, const std::string& layer_type, bool vision) {
  return vision ? vision_config_from_json(json_text) : config_from_json(json_text, layer_type);
}

}  // namespace

LoadedConfig load_config(const std::string& argument, const std::string& layer_type, bool vision) {
  if (std::filesystem::exists(argument)) {
    if (!vision) return {config_from_json_file(argument, layer_type), argument, argument};
    const std::string text = detail::read_json_file(argument);
    try {
      return {parse(text, layer_type, true), argument + " (vision tower)", argument};
    } catch (const Error& e) {
      throw Error(e.code(), argument + (e.argument().empty() ? "" : ": " + e.argument()),
                  e.message());
    }
  }
  const BuiltinConfig* builtin = find_builtin_config(argument);
  if (builtin == nullptr) {
    throw Error(
        ErrorCode::kIoError, argument,
        "no such file, and not a built-in config (built-ins: " + builtin_config_names() + ")");
  }
  // Compiled-in data, but read like any other JSON: one reader, one set of limits.
  const nlohmann::json record = detail::parse_json(builtin->record, std::string(builtin->name));
  const nlohmann::json& source = record.at("source");
  try {
    return {
        parse(record.at("config").dump(), layer_type, vision),
        record.at("model").get<std::string>() + (vision ? " (vision tower)" : ""),
        source.at("repository").get<std::string>() + " " + source.at("path").get<std::string>()};
  } catch (const Error& e) {
    throw Error(e.code(),
                std::string(builtin->name) + (e.argument().empty() ? "" : ": " + e.argument()),
                e.message());
  }
}

}  // namespace rotary::tools
