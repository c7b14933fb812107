// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and data_offsets (relative to the data that follows it) plus an optional
// "__metadata__" of strings, then the tensors' bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "stored_array.h"

namespace rotary::tools::safetensors {

// The format caps its JSON header at 100 MB (100,000,000 bytes).
inline constexpr std::size_t kMaxHeaderBytes = 100'000'000;

// A tensor of a file to be written.
struct TensorSpec {
  std::string name;
  StorageType storage = StorageType::kFloat32;
  std::vector<int64_t> shape;
};

// What precedes the tensors' data in a file, and where each tensor's data starts.
struct Layout {
  std::string header;             // length and JSON, padded with spaces to a multiple of 8 bytes
  std::vector<uint64_t> offsets;  // from the start of the file, one per tensor, in order
};

// The layout of a file holding `tensors` back to back, in order, with `metadata` as
// "__metadata__" (omitted when empty).
Layout layout(const std::vector<TensorSpec>& tensors,
              const std::map<std::string, std::string>& metadata);

// The tensors of the safetensors file `bytes`, named `path` in errors, "__metadata__" left out;
// their data points into `bytes`. A tensor of a dtype the tool does not read (other than
// F64/F32/F16/BF16) is returned unreadable, its dtype in its name, and is an error only where it
// is used. Throws rotary::Error(kParseError) for a truncated file, a header past the format's size
// limit or past the library's JSON limits, not an object, or a tensor whose data_offsets lie
// outside the file or disagree with its shape.
std::vector<StoredArray> read(const std::string& path, std::span<const unsigned char> bytes);

}  // namespace rotary::tools::safetensors
