// compare_gguf(): the rotation llama.cpp applies to a GGUF file against the original config.json.
//
// Each side's frequencies come from rotary's compute_frequencies at one context, so the theta
// comparison is of what each rotates with. The other diagnoses name the cause of a difference in
// the file's own terms (its keys, llama.cpp's rope type) and say what to change. The facts about
// llama.cpp are those of gguf_rope() (llama.cpp at commit 0c1e57098).
#include "rotary/gguf_verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>

#include "gguf_architectures.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"

namespace rotary {
namespace {

using verify::Finding;
using verify::Severity;

// A number for messages: six significant digits, integers in full.
std::string num(double v) {
  char text[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(text, sizeof text, "%.0f", v);
  } else {
    std::snprintf(text, sizeof text, "%.6g", v);
  }
  return text;
}

std::string count(int64_t v) { return std::to_string(v); }

// What both sides are, at the context compared.
struct Sides {
  const GgufRope& gguf;
  const RopeConfig& config;
  int64_t context = 0;
  std::string_view arch;
  Frequencies fg, fc;  // the GGUF's and the config's frequencies at `context`

  // A key of the file in full: "llama.rope.freq_base", or "<arch>.rope.freq_base".
  std::string key(std::string_view suffix) const {
    return (arch.empty() ? std::string("<arch>") : std::string(arch)) + "." + std::string(suffix);
  }
  std::string architecture() const {
    return arch.empty() ? "this architecture" : "architecture '" + std::string(arch) + "'";
  }
  bool same_pairs() const { return fg.inv_freq.size() == fc.inv_freq.size(); }
};

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

bool theta_differs(double a, double b) {
  return std::fabs(a - b) > verify::kThetaRelative * std::max(std::fabs(a), std::fabs(b));
}

// max_i |a_i - b_i| * context over the pairs that differ beyond float32 rounding (0: none).
double angle_error(const std::vector<float>& a, const std::vector<float>& b, int64_t context) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (theta_differs(a[i], b[i])) {
      worst = std::max(worst, std::fabs(double{a[i]} - double{b[i]}) * double(context));
    }
  }
  return worst;
}

std::string radians_by(double error, int64_t context) {
  return num(error) + " rad by position " + count(context);
}

// ---- pairing ------------------------------------------------------------------------------------

Layout opposite(Layout layout) {
  return layout == Layout::kHalfSplit ? Layout::kInterleaved : Layout::kHalfSplit;
}

std::string pairs_words(Layout layout, int64_t rotary_dim) {
  return layout == Layout::kInterleaved
             ? "adjacent channels (2i, 2i+1)"
             : "channel i with i + " + count(rotary_dim / 2) + " (half-split)";
}

std::string rope_type_for(Layout layout) {
  return layout == Layout::kInterleaved ? "NORM" : "NEOX";
}

// The pairs llama.cpp's rope mode rotates in the file's channel order.
Layout file_pairing(const GgufRope& g) {
  return g.rope_mode == "norm" ? Layout::kInterleaved : Layout::kHalfSplit;
}

// The pairing llama.cpp rotates in the checkpoint's own channel order: its mode's pairs in the
// file, undone by the converter's row reordering where it reorders.
Layout checkpoint_pairing(const GgufRope& g) {
  return g.qk_rows_permuted ? opposite(file_pairing(g)) : file_pairing(g);
}

std::optional<Finding> pairing_finding(const Sides& s) {
  const Layout wanted = s.config.layout;
  if (checkpoint_pairing(s.gguf) == wanted) return std::nullopt;
  const int64_t d = s.config.resolved_rotary_dim();
  const Layout in_file = file_pairing(s.gguf);
  const std::string harm =
      ": every pair rotates the wrong channels (the model runs, its quality drops); ";
  if (!s.gguf.qk_rows_permuted) {
    return Finding{Severity::kMismatch, "pairing",
                   "llama.cpp rotates " + pairs_words(in_file, d) + " for " + s.architecture() +
                       " (rope type " + s.gguf.rope_mode +
                       ") and its converter does not reorder the Q/K rows, but the checkpoint "
                       "pairs " +
                       pairs_words(wanted, d) + harm + "the architecture's rope type must be " +
                       rope_type_for(wanted) + ", or the Q/K rows reordered to " +
                       pairs_words(in_file, d) + " when converting"};
  }
  // The mode already pairs as the checkpoint does (wanted == in_file); the reordering breaks it.
  return Finding{Severity::kMismatch, "pairing",
                 "the converter reorders each head's Q/K rows for " + s.architecture() + " from " +
                     pairs_words(opposite(in_file), d) + " to " + pairs_words(in_file, d) +
                     ", but the checkpoint already pairs " + pairs_words(wanted, d) + harm +
                     "convert this checkpoint without reordering the rows (llama.cpp's rope "
                     "type " +
                     s.gguf.rope_mode + " then rotates its own pairs)"};
}

