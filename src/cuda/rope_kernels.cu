// CUDA kernels: rotate Q and K (in or out of place), and the fused rotate-and-append into a KV
// cache. One templated body serves every (storage type, layout, vector width, append) variant.
//
// Structure. One CTA per token. Its threads first compute the token's cos/sin row (rotary_dim / 2
// pairs) into shared memory, once for all of its Q and K heads; then each thread takes work items:
// a vector of kVec channels of one head (16 bytes when the vector path applies, else one pair).
//
// Bit-exactness with the CPU backend. The cos/sin recipes (numeric/cos_sin.h) and the 16-bit
// conversions (numeric/float16.h) are the very functions the CPU calls, compiled for the device,
// so the host's tests run this arithmetic too. The rotation is written here with explicit
// round-to-nearest intrinsics (__fmul_rn, ...), and the file is compiled with -fmad=false, which
// the shared functions rely on: no multiply-add is fused, so each output is two float32 products
// and one sum, as on the CPU. The kHf cos/sin are correctly rounded on both sides, so they equal
// the CPU's bits, not merely its accuracy.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/launch.h"
#include "numeric/cos_sin.h"
#include "numeric/float16.h"
#include "rotary/error.h"

namespace rotary::detail::cuda {
namespace {

// kVec consecutive elements, moved as one aligned access (16 bytes on the vector path).
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

__device__ __forceinline__ int64_t load_position(const KernelParams& p, int axis, int64_t t) {
  const int64_t i = axis * p.axis_stride + t;
  return p.positions_int64 ? static_cast<const int64_t*>(p.positions)[i]
                           : static_cast<const int32_t*>(p.positions)[i];
}

// --- rotation ------------------------------------------------------------------------------------

// x*c - y*s and y*c + x*s, two products and one sum each (the CPU's rounding sequence).
__device__ __forceinline__ void rotate_pair(float x, float y, float c, float s, float& a,
                                            float& b) {
  a = __fsub_rn(__fmul_rn(x, c), __fmul_rn(y, s));
  b = __fadd_rn(__fmul_rn(y, c), __fmul_rn(x, s));
}

// Rotary pairs per work item: a half-split item holds kVec channels of each half (kVec pairs); an
// interleaved one kVec adjacent channels (kVec / 2 pairs), or one pair on the scalar path.
template <bool kInterleaved, int kVec>
constexpr int kPairsPerItem = kInterleaved ? (kVec > 1 ? kVec / 2 : 1) : kVec;

// Work item `item` of one head: rotation items first, then (when the caller counts them) the
// pass-through channels [rotary_dim, head_dim) in kVec-element chunks.
template <typename T, bool kInterleaved, int kVec>
__device__ __forceinline__ void head_item(const T* in, T* out, int item, int rotary_items,
                                          int rotary_dim, const float* cos_row,
                                          const float* sin_row) {
  using P = Pack<T, kVec>;
  if (item >= rotary_items) {
    const int c = rotary_dim + (item - rotary_items) * kVec;
    *reinterpret_cast<P*>(out + c) = *reinterpret_cast<const P*>(in + c);
    return;
  }
  if constexpr (kInterleaved && kVec == 1) {
    // Scalar path: pair j is channels (2j, 2j + 1), loaded one by one (no alignment assumed).
    const int j = item;
    float a, b;
    rotate_pair(load_as_float(in + 2 * j), load_as_float(in + 2 * j + 1), cos_row[j], sin_row[j], a,
                b);
    store_from_float(out + 2 * j, a);
    store_from_float(out + 2 * j + 1, b);
  } else if constexpr (kInterleaved) {
    const int c = item * kVec;
    const P x = *reinterpret_cast<const P*>(in + c);
    P r;
#pragma unroll
    for (int e = 0; e < kVec; e += 2) {
      const int j = (c + e) / 2;
      float a, b;
      rotate_pair(load_as_float(x.v + e), load_as_float(x.v + e + 1), cos_row[j], sin_row[j], a, b);
      store_from_float(r.v + e, a);
      store_from_float(r.v + e + 1, b);
    }
    *reinterpret_cast<P*>(out + c) = r;
  } else {
    const int half = rotary_dim / 2;
    const int j0 = item * kVec;
    const P x = *reinterpret_cast<const P*>(in + j0);
    const P y = *reinterpret_cast<const P*>(in + j0 + half);
    P ra, rb;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      float a, b;
      rotate_pair(load_as_float(x.v + e), load_as_float(y.v + e), cos_row[j0 + e], sin_row[j0 + e],
                  a, b);
      store_from_float(ra.v + e, a);
      store_from_float(rb.v + e, b);
    }
    *reinterpret_cast<P*>(out + j0) = ra;
    *reinterpret_cast<P*>(out + j0 + half) = rb;
  }
}

// The token's cos/sin row, once for all of its heads. A multi-axis token takes each pair's
// position from that pair's axis (the CPU gathers whole rows; per pair it is the same value).
__device__ void fill_cos_sin_row(const KernelParams& p, int64_t t, float* cos_row, float* sin_row) {
  for (int j = threadIdx.x; j < p.rotary_dim / 2; j += blockDim.x) {
    const int axis = p.position_axes > 1 ? p.pair_axis[j] : 0;
    const int64_t position = load_position(p, axis, t);
    float c, s;
    if (p.exact) {
      exact_mode_cos_sin(position, p.inv_freq[j], p.exact_scale, c, s);
    } else {
      hf_mode_cos_sin(position, p.inv_freq[j], p.hf_scale, c, s);
    }
    cos_row[j] = c;
    sin_row[j] = p.inverse ? -s : s;
  }
}

// Where a token's key and value go in the cache: the row of cache index start + t.
template <typename T>
struct CacheRow {
  T* k = nullptr;
  T* v = nullptr;
  bool valid = true;
};

template <typename T>
__device__ CacheRow<T> cache_row_of(const KernelParams& p, int64_t t) {
  const int64_t index = p.start + t;
  const int64_t logical = index / p.block_size;
  const int64_t block = p.block_table == nullptr ? 0 : p.block_table[logical];
  const int64_t token_stride = p.k.num_heads * p.head_dim;
  const int64_t row = block * p.block_size + index % p.block_size;
  CacheRow<T> out;
  // A block outside the pool drops the token's key and value rather than writing out of bounds.
  out.valid = block >= 0 && block < p.cache_blocks;
  out.k = static_cast<T*>(p.key_cache) + row * token_stride;
  out.v = static_cast<T*>(p.value_cache) + row * token_stride;
  return out;
}

template <typename T, bool kInterleaved, int kVec, bool kAppend>
__global__ void __launch_bounds__(256) rope_kernel(const __grid_constant__ KernelParams p) {
  extern __shared__ float row[];  // cos[half], then sin[half] (negated for the inverse)
  const int64_t t = blockIdx.x;
  const int half = p.rotary_dim / 2;
  float* cos_row = row;
  float* sin_row = row + half;

  fill_cos_sin_row(p, t, cos_row, sin_row);
  __syncthreads();

  const int rotary_items = half / kPairsPerItem<kInterleaved, kVec>;
  const int rest_items = (p.head_dim - p.rotary_dim) / kVec;

  CacheRow<T> kv;
  if constexpr (kAppend) kv = cache_row_of<T>(p, t);
  const bool kv_valid = kv.valid;
  T* const k_dst = kv.k;
  T* const v_dst = kv.v;

  // Q: in place needs no pass-through copy.
  const bool q_copy = p.q.in != p.q.out;
  const int q_per_head = rotary_items + (q_copy ? rest_items : 0);
  // Per-token counts fit in int (the host checks heads * head_dim < 2^31): 32-bit division.
  const int q_items = static_cast<int>(p.q.num_heads) * q_per_head;
  const bool k_copy = kAppend || p.k.in != p.k.out;
  const int k_per_head = rotary_items + (k_copy ? rest_items : 0);
  const int k_items = (kv_valid ? static_cast<int>(p.k.num_heads) : 0) * k_per_head;
  const int v_per_head = p.head_dim / kVec;
  const int v_items = kAppend && kv_valid ? static_cast<int>(p.v.num_heads) * v_per_head : 0;

  const int total = q_items + k_items + v_items;
  for (int i = static_cast<int>(threadIdx.x); i < total; i += static_cast<int>(blockDim.x)) {
    if (i < q_items) {
      const int h = i / q_per_head;
      const int item = i - h * q_per_head;
      const T* in =
          static_cast<const T*>(p.q.in) + t * p.q.in_token_stride + h * p.q.in_head_stride;
      T* out = static_cast<T*>(p.q.out) + t * p.q.out_token_stride + h * p.q.out_head_stride;
      head_item<T, kInterleaved, kVec>(in, out, item, rotary_items, p.rotary_dim, cos_row, sin_row);
    } else if (i < q_items + k_items) {
      const int ki = i - q_items;
      const int h = ki / k_per_head;
      const int item = ki - h * k_per_head;
      const T* in =
          static_cast<const T*>(p.k.in) + t * p.k.in_token_stride + h * p.k.in_head_stride;
      T* out;
      if constexpr (kAppend) {
        out = k_dst + h * p.head_dim;
      } else {
        out = static_cast<T*>(p.k.out) + t * p.k.out_token_stride + h * p.k.out_head_stride;
      }
      head_item<T, kInterleaved, kVec>(in, out, item, rotary_items, p.rotary_dim, cos_row, sin_row);
    } else if constexpr (kAppend) {
      const int vi = i - q_items - k_items;
      const int h = vi / v_per_head;
      const int c = (vi - h * v_per_head) * kVec;
      using P = Pack<T, kVec>;
      const T* in =
          static_cast<const T*>(p.v.in) + t * p.v.in_token_stride + h * p.v.in_head_stride;
      *reinterpret_cast<P*>(v_dst + h * p.head_dim + c) = *reinterpret_cast<const P*>(in + c);
    }
  }
}

// --- launch --------------------------------------------------------------------------------------

[[noreturn]] void device_error(const char* what, cudaError_t e) {
  throw Error(ErrorCode::kDeviceError, "cuda",
              std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

template <typename T, bool kInterleaved, bool kAppend>
void launch_typed(const KernelParams& p, bool vectorized, cudaStream_t stream) {
  // The vector path moves 16 bytes per access; the scalar one an element (a pair, interleaved).
  constexpr int kVector = 16 / static_cast<int>(sizeof(T));
  const int half = p.rotary_dim / 2;
  const int rotary_items = vectorized ? half / kPairsPerItem<kInterleaved, kVector>
                                      : half / kPairsPerItem<kInterleaved, 1>;
  const int vec = vectorized ? kVector : 1;
  const int64_t per_head = rotary_items + (p.head_dim - p.rotary_dim) / vec;
  const int64_t heads = p.q.num_heads + p.k.num_heads + (kAppend ? p.v.num_heads : 0);
  const int64_t items = heads * per_head;
  int64_t threads = ((items > half ? items : half) + 31) / 32 * 32;
  if (threads > 256) threads = 256;
  if (threads < 32) threads = 32;
  const std::size_t shared = 2 * static_cast<std::size_t>(half) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(p.num_tokens));
  const dim3 block(static_cast<unsigned>(threads));
  if (vectorized) {
    rope_kernel<T, kInterleaved, kVector, kAppend><<<grid, block, shared, stream>>>(p);
  } else {
    rope_kernel<T, kInterleaved, 1, kAppend><<<grid, block, shared, stream>>>(p);
  }
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) device_error("kernel launch", e);
}

template <bool kAppend>
void launch(const KernelParams& p, DType dtype, Layout layout, bool vectorized, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const bool inter = layout == Layout::kInterleaved;
  switch (dtype) {
    case DType::kF32:
      return inter ? launch_typed<float, true, kAppend>(p, vectorized, s)
                   : launch_typed<float, false, kAppend>(p, vectorized, s);
    case DType::kF16:
      return inter ? launch_typed<Float16, true, kAppend>(p, vectorized, s)
                   : launch_typed<Float16, false, kAppend>(p, vectorized, s);
    case DType::kBF16:
      return inter ? launch_typed<BFloat16, true, kAppend>(p, vectorized, s)
                   : launch_typed<BFloat16, false, kAppend>(p, vectorized, s);
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

bool tensor_vectorizable(const DeviceTensor& d, int64_t vec, bool check_out) {
  if (d.num_heads == 0) return true;
  bool ok = aligned16(d.in) && d.in_token_stride % vec == 0 && d.in_head_stride % vec == 0;
  if (check_out)
    ok = ok && aligned16(d.out) && d.out_token_stride % vec == 0 && d.out_head_stride % vec == 0;
  return ok;
}

}  // namespace

bool vector_path_applies(const KernelParams& p, DType dtype, Layout layout, bool append) {
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(dtype));
  const int64_t rotated = layout == Layout::kInterleaved ? p.rotary_dim : p.rotary_dim / 2;
  if (rotated % vec != 0 || p.head_dim % vec != 0) return false;
  if (append) {
    // Cache rows start at multiples of head_dim elements from cudaMalloc'd (256-byte aligned)
    // bases.
    return tensor_vectorizable(p.q, vec, true) && tensor_vectorizable(p.k, vec, false) &&
           tensor_vectorizable(p.v, vec, false);
  }
  return tensor_vectorizable(p.q, vec, true) && tensor_vectorizable(p.k, vec, true);
}

void launch_rotate(const KernelParams& p, DType dtype, Layout layout, bool vectorized,
                   void* stream) {
  launch<false>(p, dtype, layout, vectorized, stream);
}

void launch_append(const KernelParams& p, DType dtype, Layout layout, bool vectorized,
                   void* stream) {
  launch<true>(p, dtype, layout, vectorized, stream);
}

void* device_alloc_zeroed(std::size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) device_error("cudaMalloc", e);
  e = cudaMemset(p, 0, bytes);
  if (e != cudaSuccess) {
    cudaFree(p);
    device_error("cudaMemset", e);
  }
  return p;
}

void device_free(void* p) noexcept {
  if (p != nullptr) cudaFree(p);
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return n;
}

}  // namespace rotary::detail::cuda
