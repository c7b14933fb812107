// rotary._rotary: the nanobind layer between Python and the C++ library.
//
// Thin by design. It turns NumPy arrays and DLPack tensors (PyTorch, ...) into rotary views without
// copying, checks what only it can see (device, element type, dimension count, strides that the
// library's tokens x heads x head_dim view can express), and maps rotary::Error to rotary.Error, a
// ValueError with the same message. Defaults, positions handling and documentation live in the
// Python package (python/rotary).
//
// Batches. A 4-d tensor (batch, seq, heads, head_dim) folds into one view when its batch stride is
// seq * seq stride (or batch or seq is 1). PyTorch's (batch, heads, seq, head_dim) does not fold,
// so such tensors are rotated one batch entry at a time, still in place and without a copy.
// Everything a view-by-view call could miss is checked on the whole tensors first, before any
// element is written: all positions, overlap between input and output across batch entries, and an
// output that overlaps itself. One frequency set serves the whole call (dynamic NTK and LongRoPE
// choose it from max(positions) + 1 over every batch entry, as transformers does).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "overlap.h"
#include "rotary/rotary.h"
#ifdef ROTARY_HAVE_CUDA
#include "rotary/cuda.h"
#endif

namespace nb = nanobind;

namespace {

using rotary::DType;
using rotary::Error;
using rotary::ErrorCode;

using ReadArray = nb::ndarray<nb::ro>;
using WriteArray = nb::ndarray<>;
using PositionArray = nb::ndarray<nb::ro, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using FloatMatrix = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

[[noreturn]] void invalid(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

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

// A readable array; anything that is neither a NumPy array nor a DLPack tensor is an error.
ReadArray read_array(nb::handle h, const std::string& name) {
  ReadArray a;
  if (!nb::try_cast(h, a, /*convert=*/false)) {
    refuse_foreign_device(h, name);
    invalid(name, "expected a NumPy array or a DLPack tensor (e.g. torch.Tensor), got " +
                      python_type_name(h));
  }
  return a;
}

// A writable array: a read-only one (e.g. a NumPy array with writeable=False) is refused, never
// replaced by a copy that would be written and thrown away.
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

// A q/k tensor as `batch` views of tokens x heads x head_dim with element strides.
struct Batched {
  char* data = nullptr;
  DType dtype = DType::kF32;
  int64_t batch = 1, batch_stride = 0;
  int64_t tokens = 0, token_stride = 0;
  int64_t heads = 0, head_stride = 0;
  int64_t head_dim = 0;

  std::size_t itemsize() const { return rotary::dtype_size(dtype); }
  bool empty() const { return batch == 0 || tokens == 0 || heads == 0 || head_dim == 0; }
  // One view covers every batch entry: consecutive batch entries continue the token sequence.
  bool folds() const { return batch <= 1 || tokens <= 1 || batch_stride == tokens * token_stride; }
  rotary::TensorView entry(int64_t b) const {
    return {data + b * batch_stride * static_cast<int64_t>(itemsize()),
            dtype,
            tokens,
            heads,
            head_dim,
            token_stride,
            head_stride};
  }
  rotary::TensorView folded() const {
    if (tokens == 1 && batch > 1) {
      return {data, dtype, batch, heads, head_dim, batch_stride, head_stride};
    }
    return {data, dtype, batch * tokens, heads, head_dim, token_stride, head_stride};
  }
};

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

// `device_type`: the DLPack device the call runs on (CPU, or CUDA for the CUDA backend).
template <typename Array>
Batched describe(const Array& a, const std::string& name, const std::string& layout,
                 int device_type = nb::device::cpu::value) {
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

// The bytes a batched tensor touches (nothing when empty).
rotary::detail::StridedBytes strided_bytes(const Batched& t) {
  rotary::detail::StridedBytes r;
  if (t.empty()) return r;
  using rotary::detail::byte_dim;
  const auto size = static_cast<int64_t>(t.itemsize());
  r.base = reinterpret_cast<std::uintptr_t>(t.data);
  r.run_bytes = t.head_dim * size;
  r.dims = {byte_dim(t.batch, t.batch_stride, size), byte_dim(t.tokens, t.token_stride, size),
            byte_dim(t.heads, t.head_stride, size)};
  return r;
}

// The library's aliasing rule (overlap.h) over whole batched tensors, before the first batch
// entry is written: a per-entry check cannot see q of entry 0 sharing memory with k of entry 1.
void check_aliasing(const Batched& q, const Batched& qo, const Batched* k, const Batched* ko) {
  using rotary::detail::Operand;
  const rotary::detail::StridedBytes none;
  const Operand inputs[] = {{"q", strided_bytes(q)}, {"k", k ? strided_bytes(*k) : none}};
  const Operand outputs[] = {{"q_out", strided_bytes(qo), 0},
                             {"k_out", ko ? strided_bytes(*ko) : none, 1}};
  const std::size_t count = k ? 2 : 1;
  rotary::detail::check_no_aliasing(std::span(inputs, count), std::span(outputs, count));
}

// `num_axes` rows of one component per token, axis-major (the Python layer flattens (A, ...) ids).
rotary::Positions positions_view(const PositionArray& p, int num_axes = 1) {
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

rotary::AngleMode parse_angle_mode(const std::string& mode) {
  if (mode == "hf") return rotary::AngleMode::kHf;
  if (mode == "exact") return rotary::AngleMode::kExact;
  invalid("angle_mode", "expected 'hf' or 'exact', got '" + mode + "'");
}

// A Rope and whether its frequencies were given by the caller (then never switched per call).
struct PyRope {
  PyRope(rotary::Rope r, bool f) : rope(std::move(r)), fixed(f) {}
  rotary::Rope rope;
  bool fixed;
#ifdef ROTARY_HAVE_CUDA
  // The same frequencies on the device (built with the Rope: no device call), or why not.
  std::shared_ptr<rotary::CudaRope> cuda;
  std::string cuda_unavailable;
#endif
};

PyRope with_cuda(rotary::Rope rope, bool fixed) {
  PyRope r{std::move(rope), fixed};
#ifdef ROTARY_HAVE_CUDA
  try {
    r.cuda = std::make_shared<rotary::CudaRope>(r.rope);
  } catch (const Error& e) {
    r.cuda_unavailable = e.what();
  }
#endif
  return r;
}

PyRope make_rope(const rotary::RopeConfig& config, const std::string& angle_mode,
                 int64_t cache_positions, std::optional<std::vector<float>> inv_freq,
                 std::optional<double> attention_factor, int max_threads) {
  if (max_threads < 0) {
    invalid("max_threads",
            "expected >= 0 (0: every hardware thread), got " + std::to_string(max_threads));
  }
  rotary::RopeOptions options;
  options.angle_mode = parse_angle_mode(angle_mode);
  options.cache_positions = cache_positions;
  options.max_threads = max_threads;
  if (!inv_freq) {
    if (attention_factor) {
      invalid("attention_factor",
              "give it together with inv_freq (the two replace the config's frequencies)");
    }
    return with_cuda(rotary::Rope(config, options), false);
  }
  rotary::Frequencies f;
  f.inv_freq = std::move(*inv_freq);
  // Without an explicit factor the configuration's own (YaRN's or LongRoPE's) is kept.
  f.attention_factor =
      attention_factor ? *attention_factor : rotary::compute_frequencies(config).attention_factor;
  return with_cuda(rotary::Rope(config, f, options), true);
}

void rotate(const PyRope& self, nb::handle q_obj, nb::handle q_out_obj, nb::handle k_obj,
            nb::handle k_out_obj, const PositionArray& positions_array, int num_axes,
            const std::string& layout, bool inverse) {
  const ReadArray q_in = read_array(q_obj, "q");
  const WriteArray q_out = write_array(q_out_obj, "q_out");
  const bool has_k = !k_obj.is_none();
  ReadArray k_in;
  WriteArray k_out;
  if (has_k) {
    k_in = read_array(k_obj, "k");
    k_out = write_array(k_out_obj, "k_out");
  }
  const Batched q = describe(q_in, "q", layout);
  const Batched qo = describe(q_out, "q_out", layout);
  Batched k, ko;
  if (has_k) {
    k = describe(k_in, "k", layout);
    ko = describe(k_out, "k_out", layout);
  }
  const auto same_tokens = [](const Batched& a, const Batched& b) {
    return a.batch == b.batch && a.tokens == b.tokens;
  };
  if (!same_tokens(q, qo)) invalid("q_out", "expected the batch and sequence sizes of q");
  if (has_k && !(same_tokens(q, k) && same_tokens(k, ko))) {
    invalid(!same_tokens(q, k) ? "k" : "k_out", "expected the batch and sequence sizes of q");
  }
  const rotary::Positions positions = positions_view(positions_array, num_axes);
  const rotary::Direction direction =
      inverse ? rotary::Direction::kInverse : rotary::Direction::kForward;

  const bool folds = q.folds() && qo.folds() && (!has_k || (k.folds() && ko.folds()));
  nb::gil_scoped_release release;
  if (folds) {
    const rotary::TensorView kv = has_k ? ko.folded() : rotary::TensorView{};
    self.rope.rotate(q.folded(), qo.folded(),
                     has_k ? rotary::ConstTensorView(k.folded()) : rotary::ConstTensorView{}, kv,
                     positions, direction);
    return;
  }

  // One call per batch entry; first everything that a per-entry check cannot see.
  if (positions.size() != q.batch * q.tokens) {
    invalid("positions", "expected one position per token (" + std::to_string(q.batch * q.tokens) +
                             "), got " + std::to_string(positions.size()));
  }
  // Checks every position and gives the call's frequency set.
  const rotary::Frequencies call_frequencies = self.rope.frequencies_for(positions);
  check_no_self_overlap(qo, "q_out");
  if (has_k) check_no_self_overlap(ko, "k_out");
  check_aliasing(q, qo, has_k ? &k : nullptr, has_k ? &ko : nullptr);
  const bool per_call = !self.fixed && rotary::frequencies_depend_on_length(self.rope.config());
  std::optional<rotary::Rope> pinned;
  if (per_call) {
    rotary::RopeOptions options = self.rope.options();
    options.cache_positions = 0;
    pinned.emplace(self.rope.config(), call_frequencies, options);
  }
  const rotary::Rope& rope = pinned ? *pinned : self.rope;
  for (int64_t b = 0; b < q.batch; ++b) {
    const rotary::Positions entry_positions = positions.slice(b * q.tokens, q.tokens);
    rope.rotate(q.entry(b), qo.entry(b),
                has_k ? rotary::ConstTensorView(k.entry(b)) : rotary::ConstTensorView{},
                has_k ? ko.entry(b) : rotary::TensorView{}, entry_positions, direction);
  }
}

// KvCache::append from Python: q (or None), k, v of layout "shd" (tokens, heads, head_dim).
void cache_append(rotary::KvCache& cache, const PyRope& self, nb::handle q_obj, nb::handle k_obj,
                  nb::handle v_obj, const PositionArray& positions_array, int num_axes,
                  rotary::BlockTable& sequence) {
  rotary::TensorView q;
  if (!q_obj.is_none()) q = describe(write_array(q_obj, "q"), "q", "shd").folded();
  const rotary::ConstTensorView k = describe(read_array(k_obj, "k"), "k", "shd").folded();
  const rotary::ConstTensorView v = describe(read_array(v_obj, "v"), "v", "shd").folded();
  const rotary::Positions positions = positions_view(positions_array, num_axes);
  nb::gil_scoped_release release;
  cache.append(self.rope, q, k, v, positions, sequence);
}

// A sequence's keys or values, gathered from its blocks into a new (length, heads, head_dim)
// array of the cache's storage bits (bfloat16 as uint16).
nb::ndarray<nb::numpy> gather(const rotary::KvCache& cache, const rotary::BlockTable& sequence,
                              bool keys) {
  const int64_t n = sequence.length, heads = cache.num_kv_heads(), d = cache.head_dim();
  if (n < 0 || n > cache.capacity(sequence)) invalid("sequence.length", "exceeds its blocks");
  const std::size_t row = static_cast<std::size_t>(heads * d) * rotary::dtype_size(cache.dtype());
  auto* out = new unsigned char[static_cast<std::size_t>(n) * row];
  nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<unsigned char*>(p); });
  for (int64_t t = 0; t < n; ++t) {
    const int32_t block = sequence.blocks[static_cast<std::size_t>(t / cache.block_size())];
    const rotary::ConstTensorView view = keys ? cache.keys(block, t % cache.block_size(), 1)
                                              : cache.values(block, t % cache.block_size(), 1);
    std::memcpy(out + static_cast<std::size_t>(t) * row, view.data, row);
  }
  const std::size_t shape[3] = {static_cast<std::size_t>(n), static_cast<std::size_t>(heads),
                                static_cast<std::size_t>(d)};
  const nb::dlpack::dtype type = cache.dtype() == DType::kF32   ? nb::dtype<float>()
                                 : cache.dtype() == DType::kF16 ? nb::dlpack::dtype{2, 16, 1}
                                                                : nb::dtype<uint16_t>();
  return nb::ndarray<nb::numpy>(out, 3, shape, owner, nullptr, type);
}

// Block ids as the library stores them (int32, as paged-attention kernels index their pools); a
// Python int outside that range is named here rather than failing nanobind's overload match.
std::vector<int32_t> block_ids(const std::vector<int64_t>& blocks) {
  std::vector<int32_t> ids;
  ids.reserve(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i] < std::numeric_limits<int32_t>::min() ||
        blocks[i] > std::numeric_limits<int32_t>::max()) {
      invalid("blocks[" + std::to_string(i) + "]",
              "expected a 32-bit block id (at most 2^31 - 1), got " + std::to_string(blocks[i]));
    }
    ids.push_back(static_cast<int32_t>(blocks[i]));
  }
  return ids;
}

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::kF32;
  if (name == "float16") return DType::kF16;
  if (name == "bfloat16") return DType::kBF16;
  invalid("dtype", "expected 'float32', 'float16' or 'bfloat16', got '" + name + "'");
}

