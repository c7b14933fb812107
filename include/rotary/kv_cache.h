// rotary::KvCache: one attention layer's rotated keys and its values, stored contiguously or in
// fixed-size blocks (paged), and the fused append that fills it.
//
// Why keys are cached rotated: RoPE rotates a key by its own position only, so a token's rotated
// key never changes when later tokens arrive. The cache keeps it as attention will read it, and
// decoding rotates just the new token.
//
//   rotary::KvCache cache = rotary::KvCache::paged(/*num_blocks=*/64, /*block_size=*/16,
//                                                  /*num_kv_heads=*/8, /*head_dim=*/128,
//                                                  DType::kBF16);
//   rotary::BlockTable sequence{.blocks = {3, 17, 4}};  // this sequence's blocks, in order
//   cache.append(rope, q, k, v, positions, sequence);   // q rotated in place, k rotated into the
//                                                       // cache, v copied; sequence.length grows
//
// A contiguous cache is one block as long as its capacity (block table {0}). Blocks are owned by
// the cache; which block belongs to which sequence is the caller's business (a server's
// scheduler), given per call as a BlockTable.
#pragma once

#include <cstdint>
#include <vector>

#include "rotary/positions.h"
#include "rotary/rope.h"
#include "rotary/tensor.h"

namespace rotary {
namespace detail {
struct KvStorageShape;
class CacheRotation;  // src/cache_rotation.h
}  // namespace detail
struct QkNorm;  // rotary/qk_norm.h

// One sequence's place in a cache: logical block i of the sequence is physical block blocks[i],
// and the sequence holds `length` tokens (cache indices [0, length)).
struct BlockTable {
  std::vector<int32_t> blocks;
  int64_t length = 0;
};

class KvCache {
 public:
  // One sequence of up to `capacity` tokens (one block; use BlockTable{{0}}).
  static KvCache contiguous(int64_t capacity, int64_t num_kv_heads, int64_t head_dim, DType dtype);
  // A pool of `num_blocks` blocks of `block_size` tokens each.
  //
  // Both factories check every size against rotary/limits.h (kMaxKvBlocks, kMaxKvBlockSize,
  // kMaxKvHeads, kMaxKvHeadDim, and kMaxRequestBytes for keys and values together) before
  // allocating, and throw rotary::Error naming the argument and the bytes the cache would take;
  // also when the machine cannot allocate a cache inside the limits.
  static KvCache paged(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                       int64_t head_dim, DType dtype);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t num_kv_heads() const { return num_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  DType dtype() const { return dtype_; }
  // The most tokens `sequence` can hold: its blocks times block_size.
  int64_t capacity(const BlockTable& sequence) const;

  // Appends n = k.num_tokens tokens at cache indices [sequence.length, sequence.length + n):
  // rotates q in place (q may be an empty view) and k by `positions` into the cache, copies v,
  // then adds n to sequence.length. Each token's cos/sin row is computed once for its Q and K
  // heads and k is read once: no rotate-then-copy. `positions` are the tokens' rotary positions
  // (usually the cache indices, but offsets and M-RoPE ids work too); the frequency set
  // (dynamic NTK, LongRoPE) is chosen once for the whole call from max(positions) + 1.
  //
  // Throws rotary::Error, leaving the cache, the sequence and q exactly as they were, when the
  // tokens do not fit, a block index is outside the pool or repeats, head counts, head_dim or
  // dtypes differ between k, v and the cache, or q, k or positions are invalid for `rope`.
  void append(const Rope& rope, TensorView q, ConstTensorView k, ConstTensorView v,
              Positions positions, BlockTable& sequence);

  // Keys and values of tokens [first, first + count) of one block: a view into the cache.
  ConstTensorView keys(int64_t block, int64_t first, int64_t count) const;
  ConstTensorView values(int64_t block, int64_t first, int64_t count) const;

 private:
  KvCache(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads, int64_t head_dim,
          DType dtype);
  detail::KvStorageShape shape() const;
  // append's checks and its loop over the blocks the call writes, each block's tokens rotated by
  // `rotation` (Rope::rotate's kernels, or the fused norm and rotation of qk_norm.h).
  void append(const detail::CacheRotation& rotation, const Rope& rope, TensorView q,
              ConstTensorView k, ConstTensorView v, Positions positions, BlockTable& sequence);
  friend void rms_norm_rotate_append(KvCache& cache, const Rope& rope, const QkNorm& norms,
                                     TensorView q, ConstTensorView k, ConstTensorView v,
                                     Positions positions, BlockTable& sequence);

  int64_t num_blocks_ = 0, block_size_ = 0, num_kv_heads_ = 0, head_dim_ = 0;
  DType dtype_ = DType::kF32;
  std::vector<unsigned char> keys_, values_;  // [num_blocks][block_size][num_kv_heads][head_dim]
};

}  // namespace rotary
