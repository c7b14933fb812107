// NumPy's .npy format: one array after a header that is a Python dict literal
// ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 16, 64), }). Versions 1.0 (16-bit header
// length) and 2.0 / 3.0 (32-bit) are read; the element types are little-endian float16/32/64 and
// complex64/128 (NumPy has no bfloat16).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stored_array.h"

namespace rotary::tools::npy {

// Whether `bytes` start with the magic string of an .npy file.
bool is_npy(std::span<const unsigned char> bytes);

// The header of a C-order array of `type` and `shape`, as NumPy writes it: version 1.0 when the
// dict fits its 16-bit length, else 2.0, padded with spaces so that the data starts at a multiple
// of 64 bytes. Throws rotary::Error(kInvalidArgument) for bfloat16, which .npy cannot name.
std::string header(const ElementType& type, const std::vector<int64_t>& shape);

// The array of the .npy file `bytes`, named `path` in errors; its data points into `bytes`. Throws
// rotary::Error: kParseError for a truncated or malformed header or data shorter than the shape
// needs; kInvalidArgument for Fortran order, big-endian data, or an element type the tool does not
// read.
StoredArray read(const std::string& path, std::span<const unsigned char> bytes);

}  // namespace rotary::tools::npy
