// RoFormer's long-term decay bound (rotary/decay.h) at many distances in one call, for the decay
// panel of rotary.plot: the one implementation `rotary decay` also prints.
#include <cstdint>
#include <span>
#include <vector>

#include "binding.h"

namespace rotary::python {

namespace {

using Floats = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Doubles = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Array = nb::ndarray<nb::numpy, double>;

// B(r) for each r of `distances` (fractional distances allowed: plots sample a log axis).
Array decay_bounds(const Floats& inv_freq, const Doubles& distances) {
  const std::span<const float> theta(inv_freq.data(), inv_freq.size());
  auto* bounds = new std::vector<double>(distances.size());
  nb::capsule owner(bounds, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  {
    nb::gil_scoped_release release;
    for (std::size_t i = 0; i < distances.size(); ++i) {
      (*bounds)[i] = long_term_decay_bound(theta, distances.data()[i]);
    }
  }
  const std::size_t shape[1] = {bounds->size()};
  return Array(bounds->data(), 1, shape, owner);
}

}  // namespace

void bind_decay(nb::module_& m) {
  m.def("long_term_decay_bound", &decay_bounds, nb::arg("inv_freq"), nb::arg("distances"));
}

}  // namespace rotary::python
