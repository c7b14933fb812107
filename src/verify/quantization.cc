// Whether cos/sin values are float16 or bfloat16 numbers in disguise: a table computed or rounded
// in 16 bits and stored wider (gpt-neox #1003) is exact in the narrow type at every entry.
#include <cstdint>

#include "numeric/float16.h"
#include "rotary/verify.h"

namespace rotary::verify {
namespace {

// Whether `value` survives a round trip through the library's own 16-bit conversions.
bool exact_in_bfloat16(float value) {
  return detail::to_float(detail::to_bfloat16(value)) == value;
}
bool exact_in_float16(float value) { return detail::to_float(detail::to_float16(value)) == value; }

}  // namespace

std::optional<Storage> quantized_to(std::span<const double> cos, std::span<const double> sin) {
  bool bfloat16 = true, float16 = true;
  int64_t nonzero = 0;
  for (const std::span<const double> values : {cos, sin}) {
    for (const double v : values) {
      if (v == 0) continue;
      const auto f = static_cast<float>(v);
      if (static_cast<double>(f) != v) return std::nullopt;
      ++nonzero;
      bfloat16 = bfloat16 && exact_in_bfloat16(f);
      float16 = float16 && exact_in_float16(f);
      if (!bfloat16 && !float16) return std::nullopt;
    }
  }
  // A handful of values can be 16-bit numbers by chance (0.5, 1).
  if (nonzero < 16) return std::nullopt;
  if (bfloat16) return Storage::kBFloat16;
  if (float16) return Storage::kFloat16;
  return std::nullopt;
}

}  // namespace rotary::verify
