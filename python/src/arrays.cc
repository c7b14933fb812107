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
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

namespace {

// An input and its output (`name` and `name`_out). In place (the same object), one writable import
// serves both, so that a DLPack producer exports it once; otherwise, or when that import fails,
// each is read on its own, so that the errors name the argument as before.
void import_pair(nb::handle in, nb::handle out, const std::string& name, ReadArray& in_array,
                 WriteArray& out_array) {
  if (in.is(out) && nb::try_cast(out, out_array, /*convert=*/false)) {
    in_array = ReadArray(out_array);
    return;
  }
  in_array = read_array(in, name);
  out_array = write_array(out, name + "_out");
}

}  // namespace

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
template Batched describe(const DirectArray&, const std::string&, const std::string&, int);

RotateOperands rotate_operands(nb::handle q, nb::handle q_out, nb::handle k, nb::handle k_out,
                               const std::string& layout, int device_type) {
  RotateOperands ops;
  import_pair(q, q_out, "q", ops.q_in, ops.q_out);
  ops.has_k = !k.is_none();
  if (ops.has_k) import_pair(k, k_out, "k", ops.k_in, ops.k_out);
  ops.q = describe(ops.q_in, "q", layout, device_type);
  ops.qo = describe(ops.q_out, "q_out", layout, device_type);
  if (ops.has_k) {
    ops.k = describe(ops.k_in, "k", layout, device_type);
    ops.ko = describe(ops.k_out, "k_out", layout, device_type);
  }
  check_same_tokens(ops);
  return ops;
}

