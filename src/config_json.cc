// config.json -> RopeConfig, following transformers' standardisation of rope parameters.
#include "rotary/config_json.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "config_fields.h"
#include "families.h"
#include "json_read.h"
#include "rotary/error.h"
#include "validate.h"
#include "variants/variant.h"

namespace rotary {
namespace {

using Json = nlohmann::json;
using detail::find;
using detail::model_type_of;
using detail::text_root;

// The strings rotary's Python package writes for a non-finite float, which JSON cannot hold
// (Python's own spellings). A field that wants a number names them as the number they stand for.
bool spells_non_finite(const Json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s == "NaN" || s == "Infinity" || s == "-Infinity";
}

[[noreturn]] void type_error(const std::string& field, const std::string& expected,
                             const Json& got) {
  std::string shown = "null";
  if (spells_non_finite(got)) {
    shown = got.get<std::string>();
  } else if (!got.is_null()) {
    shown = std::string(got.type_name()) + " " +
            got.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  throw Error(ErrorCode::kParseError, field, "expected " + expected + ", got " + shown);
}

// A finite JSON number; otherwise the error names `field`. Parsed JSON holds no NaN or infinity
// (the parser refuses 1e999), so a non-finite one arrives as one of the strings above.
double finite_number(const Json& v, const std::string& field) {
  if (spells_non_finite(v)) type_error(field, "a finite number", v);
  if (!v.is_number()) type_error(field, "a number", v);
  const double d = v.get<double>();
  if (!std::isfinite(d)) type_error(field, "a finite number", v);
  return d;
}

std::optional<double> number(const Json& obj, const char* key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return std::nullopt;
  return finite_number(*v, path + key);
}

// Sizes outside the rope dict are `int` fields of transformers' config classes, which refuse
// 8192.0; inside it nothing is typed and an integral float computes the same, so `in_rope_dict`
// accepts one.
std::optional<int64_t> integer(const Json& obj, const char* key, const std::string& path,
                               bool in_rope_dict = false) {
  const Json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (in_rope_dict && v->is_number_float()) {
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
    out.push_back(finite_number((*v)[i], path + key + "[" + std::to_string(i) + "]"));
  }
  return out;
}

// Python's truth value of a JSON value: null, false, 0, and empty strings and containers are false.
bool truthy(const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.is_null() && !v.empty();
}

// Which key holds the rope dictionary. transformers reads `rope_scaling or rope_parameters`: a
// rope_scaling that Python finds true wins, else rope_parameters (v5) when given.
const char* rope_dict_name(const Json& root) {
  if (const Json* scaling = find(root, "rope_scaling"); scaling && truthy(*scaling)) {
    return "rope_scaling";
  }
  return find(root, "rope_parameters") ? "rope_parameters" : "rope_scaling";
}

// The rope dictionary, possibly nested per layer type.
const Json* rope_dict(const Json& root) { return find(root, rope_dict_name(root)); }

// transformers' RoPE parameters (its RopeParameters), and `type`, the older name of rope_type.
constexpr std::string_view kRopeKeys[] = {"rope_type",        "type",
                                          "rope_theta",       "partial_rotary_factor",
                                          "factor",           "original_max_position_embeddings",
                                          "attention_factor", "beta_fast",
                                          "beta_slow",        "mscale",
                                          "mscale_all_dim",   "truncate",
                                          "short_factor",     "long_factor",
                                          "low_freq_factor",  "high_freq_factor",
                                          "mrope_section",    "mrope_interleaved"};
// Keys models keep in the rope dict that leave the rotation alone, read past: Ministral 3's
// llama_4_scaling_beta (it scales the queries after RoPE) and its copy of max_position_embeddings
// (nothing reads it there), Qwen3-Omni's `interleaved` (its model class fixes the pairing).
constexpr std::string_view kReadPastKeys[] = {"llama_4_scaling_beta", "max_position_embeddings",
                                              "interleaved"};

bool is_rope_key(std::string_view key) {
  const auto in = [key](const auto& keys) {
    return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
  };
  return in(kRopeKeys) || in(kReadPastKeys);
}

// Nested per layer type: every entry a dict, or null for layers without RoPE (as transformers
// skips them), at least one dict, and no key that names a RoPE parameter (transformers nests only
// under the config's layer types).
bool is_nested(const Json& dict) {
  if (!dict.is_object()) return false;
  bool any = false;
  for (const auto& [key, value] : dict.items()) {
    if ((!value.is_object() && !value.is_null()) || is_rope_key(key)) return false;
    any = any || value.is_object();
  }
  return any;
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
// them whatever mrope_interleaved says, ERNIE-4.5-VL's alternates height and width (families.cc);
// other families follow mrope_interleaved. A config without sections gets the class's own.
void read_mrope(const Json& dict, const std::string& path, const std::string& model_type,
                RopeConfig& c) {
  c.mrope_section = integer_list(dict, "mrope_section", path);
  const detail::FamilyTraits* family = detail::family_traits(model_type);
  if (c.mrope_section.empty() && family) {
    c.mrope_section.assign(family->default_mrope_section.begin(),
                           family->default_mrope_section.end());
  }
  if (c.mrope_section.empty()) return;
  if (family && family->mrope_order) {
    c.mrope_order = *family->mrope_order;
  } else {
    c.mrope_order = boolean(dict, "mrope_interleaved", path).value_or(false)
                        ? MropeOrder::kInterleaved
                        : MropeOrder::kChunked;
  }
}

// A 2D (axial) RoPE as the tower's family computes it (src/families.cc): which frequencies, which
// axis takes the first pairs, and the pairing; a tower rotary does not know is refused, as the
// frequencies differ between families that all call their rope_type "axial".
void apply_tower(const std::string& family, const std::string& field, RopeConfig& c) {
  const detail::VisionTraits* tower = detail::vision_traits(family);
  if (!tower) {
    detail::invalid_config(
        field, "'" + family +
                   "': rotary knows the 2D RoPE of Pixtral's tower and of Qwen2-VL's and the "
                   "towers that copy it (rotary families lists them)");
  }
  if (!tower->unsupported.empty()) {
    throw Error(
        ErrorCode::kInvalidConfig, field,
        "the '" + family + "' vision tower is not supported: " + std::string(tower->unsupported));
  }
  c.axial_frequencies = tower->frequencies;
  c.axial_columns_first = tower->columns_first;
  c.layout = tower->layout;
}

// Bounded in depth and size (json_read.h); errors carry no argument, callers reading a file prefix
// its path.
Json parse(std::string_view text) { return detail::parse_json(text, ""); }

// Where each RopeConfig field was read, as a JSON path, so that a validation error names what the
// config says (`text_config.rope_parameters.factor`) rather than the bare field.
struct FieldPaths {
  std::string prefix;  // "" or "text_config."
  std::string dict;    // the rope dict's path and a dot; "" when there is none
  std::map<std::string, std::string, std::less<>> read;  // field -> where it was read
  std::string head_dim_note;  // how head_dim was derived, when the config does not give it

  // Where `field` was read, else where it belongs: the rope dict, except the sizes.
  std::string of(const std::string& field) const {
    if (const auto it = read.find(field); it != read.end()) return it->second;
    const bool sizes =
        field == "head_dim" || field == "rotary_dim" || field == "max_position_embeddings";
    return (sizes || dict.empty() ? prefix : dict) + field;
  }
};

// Qwen-1 (remote code) scales its base by its own per-call rule; reading only its other fields
// would silently give plain RoPE, so refuse it by name.
void refuse_qwen1_dynamic_ntk(const Json& root, const std::string& prefix) {
  if (const Json* ntk = find(root, "use_dynamic_ntk");
      ntk && ntk->is_boolean() && ntk->get<bool>()) {
    throw Error(
        ErrorCode::kInvalidConfig, prefix + "use_dynamic_ntk",
        "Qwen-1's remote-code dynamic NTK is not a transformers rope_type and is not "
        "supported; use rope_scaling {\"type\": \"dynamic\"} for transformers' dynamic NTK");
  }
}

// The key `model_type`'s config class reads for transformers' attribute `field`: DBRX's d_model
// for hidden_size (src/families.cc). The registry's keys are literals, so NUL-terminated.
const char* key_for(const std::string& model_type, const char* field) {
  return detail::config_key(model_type, field).data();
}

// A family whose class derives a renamed value its own way when the key is absent (JetMoE's
// kv_channels defaults to 128): reading the generic fallback instead would be a silent guess.
void require_family_keys(const Json& root, const std::string& model_type, const std::string& p) {
  const detail::FamilyTraits* family = detail::family_traits(model_type);
  if (!family) return;
  for (const detail::KeyAlias& alias : family->aliases) {
    if (alias.required && !find(root, alias.key.data())) {
      detail::invalid_config(p + std::string(alias.key),
                             "missing: the '" + model_type + "' family's config class reads its " +
                                 std::string(alias.field) +
                                 " from this key and derives it otherwise " + "when absent; give " +
                                 std::string(alias.key));
    }
  }
}

// head_dim: DeepSeek's qk_rope_head_dim (only that slice of each head rotates), else head_dim,
// else hidden_size / num_attention_heads (GPT-J: n_embd / n_head), which must divide exactly;
// each under the name the family's config class gives it.
void read_head_dim(const Json& root, const std::string& model_type, RopeConfig& c,
                   FieldPaths& paths) {
  const std::string& p = paths.prefix;
  for (const char* key : {"qk_rope_head_dim", key_for(model_type, "head_dim")}) {
    if (auto value = integer(root, key, p)) {
      c.head_dim = *value;
      paths.read["head_dim"] = p + key;
      return;
    }
  }
  const char* hidden_name = key_for(model_type, "hidden_size");
  const char* heads_name = key_for(model_type, "num_attention_heads");
  const char* hidden_key = find(root, hidden_name) ? hidden_name : "n_embd";
  const char* heads_key = find(root, heads_name) ? heads_name : "n_head";
  const auto hidden = integer(root, hidden_key, p);
  const auto heads = integer(root, heads_key, p);
  if (!hidden || !heads) {
    detail::invalid_config(p + "head_dim", "missing: give head_dim, or " +
                                               std::string(hidden_name) + " and " + heads_name);
  }
  if (*heads <= 0) {
    detail::invalid_config(p + heads_key, "expected > 0, got " + std::to_string(*heads));
  }
  const std::string ratio = std::string(hidden_key) + " / " + heads_key + " = " +
                            std::to_string(*hidden) + " / " + std::to_string(*heads);
  if (*hidden % *heads != 0) {
    detail::invalid_config(p + hidden_key, "expected a multiple of " + std::string(heads_key) +
                                               " when head_dim is not " + "given; " + ratio +
                                               " is not a whole number");
  }
  c.head_dim = *hidden / *heads;
  paths.read["head_dim"] = p + hidden_key;
  paths.head_dim_note = "head_dim is not given and " + ratio + " = " + std::to_string(c.head_dim);
}

// transformers' config classes type these sizes `int` (a null is refused) or take a null base as
// the value itself, which no model can run with; elsewhere a null reads as absent.
void refuse_null(const Json& obj, const char* key, const std::string& path, const char* expected) {
  if (obj.contains(key) && obj.at(key).is_null()) type_error(path + key, expected, nullptr);
}

// The top-level fields rotary reads, typed as transformers' config classes type them: sizes are
// integers even where another field decides head_dim.
void check_top_level_types(const Json& root, const std::string& p) {
  for (const char* key :
       {"hidden_size", "num_attention_heads", "max_position_embeddings", "n_embd", "n_head",
        "n_positions", "qk_rope_head_dim", "rotary_dim", "original_max_position_embeddings"}) {
    refuse_null(root, key, p, "an integer");
  }
  for (const char* key : {"rope_theta", "rotary_emb_base", "rotary_pct"}) {
    refuse_null(root, key, p, "a finite number");
  }
  for (const char* key : {"head_dim", "hidden_size", "num_attention_heads", "n_embd", "n_head"}) {
    integer(root, key, p);
  }
}

// The fields outside the rope dict: sizes, the base and rotated fraction (v4 names, GPT-NeoX's
// rotary_emb_base / rotary_pct), GPT-J's rotary_dim, and the layout. Rope dict values win later.
void read_top_level(const Json& root, const std::string& model_type, RopeConfig& c,
                    FieldPaths& paths) {
  const std::string& p = paths.prefix;
  check_top_level_types(root, p);
  require_family_keys(root, model_type, p);
  read_head_dim(root, model_type, c, paths);
  const auto first = [&](auto read, const char* field, std::initializer_list<const char*> keys) {
    for (const char* key : keys) {
      if (auto value = read(key)) {
        paths.read[field] = p + key;
        return value;
      }
    }
    return decltype(read(""))();
  };
  const auto whole = [&](const char* key) { return integer(root, key, p); };
  const auto real = [&](const char* key) { return number(root, key, p); };
  c.max_position_embeddings = first(whole, "max_position_embeddings",
                                    {key_for(model_type, "max_position_embeddings"),
                                     "max_position_embeddings", "n_positions"})
                                  .value_or(0);
  c.rope_theta = first(real, "rope_theta", {"rope_theta", "rotary_emb_base"}).value_or(10000.0);
  c.partial_rotary_factor =
      first(real, "partial_rotary_factor", {"partial_rotary_factor", "rotary_pct"}).value_or(1.0);
  c.rotary_dim = integer(root, "rotary_dim", p);  // GPT-J
  // What the family's model class decides (src/families.cc): its pairing, or a refusal.
  const detail::FamilyTraits* family = detail::family_traits(model_type);
  if (family && !family->unsupported.empty()) {
    throw Error(
        ErrorCode::kInvalidConfig, p + "model_type",
        "the '" + model_type + "' family is not supported: " + std::string(family->unsupported));
  }
  if (family && family->layout) c.layout = *family->layout;
  const std::optional<bool> interleave = boolean(root, "rope_interleave", p);
  if (interleave && !(family && family->layout_fixed)) {
    c.layout = *interleave ? Layout::kInterleaved : Layout::kHalfSplit;
  }
}

// transformers only logs a key it does not know, but a model's own code may read one and rotate
// differently (HunYuan's dynamic `alpha` changes the base, PhiMoE's `short_mscale` the scale), so
// rotary refuses it rather than compute plain RoPE in its place.
void check_keys(const Json& dict, const std::string& path, const std::string& model_type = "") {
  const detail::FamilyTraits* family = detail::family_traits(model_type);
  for (const auto& [key, value] : dict.items()) {
    if (is_rope_key(key)) continue;
    if (key == "alpha" && family && family->ntk_alpha) continue;
    if ((key == "short_mscale" || key == "long_mscale") && family && family->longrope_mscales) {
      continue;
    }
    detail::invalid_config(
        path + key,
        "not a RoPE parameter of transformers, nor a key known to leave the rotation "
        "alone; a model's own code may read it (PhiMoE's short_mscale scales cos/sin), so "
        "rotary refuses it rather than ignore it");
  }
}

// rope_type, or its older name `type`; rope_type wins when both are given, as in transformers.
RopeType read_rope_type(const Json& dict, const std::string& path) {
  const char* key = dict.contains("rope_type") ? "rope_type"
                    : dict.contains("type")    ? "type"
                                               : nullptr;
  if (!key) return RopeType::kDefault;
  const Json& value = dict.at(key);
  // A null names no type: transformers then finds no RoPE function for the model.
  if (!value.is_string()) type_error(path + key, "a string naming the rope type", value);
  const auto& name = value.get_ref<const std::string&>();
  // Qwen2-VL's "mrope" is default RoPE applied per position axis.
  if (name == "mrope") return RopeType::kDefault;
  try {
    return parse_rope_type(name);
  } catch (const Error& e) {
    throw Error(e.code(), path + key, e.message());
  }
}

// Present is enough, as in transformers; validate() then judges the value (a null YaRN factor is
// derived, as transformers derives it). The keys are the type's unit's (src/variants/).
void require_keys(const Json& dict, const std::string& path, RopeType type) {
  for (std::string_view key : detail::variant_of(type).required_keys) {
    if (!dict.contains(std::string(key))) {
      detail::invalid_config(path + std::string(key),
                             "required for rope_type '" + std::string(to_string(type)) + "'");
    }
  }
}

// PhiMoE's class applies short_mscale / long_mscale to every type but default, and its config
// class requires both there; rotary implements them with longrope (validate() refuses them
// elsewhere).
template <typename Note>
void read_mscales(const Json& dict, const std::string& path, const std::string& model_type,
                  RopeConfig& c, Note note) {
  const detail::FamilyTraits* family = detail::family_traits(model_type);
  if (c.rope_type == RopeType::kDefault || !family || !family->longrope_mscales) return;
  for (auto [key, field] :
       {std::pair{"short_mscale", &c.short_mscale}, std::pair{"long_mscale", &c.long_mscale}}) {
    *field = number(dict, key, path);
    if (!*field) {
      detail::invalid_config(path + key, "required: the '" + model_type +
                                             "' family scales cos/sin by it for rope_type '" +
                                             std::string(to_string(c.rope_type)) + "'");
    }
    note(key);
  }
}

// One rope dict (rope_parameters, rope_scaling, or one layer type's entry) into `c`.
void read_rope_dict(const Json& dict, const std::string& path, const std::string& model_type,
                    RopeConfig& c, FieldPaths& paths) {
  check_keys(dict, path, model_type);
  c.rope_type = read_rope_type(dict, path);
  // Phi-3's config class (and Phi-4-multimodal's) reads an older "yarn" as "longrope", as "su".
  if ((model_type == "phi3" || model_type == "phi4_multimodal") && c.rope_type == RopeType::kYarn) {
    c.rope_type = RopeType::kLongRope;
  }
  paths.dict = path;
  const auto note = [&](const char* field) { paths.read[field] = path + field; };
  // transformers reads a null for these as the value (`get(key, default)` returns it), and then
  // fails or, for truncate, turns truncation off; other null rope keys mean their default there.
  refuse_null(dict, "rope_theta", path, "a finite number");
  refuse_null(dict, "partial_rotary_factor", path, "a finite number");
  refuse_null(dict, "original_max_position_embeddings", path, "an integer");
  refuse_null(dict, "truncate", path, "true or false");
  if (auto theta = number(dict, "rope_theta", path)) {
    c.rope_theta = *theta;
    note("rope_theta");
  }
  if (auto f = number(dict, "partial_rotary_factor", path)) {
    c.partial_rotary_factor = *f;
    note("partial_rotary_factor");
  }
  c.original_max_position_embeddings =
      integer(dict, "original_max_position_embeddings", path, /*in_rope_dict=*/true);
  c.factor = number(dict, "factor", path);
  c.attention_factor = number(dict, "attention_factor", path);
  c.beta_fast = number(dict, "beta_fast", path);
  c.beta_slow = number(dict, "beta_slow", path);
  c.mscale = number(dict, "mscale", path);
  c.mscale_all_dim = number(dict, "mscale_all_dim", path);
  c.truncate = boolean(dict, "truncate", path);
  c.short_factor = number_list(dict, "short_factor", path);
  c.long_factor = number_list(dict, "long_factor", path);
  c.low_freq_factor = number(dict, "low_freq_factor", path);
  c.high_freq_factor = number(dict, "high_freq_factor", path);
  // As HunYuan's class: a zero or absent alpha leaves plain dynamic NTK.
  if (auto alpha = number(dict, "alpha", path);
      alpha && *alpha != 0 && c.rope_type == RopeType::kDynamic) {
    c.alpha = alpha;
    note("alpha");
  }
  read_mscales(dict, path, model_type, c, note);
  require_keys(dict, path, c.rope_type);
  read_mrope(dict, path, model_type, c);
}

// Phi-3's config class (and Phi-4-multimodal's) raises on more than the generic validation:
// rope_type default or longrope, and factor lists, when given, of rotary_dim / 2 numbers.
void check_phi3_family(const Json& dict, const std::string& path, const RopeConfig& c) {
  if (c.rope_type != RopeType::kDefault && c.rope_type != RopeType::kLongRope) {
    throw Error(ErrorCode::kInvalidConfig,
                path + (dict.contains("rope_type") ? "rope_type" : "type"),
                "Phi-3's config class accepts 'default' or 'longrope' ('su' and 'yarn' read as "
                "longrope), got '" +
                    std::string(to_string(c.rope_type)) + "'");
  }
  const auto half = static_cast<std::size_t>(c.resolved_rotary_dim() / 2);
  for (auto [key, values] :
       {std::pair{"short_factor", &c.short_factor}, std::pair{"long_factor", &c.long_factor}}) {
    if (find(dict, key) && values->size() != half) {
      detail::invalid_config(path + key, "expected " + std::to_string(half) +
                                             " entries (rotary_dim / 2), got " +
                                             std::to_string(values->size()));
    }
  }
}

// Validates `c`, naming a bad field by the JSON path it was read from.
void validate_named(const RopeConfig& c, const FieldPaths& paths) {
  try {
    c.validate();
  } catch (const Error& e) {
    // A rotary_dim the config does not give is the head's.
    const std::string field =
        e.argument() == "rotary_dim" && !c.rotary_dim ? "head_dim" : e.argument();
    const bool derived = field == "head_dim" && !paths.head_dim_note.empty();
    throw Error(e.code(), paths.of(field),
                derived ? paths.head_dim_note + ": " + e.message() : e.message());
  }
}

// Everything read from one JSON document that every layer type's RoPE shares.
struct TopLevel {
  RopeConfig config;
  FieldPaths paths;
  std::string model_type;
  std::optional<int64_t> original;  // a top-level original_max_position_embeddings (Phi-3)
};

// The RoPE of one rope dict (none: the top level alone), validated.
RopeConfig build(const TopLevel& top, const Json* dict, const std::string& path) {
  RopeConfig c = top.config;
  FieldPaths paths = top.paths;
  if (dict) {
    read_rope_dict(*dict, path, top.model_type, c, paths);
    // A tower's own config read as a model's (a PixtralVisionConfig on its own).
    if (c.rope_type == RopeType::kAxial)
      apply_tower(top.model_type, paths.prefix + "model_type", c);
  } else {
    read_mrope(Json::object(), path, top.model_type, c);  // the class's own sections
  }
  // A top-level original_max_position_embeddings (Phi-3) takes priority, as in transformers.
  if (top.original && detail::variant_of(c.rope_type).uses_original_context) {
    c.original_max_position_embeddings = top.original;
    paths.read["original_max_position_embeddings"] =
        paths.prefix + "original_max_position_embeddings";
  }
  validate_named(c, paths);
  if (dict && (top.model_type == "phi3" || top.model_type == "phi4_multimodal")) {
    check_phi3_family(*dict, path, c);
  }
  return c;
}

// The layer types whose RoPE differs: a nested dict's keys, or the two of Gemma 3 and OLMo 3 in
// their v4 form.
std::vector<std::string> layer_types_of(const Json& root, const TopLevel& top, const Json* dict) {
  std::vector<std::string> types;
  if (dict && is_nested(*dict)) {
    for (const auto& [key, value] : dict->items()) types.push_back(key);
  } else if (number(root, "rope_local_base_freq", top.paths.prefix).value_or(0) > 0 ||
             scales_full_attention_only(root, top.model_type)) {
    types = {"full_attention", "sliding_attention"};
  }
  return types;
}

void check_layer_choice(const std::vector<std::string>& types, std::string_view layer_type) {
  std::string names;
  for (const auto& t : types) names += (names.empty() ? "" : ", ") + t;
  if (layer_type.empty()) {
    detail::invalid_config("layer_type",
                           "this config has a RoPE per layer type; choose one of: " + names);
  }
  if (std::find(types.begin(), types.end(), layer_type) == types.end()) {
    detail::invalid_config("layer_type",
                           "'" + std::string(layer_type) + "' is not one of: " + names);
  }
}

// One layer type's RoPE. Gemma 3 (v4 form): sliding layers take rope_local_base_freq and no
// scaling; OLMo 3: the same base, no scaling.
RopeConfig build_layer(const Json& root, const TopLevel& top, const Json* dict,
                       const std::string& path, const std::string& type) {
  if (dict && is_nested(*dict)) {
    const Json& entry = dict->at(type);
    if (entry.is_null()) {
      detail::invalid_config(path + type, "null: these layers use no RoPE");
    }
    return build(top, &entry, path + type + ".");
  }
  if (type != "sliding_attention") return build(top, dict, path);
  TopLevel local = top;
  if (auto base = number(root, "rope_local_base_freq", top.paths.prefix); base && *base > 0) {
    local.config.rope_theta = *base;
    local.paths.read["rope_theta"] = top.paths.prefix + "rope_local_base_freq";
  }
  return build(local, nullptr, "");
}

// Granite-SWA's layers rotate by their own bases (layer_rope_theta): one RopeConfig for the whole
// model would be wrong for some of them, so such a config is read layer by layer (layers.h).
void refuse_per_layer_bases(const Json& root, const std::string& model_type,
                            const std::string& prefix, double rope_theta) {
  if (detail::layer_traits(model_type).rule != detail::LayerRule::kLayerTheta) return;
  const Json* bases = find(root, "layer_rope_theta");
  if (!bases || !bases->is_array()) return;
  for (const Json& base : *bases) {
    if (base.is_number() && base.get<double>() != 0 && base.get<double>() != rope_theta) {
      detail::invalid_config(prefix + "layer_rope_theta",
                             "its layers rotate by bases of their own (" + base.dump() +
                                 " is not rope_theta): read it layer by layer with layer_ropes");
    }
  }
}

RopeConfig from_json(const Json& whole, std::string_view layer_type) {
  if (!whole.is_object()) type_error("(root)", "a JSON object", whole);
  const Json& root = text_root(whole);
  TopLevel top;
  top.paths.prefix = &root == &whole ? "" : "text_config.";
  top.model_type = model_type_of(whole, root);
  refuse_qwen1_dynamic_ntk(root, top.paths.prefix);
  read_top_level(root, top.model_type, top.config, top.paths);
  top.original = integer(root, "original_max_position_embeddings", top.paths.prefix);

  const char* name = rope_dict_name(root);
  const Json* dict = find(root, name);
  const std::string path = top.paths.prefix + name + ".";
  if (dict && !dict->is_object()) type_error(top.paths.prefix + name, "an object or null", *dict);
  const std::vector<std::string> types = layer_types_of(root, top, dict);
  if (types.empty()) {
    RopeConfig c = build(top, dict, path);
    refuse_per_layer_bases(root, top.model_type, top.paths.prefix, c.rope_theta);
    return c;
  }
  check_layer_choice(types, layer_type);
  // transformers checks every layer type's RoPE, so rotary does too, and returns the one asked for.
  RopeConfig chosen;
  for (const std::string& type : types) {
    if (type == layer_type) {
      chosen = build_layer(root, top, dict, path, type);
    } else if (!(dict && is_nested(*dict) && dict->at(type).is_null())) {
      build_layer(root, top, dict, path, type);
    }
  }
  return chosen;
}

}  // namespace

RopeConfig detail::config_from_parsed_json(const Json& whole, std::string_view layer_type) {
  return from_json(whole, layer_type);
}

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

// A vision tower's rope_parameters: only its base; the 2D RoPE takes no scaling.
void read_vision_rope_dict(const Json& dict, RopeConfig& c, FieldPaths& paths) {
  const std::string path = paths.prefix + "rope_parameters.";
  if (!dict.is_object()) type_error(path.substr(0, path.size() - 1), "an object or null", dict);
  check_keys(dict, path);
  if (const RopeType type = read_rope_type(dict, path);
      type != RopeType::kDefault && type != RopeType::kAxial) {
    throw Error(ErrorCode::kInvalidConfig,
                path + (dict.contains("rope_type") ? "rope_type" : "type"),
                "expected 'default' or 'axial' for a vision tower's 2D RoPE, got '" +
                    std::string(to_string(type)) + "'");
  }
  if (auto theta = number(dict, "rope_theta", path)) {
    c.rope_theta = *theta;
    paths.read["rope_theta"] = path + "rope_theta";
  }
}

RopeConfig vision_from_json(const Json& whole) {
  if (!whole.is_object()) type_error("(root)", "a JSON object", whole);
  const Json* vision = find(whole, "vision_config");
  if (!vision) {
    detail::invalid_config("vision_config", "missing: this config has no vision tower");
  }
  if (!vision->is_object()) type_error("vision_config", "an object", *vision);
  const Json& v = *vision;
  // The tower's family: its own model_type, else the outer model's (src/families.cc).
  RopeConfig c;
  c.rope_type = RopeType::kAxial;
  apply_tower(model_type_of(whole, v), "vision_config.model_type", c);
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
      detail::invalid_config(path + "head_dim",
                             "missing: give head_dim, or hidden_size (embed_dim) and num_heads");
    }
    c.head_dim = *width / *heads;
  }
  c.rope_theta = number(v, "rope_theta", path).value_or(10000.0);
  FieldPaths paths;
  paths.prefix = path;
  if (const Json* params = find(v, "rope_parameters")) read_vision_rope_dict(*params, c, paths);
  validate_named(c, paths);
  return c;
}

}  // namespace

