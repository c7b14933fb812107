// From angles per pair and position to theta_i: least-squares lines through unwrapped angles, the
// position offset their intercepts reveal, and the attention factor from the magnitudes.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "internal.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {
namespace {

constexpr double kPi = std::numbers::pi;

// Running sums of a least-squares line y = intercept + slope x.
struct LineSums {
  double n = 0, x = 0, xx = 0, y = 0, xy = 0;

  void add(double px, double py) { n += 1, x += px, xx += px * px, y += py, xy += px * py; }
  double slope() const { return (n * xy - x * y) / (n * xx - x * x); }
  double intercept(double slope) const { return (y - slope * x) / n; }
};

// One pair's column: unwrapped angles and their line.
void fit_column(const AngleView& a, int64_t pair, Lines& out, std::vector<double>& unwrapped) {
  const std::size_t count = a.positions.size();
  const auto angle = [&](std::size_t k) { return a.angle[k * a.pairs + pair]; };
  const auto x = [&](std::size_t k) { return static_cast<double>(a.positions[k]); };
  LineSums sums;
  unwrapped[0] = angle(0);
  sums.add(x(0), unwrapped[0]);
  double slope = 0, intercept = angle(0);
  for (std::size_t k = 1; k < count; ++k) {
    if (k == 1) {
      // The first step fixes theta in (-pi, pi]; the line so far runs through the first point.
      slope = wrap(angle(1) - angle(0)) / std::max(x(1) - x(0), 1.0);
      intercept = angle(0) - slope * x(0);
    }
    const double predicted = intercept + slope * x(k);
    unwrapped[k] = predicted + wrap(angle(k) - predicted);
    sums.add(x(k), unwrapped[k]);
    slope = sums.slope();
    intercept = sums.intercept(slope);
  }
  out.theta[pair] = count > 1 ? slope : 0.0;
  out.intercept[pair] = intercept;
  if (out.residual.empty()) return;
  for (std::size_t k = 0; k < count; ++k) {
    out.residual[k * a.pairs + pair] = unwrapped[k] - (intercept + slope * x(k));
  }
}

// The mean of the middle two for an even count, as NumPy's median.
double median(std::span<const double> values) {
  if (values.empty()) return 0;
  std::vector<double> sorted(values.begin(), values.end());
  const std::size_t half = sorted.size() / 2;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(half),
                   sorted.end());
  const double upper = sorted[half];
  if (sorted.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(half));
  return (lower + upper) / 2;
}

}  // namespace

void check_angles(const AngleView& a) {
  if (a.pairs < 0 || a.angle.size() != a.positions.size() * static_cast<std::size_t>(a.pairs)) {
    detail::invalid("angles", "expected positions x pairs = " + std::to_string(a.positions.size()) +
                                  " x " + std::to_string(a.pairs) + " values, got " +
                                  std::to_string(a.angle.size()));
  }
  for (std::size_t k = 1; k < a.positions.size(); ++k) {
    if (a.positions[k] <= a.positions[k - 1]) {
      detail::invalid("positions", "expected increasing positions");
    }
  }
}

double wrap(double x) { return kPi - std::fmod(std::fmod(kPi - x, 2 * kPi) + 2 * kPi, 2 * kPi); }

Lines fit_lines(const AngleView& angles, bool keep_residuals) {
  check_angles(angles);
  Lines lines;
  const auto pairs = static_cast<std::size_t>(angles.pairs);
  lines.theta.assign(pairs, 0.0);
  lines.intercept.assign(pairs, 0.0);
  if (keep_residuals) lines.residual.assign(angles.angle.size(), 0.0);
  if (angles.positions.empty()) return lines;
  std::vector<double> unwrapped(angles.positions.size());
  for (int64_t j = 0; j < angles.pairs; ++j) fit_column(angles, j, lines, unwrapped);
  return lines;
}

PositionOffset position_offset(Source source, std::span<const double> theta,
                               std::span<const double> intercept, double noise) {
  // Pairs that turn at least 1e-3 rad per position show an offset of one position clearly.
  constexpr double kStrong = 1e-3;
  double biggest = 0, lowest = 1e300, highest = -1e300, sum = 0;
  int strong = 0;
  for (std::size_t j = 0; j < theta.size(); ++j) {
    biggest = std::max(biggest, std::fabs(intercept[j]));
    if (std::fabs(theta[j]) <= kStrong) continue;
    const double ratio = intercept[j] / theta[j];
    lowest = std::min(lowest, ratio), highest = std::max(highest, ratio), sum += ratio, ++strong;
  }
  // A table's row 0 is read as stored, so its intercepts are good to a few angle noises; a probe's
  // come through the function's arithmetic at about twenty positions, and stay below 1e-4.
  const double threshold = source == Source::kTable ? 10 * angle_noise(noise) : 1e-4;
  if (strong == 0 || biggest <= threshold) return {};
  // One integer delta for every pair: the ratios agree, and their mean is that integer.
  const double mean = sum / strong;
  if (highest - lowest < 0.02 && std::fabs(mean - std::round(mean)) < 0.01 &&
      std::round(mean) != 0) {
    return {static_cast<int64_t>(std::round(mean)), 0.0};
  }
  return {std::nullopt, biggest};
}

AngleFit fit_angles(Source source, const AngleView& angles, std::span<const double> magnitudes,
                    double noise, bool keep_residuals) {
  AngleFit fit;
  fit.lines = fit_lines(angles, keep_residuals);
  const int64_t max_position = angles.positions.empty() ? 0 : angles.positions.back();
  fit.tolerance = theta_tolerance(source, fit.lines.theta, noise, max_position);
  fit.start = position_offset(source, fit.lines.theta, fit.lines.intercept, noise);
  fit.attention_factor = median(magnitudes);
  return fit;
}

}  // namespace rotary::verify
