// Rope::rotate against the long double reference, and the properties RoPE promises.
#include "rotary/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "reference_rope.h"
#include "rotary/error.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;
using testing::reference_rotate;
using testing::ulp_of;

RopeConfig make_config(int64_t head_dim, int64_t rotary_dim, Layout layout, double base = 10000.0) {
  RopeConfig c = default_config(head_dim, base, layout);
  c.rotary_dim = rotary_dim;
  return c;
}

std::vector<int64_t> iota_positions(int64_t n, int64_t start = 0) {
  std::vector<int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), start);
  return p;
}

struct Case {
  DType dtype;
  Layout layout;
  int64_t head_dim, rotary_dim;
};

class RotateVsReference : public ::testing::TestWithParam<Case> {};

// Every dtype x layout x (full, partial, odd-sized) head, in place and out of place, forward and
// inverse: each output within one storage ulp (+ float32 noise) of the exact rotation of the input.
TEST_P(RotateVsReference, matches_long_double_reference) {
  const Case k = GetParam();
  const RopeConfig config = make_config(k.head_dim, k.rotary_dim, k.layout);
  const Rope rope(config, {.angle_mode = AngleMode::kExact});
  const int64_t tokens = 7, heads = 3;
  const std::vector<int64_t> positions = {0, 1, 2, 17, 1000, 65535, 1234567};
  const std::vector<float>& theta = rope.frequencies().inv_freq;
  for (Direction dir : {Direction::kForward, Direction::kInverse}) {
    for (bool in_place : {true, false}) {
      Buffer in(k.dtype, tokens * heads * k.head_dim);
      in.fill_normal(42);
      Buffer out = in;
      const auto q_in = ConstTensorView::contiguous(in.data(), k.dtype, tokens, heads, k.head_dim);
      if (in_place) {
        rope.rotate(TensorView::contiguous(out.data(), k.dtype, tokens, heads, k.head_dim),
                    positions, dir);
      } else {
        std::fill(out.bytes.begin(), out.bytes.end(), 0xAB);
        rope.rotate(q_in, TensorView::contiguous(out.data(), k.dtype, tokens, heads, k.head_dim),
                    ConstTensorView(), TensorView(), positions, dir);
      }
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t h = 0; h < heads; ++h) {
          const std::size_t base = static_cast<std::size_t>((t * heads + h) * k.head_dim);
          std::vector<long double> x(static_cast<std::size_t>(k.head_dim));
          for (std::size_t d = 0; d < x.size(); ++d) x[d] = in.get(base + d);
          const auto y = reference_rotate(x, theta, k.layout, positions[t], 1.0L,
                                          dir == Direction::kForward ? 1 : -1);
          for (std::size_t d = 0; d < x.size(); ++d) {
            const double expected = static_cast<double>(y[d]);
            const double got = out.get(base + d);
            if (static_cast<int64_t>(d) >= k.rotary_dim) {
              ASSERT_EQ(got, expected) << "pass-through channel " << d << " changed";
              continue;
            }
            // One rounding to the storage type, plus float32 arithmetic noise.
            const double tol = ulp_of(k.dtype, std::fabs(expected)) + 2e-6;
            ASSERT_NEAR(got, expected, tol) << "token " << t << " head " << h << " channel " << d;
          }
        }
      }
    }
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
      for (auto [head, rot] : {std::pair{64, 64}, std::pair{96, 24}, std::pair{80, 32},
                               std::pair{6, 4}, std::pair{2, 2}, std::pair{130, 130}}) {
        cases.push_back({dtype, layout, head, rot});
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(rope_test, RotateVsReference, ::testing::ValuesIn(all_cases()),
                         [](const auto& param_info) {
                           const Case& k = param_info.param;
                           return std::string(to_string(k.dtype)) + "_" +
                                  std::string(to_string(k.layout)) + "_" +
                                  std::to_string(k.head_dim) + "_" + std::to_string(k.rotary_dim);
                         });

double dot(const Buffer& a, const Buffer& b, std::size_t offset, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a.get(offset + i)) * b.get(offset + i);
  return s;
}

