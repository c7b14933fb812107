// config.json -> RopeConfig, following transformers' standardisation of rope parameters.
#include "rotary/config_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "json_read.h"
#include "rotary/error.h"

namespace rotary {
namespace {

using Json = nlohmann::json;

[[noreturn]] void type_error(const std::string& field, const std::string& expected,
                             const Json& got) {
  throw Error(ErrorCode::kParseError, field,
              "expected " + expected + ", got " + std::string(got.type_name()) + " " +
                  got.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// Reads obj[key] when present and not null.
const Json* find(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number(const Json& obj, const char* key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(path + key, "a number", *v);
  return v->get<double>();
}

std::optional<int64_t> integer(const Json& obj, const char* key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return std::nullopt;
  // JSON writers sometimes emit 8192.0 for an integer field; accept integral values.
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
      return static_cast<int64_t>(d);
  }
  type_error(path + key, "an integer", *v);
}

std::optional<bool> boolean(const Json& obj, const char* key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) type_error(path + key, "true or false", *v);
  return v->get<bool>();
}

std::vector<double> number_list(const Json& obj, const char* key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return {};
  if (!v->is_array()) type_error(path + key, "a list of numbers", *v);
  std::vector<double> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_number())
      type_error(path + key + "[" + std::to_string(i) + "]", "a number", (*v)[i]);
    out.push_back((*v)[i].get<double>());
  }
  return out;
}

// Multimodal configs keep the language model's fields in text_config.
const Json& text_root(const Json& root) {
  const Json* text = find(root, "text_config");
  const bool has_own = find(root, "hidden_size") || find(root, "head_dim") || find(root, "n_embd");
  return (text && text->is_object() && !has_own) ? *text : root;
}

// The rope dictionary: rope_parameters (v5) or rope_scaling (v4), possibly nested per layer type.
const Json* rope_dict(const Json& root) {
  if (const Json* p = find(root, "rope_parameters")) return p;
  return find(root, "rope_scaling");
}

bool is_nested(const Json& dict) {
  if (!dict.is_object() || dict.empty()) return false;
  for (const auto& [key, value] : dict.items()) {
    if (!value.is_object()) return false;
  }
  return true;
}

// The model family, from the text config or the outer one.
std::string model_type_of(const Json& whole, const Json& root) {
  const Json* v = find(root, "model_type");
  if (!v) v = find(whole, "model_type");
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

// OLMo 3 (v4 form): transformers applies `rope_scaling` to the full-attention layers only; the
// sliding-window layers keep the default RoPE with the same base.
bool scales_full_attention_only(const Json& root, const std::string& model_type) {
  const Json* scaling = find(root, "rope_scaling");
  return model_type == "olmo3" && !find(root, "rope_parameters") && scaling &&
         scaling->is_object() && !scaling->empty() && !is_nested(*scaling);
}

std::vector<int64_t> integer_list(const Json& obj, const char* key, const std::string& path) {
  std::vector<int64_t> out;
  const std::vector<double> numbers = number_list(obj, key, path);
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (numbers[i] != std::floor(numbers[i]) || std::fabs(numbers[i]) > 1e9) {
      type_error(path + key + "[" + std::to_string(i) + "]", "an integer", (*find(obj, key))[i]);
    }
    out.push_back(static_cast<int64_t>(numbers[i]));
  }
  return out;
}

// Multi-axis RoPE. Which pairs an axis owns is decided by the model class in transformers, not by
// the config: Qwen2-VL's family splits the pairs into consecutive sections, Qwen3-VL's interleaves
// them whatever mrope_interleaved says. Families known to permute the axes otherwise are refused
// rather than read wrongly.
void read_mrope(const Json& dict, const std::string& path, const std::string& model_type,
                RopeConfig& c) {
  c.mrope_section = integer_list(dict, "mrope_section", path);
  if (c.mrope_section.empty()) return;
  const auto family = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names) {
      if (model_type == name || model_type == std::string(name) + "_text") return true;
    }
    return false;
  };
  if (family({"ernie4_5_vl_moe", "glm_image", "hunyuan_vl", "hy_v4_vl"})) {
    throw Error(ErrorCode::kInvalidConfig, path + "mrope_section",
                "the '" + model_type +
                    "' family assigns position axes to pairs in its own order, "
                    "which rotary does not model");
  }
  if (family({"qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "qwen3_omni_moe"})) {
    c.mrope_interleaved = true;
  } else if (family({"qwen2_vl", "qwen2_5_vl", "qwen2_5_omni", "glm4v", "glm4v_moe"})) {
    c.mrope_interleaved = false;
  } else {
    c.mrope_interleaved = boolean(dict, "mrope_interleaved", path).value_or(false);
  }
}

// Bounded in depth and size (json_read.h); errors carry no argument, callers reading a file prefix
// its path.
Json parse(std::string_view text) { return detail::parse_json(text, ""); }

RopeConfig from_json(const Json& whole, std::string_view layer_type) {
  if (!whole.is_object()) type_error("(root)", "a JSON object", whole);
  const Json& root = text_root(whole);
  const std::string model_type = model_type_of(whole, root);

  // Qwen-1 (remote code) scales its base by its own per-call rule; reading only its other fields
  // would silently give plain RoPE, so refuse it by name.
  if (const Json* ntk = find(root, "use_dynamic_ntk");
      ntk && ntk->is_boolean() && ntk->get<bool>()) {
    throw Error(
        ErrorCode::kInvalidConfig, "use_dynamic_ntk",
        "Qwen-1's remote-code dynamic NTK is not a transformers rope_type and is not "
        "supported; use rope_scaling {\"type\": \"dynamic\"} for transformers' dynamic NTK");
  }

  RopeConfig c;
  // head_dim: explicit (non-null), else hidden_size / num_attention_heads (GPT-J: n_embd / n_head).
  if (auto qk_rope = integer(root, "qk_rope_head_dim", "")) {
    c.head_dim = *qk_rope;  // DeepSeek: only the rope slice of each head rotates
  } else if (auto head_dim = integer(root, "head_dim", "")) {
    c.head_dim = *head_dim;
  } else {
    auto hidden = integer(root, "hidden_size", "");
    auto heads = integer(root, "num_attention_heads", "");
    if (!hidden) hidden = integer(root, "n_embd", "");
    if (!heads) heads = integer(root, "n_head", "");
    if (!hidden || !heads) {
      throw Error(ErrorCode::kInvalidConfig, "head_dim",
                  "missing: give head_dim, or hidden_size and num_attention_heads");
    }
    if (*heads <= 0) throw Error(ErrorCode::kInvalidConfig, "num_attention_heads", "expected > 0");
    c.head_dim = *hidden / *heads;
  }
  c.max_position_embeddings = integer(root, "max_position_embeddings", "")
                                  .value_or(integer(root, "n_positions", "").value_or(0));

  // Base and rotated fraction at the top level (v4) or GPT-NeoX's names; rope dict values win.
  c.rope_theta = number(root, "rope_theta", "")
                     .value_or(number(root, "rotary_emb_base", "").value_or(10000.0));
  if (auto f = number(root, "partial_rotary_factor", ""))
    c.partial_rotary_factor = *f;
  else if (auto pct = number(root, "rotary_pct", ""))
    c.partial_rotary_factor = *pct;
  if (auto rd = integer(root, "rotary_dim", "")) c.rotary_dim = *rd;  // GPT-J
  if (model_type == "gptj" || model_type == "gpt_j") c.layout = Layout::kInterleaved;
  // DeepSeek V2/V3 rotate interleaved pairs; their config.json files do not say so (transformers'
  // DeepseekV3Config defaults rope_interleave to true, V2 multiplies complex pairs).
  if (model_type == "deepseek_v2" || model_type == "deepseek_v3") c.layout = Layout::kInterleaved;
  if (auto interleave = boolean(root, "rope_interleave", "")) {
    c.layout = *interleave ? Layout::kInterleaved : Layout::kHalfSplit;
  }
  const std::optional<int64_t> top_original = integer(root, "original_max_position_embeddings", "");

  const Json* dict = rope_dict(root);
  std::string path = find(root, "rope_parameters") ? "rope_parameters." : "rope_scaling.";
  const double local_base = number(root, "rope_local_base_freq", "").value_or(0);
  if (dict && !dict->is_object())
    type_error(path.substr(0, path.size() - 1), "an object or null", *dict);

  std::vector<std::string> layer_types;
  if (dict && is_nested(*dict)) {
    for (const auto& [key, value] : dict->items()) layer_types.push_back(key);
  } else if (local_base > 0 || scales_full_attention_only(root, model_type)) {
    layer_types = {"full_attention", "sliding_attention"};
  }
  if (!layer_types.empty()) {
    std::string names;
    for (const auto& t : layer_types) names += (names.empty() ? "" : ", ") + t;
    if (layer_type.empty()) {
      throw Error(ErrorCode::kInvalidConfig, "layer_type",
                  "this config has a RoPE per layer type; choose one of: " + names);
    }
    if (std::find(layer_types.begin(), layer_types.end(), layer_type) == layer_types.end()) {
      throw Error(ErrorCode::kInvalidConfig, "layer_type",
                  "'" + std::string(layer_type) + "' is not one of: " + names);
    }
    if (dict && is_nested(*dict)) {
      path += std::string(layer_type) + ".";
      dict = &(*dict)[std::string(layer_type)];
    } else if (layer_type == "sliding_attention") {
      // Gemma 3 (v4 form): local layers use rope_local_base_freq and no scaling; OLMo 3: the
      // same base, no scaling.
      if (local_base > 0) c.rope_theta = local_base;
      dict = nullptr;
    }
  }

  if (dict) {
    const Json* type = find(*dict, "rope_type");
    if (!type) type = find(*dict, "type");
    if (type) {
      if (!type->is_string()) type_error(path + "rope_type", "a string", *type);
      const std::string name = type->get<std::string>();
      // Qwen2-VL's "mrope" is default RoPE applied per position axis.
      c.rope_type = name == "mrope" ? RopeType::kDefault : parse_rope_type(name);
    }
    if (auto theta = number(*dict, "rope_theta", path)) c.rope_theta = *theta;
    if (auto f = number(*dict, "partial_rotary_factor", path)) c.partial_rotary_factor = *f;
    c.factor = number(*dict, "factor", path);
    c.original_max_position_embeddings = integer(*dict, "original_max_position_embeddings", path);
    c.attention_factor = number(*dict, "attention_factor", path);
    c.beta_fast = number(*dict, "beta_fast", path);
    c.beta_slow = number(*dict, "beta_slow", path);
    c.mscale = number(*dict, "mscale", path);
    c.mscale_all_dim = number(*dict, "mscale_all_dim", path);
    c.truncate = boolean(*dict, "truncate", path);
    c.short_factor = number_list(*dict, "short_factor", path);
    c.long_factor = number_list(*dict, "long_factor", path);
    c.low_freq_factor = number(*dict, "low_freq_factor", path);
    c.high_freq_factor = number(*dict, "high_freq_factor", path);
    read_mrope(*dict, path, model_type, c);
  }
  // A top-level original_max_position_embeddings (Phi-3) takes priority, as in transformers.
  if (top_original && (c.rope_type == RopeType::kYarn || c.rope_type == RopeType::kLongRope ||
                       c.rope_type == RopeType::kLlama3)) {
    c.original_max_position_embeddings = top_original;
  }
  c.validate();
  return c;
}

}  // namespace

