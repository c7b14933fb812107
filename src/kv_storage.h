// The storage both KV caches (host KvCache and CudaKvCache) use: keys and values, each
// [num_blocks][block_size][num_kv_heads][head_dim] elements, and the checks of its sizes. One
// definition, so that a cache filled on either backend has the same layout and the same errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rotary/tensor.h"

namespace rotary::detail {

struct KvStorageShape {
  int64_t num_blocks = 0, block_size = 0, num_kv_heads = 0, head_dim = 0;
  DType dtype = DType::kF32;
};

// Checks every size against rotary/limits.h (Error naming "num_blocks", "block_size", ... as the
// public factories call them, with the bytes the cache would take); returns the bytes of one
// tensor (keys or values). A pool of one block is a contiguous cache: its block_size and its total
// are reported as "capacity".
std::size_t check_kv_shape(const KvStorageShape& shape);
// A contiguous cache's capacity (one block of that many tokens) is positive; its limit is
// check_kv_shape's.
void check_kv_capacity(int64_t capacity);
// check_kv_shape, then zeroed host storage for keys and values. A std::bad_alloc becomes an Error
// naming the cache's size argument and its bytes.
void allocate_kv(const KvStorageShape& shape, std::vector<unsigned char>& keys,
                 std::vector<unsigned char>& values);

// Tokens [first, first + count) of `block`, in the storage at `base`. Throws Error naming "block"
// or "first" when they are not all inside one block of the pool. Whether the view may be written
// is the caller's to decide (the caches hand out const views).
TensorView kv_rows(const void* base, const KvStorageShape& shape, int64_t block, int64_t first,
                   int64_t count);

}  // namespace rotary::detail
