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

// A 4-d tensor (batch, tokens, heads, head_dim) as `batch` views like `view`, entry b starting
// b * batch_stride elements after view.data: how a caller describes a batch whose entries do not
// fold into one view's tokens (PyTorch's (batch, heads, seq, head_dim)) and are rotated one entry
// at a time.
struct BatchedTensorView {
  ConstTensorView view;
  int64_t batch = 1;
  int64_t batch_stride = 0;  // elements between entry b and b + 1
};

// One tensor of check_aliasing: its name in errors (a literal, or text that outlives the call), its
// memory and, for an output, the index of the input it may overwrite in place (-1: none).
struct AliasingOperand {
  std::string_view name;
  BatchedTensorView tensor;
  int own_input = -1;
};

// The rule every call that writes applies to its own tensors, here over whole batches: each output
// is exactly its own input (in place) or shares no byte with it, and shares no byte with any other
// input or output. Decided exactly, element by element: the interleaved Q and K slices of one
// packed QKV buffer pass, views that share one head do not. A caller that splits one rotation into
// a call per batch entry checks the whole batch with it first, since no single entry's call can
// see q of entry 0 sharing memory with k of entry 1. Empty tensors take part in nothing. At most 4
// inputs and 4 outputs.
//
// Throws Error(kInvalidArgument) naming the output and the tensor it collides with; naming a
// tensor's field ("q.token_stride", ...) whose size or stride is negative or whose extent
// overflows the address space; or naming both tensors when their strides are too irregular to
// decide within the search's bound (never the case for views of real tensor layouts).
void check_aliasing(std::span<const AliasingOperand> inputs,
                    std::span<const AliasingOperand> outputs);

}  // namespace rotary
