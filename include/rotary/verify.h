// The verifier's core: from the measured angles and magnitudes of rotary pairs to what an
// implementation computes and what differs from a configuration, as findings.
//
// Two front ends measure. `rotary verify` reads cos/sin tables another engine exported
// (Source::kTable: every position 0 .. N-1, the values as stored); rotary.verify probes a Python
// function (Source::kProbe: a few positions, angles read from the function's linear maps). Both
// turn their measurements into one angle per pair and position and call the functions here, so they
// share the line fit, the published-scheme fit, the diagnoses, the precision table and every
// tolerance. Where the two differ in noise, or in what a message can name (a table's rows, a
// function's positions), a function takes the Source.
//
// Angles are in radians, theta_i in rad/position. Angle arrays are row-major, positions x pairs.
// Sizes are checked; a violation throws rotary::Error (kInvalidArgument) naming the argument.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rotary/config.h"

namespace rotary::verify {

// ---- what was measured, and how precisely (src/verify/measurement.cc) -------------------------

enum class Source {
  kTable,  // a cos/sin table: every position from 0
  kProbe,  // a function probed at a few positions, through its own arithmetic
};

// A floating-point type cos/sin were stored or computed in: "float64", "float32", "float16",
// "bfloat16". parse_storage throws Error naming "storage" for another name.
enum class Storage { kFloat64, kFloat32, kFloat16, kBFloat16 };
std::string_view to_string(Storage storage);
Storage parse_storage(std::string_view name);
double unit_roundoff(Storage storage);  // 2^-53, 2^-24, 2^-11, 2^-8

// Float32 cos/sin of an exact angle: within about one ulp of values bounded by 1.
inline constexpr double kCosSinF32 = 3e-7;
// Float32 position * theta: the product rounds to 2^-24 relative, and each ulp by which theta
// differs from the reference's (PyTorch's pow is not correctly rounded) adds up to 2^-23 relative.
// 2^-21 allows the rounding plus three ulps of theta.
inline constexpr double kProductF32 = 0x1p-21;
// A measured theta against a model's float32 theta: about five float32 ulps.
inline constexpr double kThetaRelative = 3e-7;

// The noise level of everything measured: the storage's unit roundoff, or the quantization's when
// the values are coarser (quantized_to), never below float32's.
double measurement_noise(Storage storage, std::optional<Storage> quantized = std::nullopt);
// The tolerance of each theta_i measured at positions up to max_position: the angle noise spread
// over the positions, plus kThetaRelative |theta_i|.
std::vector<double> theta_tolerance(Source source, std::span<const double> theta, double noise,
                                    int64_t max_position);

// The narrowest of bfloat16 and float16 in which every nonzero cos and sin value is exact, or
// nullopt (also for fewer than 16 nonzero values, or one that is no float32 number). Angle 0 is
// cos 1, sin 0 in any type, so callers leave position 0 out. (src/verify/quantization.cc)
std::optional<Storage> quantized_to(std::span<const double> cos, std::span<const double> sin);

// ---- findings
// ------------------------------------------------------------------------------------

enum class Severity { kMismatch, kWarning, kNote };
std::string_view to_string(Severity severity);  // "mismatch", "warning", "note"

struct Finding {
  Severity severity = Severity::kMismatch;
  std::string topic;  // theta, attention_factor, pairing, rotary_dim, positions, precision, ...
  std::string message;
};

// ---- angles and lines (src/verify/angle_fit.cc)
// ----------------------------------------------------

// Angles of `pairs` pairs at increasing positions: angle[k * pairs + i] is pair i at positions[k].
struct AngleView {
  std::span<const int64_t> positions = {};
  std::span<const double> angle = {};
  int64_t pairs = 0;
};

// angle_i(p) = intercept_i + theta_i p by least squares over every position. Angles are unwrapped
// against the line through the positions before them, so the first two positions must be
// consecutive (theta_i is found in (-pi, pi]) and each later one at most about 2.5x the previous.
struct Lines {
  std::vector<double> theta, intercept;
  std::vector<double> residual;  // unwrapped angle - line, positions x pairs, when kept
};
Lines fit_lines(const AngleView& angles, bool keep_residuals = false);

// Position 0 should be angle 0: intercepts delta * theta_i mean positions off by delta, others a
// constant phase (the largest intercept).
struct PositionOffset {
  std::optional<int64_t> offset;
  double constant_phase = 0;
};
PositionOffset position_offset(Source source, std::span<const double> theta,
                               std::span<const double> intercept, double noise);

// The lines, their tolerances and offset, and the attention factor: the median of `magnitudes`
// (hypot(cos, sin) of every rotating pair at every position; the mean of the middle two for an
// even count).
struct AngleFit {
  Lines lines;
  std::vector<double> tolerance;
  PositionOffset start;
  double attention_factor = 0;
};
AngleFit fit_angles(Source source, const AngleView& angles, std::span<const double> magnitudes,
                    double noise, bool keep_residuals = false);

// ---- the published scheme that reproduces theta (src/verify/family_fit.cc)
// ---------------------------

// Schemes are tried from the simplest: proportional (a zero suffix), default, linear, Llama 3.1,
// YaRN, LongRoPE (one factor per pair: it fits anything, so it comes last). Parameters are
// estimated in closed form, rounded to the fewest significant digits that still fit, and written
// as a RopeConfig whose compute_frequencies for the call's length must reproduce every theta_i
// within its tolerance. Dynamic NTK is default RoPE within its context: no candidate here.
struct FamilyFit {
  std::optional<RopeType> rope_type;  // nullopt: no published scheme fits
  // By name, in the order described: base, factor, then rotated_pairs and zero_pairs
  // (proportional), low_wavelength and high_wavelength (llama3), ramp_low and ramp_high (yarn).
  std::vector<std::pair<std::string, double>> params;
  std::vector<double> factors;       // LongRoPE's per-pair factors, relative to the base
  std::optional<RopeConfig> config;  // a configuration rotary turns into these frequencies
  // max_i |theta_i - config's| / tolerance_i (a fit needs <= 1), and that pair.
  double worst = std::numeric_limits<double>::infinity();
  int64_t worst_pair = 0;

