#include "inspect.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>

#include "rotary/frequencies.h"

namespace rotary::tools {
namespace {

bool near(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::fabs(b); }

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string axis_name(const RopeConfig& config, int axis) {
  if (config.rope_type == RopeType::kAxial) return axis == 0 ? "row" : "column";
  if (config.num_axes() == 3) return axis == 0 ? "temporal" : axis == 1 ? "height" : "width";
  return "axis " + std::to_string(axis);
}

// How the pairs are dealt to the axes, in words.
std::string axis_order(const RopeConfig& c) {
  if (c.rope_type == RopeType::kAxial) {
    return c.axial_columns_first ? "axial, columns first" : "axial, consecutive sections";
  }
  switch (c.mrope_order) {
    case MropeOrder::kChunked:
      return "consecutive sections";
    case MropeOrder::kInterleaved:
      return "interleaved";
    case MropeOrder::kSpatialAlternating:
      return "height and width alternating, then temporal";
  }
  return "";
}

Inspection inspect(const LoadedConfig& loaded, int64_t context) {
  const RopeConfig& c = loaded.config;
  Inspection out;
  out.loaded = loaded;
  out.context = context > 0                     ? context
                : c.max_position_embeddings > 0 ? c.max_position_embeddings
                                                : c.resolved_original_max_position_embeddings();
  const Frequencies f =
      compute_frequencies(c, out.context > 0 ? std::optional<int64_t>(out.context) : std::nullopt);
  out.attention_factor = f.attention_factor;
  RopeConfig plain = c.unscaled();
  if (c.rope_type == RopeType::kProportional) plain.rotary_dim = c.head_dim;
  const std::vector<int> pair_axes = c.pair_axes();
  const Frequencies unscaled = compute_frequencies(plain);
  const double factor = c.factor.value_or(1.0);
  YarnCorrectionRange range;
  if (c.rope_type == RopeType::kYarn) range = yarn_correction_range(c);
  const bool past_original = out.context > c.resolved_original_max_position_embeddings();
  // PhiMoE keeps short_factor at every length (its mscale changes instead).
  const bool long_set = c.rope_type == RopeType::kLongRope && past_original && !c.short_mscale;

  for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
    PairReport p;
    p.index = static_cast<int64_t>(i);
    p.theta_unscaled = unscaled.inv_freq[i];
    p.theta = f.inv_freq[i];
    p.axis = pair_axes[i];
    const double inf = std::numeric_limits<double>::infinity();
    p.wavelength_unscaled = 2 * std::numbers::pi / p.theta_unscaled;
    p.wavelength = p.theta > 0 ? 2 * std::numbers::pi / p.theta : inf;
    p.scale = p.theta / p.theta_unscaled;
    p.turns_in_context = out.context > 0 ? static_cast<double>(out.context) / p.wavelength : 0;
    if (p.theta == 0) {
      p.regime = "not rotated";
    } else if (near(p.scale, 1.0)) {
      p.regime = "extrapolated";
    } else if (factor != 1.0 && near(p.scale, 1.0 / factor)) {
      p.regime = "interpolated";
    } else if (c.rope_type == RopeType::kYarn || c.rope_type == RopeType::kLlama3) {
      p.regime = "blended";
    } else {
      p.regime = "rescaled";
    }
    switch (c.rope_type) {
      case RopeType::kYarn: {
        double low = range.low, high = range.high;
        if (low == high) high += 0.001;
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        p.rule = "ramp " + format_number(ramp);
        break;
      }
      case RopeType::kLlama3: {
        const double ctx = static_cast<double>(c.resolved_original_max_position_embeddings());
        const double high_wavelength = ctx / *c.high_freq_factor,
                     low_wavelength = ctx / *c.low_freq_factor;
        p.rule = p.wavelength_unscaled < high_wavelength  ? "high-frequency band"
                 : p.wavelength_unscaled > low_wavelength ? "low-frequency band"
                                                          : "smoothed band";
        break;
      }
      case RopeType::kLongRope:
        p.rule = std::string(long_set ? "long_factor " : "short_factor ") +
                 format_number(long_set ? c.long_factor[i] : c.short_factor[i]);
        break;
      case RopeType::kDynamic:
        // HunYuan's fixed alpha: one base, theta * alpha^(d / (d - 2)), at every length.
        p.rule = c.alpha                                   ? "NTK alpha " + format_number(*c.alpha)
                 : out.context > c.max_position_embeddings ? "NTK-grown base"
                                                           : "base unchanged";
        break;
      default:
        break;
    }
    out.pairs.push_back(p);
  }
  return out;
}

nlohmann::json to_json(const Inspection& in) {
  const RopeConfig& c = in.loaded.config;
  nlohmann::json j;
  j["model"] = in.loaded.label;
  j["source"] = in.loaded.source;
  j["rope_type"] = std::string(to_string(c.rope_type));
  j["rope_theta"] = c.rope_theta;
  j["head_dim"] = c.head_dim;
  j["rotary_dim"] = c.resolved_rotary_dim();
  j["layout"] = std::string(to_string(c.layout));
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["original_max_position_embeddings"] = c.resolved_original_max_position_embeddings();
  if (c.factor) j["factor"] = *c.factor;
  if (c.alpha) j["alpha"] = *c.alpha;
  if (c.short_mscale) j["short_mscale"] = *c.short_mscale;
  if (c.long_mscale) j["long_mscale"] = *c.long_mscale;
  j["attention_factor"] = in.attention_factor;
  j["context"] = in.context;
  if (c.rope_type == RopeType::kYarn) {
    const YarnCorrectionRange r = yarn_correction_range(c);
    j["yarn_correction_range"] = {r.low, r.high};
  }
  j["num_axes"] = c.num_axes();
  if (c.num_axes() > 1) {
    j["mrope_section"] = c.resolved_mrope_section();
    if (c.rope_type == RopeType::kAxial) {
      j["axial_frequencies"] = std::string(to_string(c.axial_frequencies));
      j["axial_columns_first"] = c.axial_columns_first;
    } else {
      j["mrope_order"] = std::string(to_string(c.mrope_order));
    }
  }
  nlohmann::json pairs = nlohmann::json::array();
  for (const PairReport& p : in.pairs) {
    pairs.push_back(
        {{"index", p.index},
         {"theta", p.theta},
         {"theta_unscaled", p.theta_unscaled},
         {"wavelength", std::isfinite(p.wavelength) ? nlohmann::json(p.wavelength) : nullptr},
         {"wavelength_unscaled", p.wavelength_unscaled},
         {"scale", p.scale},
         {"turns_in_context", p.turns_in_context},
         {"rule", p.rule},
         {"axis", p.axis},
         {"regime", p.regime}});
  }
  j["pairs"] = pairs;
  return j;
}

void print_inspection(const Inspection& in) {
  const RopeConfig& c = in.loaded.config;
  std::printf("%s\n  source             %s\n", in.loaded.label.c_str(), in.loaded.source.c_str());
  std::printf("  rope_type          %s\n", std::string(to_string(c.rope_type)).c_str());
  std::printf("  rope_theta         %g\n", c.rope_theta);
  std::printf("  head_dim           %lld, rotary_dim %lld, %s\n",
              static_cast<long long>(c.head_dim), static_cast<long long>(c.resolved_rotary_dim()),
              std::string(to_string(c.layout)).c_str());
  if (c.factor) std::printf("  factor             %g\n", *c.factor);
  if (c.rope_type == RopeType::kYarn) {
    const YarnCorrectionRange r = yarn_correction_range(c);
    std::printf("  YaRN ramp          pairs %g .. %g (beta_fast %g, beta_slow %g%s)\n", r.low,
                r.high, c.beta_fast.value_or(32), c.beta_slow.value_or(1),
                c.truncate.value_or(true) ? "" : ", not truncated");
  }
  if (c.rope_type == RopeType::kLlama3) {
    std::printf("  Llama 3 bands      low_freq_factor %g, high_freq_factor %g\n",
                *c.low_freq_factor, *c.high_freq_factor);
  }
  if (c.num_axes() > 1) {
    const std::vector<int64_t> sections = c.resolved_mrope_section();
    std::string text;
    for (std::size_t a = 0; a < sections.size(); ++a) {
      text +=
          (a ? ", " : "") + axis_name(c, static_cast<int>(a)) + " " + std::to_string(sections[a]);
    }
    std::printf("  position axes      %d: pairs per axis %s (%s)\n", c.num_axes(), text.c_str(),
                axis_order(c).c_str());
    if (c.rope_type == RopeType::kAxial) {
      std::printf("  axial frequencies  %s\n", std::string(to_string(c.axial_frequencies)).c_str());
    }
  }
  std::printf("  context            %lld (original %lld, max_position_embeddings %lld)\n",
              static_cast<long long>(in.context),
              static_cast<long long>(c.resolved_original_max_position_embeddings()),
              static_cast<long long>(c.max_position_embeddings));
  if (c.short_mscale) {
    const bool past = in.context > c.resolved_original_max_position_embeddings();
    std::printf(
        "  attention factor   %.7f (%s, PhiMoE: long_mscale past the original context, "
        "else short_mscale; short_factor at every length)\n\n",
        in.attention_factor, past ? "long_mscale" : "short_mscale");
  } else {
    std::printf("  attention factor   %.7f\n\n", in.attention_factor);
  }
  const bool axes = c.num_axes() > 1;
  std::printf(
      "  pair  %stheta          theta unscaled  wavelength   scale      turns in ctx  rule         "
      "           regime\n",
      axes ? "axis      " : "");
  for (const PairReport& p : in.pairs) {
    const std::string axis = axes ? axis_name(c, p.axis) : std::string();
    std::printf("  %4lld  %-*s%-13.6e  %-14.6e  %-11.5g  %-9.5f  %-12.4g  %-22s  %s\n",
                static_cast<long long>(p.index), axes ? 10 : 0, axis.c_str(), p.theta,
                p.theta_unscaled, p.wavelength, p.scale, p.turns_in_context, p.rule.c_str(),
                p.regime.c_str());
  }
}

}  // namespace rotary::tools
