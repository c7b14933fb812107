// The GGUF side of `rotary inspect` and `rotary verify`: a llama.cpp model file in place of a
// config.json (inspect) or of a cos/sin table (verify).
//
// An argument is a GGUF file when its name ends in ".gguf" (any case) or when it names an existing
// file whose first four bytes are the magic "GGUF". The name alone is enough so that a missing or
// damaged "model.gguf" is reported by the GGUF reader (which names the byte offset and what it
// expected) rather than taken for a built-in config's name or a table; the magic alone is enough
// so that a converted model saved under another name is still read as what it is.
//
// `rotary inspect model.gguf` shows what llama.cpp rotates with (rotary/gguf_rope.h): the same
// parameters and per-pair table as for a config.json, and the GGUF's own facts (architecture,
// llama.cpp's rope mode, whether the converter reordered the Q/K rows, the assumptions made).
// `rotary verify model.gguf --config config.json` compares that rotation with the config's
// (rotary/gguf_verify.h) and says what differs; exit 0 on a match, 1 on a mismatch.
#pragma once

#include <cstdint>
#include <string>

namespace rotary::tools {

bool is_gguf_argument(const std::string& argument);

struct GgufInspectRequest {
  std::string path;
  int64_t context = 0;  // --context: llama.cpp's n_ctx (0: the GGUF's context_length)
  bool json = false;
  // The config-only options, refused by name with a GGUF file.
  std::string layer_type;
  bool vision = false;
};

// Prints the inspection and returns the exit status. Throws rotary::Error for bad input.
int run_gguf_inspect(const GgufInspectRequest& request);

struct GgufVerifyRequest {
  std::string path;
  std::string config;      // --config: a config.json path or built-in name
  std::string layer_type;  // --layer-type, for the config
  int64_t context = 0;     // --context: llama.cpp's n_ctx (0: the GGUF's context_length)
  bool json = false;
  // The table-only options, refused by name with a GGUF file.
  std::string names;
  std::string precision;
};

// Prints the report; returns 0 when the GGUF rotates as the config does, 1 when it does not.
// Throws rotary::Error for bad input.
int run_gguf_verify(const GgufVerifyRequest& request);

}  // namespace rotary::tools
