// overlap.h: whether two strided tensors share memory, decided exactly, and the aliasing rule of
// every call that writes (Rope::rotate, KvCache::append).
#include "overlap.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "rotary/error.h"
#include "rotary/kv_cache.h"
#include "rotary/rope.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using detail::share_bytes;
using detail::StridedBytes;
using testing::Buffer;

// Every byte a region covers, by walking all of its indices: the definition, for small regions.
std::set<std::uintptr_t> bytes_of(const StridedBytes& r) {
  std::set<std::uintptr_t> out;
  if (r.empty()) return out;
  for (int64_t i = 0; i < r.dims[0].size; ++i) {
    for (int64_t j = 0; j < r.dims[1].size; ++j) {
      for (int64_t l = 0; l < r.dims[2].size; ++l) {
        const std::uintptr_t row =
            r.base + static_cast<std::uintptr_t>(i * r.dims[0].stride + j * r.dims[1].stride +
                                                 l * r.dims[2].stride);
        for (int64_t b = 0; b < r.run_bytes; ++b) out.insert(row + static_cast<std::uintptr_t>(b));
      }
    }
  }
  return out;
}

bool brute_force_share(const StridedBytes& a, const StridedBytes& b) {
  const std::set<std::uintptr_t> in_a = bytes_of(a);
  for (std::uintptr_t byte : bytes_of(b)) {
    if (in_a.count(byte)) return true;
  }
  return false;
}

StridedBytes random_region(std::mt19937& rng, bool small_strides) {
  std::uniform_int_distribution<int64_t> size(0, 4), stride(0, small_strides ? 12 : 200),
      base(1000, 1100), run(1, 16);
  StridedBytes r;
  r.base = static_cast<std::uintptr_t>(base(rng));
  r.run_bytes = run(rng);
  for (auto& d : r.dims) d = {size(rng), stride(rng)};
  return r;
}

TEST(overlap_test, agrees_with_enumerating_every_byte) {
  // 40,000 random pairs of small regions in one address window, both dense (strides below the
  // run, so regions self-overlap) and sparse; each answer against the enumerated byte sets.
  std::mt19937 rng(20261206);
  int shared = 0;
  for (int trial = 0; trial < 40000; ++trial) {
    const bool small = trial % 2 == 0;
    const StridedBytes a = random_region(rng, small), b = random_region(rng, small);
    const bool expected = brute_force_share(a, b);
    ASSERT_EQ(share_bytes(a, b, "a", "b"), expected)
        << "trial " << trial << ": a base " << a.base << " run " << a.run_bytes << ", b base "
        << b.base << " run " << b.run_bytes;
    shared += expected;
  }
  // Both answers occur often, so neither is tested vacuously.
  EXPECT_GT(shared, 4000);
  EXPECT_LT(shared, 36000);
}

// A packed QKV buffer: per token, 4 Q heads, 2 K heads, 2 V heads of 16 channels.
constexpr int64_t kTokens = 5, kQHeads = 4, kKvHeads = 2, kDim = 16;
constexpr int64_t kRow = (kQHeads + 2 * kKvHeads) * kDim;

struct PackedQkv {
  Buffer buffer{DType::kF32, kTokens* kRow};
  TensorView slice(int64_t first_head, int64_t heads) {
    return {static_cast<float*>(buffer.data()) + first_head * kDim,
            DType::kF32,
            kTokens,
            heads,
            kDim,
            kRow,
            kDim};
  }
};

TEST(overlap_test, packed_qkv_slices_interleave_without_sharing) {
  PackedQkv qkv;
  const StridedBytes q = detail::strided_bytes(qkv.slice(0, kQHeads));
  const StridedBytes k = detail::strided_bytes(qkv.slice(kQHeads, kKvHeads));
  const StridedBytes v = detail::strided_bytes(qkv.slice(kQHeads + kKvHeads, kKvHeads));
  // The address ranges overlap; the elements do not.
  ASSERT_LT(k.begin(), q.end());
  EXPECT_FALSE(share_bytes(q, k, "q", "k"));
  EXPECT_FALSE(share_bytes(k, v, "k", "v"));
  EXPECT_FALSE(share_bytes(v, q, "v", "q"));
  // One head more for K reaches into V.
  EXPECT_TRUE(share_bytes(detail::strided_bytes(qkv.slice(kQHeads, kKvHeads + 1)), v, "k", "v"));
}

TEST(overlap_test, rotate_accepts_packed_qkv_and_refuses_shared_heads) {
  const Rope rope(default_config(kDim));
  const std::vector<int64_t> positions{0, 1, 2, 3, 4};
  PackedQkv qkv;
  qkv.buffer.fill_normal(3);
  EXPECT_NO_THROW(rope.rotate(qkv.slice(0, kQHeads), qkv.slice(kQHeads, kKvHeads), positions));

  // K's first head is Q's last: that head would be rotated twice.
  const auto before = qkv.buffer.bytes;
  try {
    rope.rotate(qkv.slice(0, kQHeads), qkv.slice(kQHeads - 1, kKvHeads), positions);
    ADD_FAILURE() << "Q and K sharing a head accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "q_out");
    EXPECT_NE(std::string(e.what()).find("shares memory with k"), std::string::npos) << e.what();
  }
  EXPECT_EQ(qkv.buffer.bytes, before);
}

