// Angle precision per decade of positions against a float64 oracle, and what it says.
//
// The oracle angle is position x theta_i formed exactly from the reference model's float32 theta.
// The bound of an entry is what an implementation that forms position x theta in float32 and
// evaluates cos/sin in float32 (transformers' own way) may reach there: kCosSinF32 +
// kProductF32 * position * theta_i, plus the storage precision the caller accepts.
#include <algorithm>
#include <cmath>
#include <string>

#include "internal.h"
#include "rotary/angles.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {
namespace {

using text::format;

// The phrases that name what was measured.
struct Words {
  std::string quantized_values;  // how the values were found to be 16-bit numbers
  std::string exact_mode;        // how to get exact angles instead
};

Words words(const PrecisionContext& c, Storage q) {
  const std::string type(to_string(q));
  if (c.source == Source::kTable) {
    return {"cos/sin are " + type + " values stored as " + std::string(to_string(c.storage)) +
                ": every value is exactly a " + type + " number (computed or rounded in " + type +
                ").",
            "rotary export --angle-mode exact stays near 1e-7"};
  }
  return {"cos/sin are " + type + " values: every cos/sin the probes see is exactly a " + type +
              " number (a " + type + " table or a " + type + " computation).",
          "rotary's exact angle mode stays near 1e-7"};
}

Finding quantization_mismatch(std::span<const DecadeRow> rows, const PrecisionContext& c) {
  const DecadeRow& first = rows.front();
  const DecadeRow& worst = *std::max_element(
      rows.begin(), rows.end(),
      [](const DecadeRow& a, const DecadeRow& b) { return a.worst_error < b.worst_error; });
  return {Severity::kMismatch, "precision",
          words(c, *c.quantized).quantized_values + " Angle errors reach " +
              format("%.2g", first.worst_error) + " rad already at positions " +
              text::range(first.first, first.last) + " and " + format("%.2g", worst.worst_error) +
              " rad at " + text::range(worst.first, worst.last) + "; float32 tables are within " +
              format("%.1g", first.float32_bound) +
              " there. Compute cos/sin in float32 (gpt-neox #1003)"};
}

Finding exceeding_mismatch(const DecadeRow& row, const PrecisionContext& c) {
  const std::string precision(to_string(c.precision));
  return {Severity::kMismatch, "precision",
          "angle errors exceed " + precision + " rounding: " + format("%.3g", row.over_error) +
              " rad at position " + std::to_string(row.over_position) + " (pair " +
              std::to_string(row.over_pair) + ") against the float64 oracle" +
              (c.oracle.empty() ? "" : " from " + c.oracle) + ", where float32 position x θ and " +
              precision + " cos/sin allow " + format("%.3g", row.over_allowed)};
}

// Whether the values are a narrower type than the storage and the accepted precision.
bool coarser_than_accepted(const PrecisionContext& c) {
  if (!c.quantized) return false;
  const double u = unit_roundoff(*c.quantized);
  return u > unit_roundoff(c.precision) && u > unit_roundoff(c.storage);
}

// Far positions at float32 precision: the error grows as float32 position x theta does, or the
// angles are exact. Only meaningful against a model's own theta and when float32 is accepted
// (with 16-bit precision accepted the storage rounding dominates).
std::optional<Finding> growth_note(const DecadeRow& last, const PrecisionContext& c) {
  if (last.last < 10000 || unit_roundoff(c.precision) > 0x1p-24 || !c.exact_oracle) {
    return std::nullopt;
  }
  if (last.worst_error > 100 * kCosSinF32) {
    return Finding{Severity::kNote, "precision",
                   "the angle error grows with the position, as float32 position x θ does "
                   "(transformers' own hf angles): " +
                       format("%.2g", last.worst_error) + " rad at positions " +
                       text::range(last.first, last.last) + "; " +
                       words(c, Storage::kFloat32).exact_mode};
  }
  if (c.source != Source::kTable) return std::nullopt;
  return Finding{Severity::kNote, "precision",
                 "angles are exact to float32 rounding at every position (exact angles)"};
}

// position x theta reduced to (-pi, pi]: exact for a float32 theta (a model's, rotary::
// exact_angle), and in float64 for another (a measured theta, known to about 1e-7 anyway).
double oracle_angle(int64_t position, double theta) {
  const auto single = static_cast<float>(theta);
  if (static_cast<double>(single) == theta) return wrap(exact_angle(position, single));
  return wrap(static_cast<double>(position) * theta);
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> decades(int64_t max_position) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t first = 1; first <= max_position; first *= 10) {
    out.emplace_back(first, std::min(10 * first - 1, max_position));
    if (first > max_position / 10) break;
  }
  return out;
}

