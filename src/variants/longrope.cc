// rope_type "longrope" (Phi-3's "su"): LongRoPE (Ding et al. 2024; transformers'
// _compute_longrope_parameters). Pair i's frequency is divided by short_factor[i] for calls within
// original_max_position_embeddings and by long_factor[i] past it; cos and sin are scaled by
// sqrt(1 + ln(factor) / ln(original)) unless the config states an attention factor. PhiMoE's
// short_mscale / long_mscale replace that scale and keep short_factor at every length.
#include "variants/common.h"
#include "variants/variant.h"
#include "verify/fit_toolkit.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kAliases[] = {"su"};
constexpr std::string_view kRequired[] = {"short_factor", "long_factor"};

void validate(const RopeConfig& c, int64_t dim) {
  require_context(c);
  if (c.factor) require_factor(c.factor, c.rope_type);
  const auto half = static_cast<std::size_t>(dim / 2);
  for (auto [values, name] :
       {std::pair{&c.short_factor, "short_factor"}, std::pair{&c.long_factor, "long_factor"}}) {
    if (values->size() != half) {
      invalid_config(name, "expected " + std::to_string(half) + " entries (rotary_dim / 2), got " +
                               std::to_string(values->size()));
    }
    for (double v : *values) {
      if (!std::isfinite(v) || v <= 0) invalid_config(name, "expected finite entries > 0");
    }
  }
}

bool past_original(const RopeConfig& c, std::optional<int64_t> seq_len) {
  const auto orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  return seq_len && *seq_len > 0 && static_cast<double>(*seq_len) > orig;
}

// The long list applies past the original context, except in PhiMoE's class.
bool uses_long_factor(const RopeConfig& c, std::optional<int64_t> seq_len) {
  return past_original(c, seq_len) && !c.short_mscale;
}

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t> seq_len) {
  const double orig = static_cast<double>(c.resolved_original_max_position_embeddings());
  const double factor =
      c.factor ? *c.factor : static_cast<double>(c.max_position_embeddings) / orig;
  Frequencies f;
  if (c.attention_factor) {
    f.attention_factor = *c.attention_factor;
  } else {
    f.attention_factor = factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(orig));
  }
  if (c.short_mscale)
    f.attention_factor = past_original(c, seq_len) ? *c.long_mscale : *c.short_mscale;
  const std::vector<double>& ext = uses_long_factor(c, seq_len) ? c.long_factor : c.short_factor;
  f.inv_freq.resize(static_cast<std::size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    f.inv_freq[i] = 1.0f / (static_cast<float>(ext[i]) * base_power(c.rope_theta, i, dim));
  }
  return f;
}

std::string pair_rule(const RopeConfig& c, int64_t pair, int64_t context) {
  const bool long_set = uses_long_factor(c, context);
  return std::string(long_set ? "long_factor " : "short_factor ") +
         six_digits(long_set ? c.long_factor[pair] : c.short_factor[pair]);
}

// ---- how verify recognises it ----

using verify::candidate;
using verify::FamilyFit;
using verify::FitContext;
using verify::head;
using verify::head_base;
using verify::nice;
namespace text = verify::text;

// Without a hint, the largest 1-2-5 x 10^k base that keeps every LongRoPE factor >= 1 (its
// factors stretch wavelengths, they do not shrink them).
double longrope_base(const FitContext& ctx) {
  double limit = HUGE_VAL;
  bool live = false;
  for (std::size_t i = 1; i < ctx.pairs(); ++i) {
    if (ctx.theta[i] <= 0) continue;
    live = true;
    // Pair i has factor >= 1 while base <= (theta_0 / theta_i)^(d / 2i).
    const double exponent = static_cast<double>(ctx.rotary_dim) / (2.0 * static_cast<double>(i));
    limit = std::min(limit, std::pow(ctx.theta[0] / ctx.theta[i], exponent));
  }
  if (!live || ctx.theta[0] <= 0) return 10000.0;
  const double exponent = std::floor(std::log10(limit));
  for (const double mantissa : {5.0, 2.0, 1.0}) {
    if (mantissa * std::pow(10.0, exponent) <= limit) return mantissa * std::pow(10.0, exponent);
  }
  return std::pow(10.0, exponent - 1) * 5;
}

// LongRoPE: one factor per pair, which any positive theta satisfies; a call of `length`
// positions reads the same list as short or long factors. Tried only where the high-frequency
// head follows a base, and only a fitting config counts.
std::optional<FamilyFit> fit_longrope(const FitContext& ctx) {
  if (!head_base(ctx.theta, ctx.tolerance, ctx.rotary_dim)) return std::nullopt;
  const double base = ctx.hint_base.value_or(longrope_base(ctx));
  const auto theta_default = ctx.frequencies(ctx.base_config(base));
  if (!theta_default) return std::nullopt;
  std::vector<double> factors;
  for (std::size_t i = 0; i < ctx.pairs(); ++i) {
    if (ctx.theta[i] <= 0) return std::nullopt;
    factors.push_back((*theta_default)[i] / ctx.theta[i]);
  }
  const int64_t original = std::max<int64_t>(ctx.length, 1);
  RopeConfig c = ctx.base_config(nice(base, 7));
  c.rope_type = RopeType::kLongRope;
  c.short_factor = factors;
  c.long_factor = factors;
  c.original_max_position_embeddings = original;
  c.factor = 1.0;
  c.max_position_embeddings = original;
  FamilyFit fit = ctx.score(candidate(RopeType::kLongRope, {{"base", nice(base, 7)}}, c));
  fit.factors = std::move(factors);
  return fit.worst <= 1 ? std::optional(fit) : std::nullopt;
}

std::string describe_longrope(const FamilyFit& f) {
  const auto [low, high] = std::minmax_element(f.factors.begin(), f.factors.end());
  return head(f) +
         " with one factor per pair (LongRoPE-style; the base is a choice, the factors are "
         "relative to it): " +
         text::format("%.7g", *low) + " .. " + text::format("%.7g", *high);
}

}  // namespace

extern const RopeVariant kLongRopeVariant{
    .aliases = kAliases,
    .required_keys = kRequired,
    .uses_original_context = true,
    .validate = validate,
    .frequencies = frequencies,
    .frequencies_change_after =
        [](const RopeConfig& c) { return c.resolved_original_max_position_embeddings(); },
    .one_set_past_change = true,
    .length_change =
        [](const RopeConfig& c) {
          return std::string(c.short_mscale
                                 ? "PhiMoE's LongRoPE scales cos/sin by long_mscale past the "
                                   "original context"
                                 : "LongRoPE switches to long_factor past the original context");
        },
    .pair_rule = pair_rule,
    .fit = fit_longrope,
    .describe_fit = describe_longrope,
    .fit_rank = 70,
};

}  // namespace rotary::detail
