// The CONFIG argument of every command: a path to a model's config.json, or a built-in name.
#pragma once

#include <string>

#include "rotary/config.h"

namespace rotary::tools {

struct LoadedConfig {
  RopeConfig config;
  std::string label;   // what to call it: the model name of a built-in, else the path
  std::string source;  // where the values come from (repository/path of a built-in, or the path)
};

// Throws rotary::Error naming the file (or built-in) and the field. `vision`: the RoPE of the
// model's vision tower (its 2D axial RoPE) instead of the language model's.
LoadedConfig load_config(const std::string& argument, const std::string& layer_type,
                         bool vision = false);

}  // namespace rotary::tools
