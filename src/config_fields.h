// Where a config.json keeps the fields rotary reads: shared by the RoPE reader (config_json.cc)
// and the per-layer reader (layers.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "rotary/config.h"

namespace rotary::detail {

// obj[key] when present and not null.
inline const nlohmann::json* find(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// Multimodal configs keep the language model's fields in text_config.
inline const nlohmann::json& text_root(const nlohmann::json& root) {
  const nlohmann::json* text = find(root, "text_config");
  const bool has_own = find(root, "hidden_size") || find(root, "head_dim") || find(root, "n_embd");
  return (text && text->is_object() && !has_own) ? *text : root;
}

// The language model's model_type, else the whole config's.
inline std::string model_type_of(const nlohmann::json& whole, const nlohmann::json& root) {
  const nlohmann::json* v = find(root, "model_type");
  if (!v) v = find(whole, "model_type");
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

// config_from_json on a document already parsed (and held to the JSON limits): for readers that
// walk the same config for more than its RoPE, so that it is parsed once.
RopeConfig config_from_parsed_json(const nlohmann::json& whole, std::string_view layer_type);
// rope_layer_types, likewise.
std::vector<std::string> rope_layer_types_of_parsed(const nlohmann::json& whole);

}  // namespace rotary::detail
