// Argument checks shared by every entry point. Each throws rotary::Error naming the argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "rotary/tensor.h"

namespace rotary::detail {

// Throws Error(kInvalidArgument) naming `argument`: how the library refuses a caller's argument.
[[noreturn]] void invalid(const std::string& argument, const std::string& message);
// Throws Error(kInvalidConfig) naming `field`: how the library refuses a configuration.
[[noreturn]] void invalid_config(const std::string& field, const std::string& message);

// The largest |position| accepted: beyond 2^53 an integer position has no exact float64 value and
// no angle mode can honour it.
inline constexpr int64_t kMaxAbsPosition = int64_t{1} << 53;

// Checks sizes, strides, pointer and dtype-independent overflow of one view; `name` prefixes the
// error ("q", "k_out", ...).
void check_view(const ConstTensorView& view, const std::string& name, int64_t head_dim);

// An output view must not write the same element twice.
void check_no_self_overlap(const ConstTensorView& view, const std::string& name);

// `out` must have the shape and dtype of `in` (whether it may share memory with it is
// check_no_aliasing's question, overlap.h).
void check_in_out_shape(const ConstTensorView& in, const ConstTensorView& out,
                        const std::string& in_name, const std::string& out_name);

// Range and count checks of positions against a RoPE with `num_axes` position axes (positions carry
// one component, or num_axes); returns max(component) + 1 over every axis (0 when empty), the
// sequence length transformers' per-call rules see.
int64_t check_positions(const Positions& positions, int64_t num_tokens, int num_axes);

// Rope::rotate's checks of its views (CPU and CUDA): each view against head_dim, outputs that do
// not overlap themselves, K with Q's token count, and the aliasing rule of overlap.h: q_out is q
// or disjoint from it, k_out is k or disjoint from it, and neither output shares a byte with the
// other output or the other input. Returns whether K is given.
bool check_rotate_views(const ConstTensorView& q_in, const TensorView& q_out,
                        const ConstTensorView& k_in, const TensorView& k_out, int64_t head_dim);

// The memory of a KV cache: keys and values, `bytes` each.
struct KvStorage {
  const void* keys = nullptr;
  const void* values = nullptr;
  std::size_t bytes = 0;
};

// KvCache::append's checks (CPU and CUDA): k and v against a cache of num_kv_heads x head_dim in
// `dtype`, the rope's head_dim, and q (optional: no heads) with as many tokens as k. q, rotated in
// place, must share no byte with k or v, and none of q, k, v may lie in the cache's own storage
// (append writes there). Returns whether q has heads.
bool check_append_views(int64_t rope_head_dim, int64_t num_kv_heads, int64_t head_dim, DType dtype,
                        const TensorView& q, const ConstTensorView& k, const ConstTensorView& v,
                        const KvStorage& storage);

}  // namespace rotary::detail
