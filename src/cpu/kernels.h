// The kernel boundary: everything below this line rotates already-validated memory.
//
// A kernel rotates the heads of one token, which all share that token's cos/sin row. The driver
// (src/rope.cc) picks one kernel per call from the table for (dtype, layout), so a vectorised
// implementation replaces an entry here without the driver changing.
#pragma once

#include <cstdint>

#include "rotary/config.h"
#include "rotary/tensor.h"

namespace rotary::detail {

struct RotateParams {
  const float* cos;    // rotary_dim / 2 entries, attention factor included
  const float* sin;    // idem; negated by the driver for the inverse rotation
  int64_t rotary_dim;  // even, <= head_dim
  int64_t head_dim;
  // The call streams from memory (more than a cache holds): the kernels request each head's lines
  // a few heads ahead. Off for calls whose heads are already in cache (a decode step), where the
  // prefetch instructions would only cost time.
  bool prefetch = false;
};

struct HeadRange {
  const void* in;
  void* out;  // == in for in-place calls; otherwise channels [rotary_dim, head_dim) are copied
  int64_t num_heads;
  int64_t in_head_stride;  // elements
  int64_t out_head_stride;
};

using RotateHeadsFn = void (*)(const RotateParams& params, const HeadRange& heads);

// The portable scalar implementation: the reference and the fallback of every other kernel.
RotateHeadsFn portable_kernel(DType dtype, Layout layout);

// The vectorised implementation for the best SIMD target of this CPU (Highway runtime dispatch).
// Same results, bit for bit, as portable_kernel.
RotateHeadsFn simd_kernel(DType dtype, Layout layout);

}  // namespace rotary::detail
