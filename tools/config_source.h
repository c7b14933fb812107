// The CONFIG argument of every command: a path to a model's config.json, or a built-in name
// (`rotary list`). A path that exists is read as a file even where a built-in has the same name;
// any other argument must be a built-in's name.
#pragma once

#include <string>

#include "rotary/config.h"
#include "rotary/error.h"

namespace rotary::tools {

struct LoadedConfig {
  RopeConfig config;
  std::string label;   // what to call it: the model name of a built-in, else the path
  std::string source;  // where the values come from (repository, path and commit of a built-in,
                       // or the path)
};

// The config.json text of CONFIG, with what to call it. Throws rotary::Error naming CONFIG, and
// listing the built-ins, when it is neither a file nor a built-in. A stored config rotary refuses
// still resolves here, so that reading it reports why.
struct ConfigText {
  std::string text;
  std::string label;
  std::string source;
};
ConfigText config_text(const std::string& argument);

// Runs `read` on CONFIG's text, its errors prefixed with CONFIG as the library's file reader does.
template <typename Read>
auto read_config(const std::string& argument, const ConfigText& config, Read read) {
  try {
    return read(config.text);
  } catch (const Error& e) {
    throw Error(e.code(), argument + (e.argument().empty() ? "" : ": " + e.argument()),
                e.message());
  }
}

// Throws rotary::Error naming the file (or built-in) and the field. `vision`: the RoPE of the
// model's vision tower (its 2D axial RoPE) instead of the language model's.
LoadedConfig load_config(const std::string& argument, const std::string& layer_type,
                         bool vision = false);

}  // namespace rotary::tools