// The CUDA backend: q, k and their outputs on one CUDA device, positions there too (int32/int64,
// flattened axis-major by the Python layer), `sequence_length` = max(positions) + 1 when the
// frequencies follow it (the Python layer computes it), `stream` a cudaStream_t as an integer.
// Nothing is synchronised; the launch is ordered on `stream`.
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
  constexpr int kCuda = nb::device::cuda::value;
  const ReadArray q_in = read_array(q_obj, "q");
  const WriteArray q_out = write_array(q_out_obj, "q_out");
  const bool has_k = !k_obj.is_none();
  ReadArray k_in;
  WriteArray k_out;
  if (has_k) {
    k_in = read_array(k_obj, "k");
    k_out = write_array(k_out_obj, "k_out");
  }
  const Batched q = describe(q_in, "q", layout, kCuda);
  const Batched qo = describe(q_out, "q_out", layout, kCuda);
  Batched k, ko;
  if (has_k) {
    k = describe(k_in, "k", layout, kCuda);
    ko = describe(k_out, "k_out", layout, kCuda);
  }
  const auto same_tokens = [](const Batched& a, const Batched& b) {
    return a.batch == b.batch && a.tokens == b.tokens;
  };
  if (!same_tokens(q, qo)) invalid("q_out", "expected the batch and sequence sizes of q");
  if (has_k && !(same_tokens(q, k) && same_tokens(k, ko))) {
    invalid(!same_tokens(q, k) ? "k" : "k_out", "expected the batch and sequence sizes of q");
  }
  const auto check_device = [&](int32_t id, const char* name) {
    if (id != q_in.device_id()) invalid(name, "expected on the CUDA device of q");
  };
  check_device(q_out.device_id(), "q_out");
  if (has_k) {
    check_device(k_in.device_id(), "k");
    check_device(k_out.device_id(), "k_out");
  }
  ReadArray pos;
  if (!nb::try_cast(positions_obj, pos, /*convert=*/false) || pos.ndim() != 1 ||
      (pos.shape(0) > 1 && pos.stride(0) != 1)) {
    invalid("positions", "expected a contiguous 1-d int32/int64 CUDA tensor");
  }
  if (pos.device_type() != kCuda || pos.device_id() != q_in.device_id()) {
    invalid("positions", "expected on the CUDA device of q");
  }
  rotary::PositionType type;
  if (pos.dtype() == nb::dtype<int64_t>()) {
    type = rotary::PositionType::kInt64;
  } else if (pos.dtype() == nb::dtype<int32_t>()) {
    type = rotary::PositionType::kInt32;
  } else {
    invalid("positions", "expected int32 or int64, got " + dtype_name(pos.dtype()));
  }
  const int64_t total = q.batch * q.tokens;
  if (static_cast<int64_t>(pos.shape(0)) != total * num_axes) {
    invalid("positions", "expected one position per token (" + std::to_string(total) + "), got " +
                             std::to_string(pos.shape(0) / static_cast<std::size_t>(num_axes)));
  }
  const rotary::Direction direction =
      inverse ? rotary::Direction::kInverse : rotary::Direction::kForward;
  auto* cuda_stream = reinterpret_cast<rotary::CudaStream>(stream);
  const std::size_t pos_size = type == rotary::PositionType::kInt64 ? 8 : 4;
  const bool folds = q.folds() && qo.folds() && (!has_k || (k.folds() && ko.folds()));
  nb::gil_scoped_release release;
  if (folds) {
    const rotary::CudaPositions p{pos.data(), type, total, num_axes, total, sequence_length};
    self.cuda->rotate(q.folded(), qo.folded(),
                      has_k ? rotary::ConstTensorView(k.folded()) : rotary::ConstTensorView{},
                      has_k ? ko.folded() : rotary::TensorView{}, p, direction, cuda_stream);
    return;
  }
  check_no_self_overlap(qo, "q_out");
  if (has_k) check_no_self_overlap(ko, "k_out");
  check_aliasing(q, qo, has_k ? &k : nullptr, has_k ? &ko : nullptr);
  // One launch per batch entry; all on one stream, no synchronisation.
  for (int64_t b = 0; b < q.batch; ++b) {
    const rotary::CudaPositions p{
        static_cast<const char*>(pos.data()) + static_cast<std::size_t>(b * q.tokens) * pos_size,
        type,
        q.tokens,
        num_axes,
        total,
        sequence_length};
    self.cuda->rotate(q.entry(b), qo.entry(b),
                      has_k ? rotary::ConstTensorView(k.entry(b)) : rotary::ConstTensorView{},
                      has_k ? ko.entry(b) : rotary::TensorView{}, p, direction, cuda_stream);
  }
