#include "inspect.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>

#include "rotary/frequencies.h"

namespace rotary::tools {

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
  const Frequencies unscaled = compute_frequencies(c.unscaled());
  const std::vector<int> pair_axes = c.pair_axes();
  const std::vector<PairExplanation> explained = explain_pairs(c, out.context);
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
    PairReport p;
    p.index = static_cast<int64_t>(i);
    p.theta_unscaled = unscaled.inv_freq[i];
    p.theta = f.inv_freq[i];
    p.axis = pair_axes[i];
    p.wavelength_unscaled = 2 * std::numbers::pi / p.theta_unscaled;
    p.wavelength = p.theta > 0 ? 2 * std::numbers::pi / p.theta : inf;
    p.scale = p.theta / p.theta_unscaled;
    p.turns_in_context = out.context > 0 ? static_cast<double>(out.context) / p.wavelength : 0;
    p.rule = explained[i].rule;
    p.regime = explained[i].regime;
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
  if (const auto scheme = explain_scheme(c); scheme && !scheme->key.empty()) {
    j[scheme->key] = scheme->values;
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
  if (const auto scheme = explain_scheme(c)) {
    std::printf("  %-19s%s\n", scheme->label.c_str(), scheme->text.c_str());
  }
  if (c.num_axes() > 1) {
    const std::vector<int64_t> sections = c.resolved_mrope_section();
    std::string text;
    for (std::size_t a = 0; a < sections.size(); ++a) {
      text +=
          (a ? ", " : "") + c.axis_name(static_cast<int>(a)) + " " + std::to_string(sections[a]);
    }
    std::printf("  position axes      %d: pairs per axis %s (%s)\n", c.num_axes(), text.c_str(),
                c.pair_axes_in_words().c_str());
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
    const std::string axis = axes ? c.axis_name(p.axis) : std::string();
    std::printf("  %4lld  %-*s%-13.6e  %-14.6e  %-11.5g  %-9.5f  %-12.4g  %-22s  %s\n",
                static_cast<long long>(p.index), axes ? 10 : 0, axis.c_str(), p.theta,
                p.theta_unscaled, p.wavelength, p.scale, p.turns_in_context, p.rule.c_str(),
                p.regime.c_str());
  }
}

}  // namespace rotary::tools
