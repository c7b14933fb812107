// RoPE inside attention: the KV cache's fused append, incremental decoding against a forward pass
// over the whole sequence, paged against contiguous storage, shift invariance, the attention
// factor, dynamic NTK's growing base, and errors that leave the cache as it was.
#include "rotary/kv_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "rotary/attention.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;

constexpr int64_t kQHeads = 4, kKvHeads = 2;  // GQA 2:1

// A sequence's inputs: q, k, v for `tokens` tokens, random, in `dtype`.
struct Inputs {
  Buffer q, k, v;
  int64_t tokens, head_dim;
  Inputs(DType dtype, int64_t n, int64_t d, uint32_t seed)
      : q(dtype, n * kQHeads * d),
        k(dtype, n * kKvHeads * d),
        v(dtype, n * kKvHeads * d),
        tokens(n),
        head_dim(d) {
    q.fill_normal(seed);
    k.fill_normal(seed + 1);
    v.fill_normal(seed + 2);
  }
  // Views of tokens [first, first + count).
  TensorView q_view(int64_t first, int64_t count) {
    return TensorView::contiguous(
        static_cast<char*>(q.data()) + first * kQHeads * head_dim * dtype_size(q.dtype), q.dtype,
        count, kQHeads, head_dim);
  }
  ConstTensorView kv_view(const Buffer& b, int64_t first, int64_t count) const {
    return ConstTensorView::contiguous(
        static_cast<const char*>(b.data()) + first * kKvHeads * head_dim * dtype_size(b.dtype),
        b.dtype, count, kKvHeads, head_dim);
  }
};

std::vector<int64_t> positions_from(int64_t first, int64_t count, int64_t offset = 0) {
  std::vector<int64_t> p(static_cast<std::size_t>(count));
  std::iota(p.begin(), p.end(), first + offset);
  return p;
}

// Runs a sequence through a cache: prefill `prompt` tokens in one append, then the rest one token
// at a time (decode). Returns the attention output of every token, in order.
std::vector<float> run(const Rope& rope, KvCache& cache, BlockTable sequence, Inputs in,
                       int64_t prompt, int64_t offset = 0, const AttentionOptions& options = {}) {
  const int64_t d = in.head_dim;
  std::vector<float> out(static_cast<std::size_t>(in.tokens * kQHeads * d));
  int64_t done = 0;
  while (done < in.tokens) {
    const int64_t count = done == 0 ? prompt : 1;
    const std::vector<int64_t> pos = positions_from(done, count, offset);
    TensorView q = in.q_view(done, count);
    cache.append(rope, q, in.kv_view(in.k, done, count), in.kv_view(in.v, done, count), pos,
                 sequence);
    attention(q, cache, sequence, done,
              std::span<float>(out).subspan(static_cast<std::size_t>(done * kQHeads * d),
                                            static_cast<std::size_t>(count * kQHeads * d)),
              options);
    done += count;
  }
  return out;
}

