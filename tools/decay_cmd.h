// `rotary decay CONFIG [--max-distance N] [--points-per-decade K] [--out FILE.csv]`: RoFormer's
// long-term decay bound (rotary/decay.h) at log-spaced relative distances, as plot-ready CSV.
#pragma once

#include <string>

#include "config_source.h"

namespace rotary::tools {

// The options as typed: they are parsed here, not by CLI11, so that a bad value is reported like
// every other bad input (one line naming the option, exit code 2). Empty means "the default".
struct DecayRequest {
  std::string max_distance;       // default: 2 * max_position_embeddings, or 65536 when unstated
  std::string points_per_decade;  // default: kDefaultPointsPerDecade
  std::string out;                // empty: standard output
};

inline constexpr int kDefaultPointsPerDecade = 50;

// Writes "distance,bound" then one "r,B(r)" line per distance: integers, and the bound in the
// shortest form that reads back to the same double. No comments, no blank lines, so any CSV
// reader takes it as is. A file is written atomically (temporary name, then rename). Throws
// rotary::Error naming the option for a bad value.
void write_decay(const LoadedConfig& loaded, const DecayRequest& request);

}  // namespace rotary::tools
