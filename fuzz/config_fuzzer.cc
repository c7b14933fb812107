// Fuzzes the config.json readers (the RoPE, the vision tower's, the per-layer plan): any byte
// string yields either a valid configuration (whose frequencies are then computed and must be
// finite) or rotary::Error. Anything else (a crash, a
// sanitizer report, another exception type escaping) is a bug. The corpus's deep-* seeds nest far
// past the reader's depth limit (src/json_read.h); they must end in rotary::Error, not a stack
// overflow, and scripts/sanitize.sh raises -max_len so that they are read whole.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/layers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const std::string& layer : [&] {
           std::vector<std::string> types = rotary::rope_layer_types(text);
           if (types.empty()) types.emplace_back();
           return types;
         }()) {
      const rotary::RopeConfig config = rotary::config_from_json(text, layer);
      // Keep the work per input bounded: huge head_dims are valid but slow, not interesting.
      if (config.head_dim > (1 << 16)) continue;
      const rotary::Frequencies f = rotary::compute_frequencies(config);
      if (static_cast<int64_t>(f.inv_freq.size()) * 2 != f.rotary_dim) std::abort();
      if (!std::isfinite(f.attention_factor)) std::abort();
    }
  } catch (const rotary::Error&) {
    // A clear error is a correct outcome.
  }
  try {
    const rotary::RopeConfig vision = rotary::vision_config_from_json(text);
    if (vision.head_dim <= (1 << 16) &&
        rotary::compute_frequencies(vision).inv_freq.size() * 2 !=
            static_cast<std::size_t>(vision.resolved_rotary_dim())) {
      std::abort();
    }
  } catch (const rotary::Error&) {
  }
  try {
    // Per-layer reading: one entry per layer, and a layer that rotates has a valid RoPE.
    for (const rotary::LayerRope& layer : rotary::layer_ropes(text)) {
      if (layer.rope) layer.rope->validate();
    }
  } catch (const rotary::Error&) {
  }
  return 0;
}