void check_same_tokens(const RotateOperands& ops) {
  const auto same_tokens = [](const Batched& a, const Batched& b) {
    return a.batch == b.batch && a.tokens == b.tokens;
  };
  if (!same_tokens(ops.q, ops.qo)) invalid("q_out", "expected the batch and sequence sizes of q");
  if (ops.has_k && !(same_tokens(ops.q, ops.k) && same_tokens(ops.k, ops.ko))) {
    invalid(!same_tokens(ops.q, ops.k) ? "k" : "k_out",
            "expected the batch and sequence sizes of q");
  }
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

// --- direct reads (Rope.rotate's direct path) ----------------------------------------------------

namespace rotary::python {

namespace {

// The Python objects the direct reads use are looked up once and kept for the process: never
// released, since nothing may touch them after the interpreter has finalized.

// A module's attribute along a dotted path (new reference), or null with no error set.
PyObject* module_attribute(const char* module, std::initializer_list<const char*> path) {
  PyObject* object = PyDict_GetItemString(PyImport_GetModuleDict(), module);
  if (object == nullptr) return nullptr;
  Py_INCREF(object);
  for (const char* name : path) {
    PyObject* next = PyObject_GetAttrString(object, name);
    Py_DECREF(object);
    if (next == nullptr) {
      PyErr_Clear();
      return nullptr;
    }
    object = next;
  }
  return object;
}

// numpy.ndarray once NumPy is imported (the package imports it), else null.
PyTypeObject* numpy_array_type() {
  static PyObject* type = nullptr;
  if (type == nullptr) type = module_attribute("numpy", {"ndarray"});
  return reinterpret_cast<PyTypeObject*>(type);
}

// The torch.Tensor attributes a direct read checks, resolved once on the class: reading one
// through its descriptor skips the attribute lookup (torch.Tensor has a long method resolution
// order). Properties are read through their __get__, methods called with the tensor as their first
// argument: what `tensor.name` and `tensor.name()` run for a torch.Tensor.
struct TensorAttributes {
  PyObject *requires_grad, *layout;  // properties
  PyObject* is_neg;                  // a method
};

struct TorchObjects {
  PyObject *tensor, *strided, *increment_version;
  PyObject* to_dlpack;  // torch.utils.dlpack.to_dlpack
  // torch._C._increment_version, what increment_version calls, or null where torch lacks it.
  PyObject* increment_versions;
  TensorAttributes attributes;
};

// torch's objects once someone has imported torch (rotary never imports it itself), else null: no
// object can then be a torch.Tensor.
const TorchObjects* torch_objects() {
  static const TorchObjects* cached = nullptr;
  if (cached != nullptr) return cached;
  if (PyDict_GetItemString(PyImport_GetModuleDict(), "torch") == nullptr) return nullptr;
  const auto tensor = [](const char* name) { return module_attribute("torch", {"Tensor", name}); };
  const TorchObjects found{module_attribute("torch", {"Tensor"}),
                           module_attribute("torch", {"strided"}),
                           module_attribute("torch", {"autograd", "graph", "increment_version"}),
                           module_attribute("torch", {"utils", "dlpack", "to_dlpack"}),
                           module_attribute("torch", {"_C", "_increment_version"}),
                           {tensor("requires_grad"), tensor("layout"), tensor("is_neg")}};
  const TensorAttributes& a = found.attributes;
  for (PyObject* o : {found.tensor, found.strided, found.increment_version, found.to_dlpack,
                      a.requires_grad, a.layout, a.is_neg}) {
    if (o == nullptr) return nullptr;  // torch still importing: ask again on the next call
  }
  for (PyObject* property : {a.requires_grad, a.layout}) {
    if (Py_TYPE(property)->tp_descr_get == nullptr) return nullptr;
  }
  cached = new TorchObjects(found);
  return cached;
}

// `tensor.property` (new reference, or null with an error set).
PyObject* read_property(PyObject* tensor, PyObject* property) {
  return Py_TYPE(property)->tp_descr_get(property, tensor,
                                         reinterpret_cast<PyObject*>(Py_TYPE(tensor)));
}

// `tensor.method()` (new reference, or null with an error set).
PyObject* call_method(PyObject* tensor, PyObject* method) {
  return PyObject_Vectorcall(method, &tensor, 1, nullptr);
}

bool is_torch_tensor(PyObject* o) {
  const TorchObjects* torch = torch_objects();
  return torch != nullptr && Py_TYPE(o) == reinterpret_cast<PyTypeObject*>(torch->tensor);
}

constexpr nb::dlpack::dtype kF32{static_cast<uint8_t>(nb::dlpack::dtype_code::Float), 32, 1};
constexpr nb::dlpack::dtype kF16{static_cast<uint8_t>(nb::dlpack::dtype_code::Float), 16, 1};
constexpr nb::dlpack::dtype kBF16{static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat), 16, 1};
constexpr nb::dlpack::dtype kI32{static_cast<uint8_t>(nb::dlpack::dtype_code::Int), 32, 1};
constexpr nb::dlpack::dtype kI64{static_cast<uint8_t>(nb::dlpack::dtype_code::Int), 64, 1};

bool same_dtype(nb::dlpack::dtype a, nb::dlpack::dtype b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

// What a direct read accepts: q/k values (3 or 4 dimensions, f32/f16/bf16) or positions (0 to 2
// dimensions, int32/int64).
struct Wanted {
  bool positions;
  std::size_t min_rank() const { return positions ? 0 : 3; }
  std::size_t max_rank() const { return positions ? 2 : 4; }
};

// The element type of a NumPy buffer format in native byte order, or false.
bool numpy_dtype(const Py_buffer& view, Wanted wanted, nb::dlpack::dtype& type) {
  const std::string_view format = view.format != nullptr ? view.format : "";
  const auto match = [&](Py_ssize_t itemsize, std::initializer_list<std::string_view> formats,
                         nb::dlpack::dtype t) {
    if (view.itemsize != itemsize ||
        std::find(formats.begin(), formats.end(), format) == formats.end()) {
      return false;
    }
    type = t;
    return true;
  };
  if (wanted.positions) return match(8, {"l", "q"}, kI64) || match(4, {"i", "l"}, kI32);
  return match(4, {"f"}, kF32) || match(2, {"e"}, kF16);
}

bool read_numpy(PyObject* o, bool writable, Wanted wanted, Py_buffer& view, bool& held,
                DirectArray& a) {
  const int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(o, &view, flags) != 0) return false;
  held = true;
  const auto rank = static_cast<std::size_t>(view.ndim);
  if (rank < wanted.min_rank() || rank > wanted.max_rank()) return false;
  if (!numpy_dtype(view, wanted, a.type)) return false;
  for (std::size_t i = 0; i < rank; ++i) {
    if (view.strides[i] % view.itemsize != 0) return false;
    a.sizes[i] = view.shape[i];
    a.element_strides[i] = view.strides[i] / view.itemsize;
  }
  a.rank = rank;
  a.ptr = view.buf;
  return true;
}

// A strided CPU torch.Tensor without the negative bit, exported with torch.utils.dlpack.to_dlpack:
// one call instead of reading shape, strides, dtype, device and address one attribute at a time,
// and without Tensor.__dlpack__'s Python-level checks (requires_grad and the negative bit, which
// to_dlpack does not refuse, are read here). Values must not require grad: the general path reads
// those through a detached alias, or refuses to write them. `held` keeps the export for the call.
bool read_torch(PyObject* o, Wanted wanted, DirectArray& a, WriteArray& held) {
  const TorchObjects& torch = *torch_objects();
  const TensorAttributes& t = torch.attributes;
  const auto is = [](PyObject* value, PyObject* expected) {
    const nb::object owned = nb::steal(value);
    return value != nullptr && value == expected;
  };
  if (!is(read_property(o, t.requires_grad), Py_False)) return false;
  if (!is(read_property(o, t.layout), torch.strided)) return false;
  if (!is(call_method(o, t.is_neg), Py_False)) return false;
  const nb::object capsule = nb::steal(PyObject_CallOneArg(torch.to_dlpack, o));
  if (!capsule.is_valid() || !nb::try_cast(capsule, held, /*convert=*/false)) return false;
  if (held.device_type() != nb::device::cpu::value) return false;
  const nb::dlpack::dtype type = held.dtype();
  const bool accepted = wanted.positions ? same_dtype(type, kI64) || same_dtype(type, kI32)
                                         : same_dtype(type, kF32) || same_dtype(type, kF16) ||
                                               same_dtype(type, kBF16);
  const std::size_t rank = held.ndim();
  if (!accepted || rank < wanted.min_rank() || rank > wanted.max_rank()) return false;
  for (std::size_t i = 0; i < rank; ++i) {
    a.sizes[i] = static_cast<int64_t>(held.shape(i));
    a.element_strides[i] = held.stride(i);
  }
  a.type = type;
  a.rank = rank;
  a.ptr = held.data();
  return true;
}

}  // namespace

std::size_t DirectArray::size() const {
  std::size_t n = 1;
  for (std::size_t i = 0; i < rank; ++i) n *= static_cast<std::size_t>(sizes[i]);
  return n;
}

DirectImport::~DirectImport() {
  if (held_) PyBuffer_Release(&view_);
}

bool DirectImport::read(nb::handle h, bool writable) {
  return read_as(h, writable, /*positions=*/false);
}

bool DirectImport::read_positions(nb::handle h) {
  return read_as(h, /*writable=*/false, /*positions=*/true);
}

bool DirectImport::read_as(nb::handle h, bool writable, bool positions) {
  const Wanted wanted{positions};
  PyObject* o = h.ptr();
  bool ok = false;
  if (Py_TYPE(o) == numpy_array_type()) {
    ok = read_numpy(o, writable, wanted, view_, held_, array_);
  } else if (is_torch_tensor(o)) {
    torch_ = true;
    ok = read_torch(o, wanted, array_, torch_array_);
  }
  if (!ok) PyErr_Clear();
  return ok;
}

namespace {

// Up to two token dimensions; a source of fewer dimensions is aligned to the right, as NumPy
// broadcasts. The element stride of each token dimension in the source (0 where broadcast), or
// false when the source does not broadcast to the tokens.
bool broadcast_strides(const DirectArray& source, std::span<const int64_t> tokens,
                       int64_t (&strides)[2]) {
  const std::size_t n = tokens.size();
  if (source.rank > n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    strides[i] = 0;
    if (i + source.rank < n) continue;
    const std::size_t axis = i + source.rank - n;
    const int64_t size = source.sizes[axis];
    if (size != tokens[i] && size != 1) return false;
    if (size != 1) strides[i] = source.element_strides[axis];
  }
  return true;
}

template <typename T>
void expand_positions(const T* source, std::span<const int64_t> tokens, const int64_t (&strides)[2],
                      std::vector<int64_t>& out) {
  const int64_t rows = tokens.size() == 2 ? tokens[0] : 1;
  const int64_t columns = tokens.back();
  const int64_t row_stride = tokens.size() == 2 ? strides[0] : 0;
  const int64_t column_stride = strides[tokens.size() - 1];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < columns; ++c) {
      out.push_back(static_cast<int64_t>(source[r * row_stride + c * column_stride]));
    }
  }
}

