// config.json -> which layers rotate and by which RoPE (rotary/layers.h), by the family's rule in
// src/families.cc.
#include "rotary/layers.h"

#include <map>
#include <nlohmann/json.hpp>

#include "config_fields.h"
#include "families.h"
#include "json_read.h"
#include "rotary/config_json.h"
#include "rotary/error.h"
#include "validate.h"

namespace rotary {
namespace {

using Json = nlohmann::json;
using detail::find;
using detail::LayerRule;

// Far above any published model (a few hundred layers at most); it bounds what one config makes
// rotary allocate.
constexpr int64_t kMaxLayers = int64_t{1} << 16;

// "[i]" (built in steps: GCC 12 misreads `"[" + std::to_string(i) + "]"` here as an overlap).
std::string index_suffix(int64_t i) {
  std::string s = "[";
  s += std::to_string(i);
  s += ']';
  return s;
}

// The config's text part, its path prefix and its family.
struct Model {
  const Json& root;
  std::string prefix;
  std::string model_type;
  int64_t layers = 0;
};

int64_t positive_integer(const Json& root, const std::string& key, const std::string& prefix,
                         int64_t most) {
  const Json* v = find(root, key.c_str());
  if (!v || !v->is_number_integer() || v->get<int64_t>() <= 0 || v->get<int64_t>() > most) {
    detail::invalid_config(prefix + key, "expected an integer in [1, " + std::to_string(most) +
                                             "]" + (v ? ", got " + v->dump() : ": missing"));
  }
  return v->get<int64_t>();
}

// layer_types, else the pattern the config classes of Gemma 2/3, Cohere 2, EXAONE 4 and AFMoE
// derive them from: with a pattern N, layer i is sliding unless (i + 1) % N == 0. Empty when the
// config states neither.
std::vector<std::string> layer_types_of(const Model& m) {
  std::vector<std::string> types;
  if (const Json* listed = find(m.root, "layer_types")) {
    if (!listed->is_array() || static_cast<int64_t>(listed->size()) != m.layers) {
      detail::invalid_config(m.prefix + "layer_types", "expected a list of num_hidden_layers (" +
                                                           std::to_string(m.layers) + ") strings");
    }
    for (const Json& t : *listed) {
      if (!t.is_string())
        detail::invalid_config(m.prefix + "layer_types", "expected strings, got " + t.dump());
      types.push_back(t.get<std::string>());
    }
    return types;
  }
  for (const char* key : {"sliding_window_pattern", "global_attn_every_n_layers"}) {
    if (!find(m.root, key)) continue;
    const int64_t n = positive_integer(m.root, key, m.prefix, kMaxLayers);
    for (int64_t i = 0; i < m.layers; ++i) {
      types.push_back((i + 1) % n != 0 ? "sliding_attention" : "full_attention");
    }
    return types;
  }
  return types;
}

// 0/1 (or false/true) per layer.
bool listed_flag(const Model& m, const Json& list, const char* key, int64_t layer) {
  if (!list.is_array() || static_cast<int64_t>(list.size()) != m.layers) {
    detail::invalid_config(m.prefix + key, "expected a list of num_hidden_layers (" +
                                               std::to_string(m.layers) + ") entries");
  }
  const Json& v = list[static_cast<std::size_t>(layer)];
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) {
    return v.get<int64_t>() == 1;
  }
  detail::invalid_config(m.prefix + key + index_suffix(layer), "expected 0 or 1, got " + v.dump());
}

// layer_rope_theta[layer]: 0 means no RoPE.
double layer_theta(const Model& m, int64_t layer) {
  const Json* list = find(m.root, "layer_rope_theta");
  if (!list || !list->is_array() || static_cast<int64_t>(list->size()) != m.layers) {
    detail::invalid_config(
        m.prefix + "layer_rope_theta",
        "expected a list of num_hidden_layers (" + std::to_string(m.layers) + ") numbers");
  }
  const Json& v = (*list)[static_cast<std::size_t>(layer)];
  if (!v.is_number() || v.get<double>() < 0) {
    detail::invalid_config(m.prefix + "layer_rope_theta" + index_suffix(layer),
                           "expected a number >= 0 (0: no RoPE), got " + v.dump());
  }
  return v.get<double>();
}

struct Decision {
  Decision(bool rotates_, std::string reason_) : rotates(rotates_), reason(std::move(reason_)) {}
  bool rotates;
  std::string reason;
  std::optional<double> theta;  // a base of the layer's own
};

Decision decide(const Model& m, const detail::LayerTraits& t, int64_t i, const std::string& type) {
  const std::string at = index_suffix(i);
  const bool sliding = type == "sliding_attention";
  const bool window = find(m.root, "sliding_window") != nullptr;
  switch (t.rule) {
    case LayerRule::kEveryLayer:
      return {true, "every layer rotates"};
    case LayerRule::kNoRopeLayers:
      // An empty list means the default, as `no_rope_layers if no_rope_layers else default`.
      if (const Json* list = find(m.root, "no_rope_layers"); list && !list->empty()) {
        return {listed_flag(m, *list, "no_rope_layers", i), "no_rope_layers" + at};
      } else {
        const int64_t n =
            find(m.root, "no_rope_layer_interval")
                ? positive_integer(m.root, "no_rope_layer_interval", m.prefix, kMaxLayers)
                : t.default_interval;
        return {(i + 1) % n != 0,
                "every no_rope_layer_interval-th layer (" + std::to_string(n) + ") is NoPE"};
      }
    case LayerRule::kSlidingLayers:
      return {sliding, "only sliding_attention layers rotate"};
    case LayerRule::kSlidingWindowLayers:
      return {sliding && window, window ? "only sliding_attention layers rotate"
                                        : "no sliding_window: no layer rotates"};
    case LayerRule::kSlidingOrNoWindow:
      return {!window || sliding, window ? "with a sliding_window only sliding layers rotate"
                                         : "no sliding_window: every layer rotates"};
    case LayerRule::kLayerTheta:
    case LayerRule::kLayerThetaSwitch: {
      if (!find(m.root, "layer_rope_theta")) {
        if (t.rule == LayerRule::kLayerTheta) return {true, "no layer_rope_theta: every layer"};
        detail::invalid_config(
            m.prefix + "layer_rope_theta",
            "missing: the '" + m.model_type + "' family's class derives it per layer");
      }
      const double theta = layer_theta(m, i);
      Decision d{theta != 0, "layer_rope_theta" + at};
      if (theta != 0 && t.rule == LayerRule::kLayerTheta) d.theta = theta;
      return d;
    }
    case LayerRule::kMemRope: {
      const Json* flag = find(m.root, "use_mem_rope");
      return {flag && flag->is_boolean() && flag->get<bool>(), "use_mem_rope"};
    }
    case LayerRule::kRopeEmbeddingType: {
      const Json* kind = find(m.root, "position_embedding_type");
      return {kind && kind->is_string() && kind->get<std::string>() == "rope",
              "position_embedding_type"};
    }
    case LayerRule::kFullAttentionWithBase: {
      const Json* dict = find(m.root, "rope_parameters");
      const bool base = !dict || !dict->contains("rope_theta") || !dict->at("rope_theta").is_null();
      return {type == "full_attention" && base, "full_attention layers with a rope_theta"};
    }
    case LayerRule::kNotModelled:
      break;
  }
  detail::invalid_config(m.prefix + "model_type", "rotary does not model which layers of the '" +
                                                      m.model_type +
                                                      "' family rotate: " + std::string(t.source));
}

// A layer type whose rope dict entry is null applies no RoPE (BEAM's and Cohere Compass's
// full-attention layers).
bool null_rope_entry(const Json& root, const std::string& type) {
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const Json* dict = find(root, key);
    if (dict && dict->is_object() && dict->contains(type) && dict->at(type).is_null()) return true;
  }
  return false;
}

