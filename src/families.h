// What a model family's own code in transformers decides about its RoPE that its config.json does
// not say: the channel pairing its apply function uses, and the schemes rotary does not implement.
//
// One table (src/families.cc), keyed by `model_type`, each entry citing where transformers decides
// it, so that a family's fix is one line and the family sweep (tests/python/test_families.py)
// proves it against the family's own module.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "rotary/config.h"

namespace rotary::detail {

// A vision tower's 2D RoPE as its family's rotary class and apply function compute it.
struct VisionTraits {
  std::string_view model_type;  // the tower's, less a "_vision" / "_vision_encoder" suffix
  AxialFrequencies frequencies = AxialFrequencies::kShared;
  bool columns_first = false;
  Layout layout = Layout::kHalfSplit;
  // Non-empty: a 2D scheme rotary does not implement, refused with this reason.
  std::string_view unsupported;
};

// A key the family's config class reads under another name (its `attribute_map`): DBRX's
// `d_model` is what transformers means by `hidden_size`.
struct KeyAlias {
  std::string_view field;  // transformers' attribute: hidden_size, head_dim, ...
  std::string_view key;    // the family's config.json key: d_model, kv_channels, ...
  // The class derives the value another way when the key is absent (JetMoE's kv_channels defaults
  // to 128, Zamba2's attention_head_dim to 2 * hidden_size / heads): a config without it is
  // refused.
  bool required = false;
};

struct FamilyTraits {
  std::string_view model_type;
  // The pairing the family's apply function uses, when its configs do not state it.
  std::optional<Layout> layout;
  // The apply function is fixed by the model class: a config's `rope_interleave` cannot change it.
  bool layout_fixed = false;
  // Non-empty: the family rotates in a way rotary does not implement; configs are refused with
  // this reason rather than read as something close.
  std::string_view unsupported;
  // The class's M-RoPE order whatever the config says; unset: the config's mrope_interleaved.
  std::optional<MropeOrder> mrope_order;
  // The sections the class uses when the config gives none (`rope_parameters.get("mrope_section",
  // [...])`); empty when the class has no default.
  std::span<const int64_t> default_mrope_section;
  // The config keys the family spells differently, from its config class's attribute_map.
  std::span<const KeyAlias> aliases;
  // HunYuan's classes read `alpha` from a dynamic rope dict (a fixed NTK base).
  bool ntk_alpha = false;
  // PhiMoE's class reads `short_mscale` / `long_mscale` (its LongRoPE cos/sin scales).
  bool longrope_mscales = false;
};

// How a family's attention decides, layer by layer, whether to apply its RoPE (its attention
// class and decoder in transformers; rotary/layers.h).
enum class LayerRule {
  kEveryLayer,           // every attention layer (a layer type whose rope dict is null excepted)
  kNoRopeLayers,         // no_rope_layers[i] (1 rotates), else every no_rope_layer_interval-th not
  kSlidingLayers,        // sliding_attention layers only
  kSlidingWindowLayers,  // sliding_attention layers only, and none without a sliding_window
  kSlidingOrNoWindow,    // every layer without a sliding_window, else the sliding ones only
  kLayerTheta,           // layer_rope_theta[i]: 0 none, else that layer's base
  kLayerThetaSwitch,     // layer_rope_theta[i]: 0 none, else the config's RoPE
  kMemRope,              // every layer when use_mem_rope, else none
  kRopeEmbeddingType,    // every attention layer when position_embedding_type is "rope", else none
  kFullAttentionWithBase,  // full_attention layers, none when rope_theta is null
  kNotModelled,            // a rule rotary does not model: refused
};

struct LayerTraits {
  std::string_view model_type;
  LayerRule rule = LayerRule::kEveryLayer;
  int64_t default_interval = 0;  // kNoRopeLayers: the class's no_rope_layer_interval default
  std::string_view source;       // where transformers decides it, for messages
};

// The per-layer rule of `model_type`'s family; kEveryLayer for a family not listed.
LayerTraits layer_traits(std::string_view model_type);

// The traits of `model_type`, or nullptr for a family with none beyond its config.
const FamilyTraits* family_traits(std::string_view model_type);

// The 2D RoPE of the vision tower of `model_type` (a tower's model_type or its model's), or
// nullptr for a tower rotary does not know.
const VisionTraits* vision_traits(std::string_view model_type);

// The key `model_type`'s configs use for transformers' attribute `field` (`field` itself unless
// the family's config class maps it to another key).
std::string_view config_key(std::string_view model_type, std::string_view field);

}  // namespace rotary::detail
