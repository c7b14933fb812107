#include "rotary/kv_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cache_rotation.h"
#include "kv_storage.h"
#include "rope_call.h"
#include "rotary/error.h"
#include "validate.h"

namespace rotary {
namespace {

using detail::invalid;

const char* byte_pointer(const void* p) { return static_cast<const char*>(p); }

// Every entry of the table names a block of the pool, and no block twice. The whole table, not
// only the blocks this call writes: a block named twice would let a later append overwrite the
// keys of an earlier token, and a table that does so is refused as soon as it is seen.
//
// One pass with a bitmap of the pool's blocks instead of sorting a copy: decode calls this for
// every token, and sorting (plus the copy's allocation) cost more than the rotation. The bitmap is
// per thread (concurrent appends to different caches need no lock), all zero between calls, and
// grows only when a thread meets a larger pool than before (one bit per block of the pool, which
// itself holds at least 4 bytes per block). Only the words this call set are cleared again, so
// the cost is O(table), whatever the pool's size.
void check_block_table(const std::vector<int32_t>& blocks, int64_t num_blocks) {
  thread_local std::vector<uint64_t> seen;
  const auto words = static_cast<std::size_t>((num_blocks + 63) / 64);
  if (seen.size() < words) seen.resize(words);
  std::size_t i = 0;
  bool repeated = false;
  for (; i < blocks.size(); ++i) {
    const int32_t block = blocks[i];
    if (block < 0 || block >= num_blocks) break;
    uint64_t& word = seen[static_cast<std::size_t>(block) / 64];
    const uint64_t bit = uint64_t{1} << (block % 64);
    repeated = (word & bit) != 0;
    if (repeated) break;
    word |= bit;
  }
  // Every bit set in these words was set by this call: zeroing the words restores the bitmap.
  for (std::size_t j = 0; j < i; ++j) seen[static_cast<std::size_t>(blocks[j]) / 64] = 0;
  if (i == blocks.size()) return;
  const std::string block =
      "block " + std::to_string(blocks[i]) + " (entry " + std::to_string(i) + ")";
  if (repeated) invalid("sequence.blocks", block + " appears twice");
  invalid("sequence.blocks",
          block + " is outside the pool of " + std::to_string(num_blocks) + " blocks");
}

// A decode step appends one token to a table that has not changed since the last step, and
// re-checking every entry cost more than rotating the token's heads. So each thread remembers the
// tables it verified (a copy of their entries and the pool size they were checked against),
// found by the table's address; a table equal to a remembered copy (one memcmp) was verified
// against a pool no larger than this one and needs no second look. The copy, not the address,
// decides: any change to the entries fails the comparison and the whole table is checked again.
// Memory stays bounded: kRemembered tables per thread, each of at most kMaxRememberedEntries
// entries (longer tables are checked every time).
void check_block_table_once(const std::vector<int32_t>& blocks, int64_t num_blocks) {
  constexpr std::size_t kRemembered = 64, kMaxRememberedEntries = std::size_t{1} << 14;
  struct Verified {
    std::vector<int32_t> blocks;
    int64_t pool_blocks = 0;
  };
  thread_local std::vector<Verified> remembered(kRemembered);
  // Fibonacci hashing of the address: allocations share their low bits, the product's top bits
  // spread them over the slots.
  const std::uint64_t address = reinterpret_cast<std::uintptr_t>(blocks.data());
  Verified& slot = remembered[(address * 0x9E3779B97F4A7C15u) >> 58];  // 64 = 2^6 slots
  if (slot.pool_blocks > 0 && slot.pool_blocks <= num_blocks && slot.blocks == blocks) return;
  check_block_table(blocks, num_blocks);
  if (blocks.size() > kMaxRememberedEntries) return;
  slot.blocks = blocks;
  slot.pool_blocks = num_blocks;
}

}  // namespace

KvCache::KvCache(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads, int64_t head_dim,
                 DType dtype)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      dtype_(dtype) {
  detail::allocate_kv(shape(), keys_, values_);
}

KvCache KvCache::contiguous(int64_t capacity, int64_t num_kv_heads, int64_t head_dim, DType dtype) {
  detail::check_kv_capacity(capacity);
  return KvCache(1, capacity, num_kv_heads, head_dim, dtype);
}

KvCache KvCache::paged(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                       int64_t head_dim, DType dtype) {
  return KvCache(num_blocks, block_size, num_kv_heads, head_dim, dtype);
}

int64_t KvCache::capacity(const BlockTable& sequence) const {
  return static_cast<int64_t>(sequence.blocks.size()) * block_size_;
}

detail::KvStorageShape KvCache::shape() const {
  return {num_blocks_, block_size_, num_kv_heads_, head_dim_, dtype_};
}

ConstTensorView KvCache::keys(int64_t block, int64_t first, int64_t count) const {
  return detail::kv_rows(keys_.data(), shape(), block, first, count);
}

ConstTensorView KvCache::values(int64_t block, int64_t first, int64_t count) const {
  return detail::kv_rows(values_.data(), shape(), block, first, count);
}

namespace {

// KvCache::append's rotation: Rope::rotate's, after the append's checks.
class RopeRotation final : public detail::CacheRotation {
 public:
  explicit RopeRotation(const Rope& rope) : rope_(rope) {}
  void check(const TensorView&, const ConstTensorView&) const override {}
  void rotate(const TensorView& q, const ConstTensorView& k, const TensorView& key_rows,
              const Positions& positions, int64_t sequence_length) const override {
    detail::rotate_checked(rope_, q, q, k, key_rows, positions, sequence_length,
                           Direction::kForward);
  }