// Attention in long double from the unrotated inputs: q and k rotated by the exact angles with
// rotary's theta (the definition of RoPE), a full score matrix, an exact softmax.
std::vector<long double> reference_attention(const Rope& rope, const Inputs& in, int64_t offset,
                                             int64_t window = 0) {
  const int64_t d = in.head_dim, n = in.tokens, half = rope.rotary_dim() / 2;
  const std::vector<float>& theta = rope.frequencies().inv_freq;
  const long double factor = rope.frequencies().attention_factor;
  const bool interleaved = rope.config().layout == Layout::kInterleaved;
  const auto rotated = [&](const Buffer& b, int64_t heads, int64_t t, int64_t h) {
    std::vector<long double> x(static_cast<std::size_t>(d));
    for (int64_t c = 0; c < d; ++c) x[c] = b.get(static_cast<std::size_t>((t * heads + h) * d + c));
    std::vector<long double> y = x;
    for (int64_t j = 0; j < half; ++j) {
      const int64_t a = interleaved ? 2 * j : j, bb = interleaved ? 2 * j + 1 : j + half;
      const long double angle = static_cast<long double>(t + offset) * theta[j];
      y[a] = factor * (x[a] * std::cos(angle) - x[bb] * std::sin(angle));
      y[bb] = factor * (x[bb] * std::cos(angle) + x[a] * std::sin(angle));
    }
    return y;
  };
  std::vector<long double> out(static_cast<std::size_t>(n * kQHeads * d));
  const long double scale = 1.0L / std::sqrt(static_cast<long double>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < kQHeads; ++h) {
      const std::vector<long double> q = rotated(in.q, kQHeads, i, h);
      const int64_t g = h / (kQHeads / kKvHeads);
      const int64_t first = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
      std::vector<long double> scores;
      for (int64_t j = first; j <= i; ++j) {
        const std::vector<long double> k = rotated(in.k, kKvHeads, j, g);
        long double s = 0;
        for (int64_t c = 0; c < d; ++c) s += q[c] * k[c];
        scores.push_back(s * scale);
      }
      const long double m = *std::max_element(scores.begin(), scores.end());
      long double total = 0;
      for (long double& s : scores) total += (s = std::exp(s - m));
      for (int64_t c = 0; c < d; ++c) {
        long double acc = 0;
        for (int64_t j = first; j <= i; ++j) {
          acc += scores[j - first] * in.v.get(static_cast<std::size_t>((j * kKvHeads + g) * d + c));
        }
        out[(i * kQHeads + h) * d + c] = acc / total;
      }
    }
  }
  return out;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double{a[i]} - b[i]));
  return worst;
}

double max_abs_difference(const std::vector<long double>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return worst;
}

RopeConfig config_for(Layout layout, int64_t rotary_dim, int64_t head_dim = 64) {
  RopeConfig c = default_config(head_dim, 10000.0, layout);
  c.rotary_dim = rotary_dim;
  return c;
}

struct DecodeCase {
  const char* name;
  Layout layout;
  int64_t rotary_dim;
  DType dtype;
  bool paged;
};

class DecodeEqualsForward : public ::testing::TestWithParam<DecodeCase> {};

// Prefill 20 tokens then decode 12 one at a time, against one append of all 32 tokens: the same
// bits (each token's rotation and attention do not depend on how the sequence was split). Both
// are within a stated distance of the long double reference.
TEST_P(DecodeEqualsForward, bit_for_bit_and_near_the_reference) {
  const DecodeCase c = GetParam();
  const int64_t d = 64, n = 32;
  const Rope rope(config_for(c.layout, c.rotary_dim, d), {.angle_mode = AngleMode::kExact});
  const auto make_cache = [&] {
    return c.paged ? KvCache::paged(16, 5, kKvHeads, d, c.dtype)
                   : KvCache::contiguous(n, kKvHeads, d, c.dtype);
  };
  // Paged: the sequence's blocks scattered over the pool, in a shuffled order.
  const BlockTable table = c.paged ? BlockTable{{11, 2, 7, 0, 15, 9, 4}, 0} : BlockTable{{0}, 0};
  KvCache incremental_cache = make_cache(), forward_cache = make_cache();
  const Inputs inputs(c.dtype, n, d, 5);
  const std::vector<float> decoded = run(rope, incremental_cache, table, inputs, 20);
  const std::vector<float> forward = run(rope, forward_cache, table, inputs, n);
  EXPECT_EQ(max_abs_difference(decoded, forward), 0.0);
  const double error = max_abs_difference(reference_attention(rope, inputs, 0), decoded);
  // f32: float32 rounding of the rotation, the dot products and the softmax (values are O(1)).
  // 16-bit: q and k are rounded to the storage type after rotation.
  const double allowed = c.dtype == DType::kF32 ? 5e-6 : c.dtype == DType::kF16 ? 5e-3 : 2e-2;
  EXPECT_LE(error, allowed);
  std::printf("[ decode==forward ] %s: |decode - forward| = 0, |decode - reference| = %.2e\n",
              c.name, error);
}

