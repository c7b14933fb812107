// What the units of rotary._rotary share: the array argument types, the batched view of a q/k
// tensor, the Rope as Python holds it, and the bind_* functions that NB_MODULE (rotary_ext.cc)
// calls in order.
//
// The units, one concept each:
//   arrays.cc            NumPy / DLPack arguments as rotary views: dtypes, layouts, batching, the
//                        checks only the binding can make (device, strides, overlap).
//   errors_binding.cc    rotary::Error -> rotary.Error.
//   config_binding.cc    RopeConfig, the JSON readers, the layer rules, the multimodal positions.
//   rope_binding.cc      rotary.Rope: construction, frequencies, cos/sin, the CPU rotation.
//   cuda_binding.cc      the CUDA backend: the Rope's device copy and the CUDA rotation.
//   kv_cache_binding.cc  BlockTable, KvCache and attention over a cache.
//   qk_norm_binding.cc   RMSNorm of q and k fused with the rotation (rotary/qk_norm.h).
//   verify_binding.cc    the verifier's core (rotary/verify.h) for rotary.verify.
//   decay_binding.cc     RoFormer's long-term decay bound (rotary/decay.h) for rotary.plot.
//   packing_binding.cc   packed sequences and their context-parallel shards (rotary/packing.h)
//                        for rotary.distributed.
//   gguf_binding.cc      the rotation llama.cpp applies to a GGUF file's metadata
//                        (rotary/gguf_rope.h).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rotary/rotary.h"
#ifdef ROTARY_HAVE_CUDA
#include "rotary/cuda.h"
#endif

namespace rotary::python {

namespace nb = nanobind;

using ReadArray = nb::ndarray<nb::ro>;
using WriteArray = nb::ndarray<>;
using PositionArray = nb::ndarray<nb::ro, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// --- errors_binding.cc ---------------------------------------------------------------------------

// Throws rotary::Error(kInvalidArgument) naming `argument`: every check of the binding reports
// through it, so Python sees rotary.Error with `argument` set, like the library's own checks.
[[noreturn]] void invalid(const std::string& argument, const std::string& message);

// Defines rotary.Error (a ValueError subclass) and translates rotary::Error into it. First, so
// that every later definition raises the Python type.
void bind_errors(nb::module_& m);

// --- arrays.cc -----------------------------------------------------------------------------------

// A DLPack element type as NumPy-like text ("float32", "bfloat16", "int64", ...), for messages.
std::string dtype_name(nb::dlpack::dtype t);

// `h` as a readable array without a copy; anything that is neither a NumPy array nor a DLPack
// tensor is refused, naming `name`.
ReadArray read_array(nb::handle h, const std::string& name);

// `h` as a writable array without a copy; a read-only one is refused, never replaced by a copy that
// would be written and thrown away.
WriteArray write_array(nb::handle h, const std::string& name);

// A q/k tensor as `batch` views of tokens x heads x head_dim with element strides.
struct Batched {
  char* data = nullptr;
  DType dtype = DType::kF32;
  int64_t batch = 1, batch_stride = 0;
  int64_t tokens = 0, token_stride = 0;
  int64_t heads = 0, head_stride = 0;
  int64_t head_dim = 0;

  std::size_t itemsize() const { return dtype_size(dtype); }
  bool empty() const { return batch == 0 || tokens == 0 || heads == 0 || head_dim == 0; }
  // One view covers every batch entry: consecutive batch entries continue the token sequence.
  bool folds() const { return batch <= 1 || tokens <= 1 || batch_stride == tokens * token_stride; }
  TensorView entry(int64_t b) const {
    return {data + b * batch_stride * static_cast<int64_t>(itemsize()),
            dtype,
            tokens,
            heads,
            head_dim,
            token_stride,
            head_stride};
  }
  TensorView folded() const {
    if (tokens == 1 && batch > 1) {
      return {data, dtype, batch, heads, head_dim, batch_stride, head_stride};
    }
    return {data, dtype, batch * tokens, heads, head_dim, token_stride, head_stride};
  }
};

// Describes array `a` (argument `name`) in `layout` ("shd", "hsd", "bshd" or "bhsd"), checking its
// element type, dimension count and head_dim stride. `device_type`: the DLPack device the call runs
// on (CPU, or CUDA for the CUDA backend); an array elsewhere is refused. Defined for ReadArray,
// WriteArray and DirectArray.
template <typename Array>
Batched describe(const Array& a, const std::string& name, const std::string& layout,
                 int device_type = nb::device::cpu::value);

// The q/k arguments of one rotation: the arrays (held for the call) and their batched views.
// k_in, k_out, k and ko are empty when k is None.
struct RotateOperands {
  ReadArray q_in, k_in;
  WriteArray q_out, k_out;
  Batched q, qo, k, ko;
  bool has_k = false;

