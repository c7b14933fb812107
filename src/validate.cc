#include "validate.h"

#include <algorithm>
#include <array>
#include <limits>
#include <span>

#include "overlap.h"
#include "rotary/error.h"

namespace rotary::detail {

[[noreturn]] void invalid(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

[[noreturn]] void invalid_config(const std::string& field, const std::string& message) {
  throw Error(ErrorCode::kInvalidConfig, field, message);
}

namespace {

// a * b + c without overflow, or an error naming `what`.
int64_t checked_mul_add(int64_t a, int64_t b, int64_t c, const std::string& what) {
  int64_t product, sum;
  if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum)) {
    invalid(what, "sizes and strides overflow the address space");
  }
  return sum;
}

}  // namespace

void check_view(const ConstTensorView& v, const std::string& name, int64_t head_dim) {
  if (v.num_tokens < 0)
    invalid(name + ".num_tokens", "expected >= 0, got " + std::to_string(v.num_tokens));
  if (v.num_heads < 0)
    invalid(name + ".num_heads", "expected >= 0, got " + std::to_string(v.num_heads));
  if (v.head_dim != head_dim) {
    invalid(name + ".head_dim", "expected the configuration's head_dim " +
                                    std::to_string(head_dim) + ", got " +
                                    std::to_string(v.head_dim));
  }
  if (v.token_stride < 0)
    invalid(name + ".token_stride", "expected >= 0, got " + std::to_string(v.token_stride));
  if (v.head_stride < 0)
    invalid(name + ".head_stride", "expected >= 0, got " + std::to_string(v.head_stride));
  if (v.empty()) return;
  if (v.data == nullptr) invalid(name + ".data", "null pointer for a non-empty tensor");
  // Last element offset + 1, in elements, then in bytes.
  int64_t extent = checked_mul_add(v.num_tokens - 1, v.token_stride, v.head_dim, name);
  extent = checked_mul_add(v.num_heads - 1, v.head_stride, extent, name);
  const int64_t bytes = checked_mul_add(extent, static_cast<int64_t>(dtype_size(v.dtype)), 0, name);
  const auto begin = reinterpret_cast<std::uintptr_t>(v.data);
  if (begin > std::numeric_limits<std::uintptr_t>::max() - static_cast<std::uintptr_t>(bytes)) {
    invalid(name + ".data", "the tensor would extend past the end of the address space");
  }
}

void check_no_self_overlap(const ConstTensorView& v, const std::string& name) {
  if (v.empty()) return;
  // Sorting the dimensions by stride, each stride must step past everything the smaller ones
  // span; that suffices for every element to have its own address.
  struct Dim {
    int64_t size, stride;
  };
  std::array<Dim, 3> dims{
      {{v.head_dim, 1}, {v.num_heads, v.head_stride}, {v.num_tokens, v.token_stride}}};
  std::sort(dims.begin(), dims.end(), [](Dim a, Dim b) { return a.stride < b.stride; });
  int64_t span = 1;  // elements covered by the dimensions seen so far
  for (const Dim& d : dims) {
    if (d.size == 1) continue;
    if (d.stride < span) {
      invalid(name, "the output overlaps itself (token_stride " + std::to_string(v.token_stride) +
                        ", head_stride " + std::to_string(v.head_stride) + ", head_dim " +
                        std::to_string(v.head_dim) + ")");
    }
    span = (d.size - 1) * d.stride + span;
  }
}

void check_in_out_shape(const ConstTensorView& in, const ConstTensorView& out,
                        const std::string& in_name, const std::string& out_name) {
  if (in.num_tokens != out.num_tokens || in.num_heads != out.num_heads) {
    invalid(out_name, "expected the shape of " + in_name + " (" + std::to_string(in.num_tokens) +
                          " tokens x " + std::to_string(in.num_heads) + " heads), got " +
                          std::to_string(out.num_tokens) + " x " + std::to_string(out.num_heads));
  }
  if (in.dtype != out.dtype) {
    invalid(out_name + ".dtype", "expected " + std::string(to_string(in.dtype)) + " like " +
                                     in_name + ", got " + std::string(to_string(out.dtype)));
  }
}

int64_t check_positions(const Positions& positions, int64_t num_tokens, int num_axes) {
  if (positions.size() != num_tokens) {
    invalid("positions", "expected one position per token (" + std::to_string(num_tokens) +
                             "), got " + std::to_string(positions.size()));
  }
  const int axes = positions.num_axes();
  if (axes != 1 && axes != num_axes) {
    invalid("positions",
            "expected 1" + (num_axes > 1 ? " or " + std::to_string(num_axes) : std::string()) +
                " position components per token (the config's axes), got " + std::to_string(axes));
  }
  if (num_tokens > 0 && positions.data() == nullptr) invalid("positions", "null pointer");
  int64_t max_position = std::numeric_limits<int64_t>::min();
  for (int a = 0; a < axes; ++a) {
    for (int64_t i = 0; i < num_tokens; ++i) {
      const int64_t p = positions.at(i, a);
      if (p > kMaxAbsPosition || p < -kMaxAbsPosition) {
        invalid("positions[" + (axes > 1 ? std::to_string(a) + "][" : std::string()) +
                    std::to_string(i) + "]",
                "expected |position| <= 2^53, got " + std::to_string(p));
      }
      max_position = std::max(max_position, p);
    }
  }
  return num_tokens == 0 ? 0 : max_position + 1;
}

