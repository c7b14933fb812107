// The storage both KV caches (host KvCache and CudaKvCache) use: keys and values, each
// [num_blocks][block_size][num_kv_heads][head_dim] elements, and the checks of its sizes. One
// definition, so that a cache filled on either backend has the same layout and the same errors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rotary/tensor.h"

namespace rotary::detail {

struct KvStorageShape {
  int64_t num_blocks = 0, block_size = 0, num_kv_heads = 0, head_dim = 0;
  DType dtype = DType::kF32;
};

// Checks every size (Error naming "num_blocks", "block_size", ... as the public factories call
// them); returns the bytes of one tensor (keys or values).
std::size_t check_kv_shape(const KvStorageShape& shape);
// A contiguous cache's capacity (one block of that many tokens).
void check_kv_capacity(int64_t capacity);

// Tokens [first, first + count) of `block`, in the storage at `base`. Throws Error naming "block"
// or "first" when they are not all inside one block of the pool. Whether the view may be written
// is the caller's to decide (the caches hand out const views).
TensorView kv_rows(const void* base, const KvStorageShape& shape, int64_t block, int64_t first,
                   int64_t count);

}  // namespace rotary::detail