 private:
  const Rope& rope_;
};

}  // namespace

void KvCache::append(const Rope& rope, TensorView q, ConstTensorView k, ConstTensorView v,
                     Positions positions, BlockTable& sequence) {
  append(RopeRotation(rope), rope, q, k, v, positions, sequence);
}

void KvCache::append(const detail::CacheRotation& rotation, const Rope& rope, TensorView q,
                     ConstTensorView k, ConstTensorView v, Positions positions,
                     BlockTable& sequence) {
  // Every check before the first write: the cache, the sequence and q stay as they were on error.
  const int64_t n = k.num_tokens;
  const bool has_q =
      detail::check_append_views(rope.head_dim(), num_kv_heads_, head_dim_, dtype_, q, k, v,
                                 {keys_.data(), values_.data(), keys_.size()});
  const int64_t length = detail::check_positions(positions, n, rope.config().num_axes());
  rotation.check(q, k);
  if (sequence.length < 0) invalid("sequence.length", "expected >= 0");
  if (sequence.length > capacity(sequence) || n > capacity(sequence) - sequence.length) {
    invalid("sequence", "appending " + std::to_string(n) + " tokens to " +
                            std::to_string(sequence.length) + " exceeds its capacity of " +
                            std::to_string(capacity(sequence)) + " (" +
                            std::to_string(sequence.blocks.size()) + " blocks of " +
                            std::to_string(block_size_) + ")");
  }
  check_block_table_once(sequence.blocks, num_blocks_);
  if (n == 0) return;

  const std::size_t esize = dtype_size(dtype_);
  const std::size_t q_esize = has_q ? dtype_size(q.dtype) : 0;
  int64_t done = 0;
  while (done < n) {
    const int64_t index = sequence.length + done;
    const int64_t block = sequence.blocks[static_cast<std::size_t>(index / block_size_)];
    const int64_t offset = index % block_size_;
    const int64_t count = std::min(n - done, block_size_ - offset);
    // Without queries: an empty q view (no heads) of the right head_dim and token count.
    TensorView q_chunk{nullptr, k.dtype, count, 0, head_dim_, 0, 0};
    if (has_q) {
      q_chunk = q;
      q_chunk.data = static_cast<char*>(q.data) + done * q.token_stride * q_esize;
      q_chunk.num_tokens = count;
    }
    ConstTensorView k_chunk = k;
    k_chunk.data = byte_pointer(k.data) + done * k.token_stride * esize;
    k_chunk.num_tokens = count;
    // Checked above as one call: its frequency set follows the whole call's length (dynamic NTK
    // and LongRoPE pick one set per call, not per block).
    rotation.rotate(q_chunk, k_chunk, detail::kv_rows(keys_.data(), shape(), block, offset, count),
                    positions.slice(done, count), length);
    const TensorView v_cache = detail::kv_rows(values_.data(), shape(), block, offset, count);
    const std::size_t row_bytes = static_cast<std::size_t>(head_dim_) * esize;
    for (int64_t t = 0; t < count; ++t) {
      for (int64_t h = 0; h < num_kv_heads_; ++h) {
        std::memcpy(
            static_cast<char*>(v_cache.data) +
                (t * v_cache.token_stride + h * v_cache.head_stride) * esize,
            byte_pointer(v.data) + ((done + t) * v.token_stride + h * v.head_stride) * esize,
            row_bytes);
      }
    }
    done += count;
  }
  sequence.length += n;
}

}  // namespace rotary
