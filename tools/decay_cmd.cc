#include "decay_cmd.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "atomic_file.h"
#include "rotary/decay.h"
#include "rotary/error.h"

namespace rotary::tools {
namespace {

// The whole text must be a decimal integer in [low, high]; anything else names the option.
int64_t parse_option(const std::string& option, const std::string& text, int64_t low,
                     int64_t high) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < low || value > high) {
    throw Error(ErrorCode::kInvalidArgument, option,
                "expected an integer from " + std::to_string(low) + " to " + std::to_string(high) +
                    ", got '" + text + "'");
  }
  return value;
}

std::string to_csv(const std::vector<DecayPoint>& points) {
  std::string csv = "distance,bound\n";
  char number[64];
  for (const DecayPoint& p : points) {
    csv += std::to_string(p.distance);
    csv += ',';
    // Shortest round-trip form: the reader gets exactly the double that was computed.
    const auto [end, ec] = std::to_chars(number, number + sizeof number, p.bound);
    (void)ec;  // 64 characters always hold a double
    csv.append(number, end);
    csv += '\n';
  }
  return csv;
}

}  // namespace

void write_decay(const LoadedConfig& loaded, const DecayRequest& request) {
  const RopeConfig& c = loaded.config;
  // Twice the trained context shows the bound past where the model was trained to attend.
  const int64_t max_distance =
      request.max_distance.empty()
          ? (c.max_position_embeddings > 0
                 ? 2 * std::min(c.max_position_embeddings, kMaxDecayDistance / 2)
                 : 65536)
          : parse_option("--max-distance", request.max_distance, 1, kMaxDecayDistance);
  const int64_t points_per_decade =
      request.points_per_decade.empty()
          ? kDefaultPointsPerDecade
          : parse_option("--points-per-decade", request.points_per_decade, 1, kMaxPointsPerDecade);

  const std::vector<int64_t> distances =
      log_spaced_distances(max_distance, static_cast<int>(points_per_decade));
  const std::string csv = to_csv(long_term_decay(c, distances));

  if (request.out.empty()) {
    if (std::fwrite(csv.data(), 1, csv.size(), stdout) != csv.size() || std::fflush(stdout) != 0) {
      throw Error(ErrorCode::kIoError, "standard output", "writing failed");
    }
    return;
  }
  write_atomically(request.out, [&](std::ofstream& file) { file << csv; });
}

}  // namespace rotary::tools