#endif
}

bool has_cuda_backend() {
#ifdef ROTARY_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

// rotary::Error -> rotary.Error (a ValueError subclass) with the same message, plus `argument`
// (the offending argument or field) and `code` ("invalid_argument", ...).
nb::object& error_type() {
  static nb::object type;
  return type;
}

const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kInvalidConfig:
      return "invalid_config";
    case ErrorCode::kParseError:
      return "parse_error";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kDeviceError:
      return "device_error";
  }
  return "unknown";
}

void translate_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const Error& e) {
    PyObject* instance = PyObject_CallFunction(error_type().ptr(), "s", e.what());
    if (!instance) return;  // the pending Python error explains itself
    nb::handle h(instance);
    nb::setattr(h, "argument", nb::str(e.argument().c_str()));
    nb::setattr(h, "code", nb::str(code_name(e.code())));
    PyErr_SetObject(error_type().ptr(), instance);
    Py_DECREF(instance);
  }
}

std::string config_repr(const rotary::RopeConfig& c) {
  std::string s = "RopeConfig(rope_type='" + std::string(rotary::to_string(c.rope_type)) +
                  "', layout='" + std::string(rotary::to_string(c.layout)) +
                  "', rope_theta=" + nb::repr(nb::float_(c.rope_theta)).c_str() +
                  ", head_dim=" + std::to_string(c.head_dim) +
                  ", rotary_dim=" + std::to_string(c.resolved_rotary_dim()) +
                  ", max_position_embeddings=" + std::to_string(c.max_position_embeddings);
  if (c.factor) s += std::string(", factor=") + nb::repr(nb::float_(*c.factor)).c_str();
  if (c.original_max_position_embeddings) {
    s +=
        ", original_max_position_embeddings=" + std::to_string(*c.original_max_position_embeddings);
  }
  return s + ")";
}

}  // namespace

