// Which memory a strided tensor touches, and whether two tensors share any of it, decided exactly.
//
// Why exactly: the Q and K slices of one packed QKV buffer interleave (their byte ranges overlap)
// without sharing a single element, and must be accepted; Q and K views that share one head of a
// buffer must be refused, or that head is rotated twice. Comparing address ranges cannot tell the
// two apart, so the question is asked of the elements themselves: is there a byte that both
// tensors reach for some choice of their indices? That is a bounded linear Diophantine problem,
// solved here by a depth-first search whose bounds make every common layout a few dozen steps.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "rotary/tensor.h"

namespace rotary::detail {

// The bytes base + Σ_d index_d · stride_d + [0, run_bytes) for index_d in [0, size_d): a tensor
// whose last dimension is contiguous (run_bytes = head_dim · element size) and whose other
// dimensions (tokens, heads, a batch) have non-negative byte strides.
struct StridedBytes {
  struct Dim {
    int64_t size = 1;
    int64_t stride = 0;  // in bytes
  };
  std::uintptr_t base = 0;
  int64_t run_bytes = 0;
  std::array<Dim, 3> dims{};

  // Defined here, not in overlap.cc: every call that writes asks these of each of its tensors
  // (check_no_aliasing's quick range test), decode steps included, where a call each showed.
  bool empty() const {
    if (run_bytes <= 0) return true;
    for (const Dim& d : dims) {
      if (d.size <= 0) return true;
    }
    return false;
  }
  // First and one-past-last byte; only for non-empty regions.
  std::uintptr_t begin() const { return base; }
  std::uintptr_t end() const {
    std::uintptr_t last = base + static_cast<std::uintptr_t>(run_bytes);
    for (const Dim& d : dims) last += static_cast<std::uintptr_t>((d.size - 1) * d.stride);
    return last;
  }
};

// One dimension of `count` indices `stride` elements of `itemsize` bytes apart. A dimension of one
// index has no stride that matters (and check_view does not bound it), so it gets 0.
constexpr StridedBytes::Dim byte_dim(int64_t count, int64_t stride, int64_t itemsize) {
  return {count, count > 1 ? stride * itemsize : 0};
}

// The region of a view that check_view accepted (sizes and strides in range, no overflow).
StridedBytes strided_bytes(const ConstTensorView& view);

// Whether a and b address the same elements by the same indices: one is the other, in place. A
// dimension of size 1 may have any stride.
bool same_elements(const StridedBytes& a, const StridedBytes& b);

// Whether some byte lies in both regions. Exact. Strides irregular enough to need more than a
// bounded search (never the case for views of real tensor layouts) are refused with an Error
// naming both tensors rather than guessed.
bool share_bytes(const StridedBytes& a, const StridedBytes& b, std::string_view a_name,
                 std::string_view b_name);

// One tensor of a call. An output names the input it overwrites in place (own_input, an index
// into the inputs) or -1.
struct Operand {
  std::string_view name;  // a literal: the check runs on every call, and allocates nothing
  StridedBytes bytes;
  int own_input = -1;
};

// The aliasing rule of every call that writes: each output is exactly its own input (in place)
// or shares no byte with it, and shares no byte with any other input or output. Throws Error
// naming the output and the tensor it collides with. Empty tensors take part in nothing.
void check_no_aliasing(std::span<const Operand> inputs, std::span<const Operand> outputs);

}  // namespace rotary::detail