// ---- sizes --------------------------------------------------------------------------------------

// Where the config's rotated width comes from: "head_dim 128 x partial_rotary_factor 0.5".
std::string rotary_dim_source(const RopeConfig& c) {
  if (c.rotary_dim) return "its rotary_dim";
  return "head_dim " + count(c.head_dim) + " x partial_rotary_factor " +
         num(c.partial_rotary_factor);
}

std::vector<Finding> size_findings(const Sides& s) {
  std::vector<Finding> out;
  const int64_t hg = s.gguf.config.head_dim, hc = s.config.head_dim;
  if (hg != hc) {
    out.push_back({Severity::kMismatch, "head_dim",
                   "the GGUF's heads have " + count(hg) + " channels (" +
                       s.key("attention.key_length") + "), the config's head_dim is " + count(hc) +
                       ": llama.cpp cuts Q and K into other heads than the checkpoint's (the "
                       "model does not compute what was trained); write " +
                       s.key("attention.key_length") + " = " + count(hc)});
  }
  const int64_t rg = s.gguf.config.resolved_rotary_dim(), rc = s.config.resolved_rotary_dim();
  if (rg != rc) {
    const std::string passes =
        rg < rc ? "channels " + count(rg) + ".." + count(rc - 1) +
                      " pass through unchanged in llama.cpp but rotate in the checkpoint"
                : "channels " + count(rc) + ".." + count(rg - 1) +
                      " rotate in llama.cpp but pass through unchanged in the checkpoint";
    out.push_back({Severity::kMismatch, "rotary_dim",
                   "the GGUF rotates " + count(rg) + " channels per head (" +
                       s.key("rope.dimension_count") + "), the config " + count(rc) + " (" +
                       rotary_dim_source(s.config) + "): " + passes +
                       ", and every pair's frequency differs; write " +
                       s.key("rope.dimension_count") + " = " + count(rc)});
  }
  return out;
}

// ---- base ---------------------------------------------------------------------------------------

std::optional<Finding> base_finding(const Sides& s) {
  const double bg = s.gguf.config.rope_theta, bc = s.config.rope_theta;
  // The file stores the base as float32: one float32 rounding is no difference.
  if (std::fabs(bg - bc) <= 0x1p-23 * std::max(bg, bc)) return std::nullopt;
  std::string effect = "every pair but the first rotates at another speed";
  if (s.same_pairs()) {
    const Frequencies ug = compute_frequencies(s.gguf.config.unscaled(), s.context);
    const Frequencies uc = compute_frequencies(s.config.unscaled(), s.context);
    effect +=
        " (up to " + radians_by(angle_error(ug.inv_freq, uc.inv_freq, s.context), s.context) + ")";
  }
  return Finding{Severity::kMismatch, "rope_theta",
                 s.key("rope.freq_base") + " is " + num(bg) + " but the config's rope_theta is " +
                     num(bc) + ": " + effect + "; write " + s.key("rope.freq_base") + " = " +
                     num(bc)};
}

// ---- scaling ------------------------------------------------------------------------------------

// The factor the config scales by: YaRN without one derives max_position_embeddings /
// original_max_position_embeddings, as transformers does.
double factor_of(const RopeConfig& c) {
  if (c.factor) return *c.factor;
  if (c.rope_type == RopeType::kYarn && c.max_position_embeddings > 0) {
    return double(c.max_position_embeddings) /
           double(c.resolved_original_max_position_embeddings());
  }
  return 1.0;
}

