// The GGUF keys that gguf_scaling.cc does not read: noted, or refused by name. Private to
// gguf_scaling.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gguf_keys.h"
#include "rotary/config.h"
#include "rotary/gguf.h"

namespace rotary::detail {

// The keys under `<arch>.rope.` gguf_scaling.cc does not read: noted when llama.cpp ignores them
// for this architecture, refused when they change the rotation.
void check_other_rope_keys(const GgufMetadata& metadata, const GgufKeys& keys,
                           std::vector<std::string>& notes);

// Sliding-window layers rotate with their own base, scale and rotated channels in llama.cpp;
// rotary builds one rotation per file, so a difference is refused, and where the file cannot say
// (no freq_base_swa) the assumption is noted. `factor`: the other layers' linear factor.
void check_sliding_window(const GgufKeys& keys, std::string_view arch, const RopeConfig& c,
                          double factor, std::vector<std::string>& notes);

}  // namespace rotary::detail
