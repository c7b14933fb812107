// `rotary layers CONFIG [--json]`: which layers of the model rotate and by which RoPE, as its
// transformers class decides per layer (rotary/layers.h).
#pragma once

#include <string>

namespace rotary::tools {

int run_layers(const std::string& config_argument, bool json);

}  // namespace rotary::tools
