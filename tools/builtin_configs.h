// Real model configurations bundled with the tool: the plain config.json files of
// tests/data/configs (RoPE fields as each model's published config.json spells them) and their
// provenance (tests/data/configs/sources/NAME.json), embedded at build time so that `rotary demo`
// and `rotary inspect llama-3.1-8b` need no file and no download.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rotary::tools {

struct BuiltinConfig {
  std::string_view name;    // the config's file name without .json, e.g. "llama-3.1-8b"
  std::string_view config;  // the config.json text, as stored
  std::string_view source;  // {"model": ..., "source": {"repository", "path", "commit", "note"}}
};

// Every stored config, those rotary refuses included, sorted by name.
const std::vector<BuiltinConfig>& builtin_configs();
// nullptr when `name` is not a stored config.
const BuiltinConfig* find_builtin_config(std::string_view name);

// Where a built-in's values were read.
struct BuiltinProvenance {
  std::string model;       // e.g. "meta-llama/Llama-3.1-8B"
  std::string repository;  // the repository, path and commit of the file the values come from
  std::string path;
  std::string commit;
};
BuiltinProvenance provenance(const BuiltinConfig& builtin);

// Whether rotary reads a stored config: `refusal` is empty when it does, for every layer type the
// config declares (`layer_types`, empty when one RoPE serves all layers); otherwise it is the
// error rotary gives for it ("use_dynamic_ntk: ..."). Checked once, on first use.
struct BuiltinStatus {
  const BuiltinConfig* builtin = nullptr;
  std::vector<std::string> layer_types;
  std::string refusal;
};
const std::vector<BuiltinStatus>& builtin_statuses();

// "aya-23-8b, codellama-7b, ...": the built-ins rotary reads (what `rotary list` lists), for
// error messages and --help.
std::string builtin_config_names();

}  // namespace rotary::tools
