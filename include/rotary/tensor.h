// Views of caller-owned memory: query and key tensors (positions.h: the position arrays).
//
// A tensor is `num_tokens x num_heads x head_dim` elements with arbitrary non-negative token and
// head strides (in elements) and a contiguous last dimension. BSHD, BHSD (one sequence), and the
// Q or K slice of a packed QKV buffer are all such views; no copy is ever made.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ranges>
#include <span>
#include <string_view>

#include "rotary/positions.h"

namespace rotary {

// Storage type. The arithmetic is always float32; f16/bf16 are converted on load and rounded once
// (round to nearest even) on store.
enum class DType { kF32, kF16, kBF16 };

std::size_t dtype_size(DType dtype);
std::string_view to_string(DType dtype);

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t num_tokens = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t token_stride = 0;  // elements between token t and t + 1
  int64_t head_stride = 0;   // elements between head h and h + 1

  // Token-major, heads contiguous within a token (BSHD with B folded into tokens).
  static TensorView contiguous(void* data, DType dtype, int64_t num_tokens, int64_t num_heads,
                               int64_t head_dim) {
    return {data, dtype, num_tokens, num_heads, head_dim, num_heads * head_dim, head_dim};
  }
  // No element to touch: the view may have a null pointer.
  bool empty() const { return num_tokens == 0 || num_heads == 0 || head_dim == 0; }
};

struct ConstTensorView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t num_tokens = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t token_stride = 0;
  int64_t head_stride = 0;

  ConstTensorView() = default;
  ConstTensorView(const void* ptr, DType type, int64_t tokens, int64_t heads, int64_t dim,
                  int64_t tokens_stride, int64_t heads_stride)
      : data(ptr),
        dtype(type),
        num_tokens(tokens),
        num_heads(heads),
        head_dim(dim),
        token_stride(tokens_stride),
        head_stride(heads_stride) {}
  // Every mutable view is also readable.
  ConstTensorView(const TensorView& v)  // NOLINT(google-explicit-constructor)
      : ConstTensorView(v.data, v.dtype, v.num_tokens, v.num_heads, v.head_dim, v.token_stride,
                        v.head_stride) {}

  static ConstTensorView contiguous(const void* data, DType dtype, int64_t num_tokens,
                                    int64_t num_heads, int64_t head_dim) {
    return {data, dtype, num_tokens, num_heads, head_dim, num_heads * head_dim, head_dim};
  }
  bool empty() const { return num_tokens == 0 || num_heads == 0 || head_dim == 0; }
};

}  // namespace rotary