double storage_allowance(Storage precision) {
  return precision == Storage::kFloat16 || precision == Storage::kBFloat16
             ? 2 * unit_roundoff(precision)
             : 0.0;
}

DecadeRow measure_decade(int64_t first, int64_t last, const DecadeRequest& r) {
  const AngleView& a = r.angles;
  check_angles(a);
  const auto pairs = static_cast<std::size_t>(a.pairs);
  if (r.theta.size() != pairs || (!r.slack.empty() && r.slack.size() != pairs)) {
    detail::invalid("theta", "expected one oracle theta (and slack) per pair");
  }
  DecadeRow row{.first = first, .last = last};
  row.worst_error = -1;
  double worst_ratio = -1;
  for (std::size_t k = 0; k < a.positions.size(); ++k) {
    if (a.positions[k] < first || a.positions[k] > last) continue;
    const int64_t p = a.positions[k] + r.offset;
    for (std::size_t j = 0; j < pairs; ++j) {
      const double error = std::fabs(wrap(a.angle[k * pairs + j] - oracle_angle(p, r.theta[j])));
      const double bound =
          kCosSinF32 + kProductF32 * static_cast<double>(p) * std::fabs(r.theta[j]);
      const double allowed =
          bound + r.allowance + (r.slack.empty() ? 0.0 : static_cast<double>(p) * r.slack[j]);
      if (error > row.worst_error) {
        row.worst_error = error, row.position = a.positions[k], row.pair = static_cast<int64_t>(j);
      }
      row.float32_bound = std::max(row.float32_bound, bound);
      row.allowed = std::max(row.allowed, allowed);
      if (error / allowed > worst_ratio) {
        worst_ratio = error / allowed;
        row.over_position = a.positions[k], row.over_pair = static_cast<int64_t>(j);
        row.over_error = error, row.over_allowed = allowed;
      }
    }
  }
  row.worst_error = std::max(row.worst_error, 0.0);
  row.exceeds = worst_ratio > 1;
  return row;
}

std::vector<Finding> precision_findings(std::span<const DecadeRow> rows,
                                        const PrecisionContext& c) {
  if (rows.empty()) return {};
  if (coarser_than_accepted(c)) return {quantization_mismatch(rows, c)};
  const auto exceeding =
      std::find_if(rows.begin(), rows.end(), [](const DecadeRow& r) { return r.exceeds; });
  if (exceeding != rows.end()) return {exceeding_mismatch(*exceeding, c)};
  std::vector<Finding> out;
  const bool sixteen_bit = c.storage == Storage::kFloat16 || c.storage == Storage::kBFloat16;
  if (c.source == Source::kTable && sixteen_bit) {
    // A table stored in 16 bits on purpose: within that precision, but worth knowing.
    const double worst =
        std::max_element(rows.begin(), rows.end(), [](const DecadeRow& a, const DecadeRow& b) {
          return a.worst_error < b.worst_error;
        })->worst_error;
    out.push_back({Severity::kWarning, "precision",
                   "stored as " + std::string(to_string(c.storage)) + ": angle errors up to " +
                       format("%.2g", worst) +
                       " rad from the storage rounding alone (float32 tables: about 1e-7 at small "
                       "positions); --precision f32 makes this a mismatch"});
  }
  if (auto note = growth_note(rows.back(), c)) out.push_back(*note);
  return out;
}

}  // namespace rotary::verify
