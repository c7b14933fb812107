// What differs from the expected config, in words a user can act on: theta (which base or scheme
// it follows instead), the attention factor, the pairing and rotary_dim.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "internal.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/verify.h"
#include "validate.h"

namespace rotary::verify {
namespace {

using text::format;

// The same base, to 1e-6 relative. A base 1e-6 off already moves the slowest pairs' theta by
// about three times their 3e-7 tolerance: measurably another base, worth naming.
bool same_base(double a, double b) { return std::fabs(a - b) <= 1e-6 * b; }

// Everything the explanations of a theta difference read.
struct ThetaContext {
  const ThetaComparison& c;
  const RopeConfig& config;
  std::string kind;    // the config's rope_type
  std::string base_e;  // the config's base, as printed
  bool plain = false;  // the config does not scale (default, or dynamic within its context)
  std::optional<double> base_m;  // the base of the identified scheme, when one fits

  bool fitted() const { return c.fit && c.fit->fits(); }
  bool fitted_as(RopeType type) const { return fitted() && *c.fit->rope_type == type; }
};

// Whether rotary's frequencies for `config` reproduce the measured theta within tolerance.
bool reproduces(const ThetaContext& t, const RopeConfig& config) {
  try {
    const Frequencies f = compute_frequencies(config, t.c.length);
    if (f.inv_freq.size() != t.c.measured.size()) return false;
    for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
      if (std::fabs(f.inv_freq[i] - t.c.measured[i]) > t.c.tolerance[i]) return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Plain RoPE with another base than a plain config's, or where the config scales.
std::optional<std::string> plain_base(const ThetaContext& t) {
  if (!t.fitted_as(RopeType::kDefault)) return std::nullopt;
  const double base = *t.base_m, expected = t.config.rope_theta;
  const std::string base_m = format("%.10g", base);
  const bool same = same_base(base, expected);
  if (t.plain && !same) {
    // NTK-aware scaling grows the base to base x factor^(d/(d-2)).
    std::string hint;
    const auto d = static_cast<double>(t.c.rotary_dim);
    const double ntk = std::pow(base / expected, (d - 2) / d);
    if (base > expected && std::fabs(ntk - std::round(ntk)) < 0.01 && std::round(ntk) > 1) {
      hint = " (that is NTK-aware scaling of base " + t.base_e + " by factor " +
             format("%g", std::round(ntk)) + ": base x factor^(d/(d-2)))";
    }
    return "θ matches base " + base_m + ", config says " + t.base_e + hint;
  }
  if (!t.plain && same) {
    return "θ are plain RoPE with base " + base_m + ": the config's " + t.kind +
           " scaling is not applied";
  }
  if (!t.plain) {
    return "θ are plain RoPE with base " + base_m + "; the config says " + t.kind + " with base " +
           t.base_e;
  }
  return std::nullopt;
}

// `raw` rounded to the fewest significant digits (1 .. 7) at which the config's own scheme with
// that base reproduces theta.
std::optional<double> rebased_fit(const ThetaContext& t, double raw) {
  for (int digits = 1; digits <= 7; ++digits) {
    const double base = text::round_to_digits(raw, digits);
    RopeConfig config = t.config;
    config.rope_theta = base;
    if (reproduces(t, config)) return base;
  }
  return std::nullopt;
}

// The config's own scheme with another base: the identified scheme's base, or the one its
// unscaled high-frequency pairs follow.
std::optional<std::string> rebased(const ThetaContext& t) {
  std::vector<double> bases;
  if (t.base_m) bases.push_back(*t.base_m);
  if (const auto raw = head_base(t.c.measured, t.c.tolerance, t.c.rotary_dim)) {
    if (const auto base = rebased_fit(t, *raw)) bases.push_back(*base);
  }
  for (const double base : bases) {
    if (same_base(base, t.config.rope_theta)) continue;
    RopeConfig config = t.config;
    config.rope_theta = base;
    if (!reproduces(t, config)) continue;
    return "θ matches base " + format("%.10g", base) + " (with the config's " + t.kind +
           " scaling), config says " + t.base_e;
  }
  return std::nullopt;
}

// A scheme on top of the plain config's own base: scaling the config does not have.
std::optional<std::string> carried_scheme(const ThetaContext& t) {
  if (!t.fitted() || t.fitted_as(RopeType::kDefault) || !t.plain) return std::nullopt;
  if (!same_base(*t.base_m, t.config.rope_theta)) return std::nullopt;
  return "θ carry " + describe(*t.c.fit) + " that the config does not have";
}

// One factor on every pair: position interpolation applied, or missing.
std::optional<std::string> uniform_factor(const ThetaContext& t) {
  const auto m = t.c.measured, e = t.c.expected, tol = t.c.tolerance;
  if (e.empty() || e[0] <= 0) return std::nullopt;
  const double ratio = m[0] / e[0];
  // A ratio indistinguishable from 1 is no factor.
  if (std::fabs(ratio - 1) <= 2 * tol[0] / e[0]) return std::nullopt;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (std::fabs(m[i] - ratio * e[i]) > 2 * tol[i]) return std::nullopt;
  }
  const std::string how = ratio < 1 ? "divided by " + format("%.6g", 1 / ratio)
                                    : "multiplied by " + format("%.6g", ratio);
  return "every θ is the config's " + how + ": a linear (position interpolation) factor is " +
         (ratio < 1 ? "applied that the config does not have" : "missing");
}

// A LongRoPE config's other factor list: the call's length selects short_factor or long_factor.
std::optional<std::string> longrope_lists(const ThetaContext& t) {
  if (t.config.rope_type != RopeType::kLongRope || !t.fitted()) return std::nullopt;
  const Frequencies plain = compute_frequencies(t.config.unscaled());
  const auto m = t.c.measured;
  for (const auto& [name, listed] : {std::pair{"short_factor", &t.config.short_factor},
                                     std::pair{"long_factor", &t.config.long_factor}}) {
    bool same = listed->size() == m.size() && plain.inv_freq.size() == m.size();
    for (std::size_t i = 0; same && i < m.size(); ++i) {
      const double factor = plain.inv_freq[i] / std::max(m[i], 1e-30);
      same = std::fabs(factor - (*listed)[i]) <= 1e-5 * (*listed)[i] + 1e-6;
    }
    if (same) {
      return std::string("θ use the config's ") + name + " where the call (length " +
             std::to_string(t.c.length) + ") selects the other list";
    }
  }
  return "per-pair factors differ from the config's LongRoPE factors";
}

// Whatever scheme was identified, against the config's.
std::optional<std::string> followed_scheme(const ThetaContext& t) {
  if (!t.fitted()) return std::nullopt;
  return "θ follow " + describe(*t.c.fit) + "; the config gives " + t.kind + " with base " +
         t.base_e;
}

// The explanations, most specific first; the first that applies is the message.
constexpr std::optional<std::string> (*kExplanations[])(const ThetaContext&) = {
    plain_base, rebased, carried_scheme, uniform_factor, longrope_lists, followed_scheme,
};

// "worst pair i: θ .., config .. (relative error ..; k of n pairs differ)".
std::string worst_pair(const ThetaComparison& c, const std::vector<bool>& bad) {
  std::size_t worst = 0, count = 0;
  double worst_rel = -1;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    if (!bad[i]) continue;
    ++count;
    const double rel = std::fabs(c.measured[i] - c.expected[i]) / std::max(c.expected[i], 1e-30);
    if (rel > worst_rel) worst_rel = rel, worst = i;
  }
  return "worst pair " + std::to_string(worst) + ": θ " + format("%.7g", c.measured[worst]) +
         ", config " + format("%.7g", c.expected[worst]) + " (relative error " +
         format("%.2g", worst_rel) + "; " + std::to_string(count) + " of " +
         std::to_string(bad.size()) + " pairs differ)";
}

// Pairs that differ by more than their tolerance, leaving out pairs too slow to be seen.
std::vector<bool> differing_pairs(const ThetaComparison& c) {
  std::vector<bool> bad(c.measured.size());
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const bool unseen =
        std::fabs(c.expected[i]) * static_cast<double>(c.max_position) < c.smallest_visible_angle &&
        c.measured[i] == 0;
    bad[i] = !unseen && std::fabs(c.measured[i] - c.expected[i]) > c.tolerance[i];
  }
  return bad;
}

Finding theta_finding(std::string message) {
  return {Severity::kMismatch, "theta", std::move(message)};
}

}  // namespace