RopeConfig vision_config_from_json(std::string_view json_text) try {
  return vision_from_json(parse(json_text));
} catch (const Json::exception& e) {
  throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
}

namespace {

// What only a model class can say is refused rather than written as something else.
void require_plain(const RopeConfig& c) {
  const auto refuse = [](const char* field, const char* what) {
    detail::invalid_config(field, std::string(what) +
                                      " cannot be written as a plain config.json: the model "
                                      "class decides it");
  };
  if (c.rope_type == RopeType::kAxial) refuse("rope_type", "an axial (vision tower) config");
  if (c.mrope_order == MropeOrder::kSpatialAlternating && !c.mrope_section.empty()) {
    refuse("mrope_section", "the alternating M-RoPE order (ERNIE-4.5-VL)");
  }
  if (c.alpha) refuse("alpha", "HunYuan's NTK alpha");
  if (c.short_mscale || c.long_mscale) refuse("short_mscale", "PhiMoE's cos/sin scales");
}

// Every rope parameter that is set, under transformers' names.
Json rope_parameters(const RopeConfig& c) {
  Json p = Json::object();
  p["rope_type"] = std::string(to_string(c.rope_type));
  p["rope_theta"] = c.rope_theta;
  if (c.partial_rotary_factor != 1.0) p["partial_rotary_factor"] = c.partial_rotary_factor;
  const auto put = [&p](const char* key, const auto& value) {
    if (value) p[key] = *value;
  };
  put("factor", c.factor);
  put("original_max_position_embeddings", c.original_max_position_embeddings);
  put("attention_factor", c.attention_factor);
  put("beta_fast", c.beta_fast);
  put("beta_slow", c.beta_slow);
  put("mscale", c.mscale);
  put("mscale_all_dim", c.mscale_all_dim);
  put("truncate", c.truncate);
  put("low_freq_factor", c.low_freq_factor);
  put("high_freq_factor", c.high_freq_factor);
  if (!c.short_factor.empty()) p["short_factor"] = c.short_factor;
  if (!c.long_factor.empty()) p["long_factor"] = c.long_factor;
  if (!c.mrope_section.empty()) {
    p["mrope_section"] = c.mrope_section;
    if (c.mrope_order == MropeOrder::kInterleaved) p["mrope_interleaved"] = true;
  }
  return p;
}

}  // namespace

