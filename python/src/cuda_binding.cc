// The CUDA backend (built when CMake finds a CUDA compiler: ROTARY_HAVE_CUDA): the Rope's device
// copy and the rotation of CUDA tensors. q, k and their outputs lie on one CUDA device, positions
// there too (int32/int64, flattened axis-major by the Python layer), `sequence_length` =
// max(positions) + 1 when the frequencies follow it (the Python layer computes it), `stream` a
// cudaStream_t as an integer. Nothing is synchronised; the launches are ordered on `stream`.
// Without the backend, a CUDA tensor is refused (never copied to the CPU).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "binding.h"

namespace rotary::python {

namespace {

bool has_cuda_backend() {
#ifdef ROTARY_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

#ifdef ROTARY_HAVE_CUDA
constexpr int kCuda = nb::device::cuda::value;

// q_out, k and k_out lie on the CUDA device of q.
void check_same_device(const RotateOperands& ops) {
  const auto check_device = [&](int32_t id, const char* name) {
    if (id != ops.q_in.device_id()) invalid(name, "expected on the CUDA device of q");
  };
  check_device(ops.q_out.device_id(), "q_out");
  if (ops.has_k) {
    check_device(ops.k_in.device_id(), "k");
    check_device(ops.k_out.device_id(), "k_out");
  }
}

// The positions of a CUDA call: a contiguous 1-d int32/int64 tensor on the device of q.
struct DevicePositions {
  ReadArray array;
  PositionType type = PositionType::kInt64;
  std::size_t itemsize() const { return type == PositionType::kInt64 ? 8 : 4; }
};

// `positions_obj` checked against q: device, shape, element type, one position per token and axis.
DevicePositions device_positions(nb::handle positions_obj, const RotateOperands& ops,
                                 int num_axes) {
  DevicePositions pos;
  ReadArray& a = pos.array;
  if (!nb::try_cast(positions_obj, a, /*convert=*/false) || a.ndim() != 1 ||
      (a.shape(0) > 1 && a.stride(0) != 1)) {
    invalid("positions", "expected a contiguous 1-d int32/int64 CUDA tensor");
  }
  if (a.device_type() != kCuda || a.device_id() != ops.q_in.device_id()) {
    invalid("positions", "expected on the CUDA device of q");
  }
  if (a.dtype() == nb::dtype<int64_t>()) {
    pos.type = PositionType::kInt64;
  } else if (a.dtype() == nb::dtype<int32_t>()) {
    pos.type = PositionType::kInt32;
  } else {
    invalid("positions", "expected int32 or int64, got " + dtype_name(a.dtype()));
  }
  const int64_t total = ops.q.batch * ops.q.tokens;
  if (static_cast<int64_t>(a.shape(0)) != total * num_axes) {
    invalid("positions", "expected one position per token (" + std::to_string(total) + "), got " +
                             std::to_string(a.shape(0) / static_cast<std::size_t>(num_axes)));
  }
  return pos;
}
#endif

}  // namespace

PyRope with_cuda(Rope rope, bool fixed) {
  PyRope r{std::move(rope), fixed};
#ifdef ROTARY_HAVE_CUDA
  try {
    r.cuda = std::make_shared<CudaRope>(r.rope);
  } catch (const Error& e) {
    r.cuda_unavailable = e.what();
  }
#endif
  return r;
}

void rotate_cuda(const PyRope& self, nb::handle q_obj, nb::handle q_out_obj, nb::handle k_obj,
                 nb::handle k_out_obj, nb::handle positions_obj, int num_axes,
                 const std::string& layout, bool inverse, int64_t sequence_length,
                 std::uintptr_t stream) {
#ifndef ROTARY_HAVE_CUDA
  (void)self, (void)q_obj, (void)q_out_obj, (void)k_obj, (void)k_out_obj, (void)positions_obj;
  (void)num_axes, (void)layout, (void)inverse, (void)sequence_length, (void)stream;
  invalid("q", "is on a CUDA device; this build of rotary has no CUDA backend (no copy is made)");
#else
  if (!self.cuda) invalid("q", "the CUDA backend cannot run this RoPE: " + self.cuda_unavailable);
  const RotateOperands ops = rotate_operands(q_obj, q_out_obj, k_obj, k_out_obj, layout, kCuda);
  check_same_device(ops);
  const DevicePositions pos = device_positions(positions_obj, ops, num_axes);
  const Direction direction = inverse ? Direction::kInverse : Direction::kForward;
  auto* cuda_stream = reinterpret_cast<CudaStream>(stream);
  const Batched& q = ops.q;
  const int64_t total = q.batch * q.tokens;
  nb::gil_scoped_release release;
  if (ops.folds()) {
    const CudaPositions p{pos.array.data(), pos.type, total, num_axes, total, sequence_length};
    self.cuda->rotate(q.folded(), ops.qo.folded(), ops.k_folded(), ops.ko_folded(), p, direction,
                      cuda_stream);
    return;
  }
  check_batched_memory(ops);
  // One launch per batch entry; all on one stream, no synchronisation.
  const auto* first = static_cast<const char*>(pos.array.data());
  for (int64_t b = 0; b < q.batch; ++b) {
    const CudaPositions p{first + static_cast<std::size_t>(b * q.tokens) * pos.itemsize(),
                          pos.type,
                          q.tokens,
                          num_axes,
                          total,
                          sequence_length};
    self.cuda->rotate(q.entry(b), ops.qo.entry(b), ops.k_entry(b), ops.ko_entry(b), p, direction,
                      cuda_stream);
  }
#endif
}

void bind_cuda(nb::module_& m) { m.def("has_cuda_backend", &has_cuda_backend); }

}  // namespace rotary::python
