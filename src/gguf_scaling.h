// The frequency scaling llama.cpp applies from a GGUF file's rope keys and factor tensors.
// Private to gguf_rope.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gguf_keys.h"
#include "rotary/config.h"
#include "rotary/gguf.h"

namespace rotary::detail {

// Sets c's rope_theta, max_position_embeddings and its scaling (rope type, factors, YaRN's
// fields, the cos/sin scale) as llama.cpp computes them for a context of `context_length`
// positions (default: the file's context_length); checks every `<arch>.rope.*` key, refusing by
// name the ones that change the rotation in a way rotary cannot express, and noting the ones
// llama.cpp ignores. c.head_dim and c.rotary_dim must be set.
void set_scaling(RopeConfig& c, const GgufMetadata& metadata, const GgufKeys& keys,
                 int64_t rotary_dim, std::optional<int64_t> context_length,
                 std::vector<std::string>& notes);

}  // namespace rotary::detail
