// The CUDA backend: the same rotations as rotary::Rope and rotary::KvCache, on device memory.
//
//   rotary::CudaRope rope(config);                        // no device call: tables stay on the
//   host rotary::CudaPositions pos{.data = d_pos, .type = rotary::PositionType::kInt64,
//                             .num_tokens = n};
//   rope.rotate(q, k, pos, rotary::Direction::kForward, stream);  // q, k: device TensorViews
//
// Semantics are the CPU backend's (rope.h): the same layouts, partial rotary, pass-through channels
// copied when out of place, f32/f16/bf16 storage with float32 arithmetic rounded once on store,
// multi-axis positions, and the same validation with the same rotary::Error argument names. In
// AngleMode::kHf the results are the CPU's bit for bit (the device evaluates the CPU's own float64
// cos/sin recipe operation by operation, without fused multiply-adds); in AngleMode::kExact they
// may differ from the CPU's by one float32 ulp in cos/sin, rarely (CUDA's float64 cos/sin are
// within 2 ulp of float64, glibc's are correctly rounded).
//
// Device contract. Every argument is checked on the host before the launch; a call never
// synchronises the host with the device and never allocates. What the host cannot see is the
// caller's promise: data pointers are device memory of the current device, positions lie in
// |p| <= 2^53, block-table entries name distinct blocks of the pool (an entry outside the pool
// drops that token's key and value instead of writing out of bounds). Errors the device reports
// at launch throw rotary::Error with ErrorCode::kDeviceError; later asynchronous faults surface at
// the caller's next synchronisation, as for any CUDA library.
//
// Frequencies that follow the sequence length (dynamic NTK, LongRoPE) are chosen on the host from
// CudaPositions::sequence_length (max(positions) + 1 over the call, which the host cannot read
// from device positions); such a call without it throws. They travel to the kernel as launch
// arguments, so no upload is ordered against earlier launches.
//
// This header needs no CUDA headers: a stream is a `void*` (a cudaStream_t; nullptr is the legacy
// default stream).
#pragma once

#include <cstdint>
#include <memory>

#include "rotary/config.h"
#include "rotary/frequencies.h"
#include "rotary/rope.h"
#include "rotary/tensor.h"

namespace rotary {
namespace detail {
struct KvStorageShape;
}  // namespace detail

using CudaStream = void*;

enum class PositionType { kInt32, kInt64 };

// Token positions in device memory, axis-major as rotary::Positions: component (t, a) is
// data[a * axis_stride + t].
struct CudaPositions {
  const void* data = nullptr;  // device pointer
  PositionType type = PositionType::kInt64;
  int64_t num_tokens = 0;
  int num_axes = 1;
  int64_t axis_stride = 0;  // 0 means num_tokens
  // max(positions) + 1: required (> 0) when the configuration's frequencies depend on the sequence
  // length (dynamic NTK, LongRoPE) and the call is not empty; ignored otherwise.
  int64_t sequence_length = 0;
};

// True when a CUDA device is visible to the process (the tests skip without one).
bool cuda_device_available();

class CudaRope {
 public:
  // Mirrors the Rope constructors. options.cache_positions is ignored: the device computes each
  // token's cos/sin row once per call, which costs less than reading a cache. rotary_dim must be at
  // most 512 (the tables are launch arguments); larger throws Error on "config.rotary_dim".
  explicit CudaRope(const RopeConfig& config, const RopeOptions& options = {});
  CudaRope(const RopeConfig& config, const Frequencies& frequencies,
           const RopeOptions& options = {});
  // The same frequencies (float32 inv_freq, attention factor) and angle mode as `rope`.
  explicit CudaRope(const Rope& rope);
  ~CudaRope();
  CudaRope(CudaRope&&) noexcept;
  CudaRope& operator=(CudaRope&&) noexcept;

  // The host Rope this backend mirrors (its frequencies, config, options).
  const Rope& host_rope() const;
  int64_t head_dim() const;
  int64_t rotary_dim() const;

  // In place; `k` may be an empty view. q and k may differ in head count (GQA) and dtype.
  void rotate(TensorView q, TensorView k, const CudaPositions& positions,
              Direction direction = Direction::kForward, CudaStream stream = nullptr) const;
  void rotate(TensorView x, const CudaPositions& positions,
              Direction direction = Direction::kForward, CudaStream stream = nullptr) const;
  // Out of place (pass-through channels copied).
  void rotate(ConstTensorView q_in, TensorView q_out, ConstTensorView k_in, TensorView k_out,
              const CudaPositions& positions, Direction direction = Direction::kForward,
              CudaStream stream = nullptr) const;

  struct State;  // implementation detail (src/cuda/cuda_rope.cc)

 private:
  friend class CudaKvCache;  // its append shares the call set-up
  std::unique_ptr<State> state_;
};

// One sequence's place in a CudaKvCache: logical block i is physical block blocks[i] (a device
// array of num_blocks int32). blocks == nullptr stands for {0}, a contiguous cache's one block.
// `length` (tokens held) lives on the host and append() advances it.
struct CudaBlockTable {
  const int32_t* blocks = nullptr;
  int64_t num_blocks = 0;
  int64_t length = 0;
};

// A KvCache (kv_cache.h) in device memory: keys and values, each
// [num_blocks][block_size][num_kv_heads][head_dim], zero-initialised.
class CudaKvCache {
 public:
  static CudaKvCache contiguous(int64_t capacity, int64_t num_kv_heads, int64_t head_dim,
                                DType dtype);
  static CudaKvCache paged(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                           int64_t head_dim, DType dtype);
  ~CudaKvCache();
  CudaKvCache(CudaKvCache&&) noexcept;
  CudaKvCache& operator=(CudaKvCache&&) noexcept;

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t num_kv_heads() const { return num_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  DType dtype() const { return dtype_; }
  int64_t capacity(const CudaBlockTable& sequence) const;

  // KvCache::append on the device, in one launch: q rotated in place (q may be an empty view), k
  // rotated into the cache, v copied, at cache indices [sequence.length, sequence.length + n); then
  // sequence.length += n (on the host, at once: the launch is asynchronous). On Error nothing is
  // launched and the sequence is unchanged.
  void append(const CudaRope& rope, TensorView q, ConstTensorView k, ConstTensorView v,
              const CudaPositions& positions, CudaBlockTable& sequence,
              CudaStream stream = nullptr);

  // Device views of tokens [first, first + count) of one block.
  ConstTensorView keys(int64_t block, int64_t first, int64_t count) const;
  ConstTensorView values(int64_t block, int64_t first, int64_t count) const;

 private:
  CudaKvCache(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads, int64_t head_dim,
              DType dtype);
  detail::KvStorageShape shape() const;

  int64_t num_blocks_ = 0, block_size_ = 0, num_kv_heads_ = 0, head_dim_ = 0;
  DType dtype_ = DType::kF32;
  void* keys_ = nullptr;
  void* values_ = nullptr;
};

}  // namespace rotary
