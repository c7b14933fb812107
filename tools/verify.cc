#include "verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "rotary/frequencies.h"
#include "rotary/rope.h"

namespace rotary::tools {
namespace {

// --precision f32 | f16 | bf16, by default the table's storage type (float64 counts as float32).
verify::Storage accepted_precision(const std::string& flag, StorageType storage) {
  if (flag == "f16") return verify::Storage::kFloat16;
  if (flag == "bf16") return verify::Storage::kBFloat16;
  if (flag == "f32" || storage == StorageType::kFloat64) return verify::Storage::kFloat32;
  return storage;
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
    precision_ = accepted_precision(request.precision, table.storage);
    v_.precision = verify::to_string(precision_);
  }

  TableVerification run() {
    const Rope rope(c_, {.max_threads = 1});
    v_.rotary_dim = rope.rotary_dim();
    const Frequencies f = rope.frequencies_for(std::vector<int64_t>{t_.positions - 1});
    v_.attention_factor_expected = f.attention_factor;
    v_.theta_expected.assign(f.inv_freq.begin(), f.inv_freq.end());
    measure_quantization();
    if (!columns()) return v_;
    measure();
    compare_layout();
    compare_theta();
    add(verify::diagnose_attention_factor(verify::Source::kTable, v_.attention_factor,
                                          v_.attention_factor_expected, noise_, c_.rope_type));
    precision();
    return v_;
  }

 private:
  void add(std::optional<verify::Finding> finding) {
    if (finding) v_.findings.push_back(std::move(*finding));
  }
  void add(const std::string& topic, const std::string& message) {
    v_.findings.push_back({verify::Severity::kMismatch, topic, message});
  }

  // Every value past row 0 (angle 0 is cos 1, sin 0 in any type); a 16-bit table is that type.
  void measure_quantization() {
    quantized_ = std::nullopt;
    if (t_.storage != StorageType::kFloat16 && t_.storage != StorageType::kBFloat16) {
      const auto past_row_0 = [&](const std::vector<double>& v) {
        return std::span<const double>(v).subspan(static_cast<std::size_t>(t_.width));
      };
      quantized_ = verify::quantized_to(past_row_0(t_.cos), past_row_0(t_.sin));
    }
    v_.quantized = quantized_ ? std::string(verify::to_string(*quantized_)) : "";
    noise_ = verify::measurement_noise(t_.storage, quantized_);
  }

  // Works out which column holds pair i; false when the table cannot be compared pair by pair.
  bool columns() {
    const int64_t half = v_.rotary_dim / 2, w = t_.width;
    const double tol = 2 * verify::unit_roundoff(t_.storage);
    const auto duplicated = [&](int64_t pairs, bool interleaved) {
      return duplication_gap(t_, pairs, interleaved) <= tol;
    };
    if (w == half) {
      v_.column_layout = "per_pair";
      stride_ = 1;
      v_.table_rotary_dim = 2 * w;
      return true;
    }
    if (w == 2 * half) return duplicated_columns(duplicated(half, false), duplicated(half, true));
    // Another width: the table was built for another rotary_dim.
    const bool doubled = w % 2 == 0 && (duplicated(w / 2, false) || duplicated(w / 2, true));
    v_.table_rotary_dim = doubled ? w : 2 * w;
    v_.column_layout =
        doubled ? (duplicated(w / 2, false) ? "cat" : "repeat_interleave") : "per_pair";
    v_.findings.push_back(verify::rotary_dim_mismatch(
        "the table rotates " + std::to_string(v_.table_rotary_dim) + " channels (" +
            std::to_string(w) + " columns, " + (doubled ? "duplicated" : "one per pair") + ")",
        v_.rotary_dim, c_.head_dim));
    return false;
  }

  // rotary_dim columns: which duplication, if any, they are.
  bool duplicated_columns(bool cat, bool repeat) {
    v_.table_rotary_dim = t_.width;
    if (cat && (!repeat || c_.layout == Layout::kHalfSplit)) {
      v_.column_layout = "cat";
      stride_ = 1;
      return true;
    }
    if (repeat) {
      v_.column_layout = "repeat_interleave";
      stride_ = 2;
      return true;
    }
    v_.column_layout = "unrecognised";
    add("columns",
        "the table has rotary_dim = " + std::to_string(t_.width) +
            " columns, but they are neither cat(f, f) (transformers' half-split tables) nor "
            "repeat_interleave(f, 2) (GPT-J's interleaved ones): column j and j + " +
            std::to_string(t_.width / 2) + " differ, and so do 2j and 2j + 1");
    return false;
  }

  // Angle and magnitude of every pair at every row, and what the core makes of them.
  void measure() {
    const int64_t n = v_.rotary_dim / 2, rows = t_.positions;
    positions_.resize(static_cast<std::size_t>(rows));
    std::iota(positions_.begin(), positions_.end(), int64_t{0});
    angle_.resize(static_cast<std::size_t>(rows * n));
    std::vector<double> magnitude(angle_.size());
    for (int64_t p = 0; p < rows; ++p) {
      for (int64_t j = 0; j < n; ++j) {
        const double c = t_.cos[p * t_.width + stride_ * j], s = t_.sin[p * t_.width + stride_ * j];
        angle_[p * n + j] = std::atan2(s, c);
        magnitude[p * n + j] = std::hypot(c, s);
      }
    }
    const verify::AngleFit fit =
        verify::fit_angles(verify::Source::kTable, view(), magnitude, noise_);
    v_.theta = fit.lines.theta;
    v_.theta_tolerance = fit.tolerance;
    v_.attention_factor = fit.attention_factor;
    v_.position_offset = fit.start.offset;
    add(verify::magnitude_finding(verify::Source::kTable, magnitude, v_.attention_factor, noise_));
    add(verify::direction_finding(verify::Source::kTable, v_.theta, v_.theta_tolerance));
    add(verify::start_finding(verify::Source::kTable, fit.start));
  }

