// rotary.Rope: a Rope built from a RopeConfig (or from given frequencies), its frequencies and
// cos/sin tables, and the rotation of CPU arrays. A 4-d batch that does not fold into one view is
// rotated one batch entry at a time, after the whole-tensor checks (arrays.cc).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "binding.h"

namespace rotary::python {

namespace {

using FloatMatrix = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

AngleMode parse_angle_mode(const std::string& mode) {
  if (mode == "hf") return AngleMode::kHf;
  if (mode == "exact") return AngleMode::kExact;
  invalid("angle_mode", "expected 'hf' or 'exact', got '" + mode + "'");
}

PyRope make_rope(const RopeConfig& config, const std::string& angle_mode, int64_t cache_positions,
                 std::optional<std::vector<float>> inv_freq, std::optional<double> attention_factor,
                 int max_threads) {
  if (max_threads < 0) {
    invalid("max_threads",
            "expected >= 0 (0: every hardware thread), got " + std::to_string(max_threads));
  }
  RopeOptions options;
  options.angle_mode = parse_angle_mode(angle_mode);
  options.cache_positions = cache_positions;
  options.max_threads = max_threads;
  if (!inv_freq) {
    if (attention_factor) {
      invalid("attention_factor",
              "give it together with inv_freq (the two replace the config's frequencies)");
    }
    return with_cuda(Rope(config, options), false);
  }
  Frequencies f;
  f.inv_freq = std::move(*inv_freq);
  // Without an explicit factor the configuration's own (YaRN's or LongRoPE's) is kept.
  f.attention_factor =
      attention_factor ? *attention_factor : compute_frequencies(config).attention_factor;
  return with_cuda(Rope(config, f, options), true);
}

void rotate_per_entry(const PyRope& self, const RotateOperands& ops, const Positions& positions,
                      Direction direction) {
  for_each_entry(self, ops, positions, [&](const Rope& rope, int64_t b, const Positions& entry) {
    rope.rotate(ops.q.entry(b), ops.qo.entry(b), ops.k_entry(b), ops.ko_entry(b), entry, direction);
  });
}

// The rotation of described operands: one library call when every operand folds, else one per
// batch entry. Runs without the GIL.
void run_rotation(const PyRope& self, const RotateOperands& ops, const Positions& positions,
                  bool inverse) {
  const Direction direction = inverse ? Direction::kInverse : Direction::kForward;
  nb::gil_scoped_release release;
  if (ops.folds()) {
    self.rope.rotate(ops.q.folded(), ops.qo.folded(), ops.k_folded(), ops.ko_folded(), positions,
                     direction);
    return;
  }
  rotate_per_entry(self, ops, positions, direction);
}

void rotate(const PyRope& self, nb::handle q_obj, nb::handle q_out_obj, nb::handle k_obj,
            nb::handle k_out_obj, const PositionArray& positions_array, int num_axes,
            const std::string& layout, bool inverse) {
  const RotateOperands ops = rotate_operands(q_obj, q_out_obj, k_obj, k_out_obj, layout);
  run_rotation(self, ops, positions_view(positions_array, num_axes), inverse);
}

// Rope.rotate's layout argument for a q of `ndim` dimensions, as _rope._layout_and_tokens reads it
// (None: shd / bshd), or null where that would refuse it.
const char* direct_layout(std::size_t ndim, nb::handle layout) {
  const char* const names[2][2] = {{"shd", "hsd"}, {"bshd", "bhsd"}};
  if (ndim != 3 && ndim != 4) return nullptr;
  const auto& allowed = names[ndim - 3];
  if (layout.is_none()) return allowed[0];
  if (!PyUnicode_CheckExact(layout.ptr())) return nullptr;
  for (const char* name : allowed) {
    if (PyUnicode_CompareWithASCIIString(layout.ptr(), name) == 0) return name;
  }
  return nullptr;
}

// The sizes of q's token dimensions in `layout`: (seq) or (batch, seq).
std::span<const int64_t> token_shape(const DirectArray& q, std::string_view layout,
                                     int64_t (&storage)[2]) {
  std::size_t n = 0;
  for (const char axis : {'b', 's'}) {
    const std::size_t at = layout.find(axis);
    if (at != std::string_view::npos) storage[n++] = q.sizes[at];
  }
  return {storage, n};
}

// Rope.rotate in one call for the arguments it reads directly (DirectImport, DirectPositions):
// reads them, then checks, rotates and bumps torch's version counters exactly as the general path
// does (the same describe / library checks, in the same order, with the same messages). Returns
// what Rope.rotate returns, or None, having written and raised nothing, where any argument is not
// one it reads directly or the general path would refuse it before reaching the library: then
// Rope.rotate takes the general path. One position per token only (no multi-axis components).
nb::object rotate_direct(const PyRope& self, nb::handle q, nb::handle positions, nb::handle k,
                         nb::handle q_out, nb::handle k_out, nb::handle inverse,
                         nb::handle layout) {
  const bool in_place_q = q_out.is_none();
  const bool in_place_k = k_out.is_none();
  const bool has_k = !k.is_none();
  if (self.rope.config().num_axes() != 1 || (!has_k && !in_place_k)) return nb::none();
  if (!inverse.is(Py_True) && !inverse.is(Py_False)) return nb::none();
  DirectImport q_in, q_target, k_in, k_target;
  if (!q_in.read(q, /*writable=*/in_place_q)) return nb::none();
  const char* layout_name = direct_layout(q_in.array().ndim(), layout);
  if (layout_name == nullptr) return nb::none();
  int64_t tokens[2];
  DirectPositions direct_positions;
  if (!direct_positions.read(positions, token_shape(q_in.array(), layout_name, tokens))) {
    return nb::none();
  }
  if (!in_place_q && !q_target.read(q_out, /*writable=*/true)) return nb::none();
  if (has_k && !k_in.read(k, /*writable=*/in_place_k)) return nb::none();
  if (has_k && !in_place_k && !k_target.read(k_out, /*writable=*/true)) return nb::none();

  // From here on: the general path's checks, then the rotation.
  const std::string layout_text = layout_name;
  RotateOperands ops;
  ops.q = describe(q_in.array(), "q", layout_text);
  ops.qo = in_place_q ? ops.q : describe(q_target.array(), "q_out", layout_text);
  ops.has_k = has_k;
  if (has_k) {
    ops.k = describe(k_in.array(), "k", layout_text);
    ops.ko = in_place_k ? ops.k : describe(k_target.array(), "k_out", layout_text);
  }
  check_same_tokens(ops);
  run_rotation(self, ops, direct_positions.view(), inverse.is(Py_True));

  const nb::handle q_result = in_place_q ? q : q_out;
  const nb::handle k_result = in_place_k ? k : k_out;
  mark_torch_modified(q_result, has_k ? k_result : nb::handle());
  if (!has_k) return nb::borrow(q_result);
  return nb::make_tuple(q_result, k_result);
}

auto frequencies_for(const PyRope& r, const PositionArray& positions, int num_axes) {
  const Frequencies f = r.rope.frequencies_for(positions_view(positions, num_axes));
  return std::make_pair(f.inv_freq, f.attention_factor);
}

void cos_sin(const PyRope& r, const PositionArray& positions, int num_axes, FloatMatrix cos,
             FloatMatrix sin) {
  const Positions p = positions_view(positions, num_axes);
  const int64_t rows = p.size();
  const int64_t half = r.rope.rotary_dim() / 2;
  for (auto [a, name] : {std::pair{&cos, "cos"}, std::pair{&sin, "sin"}}) {
    if (static_cast<int64_t>(a->shape(0)) != rows || static_cast<int64_t>(a->shape(1)) != half) {
      invalid(name, "expected shape (" + std::to_string(rows) + ", " + std::to_string(half) + ")");
    }
  }
  nb::gil_scoped_release release;
  r.rope.cos_sin(p, {cos.data(), cos.size()}, {sin.data(), sin.size()});
}

}  // namespace

void for_each_entry(const PyRope& self, const RotateOperands& ops, const Positions& positions,
                    const std::function<void(const Rope&, int64_t, const Positions&)>& entry) {
  const Batched& q = ops.q;
  if (positions.size() != q.batch * q.tokens) {
    invalid("positions", "expected one position per token (" + std::to_string(q.batch * q.tokens) +
                             "), got " + std::to_string(positions.size()));
  }
  // Checks every position and gives the call's frequency set.
  const Frequencies call_frequencies = self.rope.frequencies_for(positions);
  check_batched_memory(ops);
  std::optional<Rope> pinned;
  if (!self.fixed && frequencies_depend_on_length(self.rope.config())) {
    RopeOptions options = self.rope.options();
    options.cache_positions = 0;
    pinned.emplace(self.rope.config(), call_frequencies, options);
  }
  const Rope& rope = pinned ? *pinned : self.rope;
  for (int64_t b = 0; b < q.batch; ++b) entry(rope, b, positions.slice(b * q.tokens, q.tokens));
}

void bind_rope(nb::module_& m) {
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
      .def_prop_ro(
          "angle_mode",
          [](const PyRope& r) {
            return std::string(r.rope.options().angle_mode == AngleMode::kHf ? "hf" : "exact");
          })
      .def_prop_ro("cache_positions",
                   [](const PyRope& r) { return r.rope.options().cache_positions; })
      .def_prop_ro("max_threads", [](const PyRope& r) { return r.rope.options().max_threads; })
      .def_prop_ro("fixed_frequencies", [](const PyRope& r) { return r.fixed; })
      .def("frequencies_for", &frequencies_for, nb::arg("positions").noconvert(),
           nb::arg("num_axes"))
      .def("cos_sin", &cos_sin, nb::arg("positions").noconvert(), nb::arg("num_axes"),
           nb::arg("cos").noconvert(), nb::arg("sin").noconvert())
      .def("rotate", &rotate, nb::arg("q"), nb::arg("q_out"), nb::arg("k").none(),
           nb::arg("k_out").none(), nb::arg("positions").noconvert(), nb::arg("num_axes"),
           nb::arg("layout"), nb::arg("inverse"))
      .def("rotate_direct", &rotate_direct, nb::arg("q"), nb::arg("positions").none(),
           nb::arg("k").none(), nb::arg("q_out").none(), nb::arg("k_out").none(),
           nb::arg("inverse").none(), nb::arg("layout").none())
      .def("rotate_cuda", &rotate_cuda, nb::arg("q"), nb::arg("q_out"), nb::arg("k").none(),
           nb::arg("k_out").none(), nb::arg("positions"), nb::arg("num_axes"), nb::arg("layout"),
           nb::arg("inverse"), nb::arg("sequence_length"), nb::arg("stream"))
      .def_prop_ro("length_dependent", [](const PyRope& r) {
        return !r.fixed && frequencies_depend_on_length(r.rope.config());
      });
}

}  // namespace rotary::python