// The scheme as the config states it: "yarn (factor 4, original context 32768)".
std::string scheme_words(const RopeConfig& c) {
  std::string out(to_string(c.rope_type));
  if (c.factor) out += " (factor " + num(*c.factor);
  if (c.rope_type == RopeType::kYarn || c.rope_type == RopeType::kLongRope ||
      c.rope_type == RopeType::kLlama3) {
    out += std::string(c.factor ? ", " : " (") + "original context " +
           count(c.resolved_original_max_position_embeddings());
  }
  if (c.factor || c.rope_type == RopeType::kYarn || c.rope_type == RopeType::kLongRope ||
      c.rope_type == RopeType::kLlama3) {
    out += ")";
  }
  return out;
}

// The error the missing scaling causes: the GGUF's theta against the config's.
std::string unscaled_effect(const Sides& s) {
  if (!s.same_pairs()) return "every pair rotates unscaled";
  return "llama.cpp rotates without it (up to " +
         radians_by(angle_error(s.fg.inv_freq, s.fc.inv_freq, s.context), s.context) + ")";
}

std::optional<Finding> missing_scaling(const Sides& s) {
  const RopeConfig& c = s.config;
  const RopeType g = s.gguf.config.rope_type;
  const std::string scheme = "the config's " + scheme_words(c) + " scaling is not applied: ";
  switch (c.rope_type) {
    case RopeType::kLlama3:
      if (g == RopeType::kLongRope) return std::nullopt;
      return Finding{Severity::kMismatch, "scaling",
                     scheme + "rope_freqs is missing from the GGUF, so " + unscaled_effect(s) +
                         "; convert again with a converter that writes rope_freqs.weight (the "
                         "per-pair divisors of the llama3 formula)"};
    case RopeType::kLongRope:
      if (g == RopeType::kLongRope) return std::nullopt;
      return Finding{Severity::kMismatch, "scaling",
                     scheme +
                         "rope_factors_long and rope_factors_short are missing from the "
                         "GGUF, so " +
                         unscaled_effect(s) +
                         "; convert again with a converter that writes both factor tensors"};
    case RopeType::kYarn:
      if (g == RopeType::kYarn) return std::nullopt;
      return Finding{Severity::kMismatch, "scaling",
                     scheme + "the GGUF has no " + s.key("rope.scaling.type") + " = yarn, so " +
                         unscaled_effect(s) + "; write " + s.key("rope.scaling.type") +
                         " = yarn, " + s.key("rope.scaling.factor") + " = " + num(factor_of(c)) +
                         " and " + s.key("rope.scaling.original_context_length") + " = " +
                         count(c.resolved_original_max_position_embeddings())};
    case RopeType::kLinear:
      if (g != RopeType::kDefault) return std::nullopt;
      return Finding{Severity::kMismatch, "scaling",
                     scheme + "the GGUF has no " + s.key("rope.scaling.factor") + ", so " +
                         unscaled_effect(s) + "; write " + s.key("rope.scaling.type") +
                         " = linear and " + s.key("rope.scaling.factor") + " = " +
                         num(factor_of(c))};
    default:
      return std::nullopt;
  }
}

std::optional<Finding> extra_scaling(const Sides& s) {
  if (s.config.rope_type != RopeType::kDefault || s.gguf.config.rope_type == RopeType::kDefault) {
    return std::nullopt;
  }
  return Finding{Severity::kMismatch, "scaling",
                 "the GGUF scales the frequencies (" + scheme_words(s.gguf.config) +
                     " in rotary's terms) but the config has no rope scaling: remove " +
                     s.key("rope.scaling.type") + ", " + s.key("rope.scaling.factor") +
                     " and any factor tensor"};
}

