// rotary::check_aliasing: the caller's batched views, checked as check_view checks one view, then
// as the byte regions that the library's own aliasing rule (overlap.h) decides on.
#include <limits>
#include <string>

#include "overlap.h"
#include "rotary/tensor.h"
#include "validate.h"

namespace rotary {
namespace {

// Bytes from the first entry's start to the last entry's end, or an error naming the tensor.
int64_t batch_extent(const BatchedTensorView& t, int64_t itemsize, const std::string& name) {
  const ConstTensorView& v = t.view;
  int64_t tokens = 0, heads = 0, entry = 0, step = 0, extent = 0;
  const bool overflow = __builtin_mul_overflow(v.num_tokens - 1, v.token_stride, &tokens) ||
                        __builtin_mul_overflow(v.num_heads - 1, v.head_stride, &heads) ||
                        __builtin_add_overflow(tokens, heads, &entry) ||
                        __builtin_add_overflow(entry, v.head_dim, &entry) ||
                        __builtin_mul_overflow(t.batch - 1, t.batch_stride, &step) ||
                        __builtin_add_overflow(step, entry, &extent) ||
                        __builtin_mul_overflow(extent, itemsize, &extent);
  if (overflow) detail::invalid(name, "sizes and strides overflow the address space");
  return extent;
}

// The bytes `operand` touches, after the checks check_view makes of one view, extended to its
// batch dimension.
detail::StridedBytes region(const AliasingOperand& operand) {
  const BatchedTensorView& t = operand.tensor;
  const std::string name(operand.name);
  if (t.batch < 0)
    detail::invalid(name + ".batch", "expected >= 0, got " + std::to_string(t.batch));
  if (t.view.head_dim < 0) {
    detail::invalid(name + ".head_dim", "expected >= 0, got " + std::to_string(t.view.head_dim));
  }
  detail::check_view(t.view, name, t.view.head_dim);
  if (t.batch == 0 || t.view.empty()) return {};
  if (t.batch > 1 && t.batch_stride < 0) {
    detail::invalid(name + ".batch_stride", "expected >= 0, got " + std::to_string(t.batch_stride));
  }
  const auto itemsize = static_cast<int64_t>(dtype_size(t.view.dtype));
  const auto extent = static_cast<std::uintptr_t>(batch_extent(t, itemsize, name));
  const auto begin = reinterpret_cast<std::uintptr_t>(t.view.data);
  if (begin > std::numeric_limits<std::uintptr_t>::max() - extent) {
    detail::invalid(name + ".data", "the tensor would extend past the end of the address space");
  }
  detail::StridedBytes r = detail::strided_bytes(t.view);
  r.dims[2] = detail::byte_dim(t.batch, t.batch_stride, itemsize);
  return r;
}

}  // namespace

void check_aliasing(std::span<const AliasingOperand> inputs,
                    std::span<const AliasingOperand> outputs) {
  constexpr std::size_t kMaxOperands = 4;
  if (inputs.size() > kMaxOperands || outputs.size() > kMaxOperands) {
    detail::invalid("operands", "more than 4 inputs or outputs");
  }
  detail::Operand in[kMaxOperands], out[kMaxOperands];
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    in[i] = {inputs[i].name, region(inputs[i])};
  }
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    out[o] = {outputs[o].name, region(outputs[o]), outputs[o].own_input};
  }
  detail::check_no_aliasing(std::span(in, inputs.size()), std::span(out, outputs.size()));
}

}  // namespace rotary
