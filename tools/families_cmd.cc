#include "families_cmd.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "bounded_json.h"
#include "rotary/config.h"

namespace rotary::tools {
namespace {

// The RoPE types the sweep tries on each family's default config; its other cases are layer types
// ("default [sliding_attention]") and stored real configs.
const std::vector<std::string> kRopeTypes = {"default", "linear",   "dynamic",
                                             "yarn",    "longrope", "llama3"};

nlohmann::json rope_types_of(const nlohmann::json& family) {
  nlohmann::json types = nlohmann::json::array();
  for (const std::string& type : kRopeTypes) {
    for (const auto& [name, value] : family.at("cases").items()) {
      if (name == type || name.starts_with(type + " [")) {
        types.push_back(type);
        break;
      }
    }
  }
  return types;
}

std::string joined(const nlohmann::json& strings) {
  std::string out;
  for (const auto& s : strings) {
    if (!out.empty()) out += ',';
    out += s.get<std::string>();
  }
  return out;
}

// Diagnoses run to a few hundred characters; the line keeps their start, --json the whole text.
std::string shortened(const std::string& text) {
  constexpr std::size_t kMax = 100;
  return text.size() <= kMax ? text : text.substr(0, kMax - 3) + "...";
}

}  // namespace

nlohmann::json family_records() {
  const nlohmann::json document = parse_bounded_json(families_json(), "families.json");
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [name, family] : document.at("families").items()) {
    records.push_back({{"family", name},
                       {"kind", family.at("kind")},
                       {"module", family.at("module")},
                       {"model_types", family.at("model_types")},
                       {"state", family.at("state")},
                       {"layout", family.value("layout", nlohmann::json())},
                       {"rope_types", rope_types_of(family)},
                       {"detail", family.value("detail", "")}});
  }
  return records;
}

std::string families_summary(const nlohmann::json& records) {
  std::map<std::string, int> counts;
  for (const auto& r : records) ++counts[r.at("state").get<std::string>()];
  return "families: " + std::to_string(counts["match"]) + " match, " +
         std::to_string(counts["refused"]) + " refused, " + std::to_string(counts["mismatch"]) +
         " known mismatches, " + std::to_string(counts["unchecked"]) + " unchecked";
}

int run_families(const FamiliesRequest& request) {
  const nlohmann::json records = family_records();
  nlohmann::json shown = nlohmann::json::array();
  std::copy_if(records.begin(), records.end(), std::back_inserter(shown), [&](const auto& r) {
    return request.state.empty() || r.at("state") == request.state;
  });
  if (request.json) {
    std::printf("%s\n", shown.dump(2).c_str());
    return 0;
  }
  for (const auto& r : shown) {
    const std::string layout = r.at("layout").is_null() ? "-" : r.at("layout").get<std::string>();
    std::printf("%-28s %-9s %-11s %s", r.at("family").get<std::string>().c_str(),
                r.at("state").get<std::string>().c_str(), layout.c_str(),
                joined(r.at("model_types")).c_str());
    const std::string detail = r.at("detail").get<std::string>();
    if (!detail.empty()) std::printf("  %s", shortened(detail).c_str());
    std::printf("\n");
  }
  std::printf("%s\n", families_summary(records).c_str());
  return 0;
}

}  // namespace rotary::tools
