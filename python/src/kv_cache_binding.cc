// BlockTable, KvCache (contiguous or paged; append rotates k, and q when given, as it stores them)
// and attention of q over a cached sequence. Arrays are "shd" (tokens, heads, head_dim) here.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "binding.h"

namespace rotary::python {

namespace {

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::kF32;
  if (name == "float16") return DType::kF16;
  if (name == "bfloat16") return DType::kBF16;
  invalid("dtype", "expected 'float32', 'float16' or 'bfloat16', got '" + name + "'");
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

std::string block_table_repr(const BlockTable& t) {
  std::string s = "BlockTable(blocks=[";
  for (std::size_t i = 0; i < t.blocks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(t.blocks[i]);
  return s + "], length=" + std::to_string(t.length) + ")";
}

// KvCache::append from Python: q (or None), k, v of layout "shd" (tokens, heads, head_dim).
void cache_append(KvCache& cache, const PyRope& self, nb::handle q_obj, nb::handle k_obj,
                  nb::handle v_obj, const PositionArray& positions_array, int num_axes,
                  BlockTable& sequence) {
  TensorView q;
  if (!q_obj.is_none()) q = describe(write_array(q_obj, "q"), "q", "shd").folded();
  const ConstTensorView k = describe(read_array(k_obj, "k"), "k", "shd").folded();
  const ConstTensorView v = describe(read_array(v_obj, "v"), "v", "shd").folded();
  const Positions positions = positions_view(positions_array, num_axes);
  nb::gil_scoped_release release;
  cache.append(self.rope, q, k, v, positions, sequence);
}

// A sequence's keys or values, gathered from its blocks into a new (length, heads, head_dim)
// array of the cache's storage bits (bfloat16 as uint16).
nb::ndarray<nb::numpy> gather(const KvCache& cache, const BlockTable& sequence, bool keys) {
  const int64_t n = sequence.length, heads = cache.num_kv_heads(), d = cache.head_dim();
  if (n < 0 || n > cache.capacity(sequence)) invalid("sequence.length", "exceeds its blocks");
  const std::size_t row = static_cast<std::size_t>(heads * d) * dtype_size(cache.dtype());
  auto* out = new unsigned char[static_cast<std::size_t>(n) * row];
  nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<unsigned char*>(p); });
  for (int64_t t = 0; t < n; ++t) {
    const int32_t block = sequence.blocks[static_cast<std::size_t>(t / cache.block_size())];
    const ConstTensorView view = keys ? cache.keys(block, t % cache.block_size(), 1)
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

// attention(q, cache, sequence, ...) into a new float32 (tokens, heads, head_dim) array.
nb::ndarray<nb::numpy, float> cache_attention(nb::handle q_obj, const KvCache& cache,
                                              const BlockTable& sequence, int64_t first_index,
                                              double scale, int64_t sliding_window) {
  const ConstTensorView q = describe(read_array(q_obj, "q"), "q", "shd").folded();
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
}

void bind_block_table(nb::module_& m) {
  nb::class_<BlockTable>(m, "BlockTable")
      .def(nb::init<>())
      .def(
          "__init__",
          [](BlockTable* t, const std::vector<int64_t>& blocks, int64_t length) {
            new (t) BlockTable{block_ids(blocks), length};
          },
          nb::arg("blocks"), nb::arg("length") = 0)
      .def_prop_rw(
          "blocks", [](const BlockTable& t) { return t.blocks; },
          [](BlockTable& t, const std::vector<int64_t>& blocks) { t.blocks = block_ids(blocks); })
      .def_rw("length", &BlockTable::length)
      .def("__repr__", &block_table_repr);
}

void bind_cache(nb::module_& m) {
  nb::class_<KvCache>(m, "KvCache")
      .def_static(
          "contiguous",
          [](int64_t capacity, int64_t heads, int64_t head_dim, const std::string& dtype) {
            return KvCache::contiguous(capacity, heads, head_dim, parse_dtype(dtype));
          },
          nb::arg("capacity"), nb::arg("num_kv_heads"), nb::arg("head_dim"), nb::arg("dtype"))
      .def_static(
          "paged",
          [](int64_t blocks, int64_t block_size, int64_t heads, int64_t head_dim,
             const std::string& dtype) {
            return KvCache::paged(blocks, block_size, heads, head_dim, parse_dtype(dtype));
          },
          nb::arg("num_blocks"), nb::arg("block_size"), nb::arg("num_kv_heads"),
          nb::arg("head_dim"), nb::arg("dtype"))
      .def_prop_ro("num_blocks", &KvCache::num_blocks)
      .def_prop_ro("block_size", &KvCache::block_size)
      .def_prop_ro("num_kv_heads", &KvCache::num_kv_heads)
      .def_prop_ro("head_dim", &KvCache::head_dim)
      .def_prop_ro("dtype", [](const KvCache& c) { return std::string(to_string(c.dtype())); })
      .def("capacity", &KvCache::capacity, nb::arg("sequence"))
      .def("append", &cache_append, nb::arg("rope"), nb::arg("q").none(), nb::arg("k"),
           nb::arg("v"), nb::arg("positions").noconvert(), nb::arg("num_axes"), nb::arg("sequence"))
      .def(
          "keys", [](const KvCache& c, const BlockTable& t) { return gather(c, t, true); },
          nb::arg("sequence"))
      .def(
          "values", [](const KvCache& c, const BlockTable& t) { return gather(c, t, false); },
          nb::arg("sequence"));
}

}  // namespace

void bind_kv_cache(nb::module_& m) {
  bind_block_table(m);
  bind_cache(m);
  m.def("attention", &cache_attention, nb::arg("q"), nb::arg("cache"), nb::arg("sequence"),
        nb::arg("first_index"), nb::arg("scale"), nb::arg("sliding_window"));
}

}  // namespace rotary::python