std::string pairs_phrase(Layout layout, int64_t rotary_dim) {
  return layout == Layout::kHalfSplit ? "(i, i+" + std::to_string(rotary_dim / 2) + ")"
                                      : "(2i, 2i+1)";
}

ThetaVerdict diagnose_theta(const ThetaComparison& c) {
  if (!c.config) detail::invalid("config", "required");
  if (c.tolerance.size() != c.measured.size()) {
    detail::invalid("tolerance", "expected one per measured theta");
  }
  const RopeConfig& config = *c.config;
  const std::string base_e = format("%.10g", config.rope_theta);
  if (c.measured.size() != c.expected.size()) {
    // Pairs cannot be compared one by one; the identified base still can.
    const auto base = c.fit && c.fit->rope_type ? c.fit->param("base") : std::nullopt;
    if (!base || same_base(*base, config.rope_theta)) return {};
    return {false,
            theta_finding("θ matches base " + format("%.10g", *base) + ", config says " + base_e)};
  }
  const std::vector<bool> bad = differing_pairs(c);
  if (std::find(bad.begin(), bad.end(), true) == bad.end()) return {true, std::nullopt};
  const ThetaContext t{
      c,
      config,
      std::string(to_string(config.rope_type)),
      base_e,
      config.rope_type == RopeType::kDefault || config.rope_type == RopeType::kDynamic,
      c.fit && c.fit->fits() ? c.fit->param("base") : std::nullopt};
  const std::string detail = worst_pair(c, bad);
  for (const auto explain : kExplanations) {
    if (auto message = explain(t)) return {false, theta_finding(*message + "; " + detail)};
  }
  return {false, theta_finding("θ differ from the config's " + t.kind + " (base " + base_e + "); " +
                               detail)};
}

