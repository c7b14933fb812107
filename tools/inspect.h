// `rotary inspect CONFIG`: the resolved RoPE parameters and, per rotated pair, theta, wavelength,
// the scaling applied and whether the pair is extrapolated, interpolated or blended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_source.h"

namespace rotary::tools {

struct PairReport {
  int64_t index = 0;
  double theta_unscaled = 0;  // base^(-2i/d) for the same base and rotary_dim
  double theta = 0;           // what the model uses at the inspected context
  double wavelength_unscaled = 0;
  double wavelength = 0;  // 2 pi / theta, in tokens (infinite for theta 0)
  double scale = 0;       // theta / theta_unscaled
  double turns_in_context = 0;
  std::string rule;    // the scheme's own quantity: YaRN ramp, Llama 3 band, LongRoPE factor
  std::string regime;  // extrapolated | interpolated | blended | rescaled | not rotated
  int axis = 0;        // the position axis this pair rotates by (multi-axis RoPE)
};

struct Inspection {
  LoadedConfig loaded;
  int64_t context = 0;
  double attention_factor = 1;
  std::vector<PairReport> pairs;
};

// `context`: the sequence length to inspect at (0: max_position_embeddings, or the original
// context when that is absent); it matters for dynamic NTK and LongRoPE.
Inspection inspect(const LoadedConfig& loaded, int64_t context);
nlohmann::json to_json(const Inspection& inspection);
void print_inspection(const Inspection& inspection);

}  // namespace rotary::tools
