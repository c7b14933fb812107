// The boundary between the host driver (cuda_rope.cc, plain C++) and the kernels (rope_kernels.cu).
//
// Everything the kernel needs travels in one launch-argument struct, frequency tables included
// (rotary_dim / 2 <= kMaxPairs floats): a call uploads nothing, so it never orders a copy against
// earlier launches, and per-call frequency sets (dynamic NTK, LongRoPE) cost nothing extra. The
// kernel reads the struct as a __grid_constant__ parameter, so indexing the tables does not copy
// them to local memory.
#pragma once

#include <cstdint>

#include "rotary/config.h"
#include "rotary/tensor.h"

namespace rotary::detail::cuda {

inline constexpr int kMaxPairs = 256;

// One tensor's heads of every token; in == out (same strides) for in place.
struct DeviceTensor {
  const void* in = nullptr;
  void* out = nullptr;
  int64_t num_heads = 0;  // 0: absent
  int64_t in_token_stride = 0, in_head_stride = 0;
  int64_t out_token_stride = 0, out_head_stride = 0;
};

struct KernelParams {
  DeviceTensor q, k;
  // Append: k.out and v.out are unused, keys and values go to the cache rows that the block table
  // gives (token_stride num_heads * head_dim, head_stride head_dim).
  DeviceTensor v;
  int64_t num_tokens = 0;
  int32_t head_dim = 0, rotary_dim = 0;

  const void* positions = nullptr;
  int32_t positions_int64 = 0;
  int32_t position_axes = 1;  // 1, or the config's axes (then pair_axis chooses per pair)
  int64_t axis_stride = 0;

  int32_t inverse = 0;
  int32_t exact = 0;         // AngleMode::kExact
  float hf_scale = 1.0f;     // the attention factor rounded to float32 (kHf multiplies in float32)
  double exact_scale = 1.0;  // the attention factor in float64 (kExact, before the rounding)

  // Append only.
  const int32_t* block_table = nullptr;  // nullptr: block 0
  int64_t table_blocks = 0;
  int64_t start = 0;  // the sequence's length before the call
  int64_t block_size = 0;
  int64_t cache_blocks = 0;
  void* key_cache = nullptr;
  void* value_cache = nullptr;

  float inv_freq[kMaxPairs] = {};
  uint8_t pair_axis[kMaxPairs] = {};
};

// The 16-byte vector path applies: every pointer 16-byte aligned, every stride, head_dim and
// rotary_dim (half of it for half-split) multiples of the vector's elements. Checked on the host.
bool vector_path_applies(const KernelParams& p, DType dtype, Layout layout, bool append);

// Launches on `stream` (a cudaStream_t). Throws Error(kDeviceError) if the launch is refused.
void launch_rotate(const KernelParams& p, DType dtype, Layout layout, bool vectorized,
                   void* stream);
void launch_append(const KernelParams& p, DType dtype, Layout layout, bool vectorized,
                   void* stream);

// cudaMalloc + cudaMemset(0), cudaFree, device count; throw Error(kDeviceError) on failure.
void* device_alloc_zeroed(std::size_t bytes);
void device_free(void* p) noexcept;
int device_count() noexcept;

}  // namespace rotary::detail::cuda
