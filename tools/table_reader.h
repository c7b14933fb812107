// Reading cos/sin tables that another engine (or `rotary export`) wrote, for `rotary verify`.
//
// Formats, recognised by their magic bytes:
//   npy:         one array, little-endian, C order, dtype f2/f4/f8 or complex c8/c16:
//                  (2, N, W)  cos then sin stacked (what `rotary export --format npy` writes;
//                             --names sin,cos for the other order);
//                  (N, W)     complex: cos = real part, sin = imaginary part (Meta's freqs_cis);
//                  (N, W, 2)  real and imaginary parts (torch.view_as_real of freqs_cis).
//   safetensors: F64/F32/F16/BF16 tensors chosen by --names:
//                  "A,B"      tensor A is cos, tensor B is sin, each (N, W) or (1, N, W);
//                  "X"        X is (2, N, W) stacked, or (N, 2W) concatenated cos | sin
//                             (vLLM's cos_sin_cache);
//                  (none)     cos/sin (what `rotary export` writes), else cos_cached/sin_cached,
//                             else cos_sin_cache, else the only tensor if it is stacked.
// Row p of the result is position p. W is whatever the producer wrote (one column per pair, or the
// duplicated layouts of transformers and GPT-J); `rotary verify` works out which.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stored_array.h"

namespace rotary::tools {

struct CosSinTable {
  std::string path;
  std::string format;              // "npy" or "safetensors"
  std::string arrangement;         // how cos and sin were found, in words
  std::vector<std::string> names;  // the tensors read (safetensors)
  StorageType storage = StorageType::kFloat32;
  int64_t positions = 0;         // rows
  int64_t width = 0;             // columns per row
  std::vector<double> cos, sin;  // positions x width, row-major, exactly the stored values
};

// `names`: "" (automatic), "cos,sin"-style pair, or one tensor name. Throws rotary::Error naming
// the file and what was expected (kIoError: unreadable; kParseError: malformed; kInvalidArgument:
// readable but not a cos/sin table rotary understands).
CosSinTable read_cos_sin_table(const std::string& path, const std::string& names);

}  // namespace rotary::tools
