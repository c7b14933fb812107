// What the units of the verifier's core (include/rotary/verify.h) share beyond the public API:
// angles and tolerances (measurement.cc), and numbers printed as both front ends always have
// (printf's conversions, which Python's format specifications share).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>

#include "rotary/verify.h"

namespace rotary::verify {

// Throws Error naming "angles" or "positions" unless `angles` holds positions x pairs values at
// increasing positions (angle_fit.cc).
void check_angles(const AngleView& angles);
// `angle` reduced to (-pi, pi].
double wrap(double angle);
// The absolute noise of one measured angle: max(kCosSinF32, 2 * noise).
double angle_noise(double noise);
// How far a measured attention factor (or any magnitude) may be from `expected`.
double attention_tolerance(Source source, double noise, double expected);
// The base the unscaled high-frequency pairs follow (theta_0 = 1): the longest head of pairs that
// is log-linear from theta_0 = 1, or nullopt (family_fit.cc).
std::optional<double> head_base(std::span<const double> theta, std::span<const double> tolerance,
                                int64_t rotary_dim);

namespace text {

// `value` as printf's `spec` (one double conversion, e.g. "%.7g") formats it.
inline std::string format(const char* spec, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, spec, value);
  return buffer;
}

// `value` rounded to `digits` significant digits (printf's %.*g, read back).
inline double round_to_digits(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
  return std::strtod(buffer, nullptr);
}

// "+1", "-2": an offset with its sign.
inline std::string signed_integer(int64_t value) {
  std::string out = value > 0 ? "+" : "";
  out += std::to_string(value);
  return out;
}

// "1-9": a range of positions.
inline std::string range(int64_t first, int64_t last) {
  return std::to_string(first) + "-" + std::to_string(last);
}

}  // namespace text
}  // namespace rotary::verify
