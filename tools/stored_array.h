// An array as a table file holds it (npy or safetensors): element type, shape and bytes. The
// readers of both formats (npy.h, safetensors.h) return these, and their writers take the same
// element types, so that each format only says how it names and places them.
//
// Both formats store little-endian data; the tool assumes a little-endian host rather than
// swapping bytes.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rotary/verify.h"

namespace rotary::tools {

static_assert(std::endian::native == std::endian::little,
              "the table formats are read and written on little-endian hosts only");

// The library's storage types (float64, float32, float16, bfloat16), named by verify::to_string.
using StorageType = verify::Storage;

// One element: a real value, or a complex one stored as (real, imaginary) components.
struct ElementType {
  StorageType storage = StorageType::kFloat32;
  int bytes = 4;  // of one real component; 0 for a type the tool does not read
  bool complex = false;

  bool readable() const { return bytes != 0; }
  int element_bytes() const { return bytes * (complex ? 2 : 1); }
};

// The element type of `storage`, real.
ElementType real_type(StorageType storage);

// "(2, 16, 64)"; "(16,)" for one dimension, as NumPy writes shapes.
std::string shape_text(const std::vector<int64_t>& shape);

// The bytes of an array of `shape` with elements of `element_bytes`, or nothing when a dimension is
// negative or the product overflows (a hostile header; real ones are far from it).
std::optional<uint64_t> array_bytes(const std::vector<int64_t>& shape, int element_bytes);

struct StoredArray {
  std::string name;  // a safetensors tensor's name (with its dtype when unreadable); npy: ""
  ElementType type;
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;  // inside the file's bytes, which outlive the array

  // The product of the shape; a reader has checked that its bytes lie inside the file.
  int64_t elements() const;
  // Component `component` (0 real, 1 imaginary) of element `index`, exactly as stored.
  double at(int64_t index, int component = 0) const;
};

}  // namespace rotary::tools
