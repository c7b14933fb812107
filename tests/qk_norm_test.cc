// rms_norm_rotate: against a float64 oracle of the formula written out here; bit for bit against
// a float32 norm written out here followed by Rope::rotate; the KV-cache variant against
// rms_norm_rotate plus a plain copy; and the refusals, which leave every output as it was.
#include "rotary/qk_norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "rotary/error.h"
#include "test_errors.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;
using testing::thrown_by;

constexpr int64_t kTokens = 13;

struct Case {
  const char* name;
  DType dtype;
  Layout layout;
  int64_t head_dim, rotary_dim, q_heads, k_heads;
  bool unit_offset, round_before_weight;
  NormScope scope;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

const Case kCases[] = {
    {"qwen3_f32", DType::kF32, Layout::kHalfSplit, 128, 128, 4, 2, false, true, NormScope::kHead},
    {"qwen3_bf16", DType::kBF16, Layout::kHalfSplit, 128, 128, 4, 2, false, true, NormScope::kHead},
    {"qwen3_f16", DType::kF16, Layout::kHalfSplit, 64, 64, 4, 1, false, true, NormScope::kHead},
    {"gemma3_bf16", DType::kBF16, Layout::kHalfSplit, 64, 64, 4, 2, true, false, NormScope::kHead},
    {"gemma3_f32", DType::kF32, Layout::kHalfSplit, 64, 64, 2, 2, true, false, NormScope::kHead},
    {"olmo2_bf16", DType::kBF16, Layout::kHalfSplit, 64, 64, 4, 4, false, false, NormScope::kToken},
    {"olmo2_f32", DType::kF32, Layout::kHalfSplit, 64, 64, 4, 2, false, false, NormScope::kToken},
    // Odd sizes: a head_dim that is no multiple of 8 (scalar tails), partial rotation
    // (pass-through channels normalised too), interleaved pairs.
    {"partial_interleaved_bf16", DType::kBF16, Layout::kInterleaved, 36, 20, 3, 1, true, true,
     NormScope::kHead},
    {"partial_f16_token", DType::kF16, Layout::kHalfSplit, 20, 12, 3, 2, false, true,
     NormScope::kToken},
};

std::vector<float> random_weight(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.25f, 1.75f);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (float& x : w) x = u(rng);
  return w;
}

RmsNorm norm_for(const Case& c, int64_t heads, uint32_t seed) {
  const int64_t n = c.scope == NormScope::kHead ? c.head_dim : heads * c.head_dim;
  return {random_weight(n, seed), 1e-6f, c.unit_offset, c.scope, c.round_before_weight};
}

Rope rope_for(const Case& c) {
  RopeConfig config = default_config(c.head_dim, 10000.0, c.layout);
  config.rotary_dim = c.rotary_dim;
  return Rope(config, {.angle_mode = AngleMode::kExact, .max_threads = 1});
}

std::vector<int64_t> positions() {
  std::vector<int64_t> p(kTokens);
  std::iota(p.begin(), p.end(), 5);
  return p;
}

// A value as the storage type holds it.
double rounded(DType dtype, double v) {
  Buffer one(dtype, 1);
  one.set(0, static_cast<float>(v));
  return one.get(0);
}

// The oracle, in float64: per group r = 1 / sqrt(mean(x^2) + eps); y = x * r, rounded to the
// storage type first when round_before_weight; times weight (or 1 + weight); rounded to the
// storage type (the norm module's output); then pair (a, b) of the rotated channels becomes
// (ya cos - yb sin, yb cos + ya sin) with angle = position * base^(-2i / rotary_dim).
std::vector<double> oracle(const Case& c, const RmsNorm& norm, const Buffer& x, int64_t heads) {
  const int64_t d = c.head_dim, group = c.scope == NormScope::kHead ? d : heads * d;
  std::vector<double> y(x.size());
  for (std::size_t first = 0; first < x.size(); first += static_cast<std::size_t>(group)) {
    double sum = 0;
    for (int64_t j = 0; j < group; ++j) sum += std::pow(double{x.get(first + j)}, 2);
    const double r = 1 / std::sqrt(sum / static_cast<double>(group) + double{norm.eps});
    for (int64_t j = 0; j < group; ++j) {
      double v = x.get(first + j) * r;
      if (c.round_before_weight) v = rounded(c.dtype, v);
      const double w = norm.weight[static_cast<std::size_t>(j)];
      y[first + j] = rounded(c.dtype, v * (c.unit_offset ? 1 + w : w));
    }
  }
  const std::vector<int64_t> p = positions();
  const int64_t half = c.rotary_dim / 2;
  std::vector<double> out = y;
  for (int64_t t = 0; t < kTokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const std::size_t base = static_cast<std::size_t>((t * heads + h) * d);
      for (int64_t i = 0; i < half; ++i) {
        const double theta =
            std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(c.rotary_dim));
        const double angle = static_cast<double>(p[static_cast<std::size_t>(t)]) * theta;
        const bool interleaved = c.layout == Layout::kInterleaved;
        const std::size_t a = base + static_cast<std::size_t>(interleaved ? 2 * i : i);
        const std::size_t b = a + static_cast<std::size_t>(interleaved ? 1 : half);
        out[a] = y[a] * std::cos(angle) - y[b] * std::sin(angle);
        out[b] = y[b] * std::cos(angle) + y[a] * std::sin(angle);
      }
    }
  }
  return out;
}

