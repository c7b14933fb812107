// Reading the metadata of a llama.cpp GGUF file: its key/value pairs and the RoPE tensors.
//
// GGUF (version 2 or 3, little-endian) is a header, a list of typed key/value pairs, a list of
// tensor descriptions and the tensor data. rotary reads what describes the rotation llama.cpp
// applies: every scalar key, the numeric arrays, and the float32 data of the RoPE frequency-factor
// tensors. Everything is checked against the bytes the file holds before it is used or allocated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace rotary {

// One metadata value. GGUF integers of every width become int64_t (a uint64 above INT64_MAX is
// refused by name); float32/float64 become double; arrays of numbers become vectors. Arrays of
// strings and nested arrays are read past but not kept (tokenizer vocabularies).
using GgufValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;

struct GgufMetadata {
  std::string architecture;               // general.architecture
  std::map<std::string, GgufValue> keys;  // every key kept (see above), full names
  // The RoPE tensors present, by GGUF tensor name without ".weight": "rope_freqs",
  // "rope_factors_long", "rope_factors_short"; float32 values (another tensor type is refused by
  // name). A per-layer copy ("blk.N.rope_freqs") is not expected; it is refused by name if seen.
  std::map<std::string, std::vector<float>> rope_tensors;
};

// Reads the header, every key/value and the tensor infos of a GGUF file (version 2 or 3), and the
// data of the RoPE tensors only. Throws rotary::Error (ErrorCode::kParseError, argument "path"
// or the file name) naming the byte offset and what was expected: not GGUF (magic), a version it
// does not know, a truncated file, counts or lengths that cannot fit in the file (checked before
// anything is allocated, so a file claiming 10^10 tensors is refused at once), a value type it
// does not know. Never reads more than the metadata plus those tensors. A file that cannot be
// opened or read: ErrorCode::kIoError naming the path.
GgufMetadata read_gguf(const std::string& path);

}  // namespace rotary