std::optional<Finding> diagnose_attention_factor(Source source, double measured, double expected,
                                                 double noise, RopeType rope_type) {
  const double tol = attention_tolerance(source, noise, expected);
  if (std::fabs(measured - expected) <= tol) return std::nullopt;
  const bool table = source == Source::kTable;
  const std::string kind(to_string(rope_type));
  const std::string m = format("%.7g", measured), e = format("%.7g", expected);
  // What the factor was measured as: a table's hypot(cos, sin), a function's scale of its pairs.
  const std::string measured_as = table ? "hypot(cos, sin) = " + m : "measured " + m;
  std::string message;
  if (std::fabs(measured - 1) <= tol) {
    message = "attention factor missing: cos/sin are not scaled (" + measured_as +
              "); the config's " + kind + " gives " + e + ", which multiplies cos and sin";
  } else if (std::fabs(measured - expected * expected) <= tol * expected) {
    message = "attention factor applied twice: " +
              std::string(table ? "hypot(cos, sin) = " : "cos/sin are scaled by ") + m + " = " + e +
              "^2; the config's " + kind + " gives " + e;
  } else {
    message = "attention factor " + m + (table ? " (hypot(cos, sin))" : "") + ", the config's " +
              kind + " gives " + e;
  }
  return Finding{Severity::kMismatch, "attention_factor", message};
}

Finding pairing_mismatch(std::string_view measured, Layout expected, int64_t rotary_dim) {
  return {Severity::kMismatch, "pairing",
          "pairs are " + std::string(measured) + " but the config's model family uses " +
              pairs_phrase(expected, rotary_dim)};
}

Finding pairing_unseen(Layout expected, int64_t rotary_dim) {
  return {Severity::kNote, "pairing",
          "one column per pair: the table does not fix which channels pair up; the config's "
          "model family uses " +
              pairs_phrase(expected, rotary_dim)};
}

Finding rotary_dim_mismatch(std::string_view measured, int64_t rotary_dim, int64_t head_dim) {
  std::string message = std::string(measured) + ", the config rotates " +
                        std::to_string(rotary_dim) + " of " + std::to_string(head_dim);
  if (head_dim > rotary_dim) {
    message += ": channels " + std::to_string(rotary_dim) + ".." + std::to_string(head_dim - 1) +
               " should pass through unchanged";
  }
  return {Severity::kMismatch, "rotary_dim", message};
}

}  // namespace rotary::verify