// The float32 norm as the kernels define it (qk_norm.h): 8 partial sums in order j % 8 within each
// head, combined pairwise; then Rope::rotate does the rest.
void norm_float32(const Case& c, const RmsNorm& norm, Buffer& x, int64_t heads) {
  const int64_t d = c.head_dim, group = c.scope == NormScope::kHead ? d : heads * d;
  for (std::size_t first = 0; first < x.size(); first += static_cast<std::size_t>(group)) {
    float s[8] = {};
    for (int64_t j = 0; j < group; ++j) {
      const float v = x.get(first + j);
      s[(j % d) % 8] += v * v;
    }
    const float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    const float r = 1.0f / std::sqrt(sum / static_cast<float>(group) + norm.eps);
    for (int64_t j = 0; j < group; ++j) {
      float v = x.get(first + j) * r;
      if (c.round_before_weight) v = static_cast<float>(rounded(c.dtype, v));
      const float w = norm.weight[static_cast<std::size_t>(j)];
      x.set(first + j, v * (c.unit_offset ? 1.0f + w : w));
    }
  }
}

class QkNormTest : public ::testing::TestWithParam<Case> {};

TEST_P(QkNormTest, MatchesTheFloat64Oracle) {
  const Case& c = GetParam();
  const Rope rope = rope_for(c);
  Buffer q(c.dtype, kTokens * c.q_heads * c.head_dim), k(c.dtype, kTokens * c.k_heads * c.head_dim);
  q.fill_normal(1);
  k.fill_normal(2);
  const QkNorm norms{norm_for(c, c.q_heads, 3), norm_for(c, c.k_heads, 4)};
  const std::vector<double> q_want = oracle(c, norms.q, q, c.q_heads);
  const std::vector<double> k_want = oracle(c, norms.k, k, c.k_heads);
  rms_norm_rotate(
      rope, norms, TensorView::contiguous(q.data(), c.dtype, kTokens, c.q_heads, c.head_dim),
      TensorView::contiguous(k.data(), c.dtype, kTokens, c.k_heads, c.head_dim), positions());
  // float32 arithmetic against float64: a few float32 roundings, plus in 16-bit storage one unit
  // of the intermediate rounding (y) times |cos| + |sin| and the final rounding.
  for (auto [got, want] : {std::pair{&q, &q_want}, std::pair{&k, &k_want}}) {
    for (std::size_t i = 0; i < got->size(); ++i) {
      const double w = (*want)[i];
      const double tol = c.dtype == DType::kF32
                             ? 2e-5 * std::max(1.0, std::abs(w))
                             : 2 * testing::ulp_of(c.dtype, std::max(4.0, std::abs(w)));
      ASSERT_NEAR(got->get(i), w, tol) << "element " << i;
    }
  }
}

