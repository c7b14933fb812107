// rotary.rms_norm_rotate's core: RMSNorm of q and k fused with the rotation (rotary/qk_norm.h), in
// place or out of place, over the same array arguments and batching as Rope.rotate; and its
// KvCache variant (rms_norm_rotate_append).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "binding.h"

namespace rotary::python {

namespace {

using WeightArray = nb::ndarray<nb::ro, float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
// One norm as the Python layer passes it: (weight, eps, unit_offset, scope, round_before_weight).
using NormTuple = std::tuple<WeightArray, double, bool, std::string, bool>;

RmsNorm norm_of(const NormTuple& t, const std::string& name) {
  const auto& [weight, eps, unit_offset, scope, round_before_weight] = t;
  RmsNorm norm;
  norm.weight.assign(weight.data(), weight.data() + weight.shape(0));
  norm.eps = static_cast<float>(eps);
  norm.unit_offset = unit_offset;
  if (scope == "head") {
    norm.scope = NormScope::kHead;
  } else if (scope == "token") {
    norm.scope = NormScope::kToken;
  } else {
    invalid(name + ".scope", "expected 'head' or 'token', got '" + scope + "'");
  }
  norm.round_before_weight = round_before_weight;
  return norm;
}

void norm_rotate(const PyRope& self, nb::handle q_obj, nb::handle q_out_obj, nb::handle k_obj,
                 nb::handle k_out_obj, const PositionArray& positions_array, int num_axes,
                 const std::string& layout, const NormTuple& q_norm,
                 const std::optional<NormTuple>& k_norm) {
  const RotateOperands ops = rotate_operands(q_obj, q_out_obj, k_obj, k_out_obj, layout);
  const Positions positions = positions_view(positions_array, num_axes);
  QkNorm norms{norm_of(q_norm, "q_norm"), {}};
  if (ops.has_k) {
    if (!k_norm) invalid("k_norm", "required when k is given");
    norms.k = norm_of(*k_norm, "k_norm");
  }
  nb::gil_scoped_release release;
  if (ops.folds()) {
    rms_norm_rotate(self.rope, norms, ops.q.folded(), ops.qo.folded(), ops.k_folded(),
                    ops.ko_folded(), positions);
    return;
  }
  for_each_entry(self, ops, positions, [&](const Rope& rope, int64_t b, const Positions& entry) {
    rms_norm_rotate(rope, norms, ops.q.entry(b), ops.qo.entry(b), ops.k_entry(b), ops.ko_entry(b),
                    entry);
  });
}

// rms_norm_rotate_append from Python: q (or None), k, v of layout "shd" (tokens, heads, head_dim).
void norm_rotate_append(KvCache& cache, const PyRope& self, nb::handle q_obj, nb::handle k_obj,
                        nb::handle v_obj, const PositionArray& positions_array, int num_axes,
                        BlockTable& sequence, const std::optional<NormTuple>& q_norm,
                        const NormTuple& k_norm) {
  TensorView q;
  if (!q_obj.is_none()) q = describe(write_array(q_obj, "q"), "q", "shd").folded();
  const ConstTensorView k = describe(read_array(k_obj, "k"), "k", "shd").folded();
  const ConstTensorView v = describe(read_array(v_obj, "v"), "v", "shd").folded();
  const Positions positions = positions_view(positions_array, num_axes);
  QkNorm norms{{}, norm_of(k_norm, "k_norm")};
  if (!q_obj.is_none()) {
    if (!q_norm) invalid("q_norm", "required when q is given");
    norms.q = norm_of(*q_norm, "q_norm");
  }
  nb::gil_scoped_release release;
  rms_norm_rotate_append(cache, self.rope, norms, q, k, v, positions, sequence);
}

}  // namespace

void bind_qk_norm(nb::module_& m) {
  m.def("rms_norm_rotate_append", &norm_rotate_append, nb::arg("cache"), nb::arg("rope"),
        nb::arg("q").none(), nb::arg("k"), nb::arg("v"), nb::arg("positions").noconvert(),
        nb::arg("num_axes"), nb::arg("sequence"), nb::arg("q_norm").none(), nb::arg("k_norm"));
  m.def("rms_norm_rotate", &norm_rotate, nb::arg("rope"), nb::arg("q"), nb::arg("q_out"),
        nb::arg("k").none(), nb::arg("k_out").none(), nb::arg("positions").noconvert(),
        nb::arg("num_axes"), nb::arg("layout"), nb::arg("q_norm"), nb::arg("k_norm").none());
}

}  // namespace rotary::python
