// The M-RoPE orders: which rotary pairs each position axis owns, as each model class decides it.
#include "mrope_orders.h"

#include <array>
#include <string>

#include "variants/common.h"

namespace rotary::detail {
namespace {

int64_t total(std::span<const int64_t> sections) {
  int64_t sum = 0;
  for (int64_t s : sections) sum += s;
  return sum;
}

// Chunked and alternating sections must give every pair exactly one axis.
void require_every_pair(std::span<const int64_t> sections, int64_t pairs) {
  if (total(sections) != pairs) {
    invalid_config("mrope_section",
                   "the sections sum to " + std::to_string(total(sections)) +
                       " pairs; expected rotary_dim / 2 = " + std::to_string(pairs));
  }
}

// Qwen2-VL, GLM-4V: consecutive sections, the first s0 pairs to axis 0, the next s1 to axis 1...
std::vector<int> chunked_axes(std::span<const int64_t> sections, int64_t) {
  std::vector<int> axes;
  for (std::size_t a = 0; a < sections.size(); ++a) {
    axes.insert(axes.end(), static_cast<std::size_t>(sections[a]), static_cast<int>(a));
  }
  return axes;
}

// Qwen3-VL: pair j takes axis a >= 1 when j % n == a and j < n * s[a], else axis 0. transformers'
// Qwen3-VL and Qwen4 classes run sections that leave pairs to axis 0, but every pair an axis
// claims must exist.
void validate_interleaved(std::span<const int64_t> sections, int64_t pairs) {
  if (total(sections) > pairs) {
    invalid_config("mrope_section",
                   "the sections sum to " + std::to_string(total(sections)) +
                       " pairs; expected at most rotary_dim / 2 = " + std::to_string(pairs));
  }
  const auto n = static_cast<int64_t>(sections.size());
  for (int64_t a = 1; a < n; ++a) {
    if (sections[a] > 0 && a + n * (sections[a] - 1) >= pairs) {
      invalid_config("mrope_section", "interleaved section " + std::to_string(a) + " (" +
                                          std::to_string(sections[a]) +
                                          " pairs) runs past the last pair");
    }
  }
}

std::vector<int> interleaved_axes(std::span<const int64_t> sections, int64_t pairs) {
  const auto n = static_cast<int64_t>(sections.size());
  std::vector<int> axes(static_cast<std::size_t>(pairs), 0);
  for (int64_t j = 0; j < pairs; ++j) {
    const int64_t a = j % n;
    if (a >= 1 && j < n * sections[a]) axes[j] = static_cast<int>(a);
  }
  return axes;
}

// ERNIE-4.5-VL: the first s0 + s1 pairs alternate between axis 1 (even j) and axis 2 (odd j),
// the rest take axis 0.
void validate_alternating(std::span<const int64_t> sections, int64_t pairs) {
  require_every_pair(sections, pairs);
  if (sections.size() != 3 || sections[0] != sections[1]) {
    invalid_config(
        "mrope_section",
        "the alternating order (ERNIE-4.5-VL) takes three sections, the first two equal");
  }
}

std::vector<int> alternating_axes(std::span<const int64_t> sections, int64_t pairs) {
  std::vector<int> axes(static_cast<std::size_t>(pairs), 0);
  for (int64_t j = 0; j < sections[0] + sections[1]; ++j) axes[j] = j % 2 == 0 ? 1 : 2;
  return axes;
}

// In MropeOrder's order.
constexpr std::array kSchemes = {
    MropeScheme{"chunked", "consecutive sections", require_every_pair, chunked_axes},
    MropeScheme{"interleaved", "interleaved", validate_interleaved, interleaved_axes},
    MropeScheme{"spatial_alternating", "height and width alternating, then temporal",
                validate_alternating, alternating_axes},
};

}  // namespace

const MropeScheme& mrope_scheme(MropeOrder order) {
  return kSchemes.at(static_cast<std::size_t>(order));
}

}  // namespace rotary::detail
