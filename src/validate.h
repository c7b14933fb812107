// Argument checks shared by every entry point. Each throws rotary::Error naming the argument.
#pragma once

#include <cstdint>
#include <string>

#include "rotary/tensor.h"

namespace rotary::detail {

// The largest |position| accepted: beyond 2^53 an integer position has no exact float64 value and
// no angle mode can honour it.
inline constexpr int64_t kMaxAbsPosition = int64_t{1} << 53;

// The byte range [begin, end) a non-empty view touches.
struct ByteRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
};

// Checks sizes, strides, pointer and dtype-independent overflow of one view; `name` prefixes the
// error ("q", "k_out", ...). Returns the byte range it covers (empty for an empty view).
ByteRange check_view(const ConstTensorView& view, const std::string& name, int64_t head_dim);

// An output view must not write the same element twice.
void check_no_self_overlap(const ConstTensorView& view, const std::string& name);

// `out` must be exactly `in` (in place) or share no byte with it.
void check_in_out(const ConstTensorView& in, ByteRange in_range, const ConstTensorView& out,
                  ByteRange out_range, const std::string& in_name, const std::string& out_name);

// Range and count checks of positions against a RoPE with `num_axes` position axes (positions carry
// one component, or num_axes); returns max(component) + 1 over every axis (0 when empty), the
// sequence length transformers' per-call rules see.
int64_t check_positions(const Positions& positions, int64_t num_tokens, int num_axes);

// Rope::rotate's checks of its views (CPU and CUDA): each view against head_dim, outputs that are
// their inputs or disjoint from them and do not overlap themselves, K with Q's token count and
// not Q's memory. Returns whether K is given.
bool check_rotate_views(const ConstTensorView& q_in, const TensorView& q_out,
                        const ConstTensorView& k_in, const TensorView& k_out, int64_t head_dim);

// KvCache::append's checks (CPU and CUDA): k and v against a cache of num_kv_heads x head_dim in
// `dtype`, the rope's head_dim, and q (optional: no heads) with as many tokens as k. Returns
// whether q has heads.
bool check_append_views(int64_t rope_head_dim, int64_t num_kv_heads, int64_t head_dim, DType dtype,
                        const TensorView& q, const ConstTensorView& k, const ConstTensorView& v);

}  // namespace rotary::detail
