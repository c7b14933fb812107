// rotary._rotary: the nanobind layer between Python and the C++ library.
//
// Thin by design. It turns NumPy arrays and DLPack tensors (PyTorch, ...) into rotary views without
// copying, checks what only it can see (device, element type, dimension count, strides that the
// library's tokens x heads x head_dim view can express), and maps rotary::Error to rotary.Error, a
// ValueError with the same message. Defaults, positions handling and documentation live in the
// Python package (python/rotary).
//
// One unit per concept (binding.h lists them); this one only registers them, in an order where
// every type is registered before a function that names it in its signature.
#include <nanobind/nanobind.h>

#include "binding.h"

NB_MODULE(_rotary, m) {
  m.doc() = "rotary's compiled core; use the `rotary` package, not this module directly.";
  // project(rotary VERSION ...) in CMakeLists.txt; rotary.__version__ is this.
  m.attr("__version__") = ROTARY_VERSION;
  // Ropes held by PyTorch's autograd graph (rotary.torch) can outlive this module at interpreter
  // exit; nanobind would report them as leaks although nothing leaks while the program runs.
  nanobind::set_leak_warnings(false);

  rotary::python::bind_errors(m);    // rotary.Error first: everything after raises it
  rotary::python::bind_config(m);    // RopeConfig, before Rope and the readers that return it
  rotary::python::bind_rope(m);      // Rope, before KvCache.append that takes one
  rotary::python::bind_cuda(m);      // has_cuda_backend (Rope.rotate_cuda is bound with Rope)
  rotary::python::bind_kv_cache(m);  // BlockTable, KvCache, attention
  rotary::python::bind_qk_norm(m);   // rms_norm_rotate, after Rope
  rotary::python::bind_verify(m);    // the verifier's core, after RopeConfig
  rotary::python::bind_decay(m);     // the long-term decay bound
  rotary::python::bind_packing(m);   // packed sequences and context-parallel shards
  rotary::python::bind_gguf(m);      // the rotation llama.cpp applies, after RopeConfig
}
