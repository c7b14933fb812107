#include "kv_storage.h"

#include <string>

#include "rotary/error.h"

namespace rotary::detail {
namespace {

[[noreturn]] void invalid(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

void require_positive(int64_t value, const char* name, int64_t limit) {
  if (value <= 0 || value > limit) {
    invalid(name, "expected 1 .. " + std::to_string(limit) + ", got " + std::to_string(value));
  }
}

}  // namespace

std::size_t check_kv_shape(const KvStorageShape& shape) {
  require_positive(shape.num_blocks, "num_blocks", int64_t{1} << 31);
  require_positive(shape.block_size, "block_size", int64_t{1} << 40);
  require_positive(shape.num_kv_heads, "num_kv_heads", 1 << 16);
  require_positive(shape.head_dim, "head_dim", 1 << 16);
  // Each factor is at most 2^40, so the product in double cannot overflow before the comparison.
  const double bytes = static_cast<double>(shape.num_blocks) *
                       static_cast<double>(shape.block_size) *
                       static_cast<double>(shape.num_kv_heads * shape.head_dim) *
                       static_cast<double>(dtype_size(shape.dtype));
  if (bytes > static_cast<double>(int64_t{1} << 40)) {
    invalid("num_blocks", "a cache of more than 1 TiB per tensor is not allocated");
  }
  return static_cast<std::size_t>(bytes);
}

void check_kv_capacity(int64_t capacity) {
  require_positive(capacity, "capacity", int64_t{1} << 40);
}

TensorView kv_rows(const void* base, const KvStorageShape& shape, int64_t block, int64_t first,
                   int64_t count) {
  if (block < 0 || block >= shape.num_blocks) {
    invalid("block", "expected 0 .. " + std::to_string(shape.num_blocks - 1) + ", got " +
                         std::to_string(block));
  }
  if (first < 0 || count < 0 || first > shape.block_size - count) {
    invalid("first", "tokens [first, first + count) must lie inside one block of " +
                         std::to_string(shape.block_size));
  }
  const int64_t row = shape.num_kv_heads * shape.head_dim;
  const auto offset =
      static_cast<std::size_t>((block * shape.block_size + first) * row) * dtype_size(shape.dtype);
  return {const_cast<char*>(static_cast<const char*>(base)) + offset,
          shape.dtype,
          count,
          shape.num_kv_heads,
          shape.head_dim,
          row,
          shape.head_dim};
}

}  // namespace rotary::detail