RopeConfig config_from_json(std::string_view json_text, std::string_view layer_type) {
  try {
    return from_json(parse(json_text), layer_type);
  } catch (const Json::exception& e) {
    // Anything the JSON library itself rejects (numbers out of range, ...) is still a parse
    // error of the input, reported through the library's one error type.
    throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
  }
}

RopeConfig config_from_json_file(const std::string& path, std::string_view layer_type) {
  const std::string text = detail::read_json_file(path);
  try {
    return config_from_json(text, layer_type);
  } catch (const Error& e) {
    throw Error(e.code(), path + (e.argument().empty() ? "" : ": " + e.argument()), e.message());
  }
}

namespace {

RopeConfig vision_from_json(const Json& whole) {
  if (!whole.is_object()) type_error("(root)", "a JSON object", whole);
  const Json* vision = find(whole, "vision_config");
  if (!vision) {
    throw Error(ErrorCode::kInvalidConfig, "vision_config",
                "missing: this config has no vision tower");
  }
  if (!vision->is_object()) type_error("vision_config", "an object", *vision);
  const Json& v = *vision;
  // The tower's family: its own model_type, else the outer model's.
  std::string family = model_type_of(whole, v);
  if (family.ends_with("_vision")) family.resize(family.size() - 7);
  RopeConfig c;
  c.rope_type = RopeType::kAxial;
  if (family == "pixtral") {
    c.axial_frequencies = AxialFrequencies::kAlternating;
  } else if (family.starts_with("qwen2_vl") || family.starts_with("qwen2_5_vl") ||
             family.starts_with("qwen3_vl") || family.starts_with("qwen3_5")) {
    c.axial_frequencies = AxialFrequencies::kShared;
  } else {
    throw Error(ErrorCode::kInvalidConfig, "vision_config.model_type",
                "'" + family +
                    "': rotary knows the 2D RoPE of pixtral and the Qwen2-VL, "
                    "Qwen2.5-VL, Qwen3-VL and Qwen3.5 vision towers");
  }
  const std::string path = "vision_config.";
  if (auto head_dim = integer(v, "head_dim", path)) {
    c.head_dim = *head_dim;
  } else {
    // Qwen2-VL's tower is embed_dim wide (its hidden_size is the merger's output).
    auto width = integer(v, "embed_dim", path);
    if (!width) width = integer(v, "hidden_size", path);
    auto heads = integer(v, "num_heads", path);
    if (!heads) heads = integer(v, "num_attention_heads", path);
    if (!width || !heads || *heads <= 0) {
      throw Error(ErrorCode::kInvalidConfig, path + "head_dim",
                  "missing: give head_dim, or hidden_size (embed_dim) and num_heads");
    }
    c.head_dim = *width / *heads;
  }
  c.rope_theta = number(v, "rope_theta", path).value_or(10000.0);
  if (const Json* params = find(v, "rope_parameters")) {
    if (auto theta = number(*params, "rope_theta", path + "rope_parameters."))
      c.rope_theta = *theta;
  }
  c.validate();
  return c;
}

}  // namespace

RopeConfig vision_config_from_json(std::string_view json_text) try {
  return vision_from_json(parse(json_text));
} catch (const Json::exception& e) {
  throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
}

std::vector<std::string> rope_layer_types(std::string_view json_text) try {
  const Json whole = parse(json_text);
  const Json& root = text_root(whole);
  std::vector<std::string> types;
  if (const Json* dict = rope_dict(root); dict && is_nested(*dict)) {
    for (const auto& [key, value] : dict->items()) types.push_back(key);
  } else if (number(root, "rope_local_base_freq", "").value_or(0) > 0 ||
             scales_full_attention_only(root, model_type_of(whole, root))) {
    types = {"full_attention", "sliding_attention"};
  }
  return types;
} catch (const Json::exception& e) {
  throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
}

}  // namespace rotary