std::vector<LayerRope> plan(const Json& whole) {
  const Json& root = detail::text_root(whole);
  Model m{root, &root == &whole ? "" : "text_config.", detail::model_type_of(whole, root)};
  const std::string layers_key(detail::config_key(m.model_type, "num_hidden_layers"));
  m.layers = positive_integer(root, layers_key, m.prefix, kMaxLayers);
  const detail::LayerTraits traits = detail::layer_traits(m.model_type);
  const std::vector<std::string> rope_types = detail::rope_layer_types_of_parsed(whole);
  const std::vector<std::string> types = layer_types_of(m);
  const bool needs_types = !rope_types.empty() || traits.rule == LayerRule::kSlidingLayers ||
                           traits.rule == LayerRule::kSlidingWindowLayers ||
                           traits.rule == LayerRule::kSlidingOrNoWindow ||
                           traits.rule == LayerRule::kFullAttentionWithBase;
  if (needs_types && types.empty()) {
    detail::invalid_config(
        m.prefix + "layer_types",
        "missing: which type each layer is decides its RoPE; give layer_types (or an integer "
        "sliding_window_pattern)");
  }
  // The per-layer bases are this reader's to apply: the model-wide reader refuses them.
  Json without_layer_bases;
  if (find(root, "layer_rope_theta")) {
    without_layer_bases = whole;
    (&root == &whole ? without_layer_bases : without_layer_bases["text_config"])
        .erase("layer_rope_theta");
  }
  const Json& base = without_layer_bases.is_null() ? whole : without_layer_bases;
  std::map<std::string, RopeConfig> by_type;
  std::vector<LayerRope> out;
  for (int64_t i = 0; i < m.layers; ++i) {
    LayerRope layer;
    layer.layer_type = types.empty() ? "" : types[static_cast<std::size_t>(i)];
    if (!rope_types.empty() && null_rope_entry(root, layer.layer_type)) {
      layer.reason = "the rope parameters of " + layer.layer_type + " are null";
      out.push_back(std::move(layer));
      continue;
    }
    const Decision d = decide(m, traits, i, layer.layer_type);
    layer.reason = d.reason;
    if (d.rotates) {
      const std::string key = rope_types.empty() ? "" : layer.layer_type;
      auto it = by_type.find(key);
      if (it == by_type.end())
        it = by_type.emplace(key, detail::config_from_parsed_json(base, key)).first;
      layer.rope = it->second;
      if (d.theta) {
        layer.rope->rope_theta = *d.theta;
        layer.rope->validate();
      }
    }
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace

std::vector<LayerRope> layer_ropes(std::string_view json_text) try {
  const Json whole = detail::parse_json(json_text, "");
  if (!whole.is_object()) detail::invalid_config("(root)", "expected a JSON object");
  return plan(whole);
} catch (const Json::exception& e) {
  // What the JSON library itself rejects (a number past double's range) is a parse error of the
  // input, reported through the library's one error type, as config_from_json does.
  throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
}

}  // namespace rotary