std::string config_to_json(const RopeConfig& config) {
  config.validate();
  require_plain(config);
  Json out = Json::object();
  out["head_dim"] = config.head_dim;
  if (config.rotary_dim) out["rotary_dim"] = *config.rotary_dim;
  if (config.max_position_embeddings > 0) {
    out["max_position_embeddings"] = config.max_position_embeddings;
  }
  if (config.layout == Layout::kInterleaved) out["rope_interleave"] = true;
  out["rope_parameters"] = rope_parameters(config);
  return out.dump();
}

std::vector<std::string> detail::rope_layer_types_of_parsed(const Json& whole) {
  const Json& root = text_root(whole);
  std::vector<std::string> types;
  if (const Json* dict = rope_dict(root); dict && is_nested(*dict)) {
    for (const auto& [key, value] : dict->items()) types.push_back(key);
  } else if (number(root, "rope_local_base_freq", "").value_or(0) > 0 ||
             scales_full_attention_only(root, model_type_of(whole, root))) {
    types = {"full_attention", "sliding_attention"};
  }
  return types;
}

std::vector<std::string> rope_layer_types(std::string_view json_text) try {
  return detail::rope_layer_types_of_parsed(parse(json_text));
} catch (const Json::exception& e) {
  throw Error(ErrorCode::kParseError, "", std::string("invalid JSON value: ") + e.what());
}

}  // namespace rotary