INSTANTIATE_TEST_SUITE_P(
    kv_cache_test, DecodeEqualsForward,
    ::testing::Values(
        DecodeCase{"half_split_f32_contiguous", Layout::kHalfSplit, 64, DType::kF32, false},
        DecodeCase{"half_split_f32_paged", Layout::kHalfSplit, 64, DType::kF32, true},
        DecodeCase{"interleaved_f32_contiguous", Layout::kInterleaved, 64, DType::kF32, false},
        DecodeCase{"interleaved_f32_paged", Layout::kInterleaved, 64, DType::kF32, true},
        DecodeCase{"partial_f32_paged", Layout::kHalfSplit, 16, DType::kF32, true},
        DecodeCase{"partial_interleaved_f32_contiguous", Layout::kInterleaved, 24, DType::kF32,
                   false},
        DecodeCase{"half_split_bf16_paged", Layout::kHalfSplit, 64, DType::kBF16, true},
        DecodeCase{"half_split_f16_contiguous", Layout::kHalfSplit, 64, DType::kF16, false}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

// The paged cache holds exactly the bytes of the contiguous one, token for token.
TEST(kv_cache_test, paged_holds_what_contiguous_holds) {
  const int64_t d = 64, n = 23;
  const Rope rope(config_for(Layout::kHalfSplit, 64));
  KvCache contiguous = KvCache::contiguous(n, kKvHeads, d, DType::kBF16);
  KvCache paged = KvCache::paged(8, 4, kKvHeads, d, DType::kBF16);
  BlockTable one{{0}, 0}, scattered{{6, 1, 3, 7, 0, 2}, 0};
  Inputs a(DType::kBF16, n, d, 9), b = a;
  run(rope, contiguous, one, a, 10);
  run(rope, paged, scattered, b, 3);
  for (int64_t t = 0; t < n; ++t) {
    const ConstTensorView kc = contiguous.keys(0, t, 1), vc = contiguous.values(0, t, 1);
    const ConstTensorView kp = paged.keys(scattered.blocks[t / 4], t % 4, 1);
    const ConstTensorView vp = paged.values(scattered.blocks[t / 4], t % 4, 1);
    EXPECT_EQ(std::memcmp(kc.data, kp.data, kKvHeads * d * 2), 0) << t;
    EXPECT_EQ(std::memcmp(vc.data, vp.data, kKvHeads * d * 2), 0) << t;
  }
}

// The sliding window: each query sees only its last W keys, as the reference computes it.
TEST(kv_cache_test, sliding_window) {
  const int64_t d = 64, n = 40, window = 7;
  const Rope rope(config_for(Layout::kHalfSplit, 64), {.angle_mode = AngleMode::kExact});
  KvCache cache = KvCache::paged(10, 8, kKvHeads, d, DType::kF32);
  const Inputs inputs(DType::kF32, n, d, 21);
  const std::vector<float> out =
      run(rope, cache, {{1, 3, 5, 7, 9}, 0}, inputs, 25, 0, {.sliding_window = window});
  EXPECT_LE(max_abs_difference(reference_attention(rope, inputs, 0, window), out), 2e-5);
  KvCache fresh = KvCache::paged(10, 8, kKvHeads, d, DType::kF32);
  const std::vector<float> full = run(rope, fresh, {{1, 3, 5, 7, 9}, 0}, inputs, 25);
  EXPECT_GT(max_abs_difference(full, out), 1e-3);  // the window does change the result
}

// Shift invariance end to end: the same sequence placed at offset s gives the same attention
// output. exact mode meets 1e-5 at every offset up to 10^7; hf mode's float32 angle p * theta
// loses the relative position as p grows (measured and printed, and required to be worse than
// exact at 10^6 so that the test shows the difference it is there to show).
TEST(kv_cache_test, attention_is_shift_invariant) {
  const int64_t d = 64, n = 24;
  const Inputs inputs(DType::kF32, n, d, 33);
  for (AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
    const Rope rope(config_for(Layout::kHalfSplit, 64),
                    {.angle_mode = mode, .cache_positions = 64});
    KvCache base_cache = KvCache::contiguous(n, kKvHeads, d, DType::kF32);
    const std::vector<float> at_zero = run(rope, base_cache, {{0}, 0}, inputs, 16);
    for (int64_t offset : {int64_t{1}, int64_t{1000}, int64_t{1000000}, int64_t{10000000}}) {
      KvCache cache = KvCache::contiguous(n, kKvHeads, d, DType::kF32);
      const double error =
          max_abs_difference(at_zero, run(rope, cache, {{0}, 0}, inputs, 16, offset));
      std::printf("[ shift ] %s mode, offset %lld: max |out(s) - out(0)| = %.2e\n",
                  mode == AngleMode::kExact ? "exact" : "hf", static_cast<long long>(offset),
                  error);
      if (mode == AngleMode::kExact) {
        EXPECT_LE(error, 5e-6) << offset;
      }
      if (mode == AngleMode::kHf && offset == 1000000) {
        EXPECT_GT(error, 1e-5);
      }
    }
  }
}

// YaRN's attention factor multiplies cos and sin, as in transformers: rotated keys and queries
// grow by the factor and scores by its square.
TEST(kv_cache_test, attention_factor_scales_cos_and_sin) {
  RopeConfig yarn = default_config(64, 10000.0);
  yarn.rope_type = RopeType::kYarn;
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 4096;
  yarn.max_position_embeddings = 16384;
  const Rope scaled(yarn);
  Frequencies unit = scaled.frequencies();
  const double factor = unit.attention_factor;
  ASSERT_NEAR(factor, 0.1 * std::log(4.0) + 1.0, 1e-12);
  unit.attention_factor = 1.0;
  const Rope plain(yarn, unit);
  KvCache a = KvCache::contiguous(4, kKvHeads, 64, DType::kF32), b = a;
  BlockTable sa{{0}, 0}, sb{{0}, 0};
  Inputs in(DType::kF32, 4, 64, 3), in2 = in;
  const std::vector<int64_t> pos = {0, 5, 900, 70000};
  a.append(scaled, in.q_view(0, 4), in.kv_view(in.k, 0, 4), in.kv_view(in.v, 0, 4), pos, sa);
  b.append(plain, in2.q_view(0, 4), in2.kv_view(in2.k, 0, 4), in2.kv_view(in2.v, 0, 4), pos, sb);
  for (int64_t t = 0; t < 4; ++t) {
    const auto* ka = static_cast<const float*>(a.keys(0, t, 1).data);
    const auto* kb = static_cast<const float*>(b.keys(0, t, 1).data);
    for (int64_t c = 0; c < kKvHeads * 64; ++c) EXPECT_NEAR(ka[c], factor * kb[c], 1e-5);
  }
}

// Dynamic NTK, as transformers runs it with a KV cache: each forward call picks the base from
// max(position) + 1 of that call, and keys already cached keep the rotation they were stored
// with. So a key appended while decoding past max_position_embeddings is rotated with the base for
// its own length, and a prefill of the whole sequence would rotate every key with the final one.
TEST(kv_cache_test, dynamic_ntk_keeps_each_key_as_appended) {
  RopeConfig c = default_config(64, 10000.0);
  c.rope_type = RopeType::kDynamic;
  c.factor = 2.0;
  c.max_position_embeddings = 16;
  const Rope rope(c);
  KvCache cache = KvCache::contiguous(24, kKvHeads, 64, DType::kF32);
  BlockTable seq{{0}, 0};
  Inputs in(DType::kF32, 24, 64, 8), original = in;
  run(rope, cache, seq, in, 12);  // 12 in the trained context, then 12 decode steps past it
  for (int64_t t : {int64_t{0}, int64_t{11}, int64_t{16}, int64_t{23}}) {
    // The rotation a lone call for token t applies: frequencies for length max(t + 1, 12).
    const Rope at_append(c, compute_frequencies(c, std::max<int64_t>(t + 1, 12)));
    std::vector<float> expected(kKvHeads * 64);
    std::memcpy(expected.data(), static_cast<const float*>(original.k.data()) + t * kKvHeads * 64,
                expected.size() * 4);
    const std::vector<int64_t> p = {t};
    at_append.rotate(TensorView::contiguous(expected.data(), DType::kF32, 1, kKvHeads, 64), p);
    EXPECT_EQ(std::memcmp(expected.data(), cache.keys(0, t, 1).data, expected.size() * 4), 0) << t;
  }
}

// Bad input: a clear error naming the argument, and the cache, the sequence and q untouched.
TEST(kv_cache_test, errors_leave_everything_as_it_was) {
  const int64_t d = 64;
  const Rope rope(config_for(Layout::kHalfSplit, 64));
  KvCache cache = KvCache::paged(4, 4, kKvHeads, d, DType::kF32);
  BlockTable seq{{2, 0}, 0};
  Inputs in(DType::kF32, 10, d, 1);
  cache.append(rope, in.q_view(0, 6), in.kv_view(in.k, 0, 6), in.kv_view(in.v, 0, 6),
               positions_from(0, 6), seq);
  const KvCache before = cache;
  const BlockTable seq_before = seq;
  const Buffer q_before = in.q;

  const auto expect_error = [&](const char* argument, auto&& call) {
    try {
      call();
      ADD_FAILURE() << "no error for " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
    }
    for (int64_t b = 0; b < 4; ++b) {
      EXPECT_EQ(
          std::memcmp(cache.keys(b, 0, 4).data, before.keys(b, 0, 4).data, 4 * kKvHeads * d * 4),
          0);
      EXPECT_EQ(std::memcmp(cache.values(b, 0, 4).data, before.values(b, 0, 4).data,
                            4 * kKvHeads * d * 4),
                0);
    }
    EXPECT_EQ(seq.length, seq_before.length);
    EXPECT_EQ(in.q.bytes, q_before.bytes);
  };
  const auto append = [&](TensorView q, ConstTensorView k, ConstTensorView v, BlockTable& s) {
    cache.append(rope, q, k, v, positions_from(s.length, k.num_tokens), s);
  };
  // 6 + 3 tokens > 2 blocks of 4.
  expect_error("sequence", [&] {
    append(in.q_view(6, 3), in.kv_view(in.k, 6, 3), in.kv_view(in.v, 6, 3), seq);
  });
  BlockTable outside{{2, 0, 9}, 6};
  expect_error("sequence.blocks", [&] {
    append(in.q_view(6, 3), in.kv_view(in.k, 6, 3), in.kv_view(in.v, 6, 3), outside);
  });
  BlockTable twice{{2, 0, 2}, 6};
  expect_error("sequence.blocks", [&] {
    append(in.q_view(6, 3), in.kv_view(in.k, 6, 3), in.kv_view(in.v, 6, 3), twice);
  });
  BlockTable roomy{{2, 0, 1}, 6};
  ConstTensorView three_heads = in.kv_view(in.k, 6, 1);
  three_heads.num_heads = 1;
  expect_error("k.num_heads",
               [&] { append(in.q_view(6, 1), three_heads, in.kv_view(in.v, 6, 1), roomy); });
  ConstTensorView half_precision = in.kv_view(in.v, 6, 1);
  half_precision.dtype = DType::kBF16;
  expect_error("v.dtype",
               [&] { append(in.q_view(6, 1), in.kv_view(in.k, 6, 1), half_precision, roomy); });
  expect_error("v.num_tokens", [&] {
    append(in.q_view(6, 2), in.kv_view(in.k, 6, 2), in.kv_view(in.v, 6, 1), roomy);
  });
  expect_error("q.num_tokens", [&] {
    append(in.q_view(6, 1), in.kv_view(in.k, 6, 2), in.kv_view(in.v, 6, 2), roomy);
  });
  expect_error("positions", [&] {
    cache.append(rope, in.q_view(6, 2), in.kv_view(in.k, 6, 2), in.kv_view(in.v, 6, 2),
                 positions_from(6, 3), roomy);
  });
  const Rope other(config_for(Layout::kHalfSplit, 32, 32));
  expect_error("rope", [&] {
    cache.append(other, in.q_view(6, 1), in.kv_view(in.k, 6, 1), in.kv_view(in.v, 6, 1),
                 positions_from(6, 1), roomy);
  });
  EXPECT_EQ(roomy.length, 6);
  // And the same sequence then appends normally.
  EXPECT_NO_THROW(append(in.q_view(6, 3), in.kv_view(in.k, 6, 3), in.kv_view(in.v, 6, 3), roomy));
  EXPECT_EQ(roomy.length, 9);
  // Keys only (no queries): an empty q view.
  BlockTable keys_only{{3}, 0};
  EXPECT_NO_THROW(cache.append(rope, TensorView{}, in.kv_view(in.k, 0, 2), in.kv_view(in.v, 0, 2),
                               positions_from(0, 2), keys_only));
  EXPECT_EQ(std::memcmp(cache.keys(3, 0, 1).data, cache.keys(2, 0, 1).data, kKvHeads * d * 4), 0);
  EXPECT_THROW(KvCache::paged(0, 4, 1, 64, DType::kF32), Error);
  EXPECT_THROW(KvCache::contiguous(int64_t{1} << 41, 8, 128, DType::kF32), Error);
}

// An append remembers the tables it verified (decode would otherwise re-check every entry for
// every token); a table edited in place after a successful append, or shown to a smaller pool, is
// checked again and refused.
TEST(kv_cache_test, a_verified_table_edited_in_place_is_checked_again) {
  const int64_t d = 64;
  const Rope rope(config_for(Layout::kHalfSplit, 64));
  KvCache cache = KvCache::paged(8, 4, kKvHeads, d, DType::kF32);
  KvCache small = KvCache::paged(3, 4, kKvHeads, d, DType::kF32);
  Inputs in(DType::kF32, 12, d, 1);
  BlockTable seq{{5, 1, 7}, 0};
  const auto append = [&](KvCache& c, int64_t first, int64_t count) {
    c.append(rope, in.q_view(first, count), in.kv_view(in.k, first, count),
             in.kv_view(in.v, first, count), positions_from(first, count), seq);
  };
  append(cache, 0, 4);
  append(cache, 4, 1);  // the remembered table: accepted without a full check
  seq.blocks[2] = 5;    // now block 5 (tokens 0-3) would be overwritten by tokens 8-11
  seq.length = 8;
  try {
    append(cache, 8, 1);
    ADD_FAILURE() << "a block named twice was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "sequence.blocks");
    EXPECT_NE(std::string(e.what()).find("block 5 (entry 2) appears twice"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(seq.length, 8);
  seq.blocks = {2, 1, 0};  // verified below against the 8-block pool
  seq.length = 0;
  append(cache, 0, 1);
  seq.blocks[0] = 6;  // fine for the 8-block pool, outside the 3-block one
  seq.length = 0;
  append(cache, 0, 1);
  seq.length = 0;
  EXPECT_THROW(append(small, 0, 1), Error);
  seq.blocks[0] = 2;  // verified for 8 blocks, and inside the 3-block pool too
  seq.length = 0;
  append(cache, 0, 1);
  seq.length = 0;
  EXPECT_NO_THROW(append(small, 0, 1));
}

TEST(kv_cache_test, attention_errors) {
  const Rope rope(config_for(Layout::kHalfSplit, 64));
  KvCache cache = KvCache::contiguous(8, kKvHeads, 64, DType::kF32);
  BlockTable seq{{0}, 0};
  Inputs in(DType::kF32, 4, 64, 2);
  cache.append(rope, in.q_view(0, 4), in.kv_view(in.k, 0, 4), in.kv_view(in.v, 0, 4),
               positions_from(0, 4), seq);
  std::vector<float> out(4 * kQHeads * 64);
  EXPECT_THROW(attention(in.q_view(0, 4), cache, seq, 1, out), Error);  // queries past the sequence
  EXPECT_THROW(attention(in.q_view(0, 3), cache, seq, 0, out), Error);  // out too large
  TensorView three = in.q_view(0, 4);
  three.num_heads = 3;
  three.head_stride = 64;
  EXPECT_THROW(attention(three, cache, seq, 0, std::span<float>(out).first(4 * 3 * 64)), Error);
}

}  // namespace
}  // namespace rotary
