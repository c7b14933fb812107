// NumPy arrays and DLPack tensors (PyTorch, ...) as rotary views, without copying: the checks only
// the binding can make (device, element type, dimension count, strides that the library's tokens x
// heads x head_dim view can express).
//
// Batches. A 4-d tensor (batch, seq, heads, head_dim) folds into one view when its batch stride is
// seq * seq stride (or batch or seq is 1). PyTorch's (batch, heads, seq, head_dim) does not fold,
// so such tensors are rotated one batch entry at a time, still in place and without a copy.
// Everything a view-by-view call could miss is checked on the whole tensors first, before any
// element is written: all positions, overlap between input and output across batch entries, and an
// output that overlaps itself. One frequency set serves the whole call (dynamic NTK and LongRoPE
// choose it from max(positions) + 1 over every batch entry, as transformers does).
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "binding.h"
#include "rotary/tensor.h"

namespace rotary::python {

namespace {

DType storage_type(nb::dlpack::dtype t, const std::string& name) {
  if (t.lanes == 1 && t.bits == 16 &&
      t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat)) {
    return DType::kBF16;
  }
  if (t.lanes == 1 && t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float)) {
    if (t.bits == 32) return DType::kF32;
    if (t.bits == 16) return DType::kF16;
  }
  invalid(name + ".dtype", "expected float32, float16 or bfloat16, got " + dtype_name(t) +
                               " (rotary computes in float32 and stores f32/f16/bf16 only)");
}

std::string python_type_name(nb::handle h) { return nb::type_name(h.type()).c_str(); }

// A tensor DLPack cannot export because of where it lives (PyTorch's meta device, ...) is refused
// by its device, which is what the user must change.
void refuse_foreign_device(nb::handle h, const std::string& name) {
  if (!nb::hasattr(h, "device")) return;
  const nb::object device = h.attr("device");
  if (!nb::hasattr(device, "type")) return;
  const std::string type = nb::str(device.attr("type")).c_str();
  if (type == "cpu" || type == "cuda") return;
  invalid(name, "is on the '" + type +
                    "' device; rotary rotates CPU tensors (and CUDA tensors with its CUDA "
                    "backend) where they lie, and never copies");
}

std::string device_name(int device_type) {
  switch (device_type) {
    case nb::device::cuda::value:
      return "CUDA";
    case nb::device::cuda_host::value:
      return "CUDA host (pinned)";
    case nb::device::cuda_managed::value:
      return "CUDA managed";
    case nb::device::rocm::value:
      return "ROCm";
    case nb::device::metal::value:
      return "Metal";
    case nb::device::oneapi::value:
      return "oneAPI";
    default:
      return "non-CPU (DLPack device type " + std::to_string(device_type) + ")";
  }
}

// The axes of each layout name: (batch or -1, seq, heads); head_dim is always last.
struct Axes {
  int batch, seq, heads;
};

Axes layout_axes(const std::string& layout) {
  if (layout == "shd") return {-1, 0, 1};
  if (layout == "hsd") return {-1, 1, 0};
  if (layout == "bshd") return {0, 1, 2};
  if (layout == "bhsd") return {0, 2, 1};
  invalid("layout",
          "expected 'shd' or 'hsd' (3-d) or 'bshd' or 'bhsd' (4-d), got '" + layout + "'");
}

// Each element of `t` has its own address (the library's check, over four dimensions).
void check_no_self_overlap(const Batched& t, const std::string& name) {
  struct Dim {
    int64_t size, stride;
  };
  std::array<Dim, 4> dims{{{t.head_dim, 1},
                           {t.heads, t.head_stride},
                           {t.tokens, t.token_stride},
                           {t.batch, t.batch_stride}}};
  std::sort(dims.begin(), dims.end(), [](Dim a, Dim b) { return a.stride < b.stride; });
  int64_t span = 1;
  for (const Dim& d : dims) {
    if (d.size == 1) continue;
    if (d.stride < span) invalid(name, "the output overlaps itself (e.g. an expanded tensor)");
    span = (d.size - 1) * d.stride + span;
  }
}

BatchedTensorView batched_view(const Batched& t) {
  return {ConstTensorView(t.data, t.dtype, t.tokens, t.heads, t.head_dim, t.token_stride,
                          t.head_stride),
          t.batch, t.batch_stride};
}

// The library's aliasing rule over whole batched tensors, before the first batch entry is
// written: a per-entry check cannot see q of entry 0 sharing memory with k of entry 1.
void check_aliasing(const Batched& q, const Batched& qo, const Batched* k, const Batched* ko) {
  const AliasingOperand inputs[] = {{"q", batched_view(q)},
                                    {"k", k ? batched_view(*k) : BatchedTensorView{}}};
  const AliasingOperand outputs[] = {{"q_out", batched_view(qo), 0},
                                     {"k_out", ko ? batched_view(*ko) : BatchedTensorView{}, 1}};
  const std::size_t count = k ? 2 : 1;
  rotary::check_aliasing(std::span(inputs, count), std::span(outputs, count));
}

}  // namespace

std::string dtype_name(nb::dlpack::dtype t) {
  std::string name;
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
    case nb::dlpack::dtype_code::Int:
      name = "int";
      break;
    case nb::dlpack::dtype_code::UInt:
      name = "uint";
      break;
    case nb::dlpack::dtype_code::Float:
      name = "float";
      break;
    case nb::dlpack::dtype_code::Bfloat:
      name = "bfloat";
      break;
    case nb::dlpack::dtype_code::Complex:
      name = "complex";
      break;
    case nb::dlpack::dtype_code::Bool:
      return "bool";
    default:
      name = "code" + std::to_string(t.code) + "_";
      break;
  }
  return name + std::to_string(t.bits) + (t.lanes == 1 ? "" : "x" + std::to_string(t.lanes));
}

