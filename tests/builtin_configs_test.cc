// The command line's built-in configurations (tools/builtin_configs.h) against the files they are
// embedded from: each built-in is its tests/data/configs/NAME.json byte for byte, with
// sources/NAME.json as its provenance, and the ones rotary refuses are told apart with the reason.
#include "builtin_configs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace rotary::tools {
namespace {

const std::filesystem::path kDir = std::filesystem::path(ROTARY_TEST_DATA_DIR) / "configs";

std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> stored_names() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(builtin_configs_test, each_builtin_is_its_stored_file_and_provenance) {
  std::vector<std::string> names;
  for (const BuiltinConfig& b : builtin_configs()) {
    const std::string name(b.name);
    SCOPED_TRACE(name);
    names.push_back(name);
    EXPECT_EQ(b.config, file_text(kDir / (name + ".json")));
    EXPECT_EQ(b.source, file_text(kDir / "sources" / (name + ".json")));
    const nlohmann::json source = nlohmann::json::parse(b.source);
    const BuiltinProvenance from = provenance(b);
    EXPECT_EQ(from.model, source.at("model").get<std::string>());
    EXPECT_EQ(from.repository, source.at("source").at("repository").get<std::string>());
    EXPECT_EQ(from.path, source.at("source").at("path").get<std::string>());
    EXPECT_EQ(from.commit.size(), 40u);
    EXPECT_EQ(find_builtin_config(name), &b);
  }
  EXPECT_EQ(names, stored_names());
}

TEST(builtin_configs_test, only_names_are_builtins) {
  EXPECT_NE(find_builtin_config("llama-3.1-8b"), nullptr);
  EXPECT_EQ(find_builtin_config("llama-3.1-8b.json"), nullptr);
  EXPECT_EQ(find_builtin_config("sources/llama-3.1-8b"), nullptr);
  EXPECT_EQ(find_builtin_config("llama-3.1"), nullptr);
}

// Qwen-1's use_dynamic_ntk is the one scheme stored for the tests that rotary refuses by name; the
// files say which configs carry it.
TEST(builtin_configs_test, the_refused_ones_are_told_apart_with_their_reason) {
  // builtin_config_names(): "a, b, c", the names error messages list.
  std::vector<std::string> listed;
  std::stringstream names(builtin_config_names());
  for (std::string name; std::getline(names, name, ',');) {
    if (name.front() == ' ') name.erase(0, 1);
    listed.push_back(name);
  }
  int refused = 0;
  for (const BuiltinStatus& s : builtin_statuses()) {
    const std::string name(s.builtin->name);
    SCOPED_TRACE(name);
    const bool dynamic_ntk =
        nlohmann::json::parse(s.builtin->config).value("use_dynamic_ntk", false);
    EXPECT_EQ(!s.refusal.empty(), dynamic_ntk);
    const bool named = std::find(listed.begin(), listed.end(), name) != listed.end();
    EXPECT_EQ(named, !dynamic_ntk);
    if (dynamic_ntk) {
      EXPECT_EQ(s.refusal.rfind("use_dynamic_ntk: ", 0), 0u) << s.refusal;
      ++refused;
    }
    if (name == "gemma-3-12b-it") {
      EXPECT_EQ(s.layer_types, (std::vector<std::string>{"full_attention", "sliding_attention"}));
    }
    if (name == "llama-3.1-8b") {
      EXPECT_TRUE(s.layer_types.empty());
    }
  }
  EXPECT_EQ(refused, 1);
}

}  // namespace
}  // namespace rotary::tools
