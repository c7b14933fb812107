#include "stored_array.h"

#include <cstring>
#include <span>

#include "rotary/float16.h"

namespace rotary::tools {
namespace {

double load(const unsigned char* p, StorageType storage) {
  switch (storage) {
    case StorageType::kFloat64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case StorageType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case StorageType::kFloat16:
    case StorageType::kBFloat16: {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      float v;
      from_16bit(std::span(&bits, 1), storage == StorageType::kFloat16 ? DType::kF16 : DType::kBF16,
                 std::span(&v, 1));
      return v;
    }
  }
  return 0;
}

}  // namespace

ElementType real_type(StorageType storage) {
  const int bytes = storage == StorageType::kFloat64 ? 8 : storage == StorageType::kFloat32 ? 4 : 2;
  return {storage, bytes, false};
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::optional<uint64_t> array_bytes(const std::vector<int64_t>& shape, int element_bytes) {
  uint64_t bytes = static_cast<uint64_t>(element_bytes);
  for (int64_t dimension : shape) {
    if (dimension < 0 || __builtin_mul_overflow(bytes, static_cast<uint64_t>(dimension), &bytes)) {
      return std::nullopt;
    }
  }
  return bytes;
}

int64_t StoredArray::elements() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

double StoredArray::at(int64_t index, int component) const {
  return load(data + index * type.element_bytes() + component * type.bytes, type.storage);
}

}  // namespace rotary::tools
