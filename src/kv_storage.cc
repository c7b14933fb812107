#include "kv_storage.h"

#include <string>
#include <tuple>

#include "rotary/error.h"
#include "sizes.h"
#include "validate.h"

namespace rotary::detail {
namespace {

void require_positive(int64_t value, const char* name) {
  if (value <= 0) invalid(name, "expected a positive size, got " + std::to_string(value));
}

// A pool of one block is a contiguous cache, whose one size its factory calls capacity.
const char* block_size_name(const KvStorageShape& shape) {
  return shape.num_blocks == 1 ? "capacity" : "block_size";
}

// The keys and values a cache of `shape` holds, in the words of its size errors.
SizeRequest kv_request(const KvStorageShape& shape) {
  const std::size_t element = dtype_size(shape.dtype);
  std::string amount = shape.num_blocks == 1 ? "" : std::to_string(shape.num_blocks) + " blocks x ";
  amount += std::to_string(shape.block_size) + " tokens x " + std::to_string(shape.num_kv_heads) +
            " heads x " + std::to_string(shape.head_dim) + " channels";
  const double bytes = 2.0 * static_cast<double>(shape.num_blocks) *
                       static_cast<double>(shape.block_size) *
                       static_cast<double>(shape.num_kv_heads) *
                       static_cast<double>(shape.head_dim) * static_cast<double>(element);
  return {shape.num_blocks == 1 ? "capacity" : "num_blocks", amount, bytes,
          "keys and values (" + std::string(to_string(shape.dtype)) + ", " +
              std::to_string(element) + " bytes each)"};
}

}  // namespace

std::size_t check_kv_shape(const KvStorageShape& shape) {
  const char* block_size = block_size_name(shape);
  require_positive(shape.num_blocks, "num_blocks");
  require_positive(shape.block_size, block_size);
  require_positive(shape.num_kv_heads, "num_kv_heads");
  require_positive(shape.head_dim, "head_dim");
  SizeRequest request = kv_request(shape);
  const std::string total = request.argument;
  for (auto [value, name, limit] :
       {std::tuple{shape.num_blocks, "num_blocks",
                   CountLimit{kMaxKvBlocks, "blocks", "rotary::kMaxKvBlocks"}},
        std::tuple{shape.block_size, block_size,
                   CountLimit{kMaxKvBlockSize, "tokens per block", "rotary::kMaxKvBlockSize"}},
        std::tuple{shape.num_kv_heads, "num_kv_heads",
                   CountLimit{kMaxKvHeads, "heads", "rotary::kMaxKvHeads"}},
        std::tuple{shape.head_dim, "head_dim",
                   CountLimit{kMaxKvHeadDim, "channels", "rotary::kMaxKvHeadDim"}}}) {
    request.argument = name;
    check_count(request, value, limit);
  }
  request.argument = total;
  check_bytes(request);
  return static_cast<std::size_t>(request.bytes / 2);
}

void check_kv_capacity(int64_t capacity) { require_positive(capacity, "capacity"); }

void allocate_kv(const KvStorageShape& shape, std::vector<unsigned char>& keys,
                 std::vector<unsigned char>& values) {
  const std::size_t bytes = check_kv_shape(shape);
  allocate_or_throw(kv_request(shape), [&] {
    keys.resize(bytes);
    values.resize(bytes);
  });
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