// Both sides YaRN or both linear: their factor and original context.
std::vector<Finding> scaling_parameters(const Sides& s) {
  std::vector<Finding> out;
  const RopeConfig& c = s.config;
  const RopeConfig& g = s.gguf.config;
  if (c.rope_type != g.rope_type ||
      (c.rope_type != RopeType::kYarn && c.rope_type != RopeType::kLinear)) {
    return out;
  }
  const double fc = factor_of(c), fg = factor_of(g);
  if (std::fabs(fc - fg) > 0x1p-23 * std::max(fc, fg)) {
    out.push_back({Severity::kMismatch, "scaling",
                   s.key("rope.scaling.factor") + " is " + num(fg) + " but the config's " +
                       std::string(to_string(c.rope_type)) + " factor is " + num(fc) +
                       ": the interpolated pairs rotate " + num(fc / fg) +
                       " times too fast in llama.cpp; write " + s.key("rope.scaling.factor") +
                       " = " + num(fc)});
  }
  if (c.rope_type == RopeType::kYarn) {
    const int64_t oc = c.resolved_original_max_position_embeddings();
    const int64_t og = g.resolved_original_max_position_embeddings();
    if (oc != og) {
      out.push_back({Severity::kMismatch, "scaling",
                     s.key("rope.scaling.original_context_length") + " is " + count(og) +
                         " but the config's original_max_position_embeddings is " + count(oc) +
                         ": YaRN's ramp covers other pairs; write " +
                         s.key("rope.scaling.original_context_length") + " = " + count(oc)});
    }
  }
  return out;
}

std::optional<Finding> dynamic_warning(const Sides& s) {
  if (s.config.rope_type != RopeType::kDynamic) return std::nullopt;
  return Finding{Severity::kWarning, "scaling",
                 "the config's dynamic NTK scaling grows the base for sequences past " +
                     count(s.config.max_position_embeddings) +
                     " positions; llama.cpp has no dynamic scaling, so both rotate alike up to "
                     "there and llama.cpp keeps the unscaled frequencies past it (run it with a "
                     "context of at most " +
                     count(s.config.max_position_embeddings) + ")"};
}

// ---- theta --------------------------------------------------------------------------------------

// "0-3, 10-63": the pairs where `differs` holds, as ranges.
std::string ranges(const std::vector<bool>& differs) {
  std::string out;
  for (std::size_t i = 0; i < differs.size(); ++i) {
    if (!differs[i]) continue;
    std::size_t j = i;
    while (j + 1 < differs.size() && differs[j + 1]) ++j;
    if (!out.empty()) out += ", ";
    out += j == i ? count(int64_t(i)) : count(int64_t(i)) + "-" + count(int64_t(j));
    i = j;
  }
  return out;
}

std::optional<Finding> theta_finding(const Sides& s) {
  if (!s.same_pairs()) return std::nullopt;
  const std::vector<float>& g = s.fg.inv_freq;
  const std::vector<float>& c = s.fc.inv_freq;
  std::vector<bool> differs(g.size());
  int64_t n = 0, worst_rel_pair = 0, worst_angle_pair = 0;
  double worst_rel = 0, worst_delta = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    differs[i] = theta_differs(g[i], c[i]);
    if (!differs[i]) continue;
    ++n;
    const double delta = std::fabs(double{g[i]} - double{c[i]});
    const double rel = delta / std::max(std::fabs(double{g[i]}), std::fabs(double{c[i]}));
    if (rel > worst_rel) worst_rel = rel, worst_rel_pair = int64_t(i);
    if (delta > worst_delta) worst_delta = delta, worst_angle_pair = int64_t(i);
  }
  if (n == 0) return std::nullopt;
  const double angle = worst_delta * double(s.context);
  const auto w = static_cast<std::size_t>(worst_rel_pair);
  std::string consequence =
      angle < 0.01 ? "too small to change attention noticeably"
                   : "positions past " + num(std::ceil(0.01 / worst_delta)) +
                         " are off by more than 0.01 rad, so attention over long distances "
                         "differs from the trained model's";
  return Finding{Severity::kMismatch, "theta",
                 "theta differs on " + count(n) + " of " + count(int64_t(g.size())) + " pairs (" +
                     ranges(differs) + "): at most " + num(worst_rel) + " relative (pair " +
                     count(worst_rel_pair) + ": " + num(g[w]) + " rad/position in the GGUF, " +
                     num(c[w]) + " in the config), an angle error of up to " +
                     radians_by(angle, s.context) + " (pair " + count(worst_angle_pair) + "); " +
                     consequence + "; the other findings name the cause"};
}

// ---- cos/sin scale ------------------------------------------------------------------------------

