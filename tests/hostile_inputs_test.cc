// A table of hostile inputs, as a server taking shapes and positions from requests would see
// them. For each: the expected error (by the fragment its message must contain) or the expected
// behaviour, and in every error case the output bytes are identical to before the call.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "rotary/error.h"
#include "rotary/kv_cache.h"
#include "rotary/limits.h"
#include "rotary/rope.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

struct Call {
  TensorView q;
  TensorView k;
  std::vector<int64_t> positions;
};

struct HostileCase {
  const char* name;
  std::function<void(Call&)> mutate;
  const char* error_fragment;  // nullptr: the call must succeed
};

const HostileCase kCases[] = {
    {"product of sizes overflows",
     [](Call& c) {
       c.q.num_tokens = kMax / 2;
       c.q.token_stride = 4;
     },
     "overflow"},
    {"head count times stride overflows",
     [](Call& c) {
       c.k.num_heads = 3;
       c.k.head_stride = kMax / 2;
     },
     "overflow"},
    {"stride so large the view passes the address space end",
     [](Call& c) { c.q.token_stride = kMax / 8; }, "address space"},
    {"negative token stride", [](Call& c) { c.q.token_stride = -1; },
     "q.token_stride: expected >= 0"},
    {"negative head count", [](Call& c) { c.k.num_heads = -2; }, "k.num_heads: expected >= 0"},
    {"negative token count", [](Call& c) { c.q.num_tokens = -1; }, "q.num_tokens: expected >= 0"},
    {"heads aliasing each other", [](Call& c) { c.q.head_stride = 1; },
     "q_out: the output overlaps itself"},
    {"tokens aliasing each other", [](Call& c) { c.k.token_stride = 0; },
     "k_out: the output overlaps itself"},
    {"K is the same memory as Q", [](Call& c) { c.k = c.q; }, "q_out: shares memory with k"},
    {"K shares a head with Q",
     [](Call& c) { c.k = {static_cast<float*>(c.q.data) + 24, DType::kF32, 3, 2, 12, 48, 12}; },
     "q_out: shares memory with k"},
    {"K one element into Q's third head",
     [](Call& c) { c.k = {static_cast<float*>(c.q.data) + 35, DType::kF32, 3, 2, 12, 36, 12}; },
     "q_out: shares memory with k"},
    {"position INT64_MAX", [](Call& c) { c.positions[1] = kMax; },
     "positions[1]: expected |position| <= 2^53"},
    {"position INT64_MIN", [](Call& c) { c.positions[2] = kMin; },
     "positions[2]: expected |position| <= 2^53"},
    {"position 2^53 + 1", [](Call& c) { c.positions[0] = (int64_t{1} << 53) + 1; }, "positions[0]"},
    {"too few positions", [](Call& c) { c.positions.pop_back(); },
     "positions: expected one position per token"},
    {"null data", [](Call& c) { c.k.data = nullptr; }, "k.data: null pointer"},
    {"head_dim not the configuration's", [](Call& c) { c.q.head_dim = 10; }, "q.head_dim"},
    // Accepted: these must work and must not crash.
    {"negative positions",
     [](Call& c) {
       c.positions = {-1, -1000, -(int64_t{1} << 53)};
     },
     nullptr},
    {"position exactly 2^53", [](Call& c) { c.positions[0] = int64_t{1} << 53; }, nullptr},
    {"empty Q and K with null data",
     [](Call& c) {
       c.q = {nullptr, DType::kF32, 0, 4, 12, 48, 12};
       c.k = {nullptr, DType::kF32, 0, 2, 12, 24, 12};
       c.positions.clear();
     },
     nullptr},
    {"zero heads",
     [](Call& c) {
       c.q.num_heads = 0;
       c.q.data = nullptr;
     },
     nullptr},
    {"Q and K heads interleaved in one buffer, no element shared",
     [](Call& c) {
       c.q = {c.q.data, DType::kF32, 3, 2, 12, 48, 24};
       c.k = {static_cast<float*>(c.q.data) + 12, DType::kF32, 3, 2, 12, 48, 24};
     },
     nullptr},
};

class HostileInputs : public ::testing::TestWithParam<HostileCase> {};

