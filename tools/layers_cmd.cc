#include "layers_cmd.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "config_source.h"
#include "rotary/layers.h"

namespace rotary::tools {
namespace {

std::string describe(const LayerRope& layer) {
  if (!layer.rope) return "none";
  char base[32];
  std::snprintf(base, sizeof base, "%g", layer.rope->rope_theta);
  return std::string(to_string(layer.rope->rope_type)) + ", theta " + base;
}

}  // namespace

int run_layers(const std::string& config_argument, bool json) {
  const ConfigText config = config_text(config_argument);
  const std::vector<LayerRope> layers = read_config(
      config_argument, config, [](const std::string& text) { return layer_ropes(text); });
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const LayerRope& l = layers[i];
      out.push_back({{"layer", i},
                     {"layer_type", l.layer_type},
                     {"rotates", l.rope.has_value()},
                     {"rope_type", l.rope ? nlohmann::json(to_string(l.rope->rope_type)) : nullptr},
                     {"rope_theta", l.rope ? nlohmann::json(l.rope->rope_theta) : nullptr},
                     {"reason", l.reason}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s\n  layer  type                rope                       decided by\n",
              config.label.c_str());
  std::size_t rotating = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerRope& l = layers[i];
    rotating += l.rope.has_value();
    std::printf("  %5zu  %-18s  %-25s  %s\n", i, l.layer_type.empty() ? "-" : l.layer_type.c_str(),
                describe(l).c_str(), l.reason.c_str());
  }
  std::printf("%zu of %zu layers rotate\n", rotating, layers.size());
  return 0;
}

}  // namespace rotary::tools