  // Every operand folds into one view, so the call is one library call.
  bool folds() const { return q.folds() && qo.folds() && (!has_k || (k.folds() && ko.folds())); }
  ConstTensorView k_entry(int64_t b) const {
    return has_k ? ConstTensorView(k.entry(b)) : ConstTensorView{};
  }
  TensorView ko_entry(int64_t b) const { return has_k ? ko.entry(b) : TensorView{}; }
  ConstTensorView k_folded() const {
    return has_k ? ConstTensorView(k.folded()) : ConstTensorView{};
  }
  TensorView ko_folded() const { return has_k ? ko.folded() : TensorView{}; }
};

// Reads and describes q, q_out and (unless k is None) k, k_out in `layout` on `device_type`, and
// checks that they agree on the batch and sequence sizes.
RotateOperands rotate_operands(nb::handle q, nb::handle q_out, nb::handle k, nb::handle k_out,
                               const std::string& layout, int device_type = nb::device::cpu::value);

// Before a rotation that runs batch entry by batch entry: no output overlaps itself, and no output
// shares memory with an input or another output across batch entries (the library's aliasing
// rule, rotary::check_aliasing, over the whole tensors; a per-entry call cannot see q of entry 0
// sharing memory with k of entry 1).
void check_batched_memory(const RotateOperands& ops);

// `num_axes` rows of one component per token, axis-major (the Python layer flattens (A, ...) ids);
// int32 or int64.
Positions positions_view(const PositionArray& p, int num_axes = 1);

// Rope.rotate's direct path (rotate_direct in rope_binding.cc). A DLPack export costs more than a
// decode step's rotation (PyTorch's __dlpack__ alone takes microseconds), so the common arguments
// are read without one: a NumPy array through the buffer protocol, a CPU torch.Tensor through
// torch.utils.dlpack.to_dlpack (one C call, not Tensor.__dlpack__'s Python wrapper). Only plain
// cases are read; for anything else the import says no, writes nothing and raises nothing, and
// Rope.rotate takes the general path, which checks and reports as always.

// A q/k array read directly: describe() reads it like an nb::ndarray (always on the CPU).
struct DirectArray {
  void* ptr = nullptr;
  nb::dlpack::dtype type{};
  std::size_t rank = 0;
  int64_t sizes[4] = {}, element_strides[4] = {};

  int32_t device_type() const { return nb::device::cpu::value; }
  nb::dlpack::dtype dtype() const { return type; }
  std::size_t ndim() const { return rank; }
  std::size_t shape(std::size_t i) const { return static_cast<std::size_t>(sizes[i]); }
  int64_t stride(std::size_t i) const { return element_strides[i]; }
  const void* data() const { return ptr; }
  std::size_t size() const;
};

// One argument read directly, held (a NumPy buffer is released) until the call ends.
class DirectImport {
 public:
  DirectImport() = default;
  DirectImport(const DirectImport&) = delete;
  DirectImport& operator=(const DirectImport&) = delete;
  ~DirectImport();

  // Reads `h` when it is a NumPy ndarray (exactly) of float32/float16 in native byte order, or a
  // torch.Tensor (exactly) on the CPU, strided, float32/float16/bfloat16, without the negative bit
  // or requires_grad, with 3 or 4 dimensions; `writable`: a NumPy array must be writeable. False
  // for anything else (no Python error is left set).
  bool read(nb::handle h, bool writable);
  // Positions: a NumPy ndarray or CPU torch.Tensor (exactly) of int32/int64 with at most 2
  // dimensions, any strides.
  bool read_positions(nb::handle h);
  const DirectArray& array() const { return array_; }
  bool is_torch() const { return torch_; }

 private:
  bool read_as(nb::handle h, bool writable, bool positions);

  DirectArray array_;
  Py_buffer view_{};
  WriteArray torch_array_;  // a torch.Tensor's DLPack export, held for the call
  bool held_ = false;
  bool torch_ = false;
};

// Positions read directly and broadcast to the tokens: a Python int, a list of Python ints, a
// C-contiguous int32/int64 NumPy array or CPU torch.Tensor, whose shape broadcasts to
// `token_shape` (one or two sizes) without more than kMaxDirectPositions positions. Borrowed where
// they already are one per token, else expanded into `owned`.
struct DirectPositions {
  static constexpr int64_t kMaxDirectPositions = int64_t{1} << 20;
  DirectImport source;
  std::vector<int64_t> owned;
  const void* data = nullptr;
  bool is_int64 = true;
  int64_t count = 0;

