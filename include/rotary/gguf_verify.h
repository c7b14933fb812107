// Does a GGUF file rotate as the original checkpoint does? compare_gguf() sets the rotation
// llama.cpp applies to a GGUF model (gguf_rope()) against the config.json the model was trained
// with, pair by pair, and says in words what differs, by how much, what it does to the model and
// what to change.
//
// Both sides are turned into frequencies by rotary itself (compute_frequencies at one context),
// so the comparison is of what each rotates with, not of how each file spells it. The diagnoses
// then name the cause: the pairing (llama.cpp's rope type against the checkpoint's channel
// order), the sizes, the base, the scaling scheme, the cos/sin scale, YaRN's details.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "rotary/config.h"
#include "rotary/gguf_rope.h"
#include "rotary/verify.h"

namespace rotary {

struct GgufComparison {
  // Mismatches first, then warnings, then notes (GgufRope::notes as topic "gguf"). Topics:
  // pairing, head_dim, rotary_dim, rope_theta, scaling, theta, attention_factor, yarn, context,
  // gguf.
  std::vector<verify::Finding> findings;
  bool match() const;  // no kMismatch finding

  // What was compared, for reports: each side's theta per pair (rotary_dim / 2 entries each,
  // rad/position) and cos/sin scale at `context`.
  std::vector<double> theta_gguf, theta_config;
  double attention_gguf = 1, attention_config = 1;
  int64_t context = 0;
};

// `gguf`: gguf_rope() of the file, built for the same context (LongRoPE's factor set depends on
// it). `config`: the original config.json as rotary loads it; its layout is the checkpoint's
// pairing. `context`: the context to compare at, and at which angle errors are stated (0: the
// config's max_position_embeddings, the trained context, else the GGUF's context_length).
// `architecture`: general.architecture, to name the file's keys in full ("llama.rope.freq_base");
// empty: "<arch>.rope.freq_base".
//
// Throws Error(kInvalidArgument, "context") for a negative context, and the config's own
// validation errors (kInvalidConfig, naming the field).
GgufComparison compare_gguf(const GgufRope& gguf, const RopeConfig& config, int64_t context = 0,
                            std::string_view architecture = {});

}  // namespace rotary