bool check_rotate_views(const ConstTensorView& q_in, const TensorView& q_out,
                        const ConstTensorView& k_in, const TensorView& k_out, int64_t head_dim) {
  const ConstTensorView q_out_c(q_out), k_out_c(k_out);
  check_view(q_in, "q", head_dim);
  check_view(q_out_c, "q_out", head_dim);
  const bool has_k = !(k_in.num_heads == 0 && k_out.num_heads == 0);
  if (has_k) {
    check_view(k_in, "k", head_dim);
    check_view(k_out_c, "k_out", head_dim);
  }
  check_in_out_shape(q_in, q_out_c, "q", "q_out");
  check_no_self_overlap(q_out_c, "q_out");
  if (has_k) {
    check_in_out_shape(k_in, k_out_c, "k", "k_out");
    check_no_self_overlap(k_out_c, "k_out");
    if (k_in.num_tokens != q_in.num_tokens) {
      invalid("k.num_tokens", "expected as many tokens as q (" + std::to_string(q_in.num_tokens) +
                                  "), got " + std::to_string(k_in.num_tokens));
    }
  }
  const Operand inputs[] = {{"q", strided_bytes(q_in)}, {"k", strided_bytes(k_in)}};
  const Operand outputs[] = {{"q_out", strided_bytes(q_out_c), 0},
                             {"k_out", strided_bytes(k_out_c), 1}};
  const std::size_t count = has_k ? 2 : 1;
  check_no_aliasing(std::span(inputs, count), std::span(outputs, count));
  return has_k;
}

namespace {

// The whole of one cache tensor, as a region.
StridedBytes storage_bytes(const void* data, std::size_t bytes) {
  StridedBytes r;
  r.base = reinterpret_cast<std::uintptr_t>(data);
  r.run_bytes = static_cast<int64_t>(bytes);
  return r;
}

// q is rotated in place and the cache is written: neither may hold a byte append reads or writes
// through another argument.
void check_append_aliasing(const TensorView& q, const ConstTensorView& k, const ConstTensorView& v,
                           const KvStorage& storage) {
  const Operand inputs[] = {
      {"q", strided_bytes(q)}, {"k", strided_bytes(k)}, {"v", strided_bytes(v)}};
  const Operand outputs[] = {{"q", strided_bytes(q), 0},
                             {"the cache's keys", storage_bytes(storage.keys, storage.bytes)},
                             {"the cache's values", storage_bytes(storage.values, storage.bytes)}};
  check_no_aliasing(inputs, outputs);
}

}  // namespace

bool check_append_views(int64_t rope_head_dim, int64_t num_kv_heads, int64_t head_dim, DType dtype,
                        const TensorView& q, const ConstTensorView& k, const ConstTensorView& v,
                        const KvStorage& storage) {
  const int64_t n = k.num_tokens;
  if (rope_head_dim != head_dim) {
    invalid("rope", "head_dim " + std::to_string(rope_head_dim) + " differs from the cache's " +
                        std::to_string(head_dim));
  }
  for (auto [view, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    if (view->num_heads != num_kv_heads) {
      invalid(std::string(name) + ".num_heads",
              "expected the cache's " + std::to_string(num_kv_heads) + " KV heads, got " +
                  std::to_string(view->num_heads));
    }
    if (view->dtype != dtype) {
      invalid(std::string(name) + ".dtype", "expected the cache's " +
                                                std::string(to_string(dtype)) + ", got " +
                                                std::string(to_string(view->dtype)));
    }
    detail::check_view(*view, name, head_dim);
  }
  if (v.num_tokens != n) {
    invalid("v.num_tokens", "expected as many tokens as k (" + std::to_string(n) + "), got " +
                                std::to_string(v.num_tokens));
  }
  const bool has_q = q.num_heads != 0;
  if (has_q) {
    detail::check_view(ConstTensorView(q), "q", head_dim);
    detail::check_no_self_overlap(ConstTensorView(q), "q");
    if (q.num_tokens != n) {
      invalid("q.num_tokens", "expected as many tokens as k (" + std::to_string(n) + "), got " +
                                  std::to_string(q.num_tokens));
    }
  }
  check_append_aliasing(has_q ? q : TensorView{}, k, v, storage);
  return has_q;
}

}  // namespace rotary::detail
