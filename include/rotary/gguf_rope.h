// The rotation llama.cpp applies to a GGUF model, as a rotary configuration.
//
// A GGUF file does not store RoPE as config.json does: llama.cpp decides the pairing from the
// architecture (its "rope type"), reads a handful of `<arch>.rope.*` keys, and divides the
// frequencies by a factor tensor where one is present (Llama 3's rope_freqs, Phi-3's long and
// short factors). gguf_rope() rebuilds that rotation from the metadata read_gguf() returns, onto
// rotary's existing rope types, and says in words what it assumed. What rotary cannot express
// exactly is refused by name, never approximated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rotary/config.h"
#include "rotary/gguf.h"

namespace rotary {

// How llama.cpp pairs the channels for an architecture, and how the converter wrote the heads.
struct GgufRopeMode {
  // llama.cpp's rope type: "norm" (adjacent pairs), "neox" (half-split pairs), "mrope", "imrope"
  // (multi-axis, half-split pairs) or "none" (the architecture applies no RoPE).
  std::string rope_mode;
  // convert_hf_to_gguf reorders the Q/K rows of each head for this architecture (LlamaModel's
  // permute and its kin; GLM-4V's interleaved-to-half-split reorder), so the pairs llama.cpp
  // rotates in rope_mode's layout are the pairs transformers rotates in its own: a NORM GGUF of
  // a Llama pairs what the config's half-split rotation pairs.
  bool qk_rows_permuted = false;
};

// The mode and the row order for metadata.architecture. The conditional architectures (glm4,
// glm4moe, hunyuan_vl, bailingmoe3, dflash) are decided from the metadata as llama.cpp decides
// them. Throws Error(kInvalidConfig, "general.architecture") for an architecture llama.cpp does
// not know.
GgufRopeMode gguf_rope_mode(const GgufMetadata& metadata);

// What llama.cpp rotates with, from a GGUF file's metadata.
struct GgufRope {
  RopeConfig config;  // the same frequencies, pairing and cos/sin scale as llama.cpp's
  std::string rope_mode;
  bool qk_rows_permuted = false;
  std::vector<std::string> notes;  // every assumption made, in words
};

// context_length: the context llama.cpp runs with (n_ctx per sequence); LongRoPE's long or short
// factors are chosen from it as llama.cpp does (llama_model::get_rope_factors). Default: the
// GGUF's `<arch>.context_length`.
//
// Throws Error(kInvalidConfig) naming the key (e.g. "llama.rope.freq_base", "rope_freqs") for an
// unknown architecture, one that applies no RoPE, a missing or malformed key, and every key or
// combination that changes the rotation in a way rotary cannot express yet (sliding-window
// bases, NTK alpha, YaRN with a factor tensor, ...).
GgufRope gguf_rope(const GgufMetadata& metadata, std::optional<int64_t> context_length = {});

}  // namespace rotary
