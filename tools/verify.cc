#include "verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numbers>

#include "rotary/angles.h"
#include "rotary/error.h"
#include "rotary/float16.h"
#include "rotary/frequencies.h"
#include "rotary/rope.h"

namespace rotary::tools {
namespace {

constexpr double kCosSinF32 = 3e-7;      // float32 cos/sin of an exact angle, and their storage
constexpr double kProduct = 0x1p-21;     // float32 position * theta, theta within three ulps
constexpr double kThetaRelative = 3e-7;  // about five float32 ulps
constexpr double kPi = std::numbers::pi;

double wrap(double x) { return kPi - std::fmod(std::fmod(kPi - x, 2 * kPi) + 2 * kPi, 2 * kPi); }

double unit_roundoff(StorageType s) {
  switch (s) {
    case StorageType::kF64:
      return 0x1p-53;
    case StorageType::kF32:
      return 0x1p-24;
    case StorageType::kF16:
      return 0x1p-11;
    case StorageType::kBF16:
      return 0x1p-8;
  }
  return 0x1p-24;
}

std::string format(const char* spec, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

std::string pairs_phrase(Layout layout, int64_t rotary_dim) {
  return layout == Layout::kHalfSplit ? "(i, i+" + std::to_string(rotary_dim / 2) + ")"
                                      : "(2i, 2i+1)";
}

// The narrowest 16-bit type in which every nonzero value past row 0 is exact, or "".
std::string quantization(const CosSinTable& t) {
  if (t.storage == StorageType::kF16 || t.storage == StorageType::kBF16) return "";
  bool bf16 = true, f16 = true;
  int64_t counted = 0;
  for (const std::vector<double>* values : {&t.cos, &t.sin}) {
    for (std::size_t i = static_cast<std::size_t>(t.width); i < values->size(); ++i) {
      const double v = (*values)[i];
      if (v == 0) continue;
      const auto f = static_cast<float>(v);
      if (static_cast<double>(f) != v) return "";
      ++counted;
      bf16 = bf16 && round_to_dtype(f, DType::kBF16) == f;
      f16 = f16 && round_to_dtype(f, DType::kF16) == f;
      if (!bf16 && !f16) return "";
    }
  }
  if (counted < 16) return "";
  return bf16 ? "bfloat16" : f16 ? "float16" : "";
}

// Largest |a[p][i] - a[p][j]| over rows for the column pairs (i, j) a duplication layout implies.
double duplication_gap(const CosSinTable& t, int64_t pairs, bool interleaved) {
  double gap = 0;
  for (const std::vector<double>* values : {&t.cos, &t.sin}) {
    for (int64_t p = 0; p < t.positions; ++p) {
      const double* row = values->data() + p * t.width;
      for (int64_t j = 0; j < pairs; ++j) {
        const double a = interleaved ? row[2 * j] : row[j];
        const double b = interleaved ? row[2 * j + 1] : row[j + pairs];
        gap = std::max(gap, std::fabs(a - b));
      }
    }
  }
  return gap;
}

struct Line {
  double slope = 0, intercept = 0;
};

// Angle of pair column j at each row, unwrapped along consecutive positions, and its line.
Line fit_line(const std::vector<double>& angle, int64_t rows, int64_t pairs, int64_t j) {
  double prev = angle[j], unwrapped = prev;
  double sp = 0, spp = 0, sa = 0, spa = 0;
  for (int64_t p = 0; p < rows; ++p) {
    const double a = angle[p * pairs + j];
    if (p > 0) unwrapped += wrap(a - prev);
    prev = a;
    const auto x = static_cast<double>(p);
    sp += x;
    spp += x * x;
    sa += unwrapped;
    spa += x * unwrapped;
  }
  const auto n = static_cast<double>(rows);
  const double det = n * spp - sp * sp;
  Line line;
  line.slope = (n * spa - sp * sa) / det;
  line.intercept = (sa - line.slope * sp) / n;
  return line;
}

// theta_i = base^(-2i/d) with theta_0 = 1, over the first `pairs` pairs: ln(base) by weighted least
// squares (the variance of ln theta_i is (tol_i / theta_i)^2). nullopt when theta_0 is not 1.
std::optional<double> fitted_base(const std::vector<double>& theta, const std::vector<double>& tol,
                                  int64_t rotary_dim, std::size_t pairs) {
  if (theta.size() < 2 || std::fabs(theta[0] - 1) > tol[0]) return std::nullopt;
  double num = 0, den = 0;
  for (std::size_t i = 1; i < std::min(pairs, theta.size()); ++i) {
    if (theta[i] <= 0) return std::nullopt;
    const double x = -2.0 * static_cast<double>(i) / static_cast<double>(rotary_dim);
    const double w = (theta[i] / tol[i]) * (theta[i] / tol[i]);
    num += w * x * std::log(theta[i]);
    den += w * x * x;
  }
  if (den <= 0) return std::nullopt;
  return std::exp(num / den);
}

// Whether rotary's frequencies for `config` reproduce theta within tol.
bool reproduces(const RopeConfig& config, const std::vector<double>& theta,
                const std::vector<double>& tol, int64_t length) {
  try {
    const Frequencies f = compute_frequencies(config, length);
    if (f.inv_freq.size() != theta.size()) return false;
    for (std::size_t i = 0; i < theta.size(); ++i) {
      if (std::fabs(f.inv_freq[i] - theta[i]) > tol[i]) return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

// `raw` rounded to the fewest significant digits (1 .. 7) for which `fits` holds.
std::optional<double> nicest(double raw, const std::function<bool(double)>& fits) {
  for (int digits = 1; digits <= 7; ++digits) {
    const double nice = std::stod(format(("%." + std::to_string(digits) + "g").c_str(), raw));
    if (fits(nice)) return nice;
  }
  return std::nullopt;
}

class Verifier {
 public:
  Verifier(const LoadedConfig& loaded, const CosSinTable& table, const VerifyRequest& request)
      : t_(table), c_(loaded.config) {
    v_.loaded = loaded;
    v_.path = table.path;
    v_.format = table.format;
    v_.arrangement = table.arrangement;
    v_.storage = table.storage;
    v_.positions = table.positions;
    v_.width = table.width;
    const std::string& p = request.precision;
    v_.precision = p == "f16" ? "float16" : p == "bf16" ? "bfloat16" : p == "f32" ? "float32" : "";
    if (v_.precision.empty()) {
      v_.precision = table.storage == StorageType::kF16    ? "float16"
                     : table.storage == StorageType::kBF16 ? "bfloat16"
                                                           : "float32";
    }
  }

  TableVerification run() {
    const Rope rope(c_, {.max_threads = 1});
    v_.rotary_dim = rope.rotary_dim();
    const Frequencies f = rope.frequencies_for(std::vector<int64_t>{t_.positions - 1});
    v_.attention_factor_expected = f.attention_factor;
    v_.theta_expected.assign(f.inv_freq.begin(), f.inv_freq.end());
    v_.quantized = quantization(t_);
    noise_ = std::max({unit_roundoff(t_.storage),
                       v_.quantized == "float16"    ? 0x1p-11
                       : v_.quantized == "bfloat16" ? 0x1p-8
                                                    : 0.0,
                       0x1p-24});
    if (!columns()) return v_;
    measure();
    compare_layout();
    compare_theta();
    compare_attention_factor();
    precision();
    return v_;
  }

 private:
  void add(const std::string& severity, const std::string& topic, const std::string& message) {
    v_.findings.push_back({severity, topic, message});
  }

  // Works out which column holds pair i; false when the table cannot be compared pair by pair.
  bool columns() {
    const int64_t half = v_.rotary_dim / 2, w = t_.width;
    const double tol = 2 * unit_roundoff(t_.storage);
    if (w == half) {
      v_.column_layout = "per_pair";
      column_ = [](int64_t j) { return j; };
      v_.table_rotary_dim = 2 * w;
      return true;
    }
    const auto duplicated = [&](int64_t pairs, bool interleaved) {
      return duplication_gap(t_, pairs, interleaved) <= tol;
    };
    if (w == 2 * half) {
      const bool cat = duplicated(half, false), repeat = duplicated(half, true);
      v_.table_rotary_dim = w;
      if (cat && (!repeat || c_.layout == Layout::kHalfSplit)) {
        v_.column_layout = "cat";
        column_ = [](int64_t j) { return j; };
        return true;
      }
      if (repeat) {
        v_.column_layout = "repeat_interleave";
        column_ = [](int64_t j) { return 2 * j; };
        return true;
      }
      v_.column_layout = "unrecognised";
      add("mismatch", "columns",
          "the table has rotary_dim = " + std::to_string(w) +
              " columns, but they are neither cat(f, f) "
              "(transformers' half-split tables) nor repeat_interleave(f, 2) (GPT-J's interleaved "
              "ones): "
              "column j and j + " +
              std::to_string(half) + " differ, and so do 2j and 2j + 1");
      return false;
    }
    // Another width: the table was built for another rotary_dim.
    const bool doubled = w % 2 == 0 && (duplicated(w / 2, false) || duplicated(w / 2, true));
    v_.table_rotary_dim = doubled ? w : 2 * w;
    v_.column_layout =
        doubled ? (duplicated(w / 2, false) ? "cat" : "repeat_interleave") : "per_pair";
    const int64_t through = c_.head_dim - v_.rotary_dim;
    add("mismatch", "rotary_dim",
        "the table rotates " + std::to_string(v_.table_rotary_dim) + " channels (" +
            std::to_string(w) + " columns, " + (doubled ? "duplicated" : "one per pair") +
            "), the config rotates " + std::to_string(v_.rotary_dim) + " of " +
            std::to_string(c_.head_dim) +
            (through > 0 ? ": channels " + std::to_string(v_.rotary_dim) + ".." +
                               std::to_string(c_.head_dim - 1) + " should pass through unchanged"
                         : ""));
    return false;
  }

  void measure() {
    const int64_t n = v_.rotary_dim / 2, rows = t_.positions;
    angle_.resize(static_cast<std::size_t>(rows * n));
    std::vector<double> magnitude(angle_.size());
    for (int64_t p = 0; p < rows; ++p) {
      for (int64_t j = 0; j < n; ++j) {
        const double c = t_.cos[p * t_.width + column_(j)], s = t_.sin[p * t_.width + column_(j)];
        angle_[p * n + j] = std::atan2(s, c);
        magnitude[p * n + j] = std::hypot(c, s);
      }
    }
    std::vector<double> sorted = magnitude;
    std::nth_element(sorted.begin(),
                     sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    v_.attention_factor = sorted[sorted.size() / 2];
    const auto [lo, hi] = std::minmax_element(magnitude.begin(), magnitude.end());
    const double spread_tol = 4 * noise_ * std::max(v_.attention_factor, 1.0) + 1e-7;
    if (*hi - *lo > 2 * spread_tol) {
      add("mismatch", "attention_factor",
          "cos^2 + sin^2 is not one constant: hypot(cos, sin) ranges over " + format("%.7g", *lo) +
              " .. " + format("%.7g", *hi) +
              "; a rotation table holds cos and sin of one angle, times one factor");
    }
    const double a_abs = std::max(kCosSinF32, 2 * noise_);
    v_.theta.resize(static_cast<std::size_t>(n));
    v_.theta_tolerance.resize(v_.theta.size());
    intercept_.resize(v_.theta.size());
    for (int64_t j = 0; j < n; ++j) {
      const Line line = fit_line(angle_, rows, n, j);
      v_.theta[j] = line.slope;
      intercept_[j] = line.intercept;
      v_.theta_tolerance[j] =
          4 * a_abs / static_cast<double>(rows - 1) + kThetaRelative * std::fabs(line.slope);
    }
    int64_t backwards = 0;
    for (int64_t j = 0; j < n; ++j) backwards += v_.theta[j] < -v_.theta_tolerance[j];
    if (backwards > 0) {
      add("mismatch", "direction",
          (backwards == n ? std::string("every pair turns")
                          : std::to_string(backwards) + " pairs turn") +
              " backwards (the angle decreases with the position): sin has the wrong sign");
    }
    // Row 0 must be angle 0; a position offset shows as intercepts delta * theta_i.
    double lo_ratio = 1e300, hi_ratio = -1e300, biggest = 0;
    int strong = 0;
    for (int64_t j = 0; j < n; ++j) {
      biggest = std::max(biggest, std::fabs(intercept_[j]));
      if (std::fabs(v_.theta[j]) > 1e-3) {
        const double r = intercept_[j] / v_.theta[j];
        lo_ratio = std::min(lo_ratio, r);
        hi_ratio = std::max(hi_ratio, r);
        ++strong;
      }
    }
    if (biggest > 10 * a_abs && strong > 0) {
      const double mid = (lo_ratio + hi_ratio) / 2;
      if (hi_ratio - lo_ratio < 0.02 && std::fabs(mid - std::round(mid)) < 0.01 &&
          std::round(mid) != 0) {
        v_.position_offset = static_cast<int64_t>(std::round(mid));
        const std::string d =
            (*v_.position_offset > 0 ? "+" : "") + std::to_string(*v_.position_offset);
        add("mismatch", "positions",
            "row 0 is not position 0: every pair's angle there is " + d +
                " x θ_i, so row p holds position p" + d + " (positions off by " + d + ")");
      } else {
        add("mismatch", "positions",
            "row 0 is not the identity (cos 1, sin 0): pairs start at a constant phase up to " +
                format("%.3g", biggest) + " rad");
      }
    }
  }

  void compare_layout() {
    const std::string expected = pairs_phrase(c_.layout, v_.rotary_dim);
    if (v_.column_layout == "per_pair") {
      add("note", "pairing",
          "one column per pair: the table does not fix which channels pair up; the config's model "
          "family "
          "uses " +
              expected);
      return;
    }
    const Layout seen = v_.column_layout == "cat" ? Layout::kHalfSplit : Layout::kInterleaved;
    if (seen != c_.layout) {
      add("mismatch", "pairing",
          std::string("pairs are ") + pairs_phrase(seen, v_.rotary_dim) +
              " (the table repeats each frequency as " +
              (seen == Layout::kHalfSplit ? "cat(f, f)" : "repeat_interleave(f, 2)") +
              ") but the config's model family uses " + expected);
    }
  }

  void compare_theta() {
    const std::size_t n = v_.theta.size();
    std::size_t bad = 0, worst = 0;
    double worst_rel = -1;
    for (std::size_t i = 0; i < n; ++i) {
      const double err = std::fabs(std::fabs(v_.theta[i]) - v_.theta_expected[i]);
      if (err > v_.theta_tolerance[i]) {
        ++bad;
        const double rel = err / std::max(v_.theta_expected[i], 1e-30);
        if (rel > worst_rel) worst_rel = rel, worst = i;
      }
    }
    theta_ok_ = bad == 0;
    if (theta_ok_) return;
    const std::string detail = "worst pair " + std::to_string(worst) + ": θ " +
                               format("%.7g", v_.theta[worst]) + ", config " +
                               format("%.7g", v_.theta_expected[worst]) + " (relative error " +
                               format("%.2g", worst_rel) + "; " + std::to_string(bad) + " of " +
                               std::to_string(n) + " pairs differ)";
    std::vector<double> theta(n);
    for (std::size_t i = 0; i < n; ++i) theta[i] = std::fabs(v_.theta[i]);
    const std::string kind(to_string(c_.rope_type));
    const bool plain = c_.rope_type == RopeType::kDefault || c_.rope_type == RopeType::kDynamic;
    const std::string base_e = format("%.10g", c_.rope_theta);
    const auto plain_with = [&](double base) {
      RopeConfig config = c_.unscaled();
      config.rotary_dim = v_.rotary_dim;
      config.rope_theta = base;
      return reproduces(config, theta, v_.theta_tolerance, t_.positions);
    };
    const auto raw = fitted_base(theta, v_.theta_tolerance, v_.rotary_dim, n);
    if (const auto base = raw ? nicest(*raw, plain_with) : std::nullopt) {
      const std::string base_m = format("%.10g", *base);
      if (plain) {
        std::string hint;
        const double d = static_cast<double>(v_.rotary_dim);
        const double ntk = std::pow(*base / c_.rope_theta, (d - 2) / d);
        if (*base > c_.rope_theta && std::fabs(ntk - std::round(ntk)) < 0.01 &&
            std::round(ntk) > 1) {
          hint = " (that is NTK-aware scaling of base " + base_e + " by factor " +
                 format("%g", std::round(ntk)) + ": base x factor^(d/(d-2)))";
        }
        add("mismatch", "theta",
            "θ matches base " + base_m + ", config says " + base_e + hint + "; " + detail);
      } else if (std::fabs(*base - c_.rope_theta) <= 1e-6 * c_.rope_theta) {
        add("mismatch", "theta",
            "θ are plain RoPE with base " + base_m + ": the config's " + kind +
                " scaling is not applied; " + detail);
      } else {
        add("mismatch", "theta",
            "θ are plain RoPE with base " + base_m + "; the config says " + kind + " with base " +
                base_e + "; " + detail);
      }
      return;
    }
    // The config's own scheme with another base (its unscaled high-frequency pairs give the base).
    const auto rebased_with = [&](double base) {
      RopeConfig config = c_;
      config.rope_theta = base;
      return reproduces(config, theta, v_.theta_tolerance, t_.positions);
    };
    const auto head =
        fitted_base(theta, v_.theta_tolerance, v_.rotary_dim, std::min<std::size_t>(4, n));
    if (const auto base = head ? nicest(*head, rebased_with) : std::nullopt) {
      if (std::fabs(*base - c_.rope_theta) > 1e-6 * c_.rope_theta) {
        add("mismatch", "theta",
            "θ matches base " + format("%.10g", *base) + " (with the config's " + kind +
                " scaling), config says " + base_e + "; " + detail);
        return;
      }
    }
    // One factor on every pair: position interpolation applied, or missing.
    const double ratio = theta[0] / v_.theta_expected[0];
    bool uniform = true;
    for (std::size_t i = 0; uniform && i < n; ++i) {
      uniform = std::fabs(theta[i] - ratio * v_.theta_expected[i]) <= 2 * v_.theta_tolerance[i];
    }
    if (uniform) {
      const std::string how = ratio < 1 ? "divided by " + format("%.6g", 1 / ratio)
                                        : "multiplied by " + format("%.6g", ratio);
      add("mismatch", "theta",
          "every θ is the config's " + how + ": a linear (position interpolation) factor is " +
              (ratio < 1 ? "applied that the config does not have" : "missing") + "; " + detail);
      return;
    }
    add("mismatch", "theta",
        "θ differ from the config's " + kind + " (base " + base_e + "); " + detail);
  }

  void compare_attention_factor() {
    const double m = v_.attention_factor, e = v_.attention_factor_expected;
    const double tol = 4 * noise_ * std::max(e, 1.0) + 1e-7;
    if (std::fabs(m - e) <= tol) return;
    const std::string kind(to_string(c_.rope_type));
    if (std::fabs(m - 1) <= tol) {
      add("mismatch", "attention_factor",
          "attention factor missing: cos/sin are not scaled (hypot(cos, sin) = " +
              format("%.7g", m) + "); the config's " + kind + " gives " + format("%.7g", e) +
              ", which multiplies cos and sin");
    } else if (std::fabs(m - e * e) <= tol * e) {
      add("mismatch", "attention_factor",
          "attention factor applied twice: hypot(cos, sin) = " + format("%.7g", m) + " = " +
              format("%.7g", e) + "^2; the config's " + kind + " gives " + format("%.7g", e));
    } else {
      add("mismatch", "attention_factor",
          "attention factor " + format("%.7g", m) + " (hypot(cos, sin)), the config's " + kind +
              " gives " + format("%.7g", e));
    }
  }

  void precision() {
    const double storage_allowance = v_.precision == "float16"    ? 2 * 0x1p-11
                                     : v_.precision == "bfloat16" ? 2 * 0x1p-8
                                                                  : 0;
    const int64_t n = v_.rotary_dim / 2, rows = t_.positions;
    const int64_t delta = v_.position_offset.value_or(0);
    if (!theta_ok_) return;  // against the wrong frequencies, an angle error says nothing
    for (int64_t first = 1; first < rows; first *= 10) {
      DecadeRow row;
      row.first = first;
      row.last = std::min(rows - 1, 10 * first - 1);
      double worst_ratio = 0;
      for (int64_t p = row.first; p <= row.last; ++p) {
        for (int64_t j = 0; j < n; ++j) {
          const auto theta = static_cast<float>(v_.theta_expected[j]);
          const double err = std::fabs(wrap(angle_[p * n + j] - exact_angle(p + delta, theta)));
          const double bound =
              kCosSinF32 + kProduct * static_cast<double>(p + delta) * v_.theta_expected[j];
          const double allowed = bound + storage_allowance;
          if (err > row.worst_error) row.worst_error = err, row.position = p, row.pair = j;
          row.float32_bound = std::max(row.float32_bound, bound);
          if (err / allowed > worst_ratio) {
            worst_ratio = err / allowed;
            row.over_position = p, row.over_pair = j, row.over_error = err,
            row.over_allowed = allowed;
          }
        }
      }
      row.exceeds = worst_ratio > 1;
      v_.decades.push_back(row);
    }
    precision_findings();
  }

  void precision_findings() {
    if (v_.decades.empty()) return;
    const DecadeRow& first = v_.decades.front();
    const auto worst = std::max_element(
        v_.decades.begin(), v_.decades.end(),
        [](const DecadeRow& a, const DecadeRow& b) { return a.worst_error < b.worst_error; });
    const auto exceeding = std::find_if(v_.decades.begin(), v_.decades.end(),
                                        [](const DecadeRow& r) { return r.exceeds; });
    const std::string range = [](const DecadeRow& r) {
      return std::to_string(r.first) + "-" + std::to_string(r.last);
    }(*worst);
    const auto u = [](const std::string& type) {
      return type == "float16" ? 0x1p-11 : type == "bfloat16" ? 0x1p-8 : 0x1p-24;
    };
    if (!v_.quantized.empty() && u(v_.quantized) > u(v_.precision)) {
      add("mismatch", "precision",
          "cos/sin are " + v_.quantized + " values stored as " + to_string(t_.storage) +
              ": every value is exactly a " + v_.quantized + " number (computed or rounded in " +
              v_.quantized + "). Angle errors reach " + format("%.2g", first.worst_error) +
              " rad already at positions " + std::to_string(first.first) + "-" +
              std::to_string(first.last) + " and " + format("%.2g", worst->worst_error) +
              " rad at " + range + "; float32 tables are within " +
              format("%.1g", first.float32_bound) +
              " there. Compute cos/sin in float32 (gpt-neox #1003)");
      return;
    }
    if (exceeding != v_.decades.end()) {
      add("mismatch", "precision",
          "angle errors exceed " + v_.precision +
              " rounding: " + format("%.3g", exceeding->over_error) + " rad at position " +
              std::to_string(exceeding->over_position) + " (pair " +
              std::to_string(exceeding->over_pair) +
              ") against the float64 oracle, where float32 position x θ and " + v_.precision +
              " cos/sin allow " + format("%.3g", exceeding->over_allowed));
      return;
    }
    if (t_.storage == StorageType::kF16 || t_.storage == StorageType::kBF16) {
      add("warning", "precision",
          "stored as " + to_string(t_.storage) + ": angle errors up to " +
              format("%.2g", worst->worst_error) +
              " rad from the storage rounding alone (float32 tables: about 1e-7 at small "
              "positions); "
              "--precision f32 makes this a mismatch");
    }
    const DecadeRow& last = v_.decades.back();
    if (last.last >= 10000 && u(v_.precision) <= 0x1p-24) {
      if (last.worst_error > 100 * kCosSinF32) {
        add("note", "precision",
            "the angle error grows with the position, as float32 position x θ does (transformers' "
            "own hf "
            "angles): " +
                format("%.2g", last.worst_error) + " rad at positions " +
                std::to_string(last.first) + "-" + std::to_string(last.last) +
                "; rotary export --angle-mode exact stays near 1e-7");
      } else {
        add("note", "precision",
            "angles are exact to float32 rounding at every position (exact angles)");
      }
    }
  }

  const CosSinTable& t_;
  const RopeConfig& c_;
  TableVerification v_;
  double noise_ = 0x1p-24;
  std::function<int64_t(int64_t)> column_;
  std::vector<double> angle_, intercept_;
  bool theta_ok_ = false;
};

std::string severity_mark(const std::string& s) {
  return s == "mismatch" ? "x" : s == "warning" ? "!" : "-";
}

}  // namespace

bool TableVerification::matches() const {
  return std::none_of(findings.begin(), findings.end(),
                      [](const Finding& f) { return f.severity == "mismatch"; });
}

TableVerification verify_table(const LoadedConfig& loaded, const VerifyRequest& request) {
  const CosSinTable table = read_cos_sin_table(request.table, request.names);
  return Verifier(loaded, table, request).run();
}

nlohmann::json to_json(const TableVerification& v) {
  const RopeConfig& c = v.loaded.config;
  nlohmann::json j;
  j["matches"] = v.matches();
  j["table"] = {{"path", v.path},
                {"format", v.format},
                {"dtype", to_string(v.storage)},
                {"arrangement", v.arrangement},
                {"positions", v.positions},
                {"columns", v.width},
                {"column_layout", v.column_layout},
                {"rotary_dim", v.table_rotary_dim}};
  j["config"] = {{"label", v.loaded.label},
                 {"source", v.loaded.source},
                 {"rope_type", std::string(to_string(c.rope_type))},
                 {"rope_theta", c.rope_theta},
                 {"head_dim", c.head_dim},
                 {"rotary_dim", v.rotary_dim},
                 {"layout", std::string(to_string(c.layout))},
                 {"attention_factor", v.attention_factor_expected}};
  j["theta"] = v.theta;
  j["theta_expected"] = v.theta_expected;
  j["theta_tolerance"] = v.theta_tolerance;
  j["attention_factor"] = v.attention_factor;
  j["position_offset"] =
      v.position_offset ? nlohmann::json(*v.position_offset) : nlohmann::json(nullptr);
  j["quantized"] = v.quantized.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.quantized);
  j["accepted_precision"] = v.precision;
  nlohmann::json decades = nlohmann::json::array();
  for (const DecadeRow& r : v.decades) {
    decades.push_back({{"positions", {r.first, r.last}},
                       {"worst_error", r.worst_error},
                       {"position", r.position},
                       {"pair", r.pair},
                       {"float32_bound", r.float32_bound},
                       {"status", r.exceeds ? "exceeds" : "ok"}});
  }
  j["precision"] = decades;
  nlohmann::json findings = nlohmann::json::array();
  for (const Finding& f : v.findings) {
    findings.push_back({{"severity", f.severity}, {"topic", f.topic}, {"message", f.message}});
  }
  j["findings"] = findings;
  return j;
}

void print_verification(const TableVerification& v) {
  const RopeConfig& c = v.loaded.config;
  std::printf("rotary verify: %s (%s, %s, %s)\n", v.path.c_str(), v.format.c_str(),
              to_string(v.storage).c_str(), v.arrangement.c_str());
  std::printf("  rows               %lld positions (0 .. %lld), %lld columns\n",
              static_cast<long long>(v.positions), static_cast<long long>(v.positions - 1),
              static_cast<long long>(v.width));
  const std::string columns =
      v.column_layout == "per_pair" ? "one per pair"
      : v.column_layout == "cat"
          ? "cat(f, f): half-split pairs (i, i+" + std::to_string(v.table_rotary_dim / 2) + ")"
      : v.column_layout == "repeat_interleave"
          ? "repeat_interleave(f, 2): interleaved pairs (2i, 2i+1)"
          : "not a known duplication";
  std::printf("  columns            %s, rotary_dim %lld\n", columns.c_str(),
              static_cast<long long>(v.table_rotary_dim));
  std::printf(
      "  config             %s: %s, base %.10g, %s pairs %s, rotary_dim %lld of %lld, attention "
      "factor %.7g\n",
      v.loaded.label.c_str(), std::string(to_string(c.rope_type)).c_str(), c.rope_theta,
      c.layout == Layout::kHalfSplit ? "half-split" : "interleaved",
      pairs_phrase(c.layout, v.rotary_dim).c_str(), static_cast<long long>(v.rotary_dim),
      static_cast<long long>(c.head_dim), v.attention_factor_expected);
  if (!v.theta.empty()) {
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < v.theta.size() && i < v.theta_expected.size(); ++i) {
      const double ratio =
          std::fabs(std::fabs(v.theta[i]) - v.theta_expected[i]) / v.theta_tolerance[i];
      if (ratio > worst) worst = ratio, at = i;
    }
    std::printf(
        "  θ                  %zu pairs, θ_0 %.8g .. θ_%zu %.8g; worst pair %zu at %.2g x its "
        "tolerance\n",
        v.theta.size(), v.theta.front(), v.theta.size() - 1, v.theta.back(), at, worst);
    std::printf("  attention factor   %.7g (config %.7g)\n", v.attention_factor,
                v.attention_factor_expected);
  }
  if (!v.quantized.empty())
    std::printf("  values             every one is a %s number\n", v.quantized.c_str());
  if (!v.decades.empty()) {
    std::printf(
        "  precision          positions      worst angle error (rad)   at (position, pair)   "
        "float32 bound   status\n");
    for (const DecadeRow& r : v.decades) {
      char label[48], where[48];
      std::snprintf(label, sizeof label, "%lld-%lld", static_cast<long long>(r.first),
                    static_cast<long long>(r.last));
      std::snprintf(where, sizeof where, "(%lld, %lld)", static_cast<long long>(r.position),
                    static_cast<long long>(r.pair));
      std::printf("                     %-14s %-25.2e %-21s %-15.2e %s\n", label, r.worst_error,
                  where, r.float32_bound, r.exceeds ? "exceeds" : "ok");
    }
  }
  std::size_t mismatches = 0;
  for (const Finding& f : v.findings) mismatches += f.severity == "mismatch";
  if (mismatches == 0) {
    std::printf("\nMATCH\n");
  } else {
    std::printf("\nMISMATCH (%zu)\n", mismatches);
  }
  for (const Finding& f : v.findings) {
    std::printf("  %s %s\n", severity_mark(f.severity).c_str(), f.message.c_str());
  }
}

}  // namespace rotary::tools
