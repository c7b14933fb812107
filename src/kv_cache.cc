#include "rotary/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "rotary/error.h"
#include "validate.h"

namespace rotary {
namespace {

[[noreturn]] void invalid(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

void require_positive(int64_t value, const char* name, int64_t limit) {
  if (value <= 0 || value > limit) {
    invalid(name, "expected 1 .. " + std::to_string(limit) + ", got " + std::to_string(value));
  }
}

const char* byte_pointer(const void* p) { return static_cast<const char*>(p); }

}  // namespace

KvCache::KvCache(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads, int64_t head_dim,
                 DType dtype)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      dtype_(dtype) {
  require_positive(num_blocks, "num_blocks", int64_t{1} << 31);
  require_positive(block_size, "block_size", int64_t{1} << 40);
  require_positive(num_kv_heads, "num_kv_heads", 1 << 16);
  require_positive(head_dim, "head_dim", 1 << 16);
  // Each factor is at most 2^40 and the product is checked step by step against 2^40 bytes (double
  // keeps the comparison free of overflow).
  const double bytes = static_cast<double>(num_blocks) * static_cast<double>(block_size) *
                       static_cast<double>(num_kv_heads * head_dim) *
                       static_cast<double>(dtype_size(dtype));
  if (bytes > static_cast<double>(int64_t{1} << 40)) {
    invalid("num_blocks", "a cache of more than 1 TiB per tensor is not allocated");
  }
  keys_.resize(static_cast<std::size_t>(bytes));
  values_.resize(static_cast<std::size_t>(bytes));
}

KvCache KvCache::contiguous(int64_t capacity, int64_t num_kv_heads, int64_t head_dim, DType dtype) {
  require_positive(capacity, "capacity", int64_t{1} << 40);
  return KvCache(1, capacity, num_kv_heads, head_dim, dtype);
}

KvCache KvCache::paged(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                       int64_t head_dim, DType dtype) {
  return KvCache(num_blocks, block_size, num_kv_heads, head_dim, dtype);
}

int64_t KvCache::capacity(const BlockTable& sequence) const {
  return static_cast<int64_t>(sequence.blocks.size()) * block_size_;
}

std::size_t KvCache::byte_offset(int64_t block, int64_t first) const {
  return static_cast<std::size_t>((block * block_size_ + first) * num_kv_heads_ * head_dim_) *
         dtype_size(dtype_);
}

// One shape for every view; whether it may be written is decided by the public accessors.
TensorView KvCache::view(const std::vector<unsigned char>& storage, int64_t block, int64_t first,
                         int64_t count) const {
  return {const_cast<unsigned char*>(storage.data()) + byte_offset(block, first),
          dtype_,
          count,
          num_kv_heads_,
          head_dim_,
          num_kv_heads_ * head_dim_,
          head_dim_};
}

ConstTensorView KvCache::const_view(const std::vector<unsigned char>& storage, int64_t block,
                                    int64_t first, int64_t count) const {
  if (block < 0 || block >= num_blocks_) {
    invalid("block",
            "expected 0 .. " + std::to_string(num_blocks_ - 1) + ", got " + std::to_string(block));
  }
  if (first < 0 || count < 0 || first > block_size_ - count) {
    invalid("first", "tokens [first, first + count) must lie inside one block of " +
                         std::to_string(block_size_));
  }
  return view(storage, block, first, count);
}

ConstTensorView KvCache::keys(int64_t block, int64_t first, int64_t count) const {
  return const_view(keys_, block, first, count);
}

ConstTensorView KvCache::values(int64_t block, int64_t first, int64_t count) const {
  return const_view(values_, block, first, count);
}

void KvCache::append(const Rope& rope, TensorView q, ConstTensorView k, ConstTensorView v,
                     Positions positions, BlockTable& sequence) {
  // Every check before the first write: the cache, the sequence and q stay as they were on error.
  const int64_t n = k.num_tokens;
  const bool has_q =
      detail::check_append_views(rope.head_dim(), num_kv_heads_, head_dim_, dtype_, q, k, v);
  detail::check_positions(positions, n, rope.config().num_axes());
  if (sequence.length < 0) invalid("sequence.length", "expected >= 0");
  if (sequence.length > capacity(sequence) || n > capacity(sequence) - sequence.length) {
    invalid("sequence", "appending " + std::to_string(n) + " tokens to " +
                            std::to_string(sequence.length) + " exceeds its capacity of " +
                            std::to_string(capacity(sequence)) + " (" +
                            std::to_string(sequence.blocks.size()) + " blocks of " +
                            std::to_string(block_size_) + ")");
  }
  std::vector<int32_t> sorted = sequence.blocks;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] < 0 || sorted[i] >= num_blocks_) {
      invalid("sequence.blocks", "block " + std::to_string(sorted[i]) + " is outside the pool of " +
                                     std::to_string(num_blocks_));
    }
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      invalid("sequence.blocks", "block " + std::to_string(sorted[i]) + " appears twice");
    }
  }
  if (n == 0) return;

  // Dynamic NTK and LongRoPE pick one frequency set from the whole call, not per block.
  const Frequencies call_frequencies = rope.frequencies_for(positions);
  std::optional<Rope> pinned;
  if (call_frequencies.inv_freq != rope.frequencies().inv_freq ||
      call_frequencies.attention_factor != rope.frequencies().attention_factor) {
    RopeOptions options = rope.options();
    options.cache_positions = 0;
    pinned.emplace(rope.config(), call_frequencies, options);
  }
  const Rope& call_rope = pinned ? *pinned : rope;

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
    call_rope.rotate(q_chunk, q_chunk, k_chunk, view(keys_, block, offset, count),
                     positions.slice(done, count));
    const TensorView v_cache = view(values_, block, offset, count);
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
