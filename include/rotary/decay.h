// RoFormer's long-term decay (Su et al. 2021, section 3.4.3): an upper bound on how much the
// rotation lets a query and a key at relative distance r interact, as a function of r.
//
// Write the logit of RoPE in complex form, sum_i h_i e^{i r theta_i} with h_i = q_i conj(k_i)
// over the d/2 rotated pairs. Abel summation with S_j = sum_{k=0}^{j-1} e^{i r theta_k} gives
//   |sum_i h_i e^{i r theta_i}| <= (max_i |h_{i+1} - h_i|) * sum_{j=1}^{d/2} |S_j|,
// so the part that depends on r alone is the relative upper bound
//   B(r) = (1 / (d/2)) * sum_{j=1}^{d/2} |S_j|.
// At r = 0 every S_j equals j, so B(0) = (d/2 + 1) / 2; for growing r the partial sums wind
// around and B(r) decays (with oscillations), which is the "long-term decay" property.
//
// theta are the configuration's actual frequencies, compute_frequencies(config): scaled by YaRN,
// linear, Llama 3, LongRoPE, ... as the model uses them. The attention factor (YaRN, LongRoPE) is
// deliberately left out: it multiplies q and k alike at every distance, so it scales the whole
// curve by one constant and changes neither its shape nor where it decays. B(r) is the rotation's
// own bound, on the same scale for every configuration.
//
// Everything is computed in double. For integer distances up to 2^29 the angle r * theta_i is
// exact in double (theta_i is a float32 value, 24 significant bits), so the only roundings are
// those of cos, sin and the sums.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rotary/config.h"
#include "rotary/limits.h"

namespace rotary {

struct DecayPoint {
  int64_t distance = 0;  // relative distance r, in tokens
  double bound = 0;      // B(r) = (1 / (d/2)) * sum_{j=1}^{d/2} |S_j|
};

// B(r) for the frequencies `inv_freq` (one per rotated pair, in pair order: S_j sums the first j).
// `distance` may be fractional (plots sample r on a log scale); B is even in r. Throws
// Error(kInvalidArgument) for an empty `inv_freq` or a non-finite `distance`.
double long_term_decay_bound(std::span<const float> inv_freq, double distance);

// B(r) at each of `distances` (0 <= r <= kMaxDecayDistance) for the frequencies of `config`. The
// types whose frequencies depend on the sequence length (dynamic, longrope) use the frequencies
// transformers builds at initialisation, as compute_frequencies(config) does. For multi-axis
// configs (M-RoPE, axial) r moves every axis together, as between two text tokens of M-RoPE.
// Throws Error(kInvalidConfig) for a bad config, Error(kInvalidArgument) for a distance out of
// range.
std::vector<DecayPoint> long_term_decay(const RopeConfig& config,
                                        std::span<const int64_t> distances);

// Distances for plotting B(r) on a log axis: every integer from 0 to min(10, max_distance) (B
// changes fastest there), then `points_per_decade` points per decade from 10 on, rounded to
// integers with duplicates dropped, and max_distance itself. Strictly increasing. Throws
// Error(kInvalidArgument) unless 0 <= max_distance <= kMaxDecayDistance and
// 1 <= points_per_decade <= kMaxPointsPerDecade (rotary/limits.h).
std::vector<int64_t> log_spaced_distances(int64_t max_distance, int points_per_decade);

}  // namespace rotary