// A Python int or a list of Python ints (not bools) that all fit int64, as NumPy reads them.
bool python_integers(PyObject* o, std::vector<int64_t>& values, DirectArray& a) {
  const bool scalar = PyLong_CheckExact(o);
  if (!scalar && !PyList_CheckExact(o)) return false;
  const Py_ssize_t n = scalar ? 1 : PyList_GET_SIZE(o);
  if (n > DirectPositions::kMaxDirectPositions) return false;
  values.resize(static_cast<std::size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = scalar ? o : PyList_GET_ITEM(o, i);
    int overflow = 0;
    if (!PyLong_CheckExact(item)) return false;
    values[static_cast<std::size_t>(i)] = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow != 0 || PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
  }
  a.ptr = values.data();
  a.type = kI64;
  a.rank = scalar ? 0 : 1;
  a.sizes[0] = n;
  a.element_strides[0] = 1;
  return true;
}

}  // namespace

bool DirectPositions::read(nb::handle h, std::span<const int64_t> token_shape) {
  count = 1;
  for (int64_t size : token_shape) count *= size;
  if (count > kMaxDirectPositions || token_shape.empty() || token_shape.size() > 2) return false;
  std::vector<int64_t> values;
  DirectArray python;
  const bool from_python = python_integers(h.ptr(), values, python);
  if (!from_python && !source.read_positions(h)) return false;
  const DirectArray& a = from_python ? python : source.array();
  int64_t strides[2];
  if (!broadcast_strides(a, token_shape, strides)) return false;
  is_int64 = same_dtype(a.type, kI64);
  // One per token in C order already: borrowed (a Python list's values move into `owned`).
  const bool contiguous =
      static_cast<int64_t>(a.size()) == count &&
      (token_shape.size() == 1 || token_shape[0] <= 1 || strides[0] == token_shape[1]) &&
      (token_shape.back() <= 1 || strides[token_shape.size() - 1] == 1);
  if (contiguous) {
    if (from_python) owned = std::move(values);
    data = from_python ? owned.data() : a.ptr;
    return true;
  }
  owned.reserve(static_cast<std::size_t>(count));
  if (is_int64) {
    expand_positions(static_cast<const int64_t*>(a.ptr), token_shape, strides, owned);
  } else {
    expand_positions(static_cast<const int32_t*>(a.ptr), token_shape, strides, owned);
  }
  is_int64 = true;
  data = owned.data();
  return true;
}