ReadArray read_array(nb::handle h, const std::string& name) {
  ReadArray a;
  if (!nb::try_cast(h, a, /*convert=*/false)) {
    refuse_foreign_device(h, name);
    invalid(name, "expected a NumPy array or a DLPack tensor (e.g. torch.Tensor), got " +
                      python_type_name(h));
  }
  return a;
}

WriteArray write_array(nb::handle h, const std::string& name) {
  WriteArray a;
  if (nb::try_cast(h, a, /*convert=*/false)) return a;
  refuse_foreign_device(h, name);
  ReadArray ro;
  if (nb::try_cast(h, ro, /*convert=*/false)) {
    invalid(name,
            "is read-only; rotary writes the result into it (pass a writable array; for an "
            "out-of-place rotation, writable q_out / k_out)");
  }
  invalid(name, "expected a NumPy array or a DLPack tensor (e.g. torch.Tensor), got " +
                    python_type_name(h));
}

template <typename Array>
Batched describe(const Array& a, const std::string& name, const std::string& layout,
                 int device_type) {
  if (device_type == nb::device::cuda::value && a.device_type() != device_type) {
    invalid(name, "is on a " + device_name(a.device_type()) +
                      " device; the CUDA call needs every tensor on the CUDA device of q");
  }
  if (device_type == nb::device::cpu::value && a.device_type() != nb::device::cpu::value) {
    invalid(name, "is on a " + device_name(a.device_type()) +
                      " device; this build of rotary runs on the CPU only (no copy is made)");
  }
  Batched t;
  t.dtype = storage_type(a.dtype(), name);
  const Axes axes = layout_axes(layout);
  const auto ndim = static_cast<int>(a.ndim());
  if (ndim != static_cast<int>(layout.size())) {
    invalid(name, "expected " + std::to_string(layout.size()) + " dimensions for layout '" +
                      layout + "', got " + std::to_string(ndim));
  }
  const auto size = [&](int axis) {
    return static_cast<int64_t>(a.shape(static_cast<std::size_t>(axis)));
  };
  const auto stride = [&](int axis) { return a.stride(static_cast<std::size_t>(axis)); };
  t.data = static_cast<char*>(const_cast<void*>(static_cast<const void*>(a.data())));
  t.head_dim = size(ndim - 1);
  // An empty array addresses nothing and its strides are arbitrary (NumPy exports zeros): a no-op.
  const bool empty = a.size() == 0;
  if (!empty && t.head_dim > 1 && stride(ndim - 1) != 1) {
    invalid(name, "the last dimension (head_dim) must be contiguous (stride 1), got stride " +
                      std::to_string(stride(ndim - 1)) +
                      "; rotary never copies: pass x.contiguous() if a copy is what you want");
  }
  t.tokens = size(axes.seq);
  t.token_stride = empty ? 0 : stride(axes.seq);
  t.heads = size(axes.heads);
  t.head_stride = empty ? 0 : stride(axes.heads);
  if (axes.batch >= 0) {
    t.batch = size(axes.batch);
    t.batch_stride = empty ? 0 : stride(axes.batch);
    if (t.batch > 1 && t.batch_stride < 0) {
      invalid(name + ".batch_stride", "expected >= 0, got " + std::to_string(t.batch_stride));
    }
  }
  return t;
}

template Batched describe(const ReadArray&, const std::string&, const std::string&, int);
template Batched describe(const WriteArray&, const std::string&, const std::string&, int);

RotateOperands rotate_operands(nb::handle q, nb::handle q_out, nb::handle k, nb::handle k_out,
                               const std::string& layout, int device_type) {
  RotateOperands ops;
  ops.q_in = read_array(q, "q");
  ops.q_out = write_array(q_out, "q_out");
  ops.has_k = !k.is_none();
  if (ops.has_k) {
    ops.k_in = read_array(k, "k");
    ops.k_out = write_array(k_out, "k_out");
  }
  ops.q = describe(ops.q_in, "q", layout, device_type);
  ops.qo = describe(ops.q_out, "q_out", layout, device_type);
  if (ops.has_k) {
    ops.k = describe(ops.k_in, "k", layout, device_type);
    ops.ko = describe(ops.k_out, "k_out", layout, device_type);
  }
  const auto same_tokens = [](const Batched& a, const Batched& b) {
    return a.batch == b.batch && a.tokens == b.tokens;
  };
  if (!same_tokens(ops.q, ops.qo)) invalid("q_out", "expected the batch and sequence sizes of q");
  if (ops.has_k && !(same_tokens(ops.q, ops.k) && same_tokens(ops.k, ops.ko))) {
    invalid(!same_tokens(ops.q, ops.k) ? "k" : "k_out",
            "expected the batch and sequence sizes of q");
  }
  return ops;
}

void check_batched_memory(const RotateOperands& ops) {
  check_no_self_overlap(ops.qo, "q_out");
  if (ops.has_k) check_no_self_overlap(ops.ko, "k_out");
  check_aliasing(ops.q, ops.qo, ops.has_k ? &ops.k : nullptr, ops.has_k ? &ops.ko : nullptr);
}

Positions positions_view(const PositionArray& p, int num_axes) {
  const auto t = p.dtype();
  const auto n = static_cast<std::size_t>(p.shape(0));
  if (t == nb::dtype<int64_t>()) {
    return {std::span<const int64_t>(static_cast<const int64_t*>(p.data()), n), num_axes};
  }
  if (t == nb::dtype<int32_t>()) {
    return {std::span<const int32_t>(static_cast<const int32_t*>(p.data()), n), num_axes};
  }
  invalid("positions", "expected int32 or int64, got " + dtype_name(t));
}

}  // namespace rotary::python
