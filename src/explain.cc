// The words `rotary inspect` prints about a scheme: each unit's rule per pair, and the regime of
// each pair against the unscaled frequencies.
#include <cmath>

#include "rotary/frequencies.h"
#include "variants/variant.h"

namespace rotary {
namespace {

bool near(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::fabs(b); }

std::string regime(const RopeConfig& c, const detail::RopeVariant& v, double theta,
                   double theta_unscaled) {
  const double scale = theta / theta_unscaled, factor = c.factor.value_or(1.0);
  if (theta == 0) return "not rotated";
  if (near(scale, 1.0)) return "extrapolated";
  if (factor != 1.0 && near(scale, 1.0 / factor)) return "interpolated";
  return v.blends_pairs ? "blended" : "rescaled";
}

}  // namespace

std::vector<PairExplanation> explain_pairs(const RopeConfig& c, int64_t context) {
  const Frequencies f =
      compute_frequencies(c, context > 0 ? std::optional<int64_t>(context) : std::nullopt);
  // The same pairs unscaled (unscaled() keeps them: a proportional config's zero pairs are
  // measured against the whole head's default frequencies).
  const Frequencies unscaled = compute_frequencies(c.unscaled());
  const detail::RopeVariant& v = detail::variant_of(c.rope_type);
  std::vector<PairExplanation> pairs(f.inv_freq.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (v.pair_rule) pairs[i].rule = v.pair_rule(c, static_cast<int64_t>(i), context);
    pairs[i].regime = regime(c, v, f.inv_freq[i], unscaled.inv_freq[i]);
  }
  return pairs;
}

std::optional<SchemeSummary> explain_scheme(const RopeConfig& c) {
  c.validate();
  const detail::RopeVariant& v = detail::variant_of(c.rope_type);
  return v.summary ? v.summary(c) : std::nullopt;
}

std::string explain_length_change(const RopeConfig& c) {
  const detail::RopeVariant& v = detail::variant_of(c.rope_type);
  return v.length_change ? v.length_change(c) : std::string();
}

}  // namespace rotary