// <R_m q, R_n k> depends only on n - m, for shifts up to 10^6 (exact angles).
TEST(rope_test, scores_depend_only_on_relative_position) {
  for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
    const Rope rope(make_config(128, 128, layout, 500000.0), {.angle_mode = AngleMode::kExact});
    Buffer q(DType::kF32, 128), k(DType::kF32, 128);
    q.fill_normal(1);
    k.fill_normal(2);
    auto score = [&](int64_t m, int64_t n) {
      Buffer rq = q, rk = k;
      rope.rotate(TensorView::contiguous(rq.data(), DType::kF32, 1, 1, 128),
                  std::vector<int64_t>{m});
      rope.rotate(TensorView::contiguous(rk.data(), DType::kF32, 1, 1, 128),
                  std::vector<int64_t>{n});
      return dot(rq, rk, 0, 128);
    };
    const double reference = score(3, 10);
    for (int64_t shift : {1, 1000, 1000000}) {
      EXPECT_NEAR(score(3 + shift, 10 + shift), reference, 2e-5 * std::fabs(reference) + 2e-5)
          << "shift " << shift;
    }
    // And it does depend on the distance (the test can fail).
    EXPECT_GT(std::fabs(score(3, 50) - reference), 1e-3);
  }
}

TEST(rope_test, norms_are_kept_and_inverse_undoes_forward) {
  const Rope rope(make_config(128, 128, Layout::kHalfSplit));
  Buffer x(DType::kF32, 5 * 4 * 128);
  x.fill_normal(3);
  Buffer y = x;
  const auto view = TensorView::contiguous(y.data(), DType::kF32, 5, 4, 128);
  const std::vector<int64_t> positions = {0, 9, 99, 999, 9999};
  rope.rotate(view, positions);
  for (std::size_t v = 0; v < 20; ++v) {
    const double before = std::sqrt(dot(x, x, v * 128, 128));
    const double after = std::sqrt(dot(y, y, v * 128, 128));
    EXPECT_NEAR(after, before, 1e-5 * before);
  }
  rope.rotate(view, positions, Direction::kInverse);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y.get(i), x.get(i), 2e-6);
}

// The KV-cache property: rotating a prefix, then the appended tokens, gives exactly the rotation
// of the whole sequence (a rotated key never changes when later tokens arrive).
TEST(rope_test, prefix_then_suffix_equals_whole_sequence) {
  for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
    const Rope rope(make_config(64, 64, Layout::kHalfSplit), {.angle_mode = mode});
    const int64_t n = 40, prefix = 25, heads = 2;
    Buffer whole(DType::kBF16, n * heads * 64);
    whole.fill_normal(5);
    Buffer parts = whole;
    const auto positions = iota_positions(n);
    rope.rotate(TensorView::contiguous(whole.data(), DType::kBF16, n, heads, 64), positions);
    auto* base = static_cast<unsigned char*>(parts.data());
    rope.rotate(TensorView::contiguous(base, DType::kBF16, prefix, heads, 64),
                std::span<const int64_t>(positions).first(prefix));
    rope.rotate(
        TensorView::contiguous(base + prefix * heads * 64 * 2, DType::kBF16, n - prefix, heads, 64),
        std::span<const int64_t>(positions).subspan(prefix));
    EXPECT_EQ(whole.bytes, parts.bytes);
  }
}

TEST(rope_test, cache_and_on_the_fly_give_identical_bits) {
  for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
    const RopeConfig c = make_config(128, 128, Layout::kHalfSplit, 500000.0);
    const Rope cached(c, {.angle_mode = mode, .cache_positions = 100});
    const Rope fly(c, {.angle_mode = mode});
    const std::vector<int64_t> positions = {0, 5, 99, 100, 5000, -3};
    std::vector<float> c1(6 * 64), s1(6 * 64), c2(6 * 64), s2(6 * 64);
    cached.cos_sin(positions, c1, s1);
    fly.cos_sin(positions, c2, s2);
    EXPECT_EQ(c1, c2);
    EXPECT_EQ(s1, s2);
    Buffer a(DType::kF16, 6 * 3 * 128);
    a.fill_normal(8);
    Buffer b = a;
    cached.rotate(TensorView::contiguous(a.data(), DType::kF16, 6, 3, 128), positions);
    fly.rotate(TensorView::contiguous(b.data(), DType::kF16, 6, 3, 128), positions);
    EXPECT_EQ(a.bytes, b.bytes);
  }
}

