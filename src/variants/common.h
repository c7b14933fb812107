// What several frequency schemes share: transformers' default float32 recipe, which every scaled
// scheme starts from, and the checks and words their units use.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "rotary/config.h"
#include "rotary/error.h"
#include "validate.h"

namespace rotary::detail {

// base^(2i/d) as transformers computes it: float(2i) / float(d), then powf(float(base), e).
inline float base_power(double base, int64_t pair, int64_t dim) {
  const float exponent = static_cast<float>(2 * pair) / static_cast<float>(dim);
  return std::pow(static_cast<float>(base), exponent);
}

// The default frequencies 1 / base^(2i/d) of a dim-channel rotation, in float32.
inline std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> inv(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) inv[i] = 1.0f / base_power(base, i, dim);
  return inv;
}

// The shortest text that reads back as `value` ("0.5", not "0.500000"; "nan", "inf").
inline std::string show(double value) {
  std::array<char, 32> text{};
  const auto end = std::to_chars(text.data(), text.data() + text.size(), value).ptr;
  return std::string(text.data(), end);
}

// Six significant digits, as inspect prints its numbers.
inline std::string six_digits(double value) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.6g", value);
  return text.data();
}

inline std::string required_for(RopeType type) {
  return "required for rope_type '" + std::string(to_string(type)) + "'";
}

inline void require_finite_positive(const std::optional<double>& value, const char* field,
                                    RopeType type) {
  if (!value) invalid_config(field, required_for(type));
  if (!std::isfinite(*value) || *value <= 0) {
    invalid_config(field, "expected a finite number > 0, got " + show(*value));
  }
}

// transformers documents factor >= 1 for every scaling type; its validation only logs a warning,
// but a factor below 1 shrinks the context the scheme exists to stretch: a mistake (1/8 for 8).
inline void require_factor(const std::optional<double>& factor, RopeType type) {
  if (!factor) invalid_config("factor", required_for(type));
  if (!std::isfinite(*factor) || *factor < 1) {
    invalid_config("factor", "expected a finite number >= 1, got " + show(*factor));
  }
}

// The schemes that scale against a trained context need one.
inline void require_context(const RopeConfig& c) {
  if (c.resolved_original_max_position_embeddings() <= 0) {
    invalid_config("original_max_position_embeddings",
                   "required (or max_position_embeddings) for rope_type '" +
                       std::string(to_string(c.rope_type)) + "'");
  }
}

}  // namespace rotary::detail