TEST(overlap_test, every_output_pairing_is_checked) {
  const Rope rope(default_config(kDim));
  const std::vector<int64_t> positions{0, 1, 2, 3, 4};
  Buffer q(DType::kF32, kTokens * kQHeads * kDim), k(DType::kF32, kTokens * kKvHeads * kDim),
      k2(DType::kF32, kTokens * kKvHeads * kDim), q2(DType::kF32, kTokens * kQHeads * kDim);
  q.fill_normal(1);
  k.fill_normal(2);
  const auto view = [](Buffer& b, int64_t heads) {
    return TensorView::contiguous(b.data(), DType::kF32, kTokens, heads, kDim);
  };
  // q's first two heads as a K-shaped view: memory of q seen through another argument.
  const TensorView q_as_k = {q.data(), DType::kF32, kTokens, kKvHeads, kDim, kQHeads * kDim, kDim};
  struct Case {
    const char* name;
    ConstTensorView q_in;
    TensorView q_out;
    ConstTensorView k_in;
    TensorView k_out;
    const char* message;
  };
  const Case cases[] = {
      // q_out = k: k's data would be overwritten by rotated q before K is read.
      {"q_out is k", q_as_k, view(k, kKvHeads), view(k, kKvHeads), view(k2, kKvHeads),
       "q_out: shares memory with k"},
      {"k_out is q", view(q, kQHeads), view(q2, kQHeads), view(k, kKvHeads), q_as_k,
       "k_out: shares memory with q"},
      {"k_out is q_out", view(q, kQHeads), view(q2, kQHeads), view(k, kKvHeads),
       TensorView{q2.data(), DType::kF32, kTokens, kKvHeads, kDim, kQHeads * kDim, kDim},
       "k_out: shares memory with q_out"},
      {"k read from q rotated in place", view(q, kQHeads), view(q, kQHeads), q_as_k,
       view(k2, kKvHeads), "q_out: shares memory with k"},
  };
  for (const Case& c : cases) {
    const auto q_before = q.bytes, k_before = k.bytes, k2_before = k2.bytes, q2_before = q2.bytes;
    try {
      rope.rotate(c.q_in, c.q_out, c.k_in, c.k_out, positions);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << c.name << ": " << e.what();
    }
    EXPECT_TRUE(q.bytes == q_before && k.bytes == k_before && k2.bytes == k2_before &&
                q2.bytes == q2_before)
        << c.name << ": a buffer changed";
  }
  // Both out of place from the same input: reading twice is fine.
  EXPECT_NO_THROW(
      rope.rotate(view(q, kKvHeads), view(q2, kKvHeads), q_as_k, view(k2, kKvHeads), positions));
}

TEST(overlap_test, a_size_one_dimension_may_have_any_stride_in_place) {
  // One token: its stride means nothing, so a view with another token stride is still in place.
  const Rope rope(default_config(kDim));
  Buffer q(DType::kF32, kQHeads * kDim);
  q.fill_normal(4);
  TensorView in = TensorView::contiguous(q.data(), DType::kF32, 1, kQHeads, kDim);
  TensorView out = in;
  out.token_stride = 12345;
  EXPECT_NO_THROW(
      rope.rotate(ConstTensorView(in), out, ConstTensorView(), TensorView(), std::vector{7}));
}

TEST(overlap_test, irregular_strides_beyond_the_search_are_refused_not_guessed) {
  // Even strides over long ranges and an odd distance between the bases: no byte is shared, but
  // the search has no shortcut to see it and runs out of steps. It must refuse, naming both, not
  // answer "disjoint" by default.
  StridedBytes a;
  a.base = 1 << 20;
  a.run_bytes = 1;
  a.dims[0] = {1 << 20, 1000002};
  a.dims[1] = {1 << 20, 999984};
  StridedBytes b = a;
  b.base += 1;
  b.dims[0].stride = 1000034;
  b.dims[1].stride = 999980;
  try {
    (void)share_bytes(a, b, "q_out", "k");
    ADD_FAILURE() << "an undecided search answered";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "q_out");
    EXPECT_NE(std::string(e.what()).find("shares memory with k"), std::string::npos) << e.what();
  }
}

TEST(overlap_test, kv_append_refuses_aliased_q_k_v) {
  const Rope rope(default_config(kDim));
  KvCache cache = KvCache::paged(4, 4, kKvHeads, kDim, DType::kF32);
  Buffer x(DType::kF32, kTokens * kKvHeads * kDim), v(DType::kF32, kTokens * kKvHeads * kDim);
  x.fill_normal(5);
  v.fill_normal(6);
  const TensorView xv = TensorView::contiguous(x.data(), DType::kF32, kTokens, kKvHeads, kDim);
  const TensorView vv = TensorView::contiguous(v.data(), DType::kF32, kTokens, kKvHeads, kDim);
  const std::vector<int64_t> positions{0, 1, 2, 3, 4};
  BlockTable sequence{{2, 0}};
  const auto before = x.bytes;
  // The same array as q and k: q rotated in place, then read again as k.
  EXPECT_THROW(cache.append(rope, xv, xv, vv, positions, sequence), Error);
  // q as v: the values would be the rotated queries.
  EXPECT_THROW(cache.append(rope, xv, vv, xv, positions, sequence), Error);
  EXPECT_EQ(x.bytes, before);
  EXPECT_EQ(sequence.length, 0);
  // k read from the cache's own slots.
  cache.append(rope, TensorView{}, xv, vv, positions, sequence);
  BlockTable other{{1, 3}};
  const ConstTensorView cached = cache.keys(2, 0, 4);
  try {
    cache.append(rope, TensorView{}, cached, cached, std::vector<int64_t>{0, 1, 2, 3}, other);
    ADD_FAILURE() << "k inside the cache accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the cache's"), std::string::npos) << e.what();
  }
  EXPECT_EQ(other.length, 0);
}

}  // namespace
}  // namespace rotary
