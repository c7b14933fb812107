// rotary._rotary.verifier: the verifier's core (rotary/verify.h) for rotary.verify, which probes
// a function and measures its angles; everything numerical about them is computed here, the same
// code `rotary verify` runs on tables. NumPy arrays in (float64 angles, int64 positions), NumPy
// arrays out; findings as (severity, topic, message) tuples; enums as the strings the report uses.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "binding.h"
#include "rotary/verify.h"

namespace rotary::python {

namespace {

namespace v = rotary::verify;

using Doubles = nb::ndarray<const double, nb::c_contig, nb::device::cpu>;
using Integers = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Array = nb::ndarray<nb::numpy, double>;
using FindingTuple = std::tuple<std::string, std::string, std::string>;

std::span<const double> values(const Doubles& a) { return {a.data(), a.size()}; }

// `values` as a new NumPy array of `shape`, owning the vector's memory.
Array array(std::vector<double> values, std::vector<std::size_t> shape) {
  auto* owned = new std::vector<double>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  return Array(owned->data(), shape.size(), shape.data(), owner);
}

// positions (S,) and angles (S, pairs) as the core's view; both must outlive it.
v::AngleView angle_view(const Integers& positions, const Doubles& angles) {
  if (angles.ndim() != 2 || angles.shape(0) != positions.shape(0)) {
    invalid("angles", "expected a (positions, pairs) array with one row per position");
  }
  return {
      {positions.data(), positions.size()}, values(angles), static_cast<int64_t>(angles.shape(1))};
}

v::Source source(const std::string& name) {
  if (name == "table") return v::Source::kTable;
  if (name == "probe") return v::Source::kProbe;
  invalid("source", "expected 'table' or 'probe', got '" + name + "'");
}

std::optional<v::Storage> storage(const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  return v::parse_storage(*name);
}

std::optional<FindingTuple> tuple(const std::optional<v::Finding>& f) {
  if (!f) return std::nullopt;
  return FindingTuple{std::string(v::to_string(f->severity)), f->topic, f->message};
}

std::vector<FindingTuple> tuples(const std::vector<v::Finding>& findings) {
  std::vector<FindingTuple> out;
  for (const v::Finding& f : findings) out.push_back(*tuple(f));
  return out;
}

// A parameter as Python wrote it: an integral value as an int, another as a float.
nb::object number(double x) {
  if (x == std::floor(x) && std::fabs(x) < 0x1p53) return nb::int_(static_cast<int64_t>(x));
  return nb::float_(x);
}

nb::dict params(const v::FamilyFit& fit) {
  nb::dict out;
  for (const auto& [name, value] : fit.params) out[name.c_str()] = number(value);
  if (fit.rope_type == RopeType::kLongRope) out["factors"] = nb::cast(fit.factors);
  return out;
}

// --- measurement, angles and lines ---------------------------------------------------------------

nb::dict fit_angles(const std::string& src, const Integers& positions, const Doubles& angles,
                    const Doubles& magnitudes, double noise) {
  const v::AngleView view = angle_view(positions, angles);
  v::AngleFit fit = v::fit_angles(source(src), view, values(magnitudes), noise, true);
  const auto pairs = static_cast<std::size_t>(view.pairs);
  nb::dict out;
  out["theta"] = array(std::move(fit.lines.theta), {pairs});
  out["intercept"] = array(std::move(fit.lines.intercept), {pairs});
  out["residual"] = array(std::move(fit.lines.residual), {view.positions.size(), pairs});
  out["tolerance"] = array(std::move(fit.tolerance), {pairs});
  out["attention_factor"] = fit.attention_factor;
  out["offset"] = fit.start.offset ? nb::object(nb::int_(*fit.start.offset)) : nb::none();
  out["constant_phase"] = fit.start.constant_phase;
  return out;
}

Array fit_theta(const Integers& positions, const Doubles& angles) {
  const v::AngleView view = angle_view(positions, angles);
  return array(v::fit_lines(view).theta, {static_cast<std::size_t>(view.pairs)});
}

void bind_measurement(nb::module_& m) {
  m.attr("THETA_RELATIVE") = v::kThetaRelative;
  m.def("measurement_noise", [](const std::string& s, const std::optional<std::string>& quantized) {
    return v::measurement_noise(v::parse_storage(s), storage(quantized));
  });
  m.def("quantized_to", [](const Doubles& cos, const Doubles& sin) -> std::optional<std::string> {
    const auto q = v::quantized_to(values(cos), values(sin));
    if (!q) return std::nullopt;
    return std::string(v::to_string(*q));
  });
  m.def("fit_angles", &fit_angles, nb::arg("source"), nb::arg("positions"), nb::arg("angles"),
        nb::arg("magnitudes"), nb::arg("noise"));
  m.def("fit_theta", &fit_theta, nb::arg("positions"), nb::arg("angles"));
}

// --- the published-scheme fit --------------------------------------------------------------------

void bind_family_fit(nb::module_& m) {
  nb::class_<v::FamilyFit>(m, "FamilyFit")
      .def_prop_ro("rope_type",
                   [](const v::FamilyFit& f) -> std::optional<std::string> {
                     if (!f.rope_type) return std::nullopt;
                     return std::string(to_string(*f.rope_type));
                   })
      .def_prop_ro("params", &params)
      .def_ro("config", &v::FamilyFit::config)
      .def_ro("worst", &v::FamilyFit::worst)
      .def_ro("worst_pair", &v::FamilyFit::worst_pair)
      .def("describe", [](const v::FamilyFit& f) { return v::describe(f); })
      // A report holding one can be copied like the plain data it is.
      .def("__copy__", [](const v::FamilyFit& f) { return f; })
      .def("__deepcopy__", [](const v::FamilyFit& f, nb::handle) { return f; });
  m.def(
      "fit_family",
      [](const Doubles& theta, const Doubles& tolerance, int64_t head_dim, int64_t rotary_dim,
         int64_t length, std::optional<double> hint_base) {
        return v::fit_family(
            {values(theta), values(tolerance), head_dim, rotary_dim, length, hint_base});
      },
      nb::arg("theta"), nb::arg("tolerance"), nb::arg("head_dim"), nb::arg("rotary_dim"),
      nb::arg("length"), nb::arg("hint_base") = nb::none());
}

// --- diagnoses -----------------------------------------------------------------------------------

Layout layout(const std::string& name) {
  if (name == "half_split") return Layout::kHalfSplit;
  if (name == "interleaved") return Layout::kInterleaved;
  invalid("layout", "expected 'half_split' or 'interleaved', got '" + name + "'");
}

auto diagnose_theta(const Doubles& measured, const Doubles& tolerance, const Doubles& expected,
                    const RopeConfig& config, int64_t rotary_dim, int64_t length,
                    const v::FamilyFit* fit, double smallest_visible_angle, int64_t max_position) {
  const v::ThetaVerdict verdict =
      v::diagnose_theta({.measured = values(measured),
                         .tolerance = values(tolerance),
                         .expected = values(expected),
                         .config = &config,
                         .rotary_dim = rotary_dim,
                         .length = length,
                         .fit = fit,
                         .smallest_visible_angle = smallest_visible_angle,
                         .max_position = max_position});
  return std::make_pair(verdict.agree, tuple(verdict.finding));
}

void bind_diagnoses(nb::module_& m) {
  m.def("pairs_phrase", [](const std::string& l, int64_t rotary_dim) {
    return v::pairs_phrase(layout(l), rotary_dim);
  });
  m.def("diagnose_theta", &diagnose_theta, nb::arg("measured"), nb::arg("tolerance"),
        nb::arg("expected"), nb::arg("config"), nb::arg("rotary_dim"), nb::arg("length"),
        nb::arg("fit").none(), nb::arg("smallest_visible_angle"), nb::arg("max_position"));
  m.def("diagnose_attention_factor", [](const std::string& src, double measured, double expected,
                                        double noise, const RopeConfig& config) {
    return tuple(
        v::diagnose_attention_factor(source(src), measured, expected, noise, config.rope_type));
  });
  m.def("pairing_mismatch", [](const std::string& measured, const std::string& l, int64_t dim) {
    return *tuple(v::pairing_mismatch(measured, layout(l), dim));
  });
  m.def("rotary_dim_mismatch", [](const std::string& measured, int64_t dim, int64_t head_dim) {
    return *tuple(v::rotary_dim_mismatch(measured, dim, head_dim));
  });
  m.def("direction_finding", [](const std::string& src, const Doubles& theta, const Doubles& tol) {
    return tuple(v::direction_finding(source(src), values(theta), values(tol)));
  });
  m.def("start_finding",
        [](const std::string& src, std::optional<int64_t> offset, double constant_phase) {
          return tuple(v::start_finding(source(src), {offset, constant_phase}));
        });
  m.def("magnitude_finding", [](const std::string& src, const Doubles& magnitudes,
                                double attention_factor, double noise) {
    return tuple(v::magnitude_finding(source(src), values(magnitudes), attention_factor, noise));
  });
  m.def("linearity_finding",
        [](const Integers& positions, const Doubles& residual, const Doubles& theta, double noise) {
          return tuple(v::linearity_finding(angle_view(positions, residual), values(residual),
                                            values(theta), noise));
        });
}

// --- precision -----------------------------------------------------------------------------------

v::DecadeRow measure_decade(int64_t first, int64_t last, const Integers& positions,
                            const Doubles& angles, const Doubles& theta, int64_t offset,
                            const std::string& precision, std::optional<Doubles> slack) {
  return v::measure_decade(first, last,
                           {.angles = angle_view(positions, angles),
                            .theta = values(theta),
                            .offset = offset,
                            .allowance = v::storage_allowance(v::parse_storage(precision)),
                            .slack = slack ? values(*slack) : std::span<const double>()});
}

std::vector<FindingTuple> precision_findings(const std::vector<v::DecadeRow>& rows,
                                             const std::string& src, const std::string& stored,
                                             const std::string& precision,
                                             const std::optional<std::string>& quantized,
                                             const std::string& oracle, bool exact_oracle) {
  return tuples(v::precision_findings(rows, {.source = source(src),
                                             .storage = v::parse_storage(stored),
                                             .precision = v::parse_storage(precision),
                                             .quantized = storage(quantized),
                                             .oracle = oracle,
                                             .exact_oracle = exact_oracle}));
}

void bind_precision(nb::module_& m) {
  nb::class_<v::DecadeRow>(m, "DecadeRow")
      .def_ro("first", &v::DecadeRow::first)
      .def_ro("last", &v::DecadeRow::last)
      .def_ro("worst_error", &v::DecadeRow::worst_error)
      .def_ro("position", &v::DecadeRow::position)
      .def_ro("pair", &v::DecadeRow::pair)
      .def_ro("float32_bound", &v::DecadeRow::float32_bound)
      .def_ro("allowed", &v::DecadeRow::allowed)
      .def_ro("exceeds", &v::DecadeRow::exceeds)
      .def_prop_ro("exceeding", [](const v::DecadeRow& r) {
        return std::make_tuple(r.over_position, r.over_pair, r.over_error, r.over_allowed);
      });
  m.def("decades", &v::decades, nb::arg("max_position"));
  m.def("measure_decade", &measure_decade, nb::arg("first"), nb::arg("last"), nb::arg("positions"),
        nb::arg("angles"), nb::arg("theta"), nb::arg("offset"), nb::arg("precision"),
        nb::arg("slack").none());
  m.def("precision_findings", &precision_findings, nb::arg("rows"), nb::arg("source"),
        nb::arg("storage"), nb::arg("precision"), nb::arg("quantized").none(), nb::arg("oracle"),
        nb::arg("exact_oracle"));
}

}  // namespace

void bind_verify(nb::module_& m) {
  nb::module_ core = m.def_submodule(
      "verifier", "The verifier's core (rotary/verify.h), shared with `rotary verify`.");
  bind_measurement(core);
  bind_family_fit(core);
  bind_diagnoses(core);
  bind_precision(core);
}

}  // namespace rotary::python
