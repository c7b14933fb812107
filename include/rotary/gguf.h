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
// refused by name); float32/float64 become double (a float32 exactly as stored: 0.1 reads back as
// 0.10000000149011612); a bool byte other than 0 or 1 is refused. Arrays of numbers become vectors
// (bools as 0 and 1 in a std::vector<int64_t>). Arrays of strings, nested arrays, numeric arrays of
// more than 2^20 elements and strings over 16 MiB are read past but not kept (tokenizer
// vocabularies, an embedded tokenizer.json): their keys are absent from `keys`.
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
// data of the RoPE tensors only. Throws rotary::Error (ErrorCode::kParseError, its argument the
// path) naming the byte offset and what was expected: not GGUF (magic), a version it
// does not know, a truncated file, counts or lengths that cannot fit in the file (checked before
// anything is allocated, so a file claiming 10^10 tensors is refused at once), a value type it
// does not know, a key empty, longer than 65535 bytes or given twice, a tensor name of 64 bytes or
// more or given twice (llama.cpp's limits), no string general.architecture, a general.alignment
// that is not a uint32 power of two, a tensor of more than 4 dimensions or more elements than an
// int64 counts. A RoPE tensor must be an F32 vector of at most 2^20 finite values whose data (at
// the data section's start + its offset, a multiple of the alignment) lies inside the file. Never
// reads more than the metadata plus those tensors. A file that cannot be opened or read:
// ErrorCode::kIoError naming the path.
GgufMetadata read_gguf(const std::string& path);

}  // namespace rotary
