#include "builtin_configs.h"

#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"

namespace rotary::tools {

const BuiltinConfig* find_builtin_config(std::string_view name) {
  for (const BuiltinConfig& c : builtin_configs()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

BuiltinProvenance provenance(const BuiltinConfig& builtin) {
  // Compiled-in data, but read like any other JSON: one reader, one set of limits.
  const nlohmann::json record =
      parse_bounded_json(builtin.source, "sources/" + std::string(builtin.name) + ".json");
  const nlohmann::json& source = record.at("source");
  return {record.at("model").get<std::string>(), source.at("repository").get<std::string>(),
          source.at("path").get<std::string>(), source.at("commit").get<std::string>()};
}

namespace {

// The same reading every command does: the config for each of its layer types, and its
// frequencies.
BuiltinStatus check(const BuiltinConfig& builtin) {
  BuiltinStatus status{&builtin, {}, {}};
  try {
    status.layer_types = rope_layer_types(builtin.config);
    std::vector<std::string> types = status.layer_types;
    if (types.empty()) types.emplace_back();
    for (const std::string& type : types)
      compute_frequencies(config_from_json(builtin.config, type));
  } catch (const Error& e) {
    status.refusal = e.argument().empty() ? e.message() : e.argument() + ": " + e.message();
  }
  return status;
}

}  // namespace

const std::vector<BuiltinStatus>& builtin_statuses() {
  static const std::vector<BuiltinStatus> statuses = [] {
    std::vector<BuiltinStatus> all;
    for (const BuiltinConfig& c : builtin_configs()) all.push_back(check(c));
    return all;
  }();
  return statuses;
}

std::string builtin_config_names() {
  std::string names;
  for (const BuiltinStatus& s : builtin_statuses()) {
    if (!s.refusal.empty()) continue;
    if (!names.empty()) names += ", ";
    names += s.builtin->name;
  }
  return names;
}

}  // namespace rotary::tools