TEST_P(HostileInputs, errors_cleanly_or_works) {
  const HostileCase& hc = GetParam();
  // head_dim 12: not a multiple of any vector width.
  const Rope rope(default_config(12), {.angle_mode = AngleMode::kExact, .cache_positions = 4});
  Buffer q(DType::kF32, 3 * 4 * 12), k(DType::kF32, 3 * 2 * 12);
  q.fill_normal(1);
  k.fill_normal(2);
  const auto q_before = q.bytes, k_before = k.bytes;
  Call call{TensorView::contiguous(q.data(), DType::kF32, 3, 4, 12),
            TensorView::contiguous(k.data(), DType::kF32, 3, 2, 12),
            {0, 1, 2}};
  hc.mutate(call);
  if (hc.error_fragment == nullptr) {
    EXPECT_NO_THROW(rope.rotate(call.q, call.k, call.positions));
    return;
  }
  try {
    rope.rotate(call.q, call.k, call.positions);
    ADD_FAILURE() << "accepted: " << hc.name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(hc.error_fragment), std::string::npos)
        << "'" << e.what() << "' lacks '" << hc.error_fragment << "'";
  }
  EXPECT_EQ(q.bytes, q_before) << "q modified by a rejected call";
  EXPECT_EQ(k.bytes, k_before) << "k modified by a rejected call";
}

INSTANTIATE_TEST_SUITE_P(hostile_inputs_test, HostileInputs, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) {
                           std::string n = param_info.param.name;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

TEST(hostile_inputs_test, nan_and_inf_propagate_without_crashing) {
  const Rope rope(default_config(4));
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    Buffer x(dtype, 4);
    x.set(0, std::numeric_limits<float>::quiet_NaN());
    x.set(1, 1.0f);
    x.set(2, std::numeric_limits<float>::infinity());
    x.set(3, 1.0f);
    rope.rotate(TensorView::contiguous(x.data(), dtype, 1, 1, 4), std::vector<int64_t>{3});
    // Pairs (0, 2) and (1, 3): the NaN/Inf pair becomes non-finite, the finite pair stays finite.
    EXPECT_FALSE(std::isfinite(x.get(0)));
    EXPECT_FALSE(std::isfinite(x.get(2)));
    EXPECT_TRUE(std::isfinite(x.get(1)));
    EXPECT_TRUE(std::isfinite(x.get(3)));
  }
}

TEST(hostile_inputs_test, non_finite_or_zero_base_and_factors_are_config_errors) {
  for (double base : {0.0, -1.0, 1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    RopeConfig c = default_config(8);
    c.rope_theta = base;
    EXPECT_THROW(Rope{c}, Error) << base;
  }
  for (double factor : {0.0, -2.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    RopeConfig c = default_config(8);
    c.rope_type = RopeType::kLinear;
    c.factor = factor;
    EXPECT_THROW(Rope{c}, Error) << factor;
  }
  RopeConfig zero = default_config(8);
  zero.rotary_dim = 0;
  EXPECT_THROW(Rope{zero}, Error);
}

TEST(hostile_inputs_test, sizes_past_their_limits_are_refused_before_allocating) {
  // Sizes a server might take from a request, each far past its limit (rotary/limits.h): the
  // error must come from the check, before any allocation could fail or succeed.
  struct SizeCase {
    const char* name;
    std::function<void()> call;
    const char* error_fragment;
  };
  const SizeCase cases[] = {
      {"cache_positions INT64_MAX", [] { Rope(default_config(128), {.cache_positions = kMax}); },
       "cache_positions"},
      {"cache_positions one past the limit",
       [] { Rope(default_config(128), {.cache_positions = kMaxTablePositions + 1}); },
       "kMaxTablePositions"},
      {"negative cache_positions", [] { Rope(default_config(128), {.cache_positions = -1}); },
       "cache_positions"},
      {"KV pool of 2^40 bytes", [] { KvCache::paged(1 << 20, 1 << 10, 8, 128, DType::kF32); },
       "kMaxRequestBytes"},
      {"KV blocks past int32", [] { KvCache::paged(kMaxKvBlocks + 1, 1, 1, 8, DType::kF32); },
       "num_blocks"},
      {"contiguous capacity INT64_MAX", [] { KvCache::contiguous(kMax, 1, 8, DType::kF32); },
       "capacity"},
      {"head_dim 10^9", [] { Rope(default_config(1000000000)); }, "head_dim"},
  };
  for (const SizeCase& c : cases) {
    try {
      c.call();
      ADD_FAILURE() << "accepted: " << c.name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.error_fragment), std::string::npos)
          << c.name << ": '" << e.what() << "' lacks '" << c.error_fragment << "'";
    }
  }
}

}  // namespace
}  // namespace rotary
