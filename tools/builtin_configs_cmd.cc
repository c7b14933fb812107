#include "builtin_configs_cmd.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "builtin_configs.h"

namespace rotary::tools {

nlohmann::json builtin_list() {
  nlohmann::json builtins = nlohmann::json::array();
  nlohmann::json refused = nlohmann::json::array();
  for (const BuiltinStatus& status : builtin_statuses()) {
    const BuiltinProvenance from = provenance(*status.builtin);
    const std::string name(status.builtin->name);
    if (status.refusal.empty()) {
      builtins.push_back(
          {{"name", name},
           {"model", from.model},
           {"layer_types", status.layer_types},
           {"source",
            {{"repository", from.repository}, {"path", from.path}, {"commit", from.commit}}}});
    } else {
      refused.push_back({{"name", name}, {"model", from.model}, {"reason", status.refusal}});
    }
  }
  return {{"builtins", builtins}, {"refused", refused}};
}

namespace {

std::string joined(const nlohmann::json& strings, const std::string& separator) {
  std::string text;
  for (const auto& s : strings) text += (text.empty() ? "" : separator) + s.get<std::string>();
  return text;
}

void print_list(const nlohmann::json& list) {
  std::size_t width = 0;
  for (const auto& b : list["builtins"])
    width = std::max(width, b["name"].get<std::string>().size());
  for (const auto& b : list["builtins"]) {
    std::string line = b["name"].get<std::string>();
    line.resize(width + 2, ' ');
    line += b["model"].get<std::string>();
    if (!b["layer_types"].empty()) {
      line += "  [needs --layer-type " + joined(b["layer_types"], " or ") + "]";
    }
    std::printf("%s\n", line.c_str());
  }
  if (list["refused"].empty()) return;
  // Stored with the others so that the tests keep checking that rotary refuses them by name.
  std::printf("\nstored but refused (every command rejects them):\n");
  for (const auto& r : list["refused"]) {
    std::printf("  %s: %s\n", r["name"].get<std::string>().c_str(),
                r["reason"].get<std::string>().c_str());
  }
}

}  // namespace

int run_list(bool as_json) {
  const nlohmann::json list = builtin_list();
  if (as_json) {
    std::printf("%s\n", list.dump(2).c_str());
  } else {
    print_list(list);
  }
  return 0;
}

}  // namespace rotary::tools
