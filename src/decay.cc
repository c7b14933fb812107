#include "rotary/decay.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <string>

#include "rotary/error.h"
#include "rotary/frequencies.h"

namespace rotary {

double long_term_decay_bound(std::span<const float> inv_freq, double distance) {
  if (inv_freq.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "inv_freq", "expected at least one frequency");
  }
  if (!std::isfinite(distance)) {
    throw Error(ErrorCode::kInvalidArgument, "distance", "expected a finite number");
  }
  // S_j is the running sum; the bound is the mean of |S_1| .. |S_{d/2}|. Summed in pair order so
  // that the result is reproducible bit for bit (rotary.plot's figure and `rotary decay`'s CSV
  // share it).
  std::complex<double> partial = 0;
  double total = 0;
  for (float theta : inv_freq) {
    partial += std::polar(1.0, distance * static_cast<double>(theta));
    total += std::abs(partial);
  }
  return total / static_cast<double>(inv_freq.size());
}

std::vector<DecayPoint> long_term_decay(const RopeConfig& config,
                                        std::span<const int64_t> distances) {
  // Check every distance before any work, so that a bad argument costs nothing.
  for (std::size_t i = 0; i < distances.size(); ++i) {
    if (distances[i] < 0 || distances[i] > kMaxDecayDistance) {
      throw Error(ErrorCode::kInvalidArgument, "distances[" + std::to_string(i) + "]",
                  "expected 0 <= distance <= 2^53, got " + std::to_string(distances[i]));
    }
  }
  const Frequencies frequencies = compute_frequencies(config);
  std::vector<DecayPoint> points;
  points.reserve(distances.size());
  for (int64_t r : distances) {
    points.push_back({r, long_term_decay_bound(frequencies.inv_freq, static_cast<double>(r))});
  }
  return points;
}

std::vector<int64_t> log_spaced_distances(int64_t max_distance, int points_per_decade) {
  if (max_distance < 0 || max_distance > kMaxDecayDistance) {
    throw Error(ErrorCode::kInvalidArgument, "max_distance",
                "expected 0 <= max_distance <= 2^53, got " + std::to_string(max_distance));
  }
  if (points_per_decade < 1 || points_per_decade > kMaxPointsPerDecade) {
    throw Error(ErrorCode::kInvalidArgument, "points_per_decade",
                "expected 1 to " + std::to_string(kMaxPointsPerDecade) + ", got " +
                    std::to_string(points_per_decade));
  }
  std::vector<int64_t> distances;
  for (int64_t r = 0; r <= std::min<int64_t>(10, max_distance); ++r) distances.push_back(r);
  // 10^(k / K) from k = K (r = 10) on; computed from k each time rather than by repeated
  // multiplication, so that rounding does not drift over many decades.
  for (int64_t k = points_per_decade;; ++k) {
    const double r = std::pow(10.0, static_cast<double>(k) / points_per_decade);
    if (r > static_cast<double>(max_distance)) break;
    const int64_t rounded = std::llround(r);
    if (rounded > distances.back()) distances.push_back(rounded);
  }
  if (distances.back() != max_distance) distances.push_back(max_distance);
  return distances;
}

}  // namespace rotary
