// Portable kernels: one templated body for every (storage type, layout).
//
// Each output is x*cos - y*sin (or y*cos + x*sin) evaluated as two float32 products and one sum,
// which is how transformers' q*cos + rotate_half(q)*sin rounds in float32; the library is compiled
// with -ffp-contract=off so the compiler does not fuse them. 16-bit inputs are widened to float32
// and the result is rounded once on store.
#include <cstring>

#include "cpu/kernels.h"
#include "numeric/float16.h"

namespace rotary::detail {
namespace {

template <typename Storage, Layout kLayout>
void rotate_heads(const RotateParams& p, const HeadRange& heads) {
  const int64_t half = p.rotary_dim / 2;
  // Pair j is (j, j + half) for half-split and (2j, 2j + 1) for interleaved.
  constexpr bool kInterleaved = kLayout == Layout::kInterleaved;
  const int64_t first_step = kInterleaved ? 2 : 1;
  const int64_t partner_offset = kInterleaved ? 1 : half;
  const bool in_place = heads.in == heads.out;
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    const Storage* in = static_cast<const Storage*>(heads.in) + h * heads.in_head_stride;
    Storage* out = static_cast<Storage*>(heads.out) + h * heads.out_head_stride;
    for (int64_t j = 0; j < half; ++j) {
      const int64_t a = j * first_step;
      const int64_t b = a + partner_offset;
      const float x = load_as_float(in + a);
      const float y = load_as_float(in + b);
      const float c = p.cos[j];
      const float s = p.sin[j];
      const float xc = x * c, ys = y * s, yc = y * c, xs = x * s;
      store_from_float(out + a, xc - ys);
      store_from_float(out + b, yc + xs);
    }
    if (!in_place && p.head_dim > p.rotary_dim) {
      std::memcpy(out + p.rotary_dim, in + p.rotary_dim,
                  static_cast<std::size_t>(p.head_dim - p.rotary_dim) * sizeof(Storage));
    }
  }
}

template <typename Storage>
RotateHeadsFn for_layout(Layout layout) {
  return layout == Layout::kInterleaved ? &rotate_heads<Storage, Layout::kInterleaved>
                                        : &rotate_heads<Storage, Layout::kHalfSplit>;
}

}  // namespace

RotateHeadsFn portable_kernel(DType dtype, Layout layout) {
  switch (dtype) {
    case DType::kF32:
      return for_layout<float>(layout);
    case DType::kF16:
      return for_layout<Float16>(layout);
    case DType::kBF16:
      return for_layout<BFloat16>(layout);
  }
  return nullptr;
}

}  // namespace rotary::detail
