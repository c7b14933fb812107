// What was measured and how precisely: storage types, the noise of measured values, and the
// tolerances that follow from it.
#include <algorithm>
#include <cmath>
#include <string>

#include "internal.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {

std::string_view to_string(Storage storage) {
  switch (storage) {
    case Storage::kFloat64:
      return "float64";
    case Storage::kFloat32:
      return "float32";
    case Storage::kFloat16:
      return "float16";
    case Storage::kBFloat16:
      return "bfloat16";
  }
  return "float32";
}

Storage parse_storage(std::string_view name) {
  for (Storage s : {Storage::kFloat64, Storage::kFloat32, Storage::kFloat16, Storage::kBFloat16}) {
    if (to_string(s) == name) return s;
  }
  detail::invalid(
      "storage", "expected float64, float32, float16 or bfloat16, got '" + std::string(name) + "'");
}

double unit_roundoff(Storage storage) {
  switch (storage) {
    case Storage::kFloat64:
      return 0x1p-53;
    case Storage::kFloat32:
      return 0x1p-24;
    case Storage::kFloat16:
      return 0x1p-11;
    case Storage::kBFloat16:
      return 0x1p-8;
  }
  return 0x1p-24;
}

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::kMismatch:
      return "mismatch";
    case Severity::kWarning:
      return "warning";
    case Severity::kNote:
      return "note";
  }
  return "note";
}

double measurement_noise(Storage storage, std::optional<Storage> quantized) {
  // Nothing rotary compares against is finer than float32: a float64 table is judged as float32.
  const double coarsest = quantized ? unit_roundoff(*quantized) : 0.0;
  return std::max({unit_roundoff(storage), coarsest, 0x1p-24});
}

double angle_noise(double noise) { return std::max(kCosSinF32, 2 * noise); }

double attention_tolerance(Source source, double noise, double expected) {
  const double scale = std::max(expected, 1.0);
  // A table stores cos and sin themselves: their magnitude is as good as the stored values. A
  // probe sees the factor through the function's own arithmetic on probe vectors (products and a
  // sum per output channel, in the probe dtype), hence 8 unit roundoffs and a floor of 1e-5.
  if (source == Source::kTable) return 4 * noise * scale + 1e-7;
  return std::max(1e-5, 8 * noise) * scale;
}

std::vector<double> theta_tolerance(Source source, std::span<const double> theta, double noise,
                                    int64_t max_position) {
  // The slope of a line through angles good to a_abs, at positions up to P, is good to about
  // a_abs / P. Each front end keeps the multiple its verdicts were calibrated with: a table's
  // line runs through every row (4 a_abs / P), a probe's through about twenty positions up to
  // 1000 (3 a_abs / P). The probe's parameters are rounded to the fewest digits that reproduce
  // theta within this tolerance, so loosening it would change which rounding is reported.
  const double multiple = source == Source::kTable ? 4.0 : 3.0;
  const double spread =
      multiple * angle_noise(noise) / static_cast<double>(std::max<int64_t>(max_position, 1));
  std::vector<double> tolerance(theta.size());
  for (std::size_t i = 0; i < theta.size(); ++i) {
    tolerance[i] = spread + kThetaRelative * std::fabs(theta[i]);
  }
  return tolerance;
}

}  // namespace rotary::verify