TEST_P(QkNormTest, EqualsNormThenRopeRotateBitForBit) {
  const Case& c = GetParam();
  const Rope rope = rope_for(c);
  Buffer q(c.dtype, kTokens * c.q_heads * c.head_dim), k(c.dtype, kTokens * c.k_heads * c.head_dim);
  q.fill_normal(5);
  k.fill_normal(6);
  const QkNorm norms{norm_for(c, c.q_heads, 7), norm_for(c, c.k_heads, 8)};
  Buffer q_two = q, k_two = k, q_out(c.dtype, q.size()), k_out(c.dtype, k.size());
  norm_float32(c, norms.q, q_two, c.q_heads);
  norm_float32(c, norms.k, k_two, c.k_heads);
  const auto view = [&](Buffer& b, int64_t heads) {
    return TensorView::contiguous(b.data(), c.dtype, kTokens, heads, c.head_dim);
  };
  rope.rotate(view(q_two, c.q_heads), view(k_two, c.k_heads), positions());
  // Out of place first (the inputs intact), then in place.
  rms_norm_rotate(rope, norms, view(q, c.q_heads), view(q_out, c.q_heads), view(k, c.k_heads),
                  view(k_out, c.k_heads), positions());
  EXPECT_EQ(q_out.bytes, q_two.bytes);
  EXPECT_EQ(k_out.bytes, k_two.bytes);
  rms_norm_rotate(rope, norms, view(q, c.q_heads), view(k, c.k_heads), positions());
  EXPECT_EQ(q.bytes, q_two.bytes);
  EXPECT_EQ(k.bytes, k_two.bytes);
}