bool noted(const GgufRope& g, std::string_view text) {
  return std::any_of(g.notes.begin(), g.notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

std::string gguf_scale_formula(const Sides& s) {
  switch (s.gguf.config.rope_type) {
    case RopeType::kYarn:
      return noted(s.gguf, "yarn_log_multiplier")
                 ? "llama.cpp's DeepSeek ratio mscale(factor, mscale) / mscale(factor, "
                   "mscale_all_dim) with the mscale it assumes (it never reads the config's) x " +
                       s.key("rope.scaling.attn_factor")
                 : "llama.cpp's YaRN scale 0.1 ln(factor) + 1 x " +
                       s.key("rope.scaling.attn_factor") +
                       "; llama.cpp reads no attention_factor of the config";
    case RopeType::kLongRope:
      return s.key("rope.scaling.attn_factor");
    default:
      return "no scale";
  }
}

std::string config_scale_formula(const RopeConfig& c) {
  if (c.attention_factor) return "the config's attention_factor";
  switch (c.rope_type) {
    case RopeType::kYarn:
      return c.mscale && c.mscale_all_dim
                 ? "mscale(factor, mscale) / mscale(factor, mscale_all_dim), mscale " +
                       num(*c.mscale) + " and mscale_all_dim " + num(*c.mscale_all_dim)
                 : "YaRN's 0.1 ln(factor) + 1";
    case RopeType::kLongRope:
      return c.short_mscale ? "the config's short_mscale / long_mscale"
                            : "LongRoPE's sqrt(1 + ln(factor) / ln(original context))";
    default:
      return "no scale";
  }
}

std::optional<Finding> attention_finding(const Sides& s) {
  const double a = s.fg.attention_factor, b = s.fc.attention_factor;
  if (std::fabs(a - b) <= 1e-6 * std::max(a, b)) return std::nullopt;
  const double ratio = b / a;
  return Finding{
      Severity::kMismatch, "attention_factor",
      "cos/sin are scaled by " + num(a) + " in llama.cpp (" + gguf_scale_formula(s) + ") but by " +
          num(b) + " in transformers (" + config_scale_formula(s.config) +
          "): every attention logit is " + num(1 / (ratio * ratio)) +
          " times the trained one, so attention is " + (ratio > 1 ? "flatter" : "sharper") +
          " than trained; multiply " + s.key("rope.scaling.attn_factor") + " by " + num(ratio) +
          " (llama.cpp multiplies cos and sin by it" +
          (noted(s.gguf, "kq_scale") ? "; here it also enters the softmax scale" : "") + ")"};
}

// ---- YaRN's details -----------------------------------------------------------------------------

// The angle error one of the config's YaRN settings causes: the config's theta against the
// config's with that setting as llama.cpp has it.
double yarn_effect(const Sides& s, const RopeConfig& as_llama) {
  return angle_error(s.fc.inv_freq, compute_frequencies(as_llama, s.context).inv_freq, s.context);
}

std::optional<Finding> betas_finding(const Sides& s) {
  const RopeConfig& c = s.config;
  const RopeConfig& g = s.gguf.config;
  // 0 or absent means the default, as in transformers.
  const double fast = c.beta_fast.value_or(0) > 0 ? *c.beta_fast : 32.0;
  const double slow = c.beta_slow.value_or(0) > 0 ? *c.beta_slow : 1.0;
  const double gfast = g.beta_fast.value_or(32), gslow = g.beta_slow.value_or(1);
  if (fast == gfast && slow == gslow) return std::nullopt;
  RopeConfig as_llama = c;
  as_llama.beta_fast = gfast;
  as_llama.beta_slow = gslow;
  const double error = yarn_effect(s, as_llama);
  if (error == 0) return std::nullopt;
  const bool reads = !s.arch.empty() && detail::reads_yarn_betas(s.arch);
  const std::string cause =
      reads ? "the file's " + s.key("rope.scaling.yarn_beta_fast") + " / yarn_beta_slow say " +
                  num(gfast) + " / " + num(gslow) + "; write " + num(fast) + " and " + num(slow)
            : "llama.cpp's loader for " + s.architecture() +
                  " reads no rope.scaling.yarn_beta_fast / yarn_beta_slow (only grok's and "
                  "mistral3's do) and uses " +
                  num(gfast) + " and " + num(gslow) +
                  "; llama.cpp cannot run this ramp for this architecture";
  return Finding{Severity::kMismatch, "yarn",
                 "the config's beta_fast " + num(fast) + " and beta_slow " + num(slow) +
                     " are not the ramp llama.cpp applies: " + cause +
                     " (the ramp covers other pairs, up to " + radians_by(error, s.context) + ")"};
}

std::optional<Finding> truncate_finding(const Sides& s) {
  if (s.config.truncate.value_or(true)) return std::nullopt;
  RopeConfig as_llama = s.config;
  as_llama.truncate = true;
  const double error = yarn_effect(s, as_llama);
  if (error == 0) return std::nullopt;
  return Finding{Severity::kMismatch, "yarn",
                 "the config sets truncate: false (transformers keeps YaRN's ramp ends "
                 "fractional) but ggml always rounds them to whole pairs and no GGUF key can say "
                 "otherwise: the ramp's pairs blend differently, up to " +
                     radians_by(error, s.context) + "; llama.cpp cannot run this rotation exactly"};
}

std::vector<Finding> yarn_findings(const Sides& s) {
  std::vector<Finding> out;
  if (s.config.rope_type != RopeType::kYarn || s.gguf.config.rope_type != RopeType::kYarn ||
      !s.same_pairs()) {
    return out;
  }
  if (auto f = betas_finding(s)) out.push_back(std::move(*f));
  if (auto f = truncate_finding(s)) out.push_back(std::move(*f));
  return out;
}

// ---- context and notes --------------------------------------------------------------------------

std::optional<Finding> context_warning(const Sides& s) {
  const int64_t g = s.gguf.config.max_position_embeddings, c = s.config.max_position_embeddings;
  if (c == 0 || g == c) return std::nullopt;
  return Finding{Severity::kWarning, "context",
                 s.key("context_length") + " is " + count(g) +
                     " but the config's max_position_embeddings is " + count(c) +
                     ": llama.cpp takes the file's value as the trained context (its default "
                     "n_ctx); write " +
                     s.key("context_length") + " = " + count(c)};
}

int64_t context_of(const GgufRope& gguf, const RopeConfig& config, int64_t context) {
  if (context < 0) {
    throw Error(ErrorCode::kInvalidArgument, "context",
                "expected >= 0 (0: the trained context), got " + std::to_string(context));
  }
  if (context > 0) return context;
  if (config.max_position_embeddings > 0) return config.max_position_embeddings;
  return gguf.config.max_position_embeddings;
}

template <typename T>
void add(std::vector<Finding>& out, T&& found) {
  if constexpr (std::is_same_v<std::decay_t<T>, std::vector<Finding>>) {
    out.insert(out.end(), found.begin(), found.end());
  } else if (found) {
    out.push_back(std::move(*found));
  }
}

}  // namespace

bool GgufComparison::match() const {
  return std::none_of(findings.begin(), findings.end(),
                      [](const verify::Finding& f) { return f.severity == Severity::kMismatch; });
}

GgufComparison compare_gguf(const GgufRope& gguf, const RopeConfig& config, int64_t context,
                            std::string_view architecture) {
  config.validate();
  GgufComparison out;
  out.context = context_of(gguf, config, context);
  const Sides s{gguf,
                config,
                out.context,
                architecture,
                compute_frequencies(gguf.config, out.context),
                compute_frequencies(config, out.context)};
  std::vector<Finding>& f = out.findings;
  add(f, pairing_finding(s));
  add(f, size_findings(s));
  add(f, base_finding(s));
  add(f, missing_scaling(s));
  add(f, extra_scaling(s));
  add(f, scaling_parameters(s));
  add(f, theta_finding(s));
  add(f, attention_finding(s));
  add(f, yarn_findings(s));
  add(f, dynamic_warning(s));
  add(f, context_warning(s));
  for (const std::string& note : gguf.notes) f.push_back({Severity::kNote, "gguf", note});
  std::stable_sort(f.begin(), f.end(), [](const Finding& a, const Finding& b) {
    return static_cast<int>(a.severity) < static_cast<int>(b.severity);
  });
  out.theta_gguf = widen(s.fg.inv_freq);
  out.theta_config = widen(s.fc.inv_freq);
  out.attention_gguf = s.fg.attention_factor;
  out.attention_config = s.fc.attention_factor;
  return out;
}

}  // namespace rotary
