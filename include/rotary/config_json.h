// Reading a RopeConfig from a model's config.json.
//
// Accepted forms (transformers v4 and v5):
//   - top-level rope_theta + `rope_scaling` dict ({"type" | "rope_type": ..., factor, ...});
//   - `rope_parameters` dict holding rope_type, rope_theta, partial_rotary_factor and the scaling
//     fields; per-layer-type nesting ({"full_attention": {...}, "sliding_attention": {...}});
//   - head_dim, or hidden_size / num_attention_heads (n_embd / n_head for GPT-J);
//   - GPT-NeoX's rotary_pct / rotary_emb_base, GPT-J's rotary_dim (interleaved, base 10000),
//     Gemma 3's rope_local_base_freq for sliding-attention layers, DeepSeek's qk_rope_head_dim and
//     rope_interleave, Phi-3's top-level original_max_position_embeddings;
//   - multimodal configs with a text_config; Qwen-VL's mrope_section / mrope_interleaved.
// Errors name the field and what was expected (Error, kParseError or kInvalidConfig).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rotary/config.h"

namespace rotary {

// `layer_type` selects one entry of a per-layer-type configuration ("full_attention",
// "sliding_attention"); it must be given when the config has several and is ignored otherwise.
RopeConfig config_from_json(std::string_view json_text, std::string_view layer_type = {});
// Same, reading a file; errors are prefixed with the path.
RopeConfig config_from_json_file(const std::string& path, std::string_view layer_type = {});

// The 2D RoPE of the model's vision tower (`vision_config`): rope_type kAxial with the family's
// frequencies (Pixtral: alternating; Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5: shared), the tower's
// head_dim and rope_theta (default 10000).
RopeConfig vision_config_from_json(std::string_view json_text);

// A config.json text (transformers v5 form, `rope_parameters`) that config_from_json reads back to
// `config`: the same fields, so the same frequencies. Throws Error naming the field for what such
// a text cannot say without the model class that decides it: an axial (vision) config, the
// alternating M-RoPE order, HunYuan's `alpha`, PhiMoE's `short_mscale` / `long_mscale`.
std::string config_to_json(const RopeConfig& config);

// The layer types whose RoPE differs in this config (empty when one RoPE serves all layers).
std::vector<std::string> rope_layer_types(std::string_view json_text);

}  // namespace rotary
