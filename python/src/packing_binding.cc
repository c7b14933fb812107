// Packed sequences and their context-parallel shards (rotary/packing.h) for rotary.distributed:
// int64 NumPy arrays in, new int64 NumPy arrays out. The Python layer coerces the arguments and
// bounds the sizes (rotary._limits) before calling; the rule itself is the library's.
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "binding.h"
#include "rotary/packing.h"

namespace rotary::python {

namespace {

using Ints = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using IntArray = nb::ndarray<nb::numpy, int64_t, nb::ndim<1>>;

std::span<const int64_t> span_of(const Ints& a) { return {a.data(), a.size()}; }

// A vector of `size` int64 values, handed to NumPy with it (freed when the array is).
struct Owned {
  std::vector<int64_t>* values;
  nb::capsule owner;

  explicit Owned(int64_t size)
      : values(new std::vector<int64_t>(static_cast<std::size_t>(size))),
        owner(values, [](void* p) noexcept { delete static_cast<std::vector<int64_t>*>(p); }) {}
  std::span<int64_t> span() { return *values; }
  IntArray array() {
    const std::size_t shape[1] = {values->size()};
    return IntArray(values->data(), 1, shape, owner);
  }
};

CpScheme scheme_of(const std::string& scheme) {
  if (scheme == "contiguous") return CpScheme::kContiguous;
  if (scheme == "zigzag") return CpScheme::kZigzag;
  invalid("scheme", "expected 'contiguous' or 'zigzag', got '" + scheme + "'");
}

// packed_positions into a new array, sized once the library has checked the arguments.
IntArray positions_of(const Ints& cu_seqlens, const Ints& offsets) {
  Owned positions(packed_tokens(span_of(cu_seqlens), span_of(offsets)));
  {
    nb::gil_scoped_release release;
    packed_positions(span_of(cu_seqlens), span_of(offsets), positions.span());
  }
  return positions.array();
}

// packed_shard into new arrays (indices, positions, shard cu_seqlens).
std::tuple<IntArray, IntArray, IntArray> shard_of(const Ints& cu_seqlens, const Ints& offsets,
                                                  int64_t cp_size, int64_t cp_rank,
                                                  const std::string& scheme) {
  const CpScheme cp_scheme = scheme_of(scheme);
  // packed_shard checks everything again, in its own order, before writing.
  const int64_t size = packed_shard_size(span_of(cu_seqlens), cp_size, cp_scheme);
  Owned indices(size), positions(size), local(static_cast<int64_t>(cu_seqlens.size()));
  {
    nb::gil_scoped_release release;
    packed_shard(span_of(cu_seqlens), span_of(offsets), cp_size, cp_rank, cp_scheme, indices.span(),
                 positions.span(), local.span());
  }
  return {indices.array(), positions.array(), local.array()};
}

}  // namespace

void bind_packing(nb::module_& m) {
  m.def(
      "packed_shard_size",
      [](const Ints& cu_seqlens, int64_t cp_size, const std::string& scheme) {
        return packed_shard_size(span_of(cu_seqlens), cp_size, scheme_of(scheme));
      },
      nb::arg("cu_seqlens"), nb::arg("cp_size"), nb::arg("scheme"));
  m.def(
      "packed_tokens",
      [](const Ints& cu_seqlens, const Ints& offsets) {
        return packed_tokens(span_of(cu_seqlens), span_of(offsets));
      },
      nb::arg("cu_seqlens"), nb::arg("offsets"));
  m.def("packed_positions", &positions_of, nb::arg("cu_seqlens"), nb::arg("offsets"));
  m.def("packed_shard", &shard_of, nb::arg("cu_seqlens"), nb::arg("offsets"), nb::arg("cp_size"),
        nb::arg("cp_rank"), nb::arg("scheme"));
}

}  // namespace rotary::python