// Interleaved on x equals half-split on x with channels regrouped (evens first, then odds): the
// two layouts are the same rotation with a different pairing, an independent check of both.
TEST(rope_test, interleaved_is_half_split_on_regrouped_channels) {
  const Rope inter(make_config(16, 16, Layout::kInterleaved));
  const Rope half(make_config(16, 16, Layout::kHalfSplit));
  Buffer x(DType::kF32, 16);
  x.fill_normal(9);
  Buffer regrouped(DType::kF32, 16);
  for (int j = 0; j < 8; ++j) {
    regrouped.set(j, x.get(2 * j));
    regrouped.set(j + 8, x.get(2 * j + 1));
  }
  const std::vector<int64_t> pos = {77};
  inter.rotate(TensorView::contiguous(x.data(), DType::kF32, 1, 1, 16), pos);
  half.rotate(TensorView::contiguous(regrouped.data(), DType::kF32, 1, 1, 16), pos);
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(x.get(2 * j), regrouped.get(j));
    EXPECT_EQ(x.get(2 * j + 1), regrouped.get(j + 8));
  }
}

// Q and K slices of one packed QKV buffer (token-major, [q heads | k heads | v heads] per token),
// a BHSD view, and GQA head counts: all without copies, V and everything else untouched.
TEST(rope_test, strided_views_of_packed_qkv_and_bhsd) {
  const int64_t tokens = 5, qh = 4, kvh = 2, hd = 32;
  const int64_t row = (qh + 2 * kvh) * hd;
  const Rope rope(make_config(hd, hd, Layout::kHalfSplit));
  const auto positions = iota_positions(tokens, 10);
  Buffer packed(DType::kF32, tokens * row);
  packed.fill_normal(11);
  const Buffer original = packed;
  auto* base = static_cast<float*>(packed.data());
  TensorView q{base, DType::kF32, tokens, qh, hd, row, hd};
  TensorView k{base + qh * hd, DType::kF32, tokens, kvh, hd, row, hd};
  rope.rotate(q, k, positions);

  // Expected: each head rotated separately through a contiguous copy.
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < qh + 2 * kvh; ++h) {
      Buffer one(DType::kF32, hd);
      for (int64_t d = 0; d < hd; ++d) one.set(d, original.get(t * row + h * hd + d));
      if (h < qh + kvh) {
        rope.rotate(TensorView::contiguous(one.data(), DType::kF32, 1, 1, hd),
                    std::vector<int64_t>{positions[t]});
      }
      for (int64_t d = 0; d < hd; ++d) {
        ASSERT_EQ(packed.get(t * row + h * hd + d), one.get(d)) << t << " " << h << " " << d;
      }
    }
  }

  // BHSD (one sequence, heads outermost): token_stride = head_dim, head_stride = tokens * head_dim.
  Buffer bhsd(DType::kBF16, qh * tokens * hd), bshd(DType::kBF16, qh * tokens * hd);
  bhsd.fill_normal(12);
  for (int64_t h = 0; h < qh; ++h)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t d = 0; d < hd; ++d)
        bshd.set((t * qh + h) * hd + d, bhsd.get((h * tokens + t) * hd + d));
  rope.rotate(TensorView{bhsd.data(), DType::kBF16, tokens, qh, hd, hd, tokens * hd}, positions);
  rope.rotate(TensorView::contiguous(bshd.data(), DType::kBF16, tokens, qh, hd), positions);
  for (int64_t h = 0; h < qh; ++h)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t d = 0; d < hd; ++d)
        ASSERT_EQ(bhsd.get((h * tokens + t) * hd + d), bshd.get((t * qh + h) * hd + d));
}