  verify::AngleView view() const { return {positions_, angle_, v_.rotary_dim / 2}; }

  void compare_layout() {
    if (v_.column_layout == "per_pair") {
      v_.findings.push_back(verify::pairing_unseen(c_.layout, v_.rotary_dim));
      return;
    }
    const bool cat = v_.column_layout == "cat";
    const Layout seen = cat ? Layout::kHalfSplit : Layout::kInterleaved;
    if (seen == c_.layout) return;
    v_.findings.push_back(verify::pairing_mismatch(
        verify::pairs_phrase(seen, v_.rotary_dim) + " (the table repeats each frequency as " +
            (cat ? "cat(f, f)" : "repeat_interleave(f, 2)") + ")",
        c_.layout, v_.rotary_dim));
  }

  void compare_theta() {
    std::vector<double> theta(v_.theta.size());
    for (std::size_t i = 0; i < theta.size(); ++i) theta[i] = std::fabs(v_.theta[i]);
    const verify::FamilyFit fit = verify::fit_family({.theta = theta,
                                                      .tolerance = v_.theta_tolerance,
                                                      .head_dim = c_.head_dim,
                                                      .rotary_dim = v_.rotary_dim,
                                                      .length = t_.positions,
                                                      .hint_base = c_.rope_theta});
    const verify::ThetaVerdict verdict = verify::diagnose_theta({.measured = theta,
                                                                 .tolerance = v_.theta_tolerance,
                                                                 .expected = v_.theta_expected,
                                                                 .config = &c_,
                                                                 .rotary_dim = v_.rotary_dim,
                                                                 .length = t_.positions,
                                                                 .fit = &fit,
                                                                 .max_position = t_.positions - 1});
    theta_ok_ = verdict.agree;
    add(verdict.finding);
  }

  void precision() {
    if (!theta_ok_) return;  // against the wrong frequencies, an angle error says nothing
    for (const auto& [first, last] : verify::decades(t_.positions - 1)) {
      v_.decades.push_back(
          verify::measure_decade(first, last,
                                 {.angles = view(),
                                  .theta = v_.theta_expected,
                                  .offset = v_.position_offset.value_or(0),
                                  .allowance = verify::storage_allowance(precision_)}));
    }
    for (verify::Finding& f :
         verify::precision_findings(v_.decades, {.source = verify::Source::kTable,
                                                .storage = t_.storage,
                                                .precision = precision_,
                                                .quantized = quantized_})) {
      v_.findings.push_back(std::move(f));
    }
  }

  const CosSinTable& t_;
  const RopeConfig& c_;
  TableVerification v_;
  verify::Storage precision_ = verify::Storage::kFloat32;
  std::optional<verify::Storage> quantized_;
  double noise_ = 0x1p-24;
  int64_t stride_ = 1;  // pair j is column stride_ * j
  std::vector<int64_t> positions_;
  std::vector<double> angle_;
  bool theta_ok_ = false;
};

std::string severity_mark(verify::Severity s) {
  return s == verify::Severity::kMismatch ? "x" : s == verify::Severity::kWarning ? "!" : "-";
}

}  // namespace

bool TableVerification::matches() const {
  return std::none_of(findings.begin(), findings.end(), [](const verify::Finding& f) {
    return f.severity == verify::Severity::kMismatch;
  });
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
                {"dtype", std::string(verify::to_string(v.storage))},
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
  for (const verify::DecadeRow& r : v.decades) {
    decades.push_back({{"positions", {r.first, r.last}},
                       {"worst_error", r.worst_error},
                       {"position", r.position},
                       {"pair", r.pair},
                       {"float32_bound", r.float32_bound},
                       {"status", r.exceeds ? "exceeds" : "ok"}});
  }
  j["precision"] = decades;
  nlohmann::json findings = nlohmann::json::array();
  for (const verify::Finding& f : v.findings) {
    findings.push_back({{"severity", std::string(verify::to_string(f.severity))},
                        {"topic", f.topic},
                        {"message", f.message}});
  }
  j["findings"] = findings;
  return j;
}

void print_verification(const TableVerification& v) {
  const RopeConfig& c = v.loaded.config;
  std::printf("rotary verify: %s (%s, %s, %s)\n", v.path.c_str(), v.format.c_str(),
              std::string(verify::to_string(v.storage)).c_str(), v.arrangement.c_str());
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
      verify::pairs_phrase(c.layout, v.rotary_dim).c_str(), static_cast<long long>(v.rotary_dim),
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
    for (const verify::DecadeRow& r : v.decades) {
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
  for (const verify::Finding& f : v.findings)
    mismatches += f.severity == verify::Severity::kMismatch;
  if (mismatches == 0) {
    std::printf("\nMATCH\n");
  } else {
    std::printf("\nMISMATCH (%zu)\n", mismatches);
  }
  for (const verify::Finding& f : v.findings) {
    std::printf("  %s %s\n", severity_mark(f.severity).c_str(), f.message.c_str());
  }
}

}  // namespace rotary::tools