  bool read(nb::handle h, std::span<const int64_t> token_shape);
  Positions view() const;
};

// Bumps the autograd version counter of q_target and k_target where they are torch.Tensors
// (written through their data pointers, which PyTorch does not see), with
// torch.autograd.graph.increment_version; k_target may be an invalid handle.
void mark_torch_modified(nb::handle q_target, nb::handle k_target);

// rotate_operands' closing check: q, q_out, k and k_out agree on the batch and sequence sizes.
void check_same_tokens(const RotateOperands& ops);

// --- config_binding.cc ---------------------------------------------------------------------------

// RopeConfig, the configuration readers, the layer rules and the multimodal position builders.
void bind_config(nb::module_& m);

// --- rope_binding.cc -----------------------------------------------------------------------------

// A Rope and whether its frequencies were given by the caller (then never switched per call).
struct PyRope {
  PyRope(Rope r, bool f) : rope(std::move(r)), fixed(f) {}
  Rope rope;
  bool fixed;
#ifdef ROTARY_HAVE_CUDA
  // The same frequencies on the device (built with the Rope: no device call), or why not.
  std::shared_ptr<CudaRope> cuda;
  std::string cuda_unavailable;
#endif
};

// rotary.Rope (needs RopeConfig) with its CPU and CUDA rotations.
void bind_rope(nb::module_& m);

// A batch that does not fold into one view, one library call per entry: first what no entry's
// call can see (one position per token, every position, the entries' memory against each other),
// then entry(rope, b, positions of entry b) for each b, `rope` giving the whole call's frequency
// set (a Rope pinned to it where the set depends on the length). Runs without the GIL.
void for_each_entry(const PyRope& self, const RotateOperands& ops, const Positions& positions,
                    const std::function<void(const Rope&, int64_t, const Positions&)>& entry);

// --- cuda_binding.cc -----------------------------------------------------------------------------

// A PyRope for `rope`, with its device copy when the CUDA backend is built and can run it.
PyRope with_cuda(Rope rope, bool fixed);

// Rope.rotate_cuda: the rotation of CUDA tensors, in place or out of place, ordered on `stream`
// (a cudaStream_t as an integer). Refused when this build has no CUDA backend.
void rotate_cuda(const PyRope& self, nb::handle q_obj, nb::handle q_out_obj, nb::handle k_obj,
                 nb::handle k_out_obj, nb::handle positions_obj, int num_axes,
                 const std::string& layout, bool inverse, int64_t sequence_length,
                 std::uintptr_t stream);

// has_cuda_backend().
void bind_cuda(nb::module_& m);

// --- kv_cache_binding.cc -------------------------------------------------------------------------

// BlockTable, KvCache (needs Rope for append) and attention.
void bind_kv_cache(nb::module_& m);

// --- qk_norm_binding.cc --------------------------------------------------------------------------

// rms_norm_rotate: RMSNorm of q and k fused with the rotation (needs Rope).
void bind_qk_norm(nb::module_& m);

// --- verify_binding.cc ---------------------------------------------------------------------------

// The submodule `verifier`: the line fit, the scheme fit, the diagnoses and the precision table
// that rotary.verify and `rotary verify` share (needs RopeConfig).
void bind_verify(nb::module_& m);

// --- decay_binding.cc ----------------------------------------------------------------------------

// long_term_decay_bound(inv_freq, distances): B(r) at each distance, as a float64 array.
void bind_decay(nb::module_& m);

// --- packing_binding.cc --------------------------------------------------------------------------

// packed_tokens, packed_positions, packed_shard_size and packed_shard over int64 NumPy arrays.
void bind_packing(nb::module_& m);

// --- gguf_binding.cc -----------------------------------------------------------------------------

// gguf_rope(metadata, context_length=None) -> (RopeConfig, rope_mode, qk_rows_permuted, notes) and
// gguf_rope_mode(metadata) -> (rope_mode, qk_rows_permuted), and gguf_compare(gguf_config,
// rope_mode, qk_rows_permuted, notes, config, context, architecture) -> (match, findings,
// theta_gguf, theta_config, attention_gguf, attention_config, context) (needs RopeConfig).
void bind_gguf(nb::module_& m);

}  // namespace rotary::python