// Head-major views (BHSD) give exactly the token-major results, over many tokens, for every dtype
// and layout, partial rotary, in and out of place, with K token-major beside a head-major Q.
TEST(rope_test, head_major_path_equals_token_major) {
  const int64_t tokens = 70, qh = 3, kvh = 2, hd = 48;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
      SCOPED_TRACE(std::string(to_string(dtype)) + " " + std::string(to_string(layout)));
      const Rope rope(make_config(hd, 32, layout), {.cache_positions = 40});
      const auto positions = iota_positions(tokens, 3);
      Buffer q_hm(dtype, qh * tokens * hd), k(dtype, tokens * kvh * hd);
      q_hm.fill_normal(21);
      k.fill_normal(22);
      Buffer q_tm(dtype, tokens * qh * hd);  // the same values, token-major
      for (int64_t h = 0; h < qh; ++h)
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t d = 0; d < hd; ++d)
            q_tm.set((t * qh + h) * hd + d, q_hm.get((h * tokens + t) * hd + d));
      Buffer k_tm = k, out_hm(dtype, qh * tokens * hd), k_out(dtype, tokens * kvh * hd);
      const TensorView head_major{q_hm.data(), dtype, tokens, qh, hd, hd, tokens * hd};
      const TensorView out_head_major{out_hm.data(), dtype, tokens, qh, hd, hd, tokens * hd};
      rope.rotate(head_major, out_head_major,
                  TensorView::contiguous(k.data(), dtype, tokens, kvh, hd),
                  TensorView::contiguous(k_out.data(), dtype, tokens, kvh, hd), positions);
      rope.rotate(head_major, TensorView::contiguous(k.data(), dtype, tokens, kvh, hd), positions);
      rope.rotate(TensorView::contiguous(q_tm.data(), dtype, tokens, qh, hd),
                  TensorView::contiguous(k_tm.data(), dtype, tokens, kvh, hd), positions);
      for (int64_t h = 0; h < qh; ++h)
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t d = 0; d < hd; ++d) {
            ASSERT_EQ(q_hm.get((h * tokens + t) * hd + d), q_tm.get((t * qh + h) * hd + d));
            ASSERT_EQ(out_hm.get((h * tokens + t) * hd + d), q_tm.get((t * qh + h) * hd + d));
          }
      EXPECT_EQ(k.bytes, k_tm.bytes);
      EXPECT_EQ(k_out.bytes, k_tm.bytes);
    }
  }
}

TEST(rope_test, int32_and_int64_positions_agree_and_negative_positions_invert) {
  const Rope rope(make_config(64, 64, Layout::kInterleaved), {.angle_mode = AngleMode::kExact});
  Buffer a(DType::kF32, 3 * 64);
  a.fill_normal(13);
  Buffer b = a, c = a;
  const std::vector<int32_t> p32 = {3, 400, 70000};
  const std::vector<int64_t> p64 = {3, 400, 70000};
  const std::vector<int64_t> negative = {-3, -400, -70000};
  rope.rotate(TensorView::contiguous(a.data(), DType::kF32, 3, 1, 64), p32);
  rope.rotate(TensorView::contiguous(b.data(), DType::kF32, 3, 1, 64), p64);
  EXPECT_EQ(a.bytes, b.bytes);
  rope.rotate(TensorView::contiguous(c.data(), DType::kF32, 3, 1, 64), negative,
              Direction::kInverse);
  EXPECT_EQ(a.bytes, c.bytes);
}

TEST(rope_test, attention_factor_scales_cos_and_sin) {
  RopeConfig c = make_config(64, 64, Layout::kHalfSplit);
  c.rope_type = RopeType::kYarn;
  c.factor = 4;
  c.max_position_embeddings = 16384;
  c.original_max_position_embeddings = 4096;
  const Rope rope(c);
  const double mscale = 0.1 * std::log(4.0) + 1;
  Buffer x(DType::kF32, 64);
  x.fill_normal(14);
  const double before = std::sqrt(dot(x, x, 0, 64));
  rope.rotate(TensorView::contiguous(x.data(), DType::kF32, 1, 1, 64), std::vector<int64_t>{12});
  EXPECT_NEAR(std::sqrt(dot(x, x, 0, 64)), before * mscale, 1e-5 * before);
}

TEST(rope_test, length_dependent_types_switch_frequencies_per_call) {
  RopeConfig dyn = make_config(64, 64, Layout::kHalfSplit);
  dyn.rope_type = RopeType::kDynamic;
  dyn.factor = 2;
  dyn.max_position_embeddings = 1024;
  const Rope rope(dyn, {.cache_positions = 4096});
  const std::vector<int64_t> short_call = {0, 1023}, long_call = {0, 2047};
  EXPECT_EQ(rope.frequencies_for(short_call).inv_freq, rope.frequencies().inv_freq);
  EXPECT_EQ(rope.frequencies_for(long_call).inv_freq, compute_frequencies(dyn, 2048).inv_freq);
  EXPECT_NE(rope.frequencies_for(long_call).inv_freq, rope.frequencies().inv_freq);
  // The long call rotates position 0 and 5 with the grown base even though a cache exists.
  std::vector<float> c(2 * 32), s(2 * 32);
  rope.cos_sin(std::vector<int64_t>{5, 2047}, c, s);
  std::vector<float> c_ref(32), s_ref(32);
  compute_cos_sin(compute_frequencies(dyn, 2048).inv_freq, 1.0, 5, AngleMode::kHf, c_ref, s_ref);
  EXPECT_EQ(std::vector<float>(c.begin(), c.begin() + 32), c_ref);
}