  bool fits() const { return rope_type.has_value() && worst <= 1; }
  std::optional<double> param(std::string_view name) const;
};

struct FitRequest {
  std::span<const double> theta = {};      // |theta| per pair; 0 for a pair that does not rotate
  std::span<const double> tolerance = {};  // per pair
  int64_t head_dim = 0;
  int64_t rotary_dim = 0;  // the width the pairs span (head_dim for proportional)
  int64_t length = 0;      // the sequence length theta was measured at
  // A base for LongRoPE's per-pair factors (they trade off with it), typically the config's.
  std::optional<double> hint_base;
};
FamilyFit fit_family(const FitRequest& request);

// e.g. "llama3: base 500000, factor 8, kept below wavelength 2048, divided above 8192 (original
// context / high_freq_factor, / low_freq_factor)".
std::string describe(const FamilyFit& fit);

// ---- diagnoses (src/verify/diagnosis.cc, src/verify/angle_findings.cc)
// -----------------------------

// "(i, i+64)" for half-split pairs of rotary_dim 128, "(2i, 2i+1)" for interleaved ones.
std::string pairs_phrase(Layout layout, int64_t rotary_dim);

struct ThetaComparison {
  std::span<const double> measured = {};   // |theta| per pair
  std::span<const double> tolerance = {};  // per measured pair
  std::span<const double> expected = {};   // the config's theta for this length
  const RopeConfig* config = nullptr;
  int64_t rotary_dim = 0;          // as measured
  int64_t length = 0;              // the sequence length theta was measured at
  const FamilyFit* fit = nullptr;  // the scheme identified from `measured`, if any
  // A pair the config turns by less than this by max_position, measured as not rotating, is too
  // slow to see (probes stop at small positions): no difference.
  double smallest_visible_angle = 0;
  int64_t max_position = 0;
};
struct ThetaVerdict {
  bool agree = false;  // every pair within its tolerance
  std::optional<Finding> finding;
};
// What the measured theta follow instead: another base (naming NTK-aware scaling), plain RoPE where
// the config scales, the config's scheme with another base, a scheme the config lacks, a uniform
// linear factor, or LongRoPE's other list.
ThetaVerdict diagnose_theta(const ThetaComparison& comparison);

// The cos/sin scale against the config's: missing, applied twice, or another value.
std::optional<Finding> diagnose_attention_factor(Source source, double measured, double expected,
                                                 double noise, RopeType rope_type);
// "pairs are MEASURED but the config's model family uses (i, i+64)".
Finding pairing_mismatch(std::string_view measured, Layout expected, int64_t rotary_dim);
// A note: one column per pair does not show the pairing; the config's.
Finding pairing_unseen(Layout expected, int64_t rotary_dim);
// "MEASURED, the config rotates R of D: channels R..D-1 should pass through unchanged".
Finding rotary_dim_mismatch(std::string_view measured, int64_t rotary_dim, int64_t head_dim);

// Findings from the angles alone: pairs turning backwards (theta_i < -tolerance_i), a start other
// than angle 0, cos^2 + sin^2 not one constant, angles off their lines by more than float32
// position x theta allows.
std::optional<Finding> direction_finding(Source source, std::span<const double> theta,
                                         std::span<const double> tolerance);
std::optional<Finding> start_finding(Source source, const PositionOffset& start);
std::optional<Finding> magnitude_finding(Source source, std::span<const double> magnitudes,
                                         double attention_factor, double noise);
std::optional<Finding> linearity_finding(const AngleView& angles, std::span<const double> residual,
                                         std::span<const double> theta, double noise);

// ---- precision per decade of positions (src/verify/precision.cc) -------------------------------

// The worst angle error over the positions [first, last] against a float64 oracle, position x
// theta_i formed exactly from the reference model's theta, and the bounds: float32_bound is what
// float32 position x theta and float32 cos/sin (transformers' way) may reach, `allowed` that plus
// the accepted storage precision.
struct DecadeRow {
  int64_t first = 0, last = 0;
  double worst_error = 0;
  int64_t position = 0, pair = 0;
  double float32_bound = 0, allowed = 0;
  bool exceeds = false;
  // The entry furthest past its own bound, when exceeds.
  int64_t over_position = 0, over_pair = 0;
  double over_error = 0, over_allowed = 0;
};

// [1, 9], [10, 99], ... up to max_position.
std::vector<std::pair<int64_t, int64_t>> decades(int64_t max_position);
// What cos/sin stored in `precision` add to an angle error: 0 for float32, else 2 unit roundoffs.
double storage_allowance(Storage precision);

struct DecadeRequest {
  AngleView angles = {};               // the positions in [first, last] are used
  std::span<const double> theta = {};  // the oracle's theta per pair, signed
  int64_t offset = 0;                  // position p is rotated as p + offset
  double allowance = 0;                // storage_allowance of the accepted precision
  std::span<const double> slack = {};  // per pair, extra error allowed per position; may be empty
};
DecadeRow measure_decade(int64_t first, int64_t last, const DecadeRequest& request);

struct PrecisionContext {
  Source source = Source::kTable;
  Storage storage = Storage::kFloat32;    // the table's storage, or the probes' dtype
  Storage precision = Storage::kFloat32;  // the accepted precision
  std::optional<Storage> quantized;       // quantized_to of the values
  std::string oracle = {};                // where the oracle's theta came from ("" for tables)
  bool exact_oracle = true;               // the oracle's theta are a model's, not measured
};
// From the measured rows: 16-bit values where float32 was accepted, an angle error past its bound,
// a 16-bit table's storage rounding, and how the error grows with the position.
std::vector<Finding> precision_findings(std::span<const DecadeRow> rows,
                                        const PrecisionContext& context);

}  // namespace rotary::verify