Positions DirectPositions::view() const {
  const auto n = static_cast<std::size_t>(count);
  if (is_int64) return {std::span<const int64_t>(static_cast<const int64_t*>(data), n), 1};
  return {std::span<const int32_t>(static_cast<const int32_t*>(data), n), 1};
}

void mark_torch_modified(nb::handle q_target, nb::handle k_target) {
  nb::handle tensors[2];
  std::size_t count = 0;
  for (nb::handle target : {q_target, k_target}) {
    if (target.is_valid() && is_torch_tensor(target.ptr())) tensors[count++] = target;
  }
  if (count == 0) return;
  const TorchObjects& torch = *torch_objects();
  // torch.autograd.graph.increment_version is a Python function that wraps one tensor in a tuple
  // for torch._C._increment_version, which takes an iterable of tensors in current PyTorch: calling
  // that once with a tuple of the targets costs half as much (and never passes it a bare tensor,
  // which it would iterate row by row). Older PyTorch takes one tensor there and refuses a tuple,
  // bumping nothing: from the first refusal on, the documented function, per tensor.
  static bool takes_iterable = true;
  if (takes_iterable && torch.increment_versions != nullptr) {
    PyObject* all = count == 2 ? PyTuple_Pack(2, tensors[0].ptr(), tensors[1].ptr())
                               : PyTuple_Pack(1, tensors[0].ptr());
    if (all == nullptr) throw nb::python_error();
    PyObject* done = PyObject_CallOneArg(torch.increment_versions, all);
    Py_DECREF(all);
    if (done != nullptr) {
      Py_DECREF(done);
      return;
    }
    PyErr_Clear();
    takes_iterable = false;
  }
  const nb::handle increment_version(torch.increment_version);
  for (std::size_t i = 0; i < count; ++i) increment_version(tensors[i]);
}

}  // namespace rotary::python