TEST_P(QkNormTest, KvAppendEqualsNormRotateThenCopy) {
  const Case& c = GetParam();
  const Rope rope = rope_for(c);
  Buffer q(c.dtype, kTokens * c.q_heads * c.head_dim), k(c.dtype, kTokens * c.k_heads * c.head_dim),
      v(c.dtype, kTokens * c.k_heads * c.head_dim);
  q.fill_normal(9);
  k.fill_normal(10);
  v.fill_normal(11);
  const QkNorm norms{norm_for(c, c.q_heads, 12), norm_for(c, c.k_heads, 13)};
  Buffer q_two = q, k_two = k;
  const auto view = [&](Buffer& b, int64_t heads) {
    return TensorView::contiguous(b.data(), c.dtype, kTokens, heads, c.head_dim);
  };
  rms_norm_rotate(rope, norms, view(q_two, c.q_heads), view(k_two, c.k_heads), positions());

  // Blocks of 4 tokens: the 13 tokens span four blocks, given out of order.
  KvCache cache = KvCache::paged(6, 4, c.k_heads, c.head_dim, c.dtype);
  BlockTable sequence{.blocks = {5, 0, 3, 1}};
  const Buffer k_before = k;
  rms_norm_rotate_append(cache, rope, norms, view(q, c.q_heads), view(k, c.k_heads),
                         view(v, c.k_heads), positions(), sequence);
  EXPECT_EQ(sequence.length, kTokens);
  EXPECT_EQ(q.bytes, q_two.bytes);
  EXPECT_EQ(k.bytes, k_before.bytes);  // only read
  const std::size_t row = static_cast<std::size_t>(c.k_heads * c.head_dim) * dtype_size(c.dtype);
  for (int64_t t = 0; t < kTokens; ++t) {
    const int64_t block = sequence.blocks[static_cast<std::size_t>(t / 4)];
    const auto* key = static_cast<const unsigned char*>(cache.keys(block, t % 4, 1).data);
    const auto* value = static_cast<const unsigned char*>(cache.values(block, t % 4, 1).data);
    const std::size_t at = static_cast<std::size_t>(t) * row;
    EXPECT_EQ(std::memcmp(key, k_two.bytes.data() + at, row), 0) << "key of token " << t;
    EXPECT_EQ(std::memcmp(value, v.bytes.data() + at, row), 0) << "value of token " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, QkNormTest, ::testing::ValuesIn(kCases), case_name);

// Refusals: the argument named, nothing written.
struct Small {
  Rope rope{default_config(8, 10000.0, Layout::kHalfSplit)};
  Buffer q{DType::kF32, 2 * 2 * 8}, k{DType::kF32, 2 * 1 * 8};
  std::vector<int64_t> p{0, 1};
  QkNorm norms{{std::vector<float>(8, 1.0f)}, {std::vector<float>(8, 1.0f)}};
  Small() {
    q.fill_normal(1);
    k.fill_normal(2);
  }
  TensorView qv() { return TensorView::contiguous(q.data(), DType::kF32, 2, 2, 8); }
  TensorView kv() { return TensorView::contiguous(k.data(), DType::kF32, 2, 1, 8); }
  std::string refused() {
    const Buffer q0 = q, k0 = k;
    const Error e = thrown_by([&] { rms_norm_rotate(rope, norms, qv(), kv(), p); });
    EXPECT_EQ(q.bytes, q0.bytes);
    EXPECT_EQ(k.bytes, k0.bytes);
    return e.argument();
  }
};

TEST(QkNormErrors, NamesTheNormField) {
  {
    Small s;
    s.norms.q.eps = 0;
    EXPECT_EQ(s.refused(), "norms.q.eps");
  }
  {
    Small s;
    s.norms.k.eps = std::nanf("");
    EXPECT_EQ(s.refused(), "norms.k.eps");
  }
  {
    Small s;
    s.norms.k.eps = INFINITY;
    EXPECT_EQ(s.refused(), "norms.k.eps");
  }
  {
    Small s;
    s.norms.q.weight.resize(7);
    EXPECT_EQ(s.refused(), "norms.q.weight");
  }
  {
    Small s;  // per token: 2 heads x 8 expected
    s.norms.q.scope = NormScope::kToken;
    EXPECT_EQ(s.refused(), "norms.q.weight");
    s.norms.q.weight.assign(16, 1.0f);
    EXPECT_NO_THROW(rms_norm_rotate(s.rope, s.norms, s.qv(), s.kv(), s.p));
  }
  {
    Small s;
    s.norms.k.weight[3] = INFINITY;
    EXPECT_EQ(s.refused(), "norms.k.weight");
  }
  {
    Small s;
    s.norms.q.scope = static_cast<NormScope>(7);
    EXPECT_EQ(s.refused(), "norms.q.scope");
  }
}

TEST(QkNormErrors, KeepsRopeRotatesChecks) {
  {
    Small s;
    s.p.push_back(2);
    EXPECT_EQ(s.refused(), "positions");
  }
  {
    // K sharing Q's second head: refused, as Rope::rotate refuses it.
    Small s;
    const Buffer q0 = s.q;
    TensorView k = s.qv();
    k.data = static_cast<float*>(s.q.data()) + 8;
    k.num_heads = 1;
    const Error e = thrown_by([&] { rms_norm_rotate(s.rope, s.norms, s.qv(), k, s.p); });
    EXPECT_EQ(e.argument(), "q_out") << e.what();
    EXPECT_NE(std::string(e.what()).find("shares memory with k"), std::string::npos) << e.what();
    EXPECT_EQ(s.q.bytes, q0.bytes);
  }
  {
    // An output that overlaps itself.
    Small s;
    TensorView q = s.qv();
    q.head_stride = 4;
    const Error e = thrown_by([&] { rms_norm_rotate(s.rope, s.norms, q, s.kv(), s.p); });
    EXPECT_EQ(e.argument().rfind("q", 0), 0u) << e.what();
  }
  {
    Small s;  // no K: its norm is not looked at
    s.norms.k.weight.clear();
    EXPECT_NO_THROW(rms_norm_rotate(s.rope, s.norms, s.qv(), TensorView(), s.p));
  }
  {
    Small s;  // a q without heads: only k is normalised and rotated, q's norm is not looked at
    s.norms.q.weight.clear();
    const Buffer k0 = s.k;
    TensorView q = s.qv();
    q.num_heads = 0;
    EXPECT_NO_THROW(rms_norm_rotate(s.rope, s.norms, q, s.kv(), s.p));
    EXPECT_NE(s.k.bytes, k0.bytes);
  }
}

TEST(QkNormErrors, KvAppendLeavesEverythingOnError) {
  Small s;
  Buffer v(DType::kF32, s.k.size());
  KvCache cache = KvCache::contiguous(1, 1, 8, DType::kF32);  // room for one token, not two
  BlockTable sequence{.blocks = {0}};
  const Buffer q0 = s.q;
  const auto append = [&] {
    rms_norm_rotate_append(cache, s.rope, s.norms, s.qv(), s.kv(),
                           ConstTensorView::contiguous(v.data(), DType::kF32, 2, 1, 8), s.p,
                           sequence);
  };
  EXPECT_EQ(thrown_by(append).argument(), "sequence");
  EXPECT_EQ(s.q.bytes, q0.bytes);
  EXPECT_EQ(sequence.length, 0);
  s.norms.k.eps = -1;
  KvCache roomy = KvCache::contiguous(4, 1, 8, DType::kF32);
  EXPECT_EQ(thrown_by([&] {
              rms_norm_rotate_append(roomy, s.rope, s.norms, s.qv(), s.kv(),
                                     ConstTensorView::contiguous(v.data(), DType::kF32, 2, 1, 8),
                                     s.p, sequence);
            }).argument(),
            "norms.k.eps");
  EXPECT_EQ(s.q.bytes, q0.bytes);
}

}  // namespace
}  // namespace rotary