NB_MODULE(_rotary, m) {
  m.doc() = "rotary's compiled core; use the `rotary` package, not this module directly.";
  // Ropes held by PyTorch's autograd graph (rotary.torch) can outlive this module at interpreter
  // exit; nanobind would report them as leaks although nothing leaks while the program runs.
  nb::set_leak_warnings(false);

  error_type() = nb::borrow(PyErr_NewException("rotary.Error", PyExc_ValueError, nullptr));
  m.attr("Error") = error_type();
  nb::register_exception_translator(&translate_error);

  using rotary::RopeConfig;
  nb::class_<RopeConfig>(m, "RopeConfig")
      .def_prop_ro("rope_type",
                   [](const RopeConfig& c) { return std::string(rotary::to_string(c.rope_type)); })
      .def_prop_ro("layout",
                   [](const RopeConfig& c) { return std::string(rotary::to_string(c.layout)); })
      .def_ro("rope_theta", &RopeConfig::rope_theta)
      .def_ro("head_dim", &RopeConfig::head_dim)
      .def_prop_ro("rotary_dim", &RopeConfig::resolved_rotary_dim)
      .def_ro("partial_rotary_factor", &RopeConfig::partial_rotary_factor)
      .def_ro("max_position_embeddings", &RopeConfig::max_position_embeddings)
      .def_ro("factor", &RopeConfig::factor)
      .def_prop_ro("original_max_position_embeddings",
                   &RopeConfig::resolved_original_max_position_embeddings)
      .def_ro("attention_factor", &RopeConfig::attention_factor)
      .def_ro("beta_fast", &RopeConfig::beta_fast)
      .def_ro("beta_slow", &RopeConfig::beta_slow)
      .def_ro("mscale", &RopeConfig::mscale)
      .def_ro("mscale_all_dim", &RopeConfig::mscale_all_dim)
      .def_ro("truncate", &RopeConfig::truncate)
      .def_ro("short_factor", &RopeConfig::short_factor)
      .def_ro("long_factor", &RopeConfig::long_factor)
      .def_ro("short_mscale", &RopeConfig::short_mscale)
      .def_ro("long_mscale", &RopeConfig::long_mscale)
      .def_ro("low_freq_factor", &RopeConfig::low_freq_factor)
      .def_ro("high_freq_factor", &RopeConfig::high_freq_factor)
      .def_ro("alpha", &RopeConfig::alpha)
      .def_prop_ro("mrope_section", &RopeConfig::resolved_mrope_section)
      .def_prop_ro("mrope_order",
                   [](const RopeConfig& c) {
                     return c.num_axes() > 1 && c.rope_type != rotary::RopeType::kAxial
                                ? nb::object(nb::str(rotary::to_string(c.mrope_order).data()))
                                : nb::none();
                   })
      .def_prop_ro(
          "mrope_interleaved",
          [](const RopeConfig& c) { return c.mrope_order == rotary::MropeOrder::kInterleaved; })
      .def_ro("axial_columns_first", &RopeConfig::axial_columns_first)
      .def_prop_ro("num_axes", &RopeConfig::num_axes)
      .def_prop_ro("pair_axes", &RopeConfig::pair_axes)
      .def_prop_ro("axial_frequencies",
                   [](const RopeConfig& c) {
                     return c.rope_type == rotary::RopeType::kAxial
                                ? nb::object(nb::str(rotary::to_string(c.axial_frequencies).data()))
                                : nb::none();
                   })
      .def("__repr__", &config_repr);

  m.def(
      "vision_config_from_json",
      [](const std::string& text) { return rotary::vision_config_from_json(text); },
      nb::arg("json_text"));
  m.def(
      "mrope_positions",
      [](const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, double>>& segments,
         int64_t spatial_merge_size) {
        // (text_tokens, t, h, w, time_interval) per segment.
        std::vector<rotary::PromptSegment> prompt;
        for (const auto& [text, t, h, w, interval] : segments) {
          prompt.push_back({text, {t, h, w}, interval});
        }
        rotary::MultimodalPositions p = rotary::mrope_positions(prompt, spatial_merge_size);
        return std::make_tuple(std::move(p.ids), p.num_tokens, p.rope_delta);
      },
      nb::arg("segments"), nb::arg("spatial_merge_size"));
  m.def(
      "vision_patch_positions",
      [](const std::vector<std::tuple<int64_t, int64_t, int64_t>>& grids,
         int64_t spatial_merge_size) {
        std::vector<rotary::VisionGrid> g;
        for (const auto& [t, h, w] : grids) g.push_back({t, h, w});
        rotary::MultimodalPositions p = rotary::vision_patch_positions(g, spatial_merge_size);
        return std::make_pair(std::move(p.ids), p.num_tokens);
      },
      nb::arg("grids"), nb::arg("spatial_merge_size"));

  m.def(
      "config_from_json",
      [](const std::string& text, const std::string& layer_type) {
        return rotary::config_from_json(text, layer_type);
      },
      nb::arg("json_text"), nb::arg("layer_type") = "");
  m.def(
      "config_from_json_file",
      [](const std::string& path, const std::string& layer_type) {
        return rotary::config_from_json_file(path, layer_type);
      },
      nb::arg("path"), nb::arg("layer_type") = "");
  m.def(
      "rope_layer_types", [](const std::string& text) { return rotary::rope_layer_types(text); },
      nb::arg("json_text"));
  m.def(
      "layer_ropes",
      [](const std::string& text) {
        nb::list out;
        for (const rotary::LayerRope& layer : rotary::layer_ropes(text)) {
          out.append(nb::make_tuple(layer.layer_type,
                                    layer.rope ? nb::cast(*layer.rope) : nb::none(), layer.reason));
        }
        return out;
      },
      nb::arg("json_text"));

  nb::class_<PyRope>(m, "Rope")
      .def(nb::new_(&make_rope), nb::arg("config"), nb::arg("angle_mode") = "hf",
           nb::arg("cache_positions") = 0, nb::arg("inv_freq") = nb::none(),
           nb::arg("attention_factor") = nb::none(), nb::arg("max_threads") = 0)
      .def_prop_ro("config", [](const PyRope& r) { return r.rope.config(); })
      .def_prop_ro("inv_freq", [](const PyRope& r) { return r.rope.frequencies().inv_freq; })
      .def_prop_ro("attention_factor",
                   [](const PyRope& r) { return r.rope.frequencies().attention_factor; })
      .def_prop_ro("head_dim", [](const PyRope& r) { return r.rope.head_dim(); })
      .def_prop_ro("rotary_dim", [](const PyRope& r) { return r.rope.rotary_dim(); })
      .def_prop_ro("num_axes", [](const PyRope& r) { return r.rope.config().num_axes(); })
      .def_prop_ro("angle_mode",
                   [](const PyRope& r) {
                     return std::string(
                         r.rope.options().angle_mode == rotary::AngleMode::kHf ? "hf" : "exact");
                   })
      .def_prop_ro("cache_positions",
                   [](const PyRope& r) { return r.rope.options().cache_positions; })
      .def_prop_ro("max_threads", [](const PyRope& r) { return r.rope.options().max_threads; })
      .def_prop_ro("fixed_frequencies", [](const PyRope& r) { return r.fixed; })
      .def(
          "frequencies_for",
          [](const PyRope& r, const PositionArray& positions, int num_axes) {
            const rotary::Frequencies f =
                r.rope.frequencies_for(positions_view(positions, num_axes));
            return std::make_pair(f.inv_freq, f.attention_factor);
          },
          nb::arg("positions").noconvert(), nb::arg("num_axes"))
      .def(
          "cos_sin",
          [](const PyRope& r, const PositionArray& positions, int num_axes, FloatMatrix cos,
             FloatMatrix sin) {
            const rotary::Positions p = positions_view(positions, num_axes);
            const int64_t rows = p.size();
            const int64_t half = r.rope.rotary_dim() / 2;
            for (auto [a, name] : {std::pair{&cos, "cos"}, std::pair{&sin, "sin"}}) {
              if (static_cast<int64_t>(a->shape(0)) != rows ||
                  static_cast<int64_t>(a->shape(1)) != half) {
                invalid(name, "expected shape (" + std::to_string(rows) + ", " +
                                  std::to_string(half) + ")");
              }
            }
            nb::gil_scoped_release release;
            r.rope.cos_sin(p, {cos.data(), cos.size()}, {sin.data(), sin.size()});
          },
          nb::arg("positions").noconvert(), nb::arg("num_axes"), nb::arg("cos").noconvert(),
          nb::arg("sin").noconvert())
      .def("rotate", &rotate, nb::arg("q"), nb::arg("q_out"), nb::arg("k").none(),
           nb::arg("k_out").none(), nb::arg("positions").noconvert(), nb::arg("num_axes"),
           nb::arg("layout"), nb::arg("inverse"))
      .def("rotate_cuda", &rotate_cuda, nb::arg("q"), nb::arg("q_out"), nb::arg("k").none(),
           nb::arg("k_out").none(), nb::arg("positions"), nb::arg("num_axes"), nb::arg("layout"),
           nb::arg("inverse"), nb::arg("sequence_length"), nb::arg("stream"))
      .def_prop_ro("length_dependent", [](const PyRope& r) {
        return !r.fixed && rotary::frequencies_depend_on_length(r.rope.config());
      });
  m.def("has_cuda_backend", &has_cuda_backend);

  nb::class_<rotary::BlockTable>(m, "BlockTable")
      .def(nb::init<>())
      .def(
          "__init__",
          [](rotary::BlockTable* t, const std::vector<int64_t>& blocks, int64_t length) {
            new (t) rotary::BlockTable{block_ids(blocks), length};
          },
          nb::arg("blocks"), nb::arg("length") = 0)
      .def_prop_rw(
          "blocks", [](const rotary::BlockTable& t) { return t.blocks; },
          [](rotary::BlockTable& t, const std::vector<int64_t>& blocks) {
            t.blocks = block_ids(blocks);
          })
      .def_rw("length", &rotary::BlockTable::length)
      .def("__repr__", [](const rotary::BlockTable& t) {
        std::string s = "BlockTable(blocks=[";
        for (std::size_t i = 0; i < t.blocks.size(); ++i)
          s += (i ? ", " : "") + std::to_string(t.blocks[i]);
        return s + "], length=" + std::to_string(t.length) + ")";
      });

  nb::class_<rotary::KvCache>(m, "KvCache")
      .def_static(
          "contiguous",
          [](int64_t capacity, int64_t heads, int64_t head_dim, const std::string& dtype) {
            return rotary::KvCache::contiguous(capacity, heads, head_dim, parse_dtype(dtype));
          },
          nb::arg("capacity"), nb::arg("num_kv_heads"), nb::arg("head_dim"), nb::arg("dtype"))
      .def_static(
          "paged",
          [](int64_t blocks, int64_t block_size, int64_t heads, int64_t head_dim,
             const std::string& dtype) {
            return rotary::KvCache::paged(blocks, block_size, heads, head_dim, parse_dtype(dtype));
          },
          nb::arg("num_blocks"), nb::arg("block_size"), nb::arg("num_kv_heads"),
          nb::arg("head_dim"), nb::arg("dtype"))
      .def_prop_ro("num_blocks", &rotary::KvCache::num_blocks)
      .def_prop_ro("block_size", &rotary::KvCache::block_size)
      .def_prop_ro("num_kv_heads", &rotary::KvCache::num_kv_heads)
      .def_prop_ro("head_dim", &rotary::KvCache::head_dim)
      .def_prop_ro(
          "dtype",
          [](const rotary::KvCache& c) { return std::string(rotary::to_string(c.dtype())); })
      .def("capacity", &rotary::KvCache::capacity, nb::arg("sequence"))
      .def("append", &cache_append, nb::arg("rope"), nb::arg("q").none(), nb::arg("k"),
           nb::arg("v"), nb::arg("positions").noconvert(), nb::arg("num_axes"), nb::arg("sequence"))
      .def(
          "keys",
          [](const rotary::KvCache& c, const rotary::BlockTable& t) { return gather(c, t, true); },
          nb::arg("sequence"))
      .def(
          "values",
          [](const rotary::KvCache& c, const rotary::BlockTable& t) { return gather(c, t, false); },
          nb::arg("sequence"));

  m.def(
      "attention",
      [](nb::handle q_obj, const rotary::KvCache& cache, const rotary::BlockTable& sequence,
         int64_t first_index, double scale, int64_t sliding_window) {
        const rotary::ConstTensorView q = describe(read_array(q_obj, "q"), "q", "shd").folded();
        const auto n = static_cast<std::size_t>(q.num_tokens * q.num_heads * q.head_dim);
        auto* out = new float[n];
        nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
        {
          nb::gil_scoped_release release;
          rotary::attention(q, cache, sequence, first_index, {out, n},
                            {.scale = scale, .sliding_window = sliding_window});
        }
        const std::size_t shape[3] = {static_cast<std::size_t>(q.num_tokens),
                                      static_cast<std::size_t>(q.num_heads),
                                      static_cast<std::size_t>(q.head_dim)};
        return nb::ndarray<nb::numpy, float>(out, 3, shape, owner);
      },
      nb::arg("q"), nb::arg("cache"), nb::arg("sequence"), nb::arg("first_index"), nb::arg("scale"),
      nb::arg("sliding_window"));
}