TEST(rope_test, explicit_frequencies_are_used_for_every_call) {
  RopeConfig dyn = make_config(8, 8, Layout::kHalfSplit);
  dyn.rope_type = RopeType::kDynamic;
  dyn.factor = 2;
  dyn.max_position_embeddings = 16;
  const Frequencies custom{{1.0f, 0.25f, 0.0625f, 0.015625f}, 1.5, 8};
  const Rope rope(dyn, custom);
  EXPECT_EQ(rope.frequencies().inv_freq, custom.inv_freq);
  // Far past max_position_embeddings: still the given set (no dynamic update).
  EXPECT_EQ(rope.frequencies_for(std::vector<int64_t>{1000}).inv_freq, custom.inv_freq);
  std::vector<float> c(4), s(4);
  rope.cos_sin(std::vector<int64_t>{3}, c, s);
  EXPECT_FLOAT_EQ(c[1], static_cast<float>(1.5 * std::cos(0.75)));
  EXPECT_THROW(Rope(dyn, Frequencies{{1.0f}, 1.0, 8}), Error);
}

TEST(rope_test, threaded_calls_give_the_single_thread_bits) {
  // Large enough to be split over threads (when the build has OpenMP), with on-the-fly angles.
  const int64_t tokens = 4096, heads = 4;
  for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
    const RopeConfig c = make_config(64, 48, layout);
    const Rope one(c, {.max_threads = 1}), many(c, {.max_threads = 4});
    Buffer a(DType::kF16, tokens * heads * 64);
    a.fill_normal(21);
    Buffer b = a;
    const auto positions = iota_positions(tokens, 70000);
    one.rotate(TensorView::contiguous(a.data(), DType::kF16, tokens, heads, 64), positions);
    many.rotate(TensorView::contiguous(b.data(), DType::kF16, tokens, heads, 64), positions);
    EXPECT_EQ(a.bytes, b.bytes);
  }
}

TEST(rope_test, empty_tensors_are_a_no_op) {
  // The one-tensor overloads (hostile_inputs_test covers Q and K together): a view with no tokens
  // or no heads is accepted even with null data, and touches no memory; it is still validated.
  const Rope rope(make_config(64, 64, Layout::kHalfSplit));
  EXPECT_NO_THROW(
      rope.rotate(TensorView{nullptr, DType::kF32, 0, 8, 64, 512, 64}, std::span<const int64_t>()));
  EXPECT_NO_THROW(rope.rotate(TensorView{nullptr, DType::kF32, 3, 0, 64, 0, 64},
                              std::vector<int64_t>{1, 2, 3}));
  // Over real memory, in place and out of place, forward and inverse: not one byte is written.
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Buffer x(dtype, 3 * 8 * 64), out(dtype, 3 * 8 * 64);
    x.fill_normal(5);
    out.fill_normal(6);
    const auto x_before = x.bytes, out_before = out.bytes;
    const std::vector<int64_t> three = {1, 2, 3};
    const TensorView no_tokens{x.data(), dtype, 0, 8, 64, 512, 64};
    const TensorView no_heads{x.data(), dtype, 3, 0, 64, 512, 64};
    const TensorView out_no_heads{out.data(), dtype, 3, 0, 64, 512, 64};
    rope.rotate(no_tokens, std::span<const int64_t>());
    rope.rotate(no_heads, three, Direction::kInverse);
    rope.rotate(ConstTensorView(no_heads), out_no_heads, ConstTensorView(), TensorView(), three);
    EXPECT_EQ(x.bytes, x_before) << to_string(dtype);
    EXPECT_EQ(out.bytes, out_before) << to_string(dtype);
  }
  // Empty is no licence for a wrong head_dim or a wrong number of positions.
  EXPECT_THROW(
      rope.rotate(TensorView{nullptr, DType::kF32, 0, 8, 32, 256, 32}, std::span<const int64_t>()),
      Error);
  EXPECT_THROW(
      rope.rotate(TensorView{nullptr, DType::kF32, 3, 0, 64, 0, 64}, std::vector<int64_t>{1, 2}),
      Error);
}

}  // namespace
}  // namespace rotary
