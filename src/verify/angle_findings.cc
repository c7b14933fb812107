// What the angles and magnitudes alone say is wrong, whatever the config: a backwards rotation, a
// start other than angle 0, a magnitude that is not one constant, angles off their line.
//
// A table and a probed function show the same faults, but a message names what the user has in
// hand: a table's rows and hypot(cos, sin), a function's positions and the scale of its pairs.
#include <algorithm>
#include <cmath>
#include <string>

#include "internal.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {
namespace {

using text::format;

// "[0, 3, 7]" (Python's list form), the first eight, then " ...".
std::string pair_list(const std::vector<std::size_t>& pairs) {
  std::string out = "[";
  for (std::size_t k = 0; k < std::min<std::size_t>(pairs.size(), 8); ++k) {
    if (k > 0) out += ", ";
    out += std::to_string(pairs[k]);
  }
  out += pairs.size() > 8 ? "] ..." : "]";
  return out;
}

}  // namespace

std::optional<Finding> direction_finding(Source source, std::span<const double> theta,
                                         std::span<const double> tolerance) {
  if (tolerance.size() != theta.size()) detail::invalid("tolerance", "expected one per theta");
  std::vector<std::size_t> backwards;
  std::size_t turning = 0;
  for (std::size_t j = 0; j < theta.size(); ++j) {
    if (theta[j] < -tolerance[j]) backwards.push_back(j);
    turning += theta[j] != 0;
  }
  if (backwards.empty()) return std::nullopt;
  // Pairs at theta 0 (the pass-through pairs of a layout) turn neither way.
  const bool every = backwards.size() == turning;
  if (source == Source::kTable) {
    return Finding{Severity::kMismatch, "direction",
                   (every ? std::string("every pair turns")
                          : std::to_string(backwards.size()) + " pairs turn") +
                       " backwards (the angle decreases with the position): sin has the wrong "
                       "sign"};
  }
  return Finding{Severity::kMismatch, "direction",
                 "rotates backwards: " + (every ? "every pair" : "pairs " + pair_list(backwards)) +
                     " turns by -p*θ (x cos + y sin, y cos - x sin): sin has the wrong sign, or "
                     "each pair's two channels are swapped"};
}

std::optional<Finding> start_finding(Source source, const PositionOffset& start) {
  const bool table = source == Source::kTable;
  if (start.offset) {
    const std::string d = text::signed_integer(*start.offset);
    return Finding{Severity::kMismatch, "positions",
                   table ? "row 0 is not position 0: every pair's angle there is " + d +
                               " x θ_i, so row p holds position p" + d + " (positions off by " + d +
                               ")"
                         : "position 0 is not the identity: every pair is rotated by " + d +
                               " x θ_i, so positions are off by " + d +
                               " (position p is rotated as p" + d + ")"};
  }
  if (start.constant_phase == 0) return std::nullopt;
  const std::string phase = format("%.3g", start.constant_phase);
  return Finding{Severity::kMismatch, "positions",
                 table ? "row 0 is not the identity (cos 1, sin 0): pairs start at a constant "
                         "phase up to " +
                             phase + " rad"
                       : "position 0 is not the identity: pairs carry a constant phase (up to " +
                             phase + " rad) that does not grow with the position"};
}

std::optional<Finding> magnitude_finding(Source source, std::span<const double> magnitudes,
                                         double attention_factor, double noise) {
  if (magnitudes.empty()) return std::nullopt;
  const auto [lo, hi] = std::minmax_element(magnitudes.begin(), magnitudes.end());
  const double tol = attention_tolerance(source, noise, attention_factor);
  if (source == Source::kTable) {
    // Every stored value is rounded: the range may span the tolerance on both sides.
    if (*hi - *lo <= 2 * tol) return std::nullopt;
    return Finding{Severity::kMismatch, "attention_factor",
                   "cos^2 + sin^2 is not one constant: hypot(cos, sin) ranges over " +
                       format("%.7g", *lo) + " .. " + format("%.7g", *hi) +
                       "; a rotation table holds cos and sin of one angle, times one factor"};
  }
  if (std::max(*hi - attention_factor, attention_factor - *lo) <= tol) return std::nullopt;
  return Finding{Severity::kMismatch, "attention_factor",
                 "cos^2 + sin^2 is not one constant: the pairs' scale ranges over " +
                     format("%.6g", *lo) + " .. " + format("%.6g", *hi)};
}

std::optional<Finding> linearity_finding(const AngleView& angles, std::span<const double> residual,
                                         std::span<const double> theta, double noise) {
  check_angles(angles);
  if (residual.size() != angles.angle.size() ||
      theta.size() != static_cast<std::size_t>(angles.pairs)) {
    detail::invalid("residual", "expected one residual per angle and one theta per pair");
  }
  if (angles.positions.empty()) return std::nullopt;
  // A least-squares line spreads the float32 rounding of the far positions over every point, so
  // the bound is that of the largest position; gross non-linearity (p^2, a wrong scale on some
  // positions) is far above it.
  const auto farthest = static_cast<double>(angles.positions.back());
  const auto pairs = static_cast<std::size_t>(angles.pairs);
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t k = 0; k < residual.size(); ++k) {
    const double allowed =
        4 * (angle_noise(noise) + kProductF32 * farthest * std::fabs(theta[k % pairs]));
    const double ratio = std::fabs(residual[k]) / allowed;
    if (ratio > worst) worst = ratio, at = k;
  }
  if (worst <= 1) return std::nullopt;
  return Finding{Severity::kMismatch, "angles",
                 "angles are not proportional to the position: pair " + std::to_string(at % pairs) +
                     " is " + format("%+.3g", residual[at]) +
                     " rad off the best line at position " +
                     std::to_string(angles.positions[at / pairs])};
}

}  // namespace rotary::verify
