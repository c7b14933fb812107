// Which layers of a model rotate, and by which RoPE. A config.json describes one RoPE (or one per
// layer type), but transformers' model classes decide per layer whether to apply it: Llama 4's and
// SmolLM3's NoPE layers (`no_rope_layers`), Cohere 2's and AFMoE's global layers (only sliding
// layers rotate), EXAONE 4's (global layers rotate only without a sliding window), Granite-SWA's
// `layer_rope_theta` (0: no RoPE, else that layer's base), and models that apply none at all
// (Zamba2 without `use_mem_rope`). The rules live in the family registry (src/families.cc), each
// citing the attention code that decides it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rotary/config.h"

namespace rotary {

struct LayerRope {
  // The layer's type, from the config's layer_types or the pattern its config class derives them
  // from ("sliding_attention", "full_attention", ...); "" where the config states none and the
  // rule needs none.
  std::string layer_type;
  // The RoPE the layer applies to its queries and keys; none for a layer that applies no RoPE.
  std::optional<RopeConfig> rope;
  // What in the config decides it, for a reader: "no_rope_layers[3] is 0".
  std::string reason;
};

// One entry per layer (num_hidden_layers). Throws rotary::Error naming the field when the config
// does not say what the model class needs to decide (a layer_types list of the wrong length, a
// sliding-window pattern its class cannot use), and for families whose per-layer rule rotary does
// not model.
std::vector<LayerRope> layer_ropes(std::string_view json_text);

}  // namespace rotary
