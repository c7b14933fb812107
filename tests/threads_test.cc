// Concurrent calls on one shared Rope (with and without a cos/sin cache, every length-dependent
// path included) give exactly the serial results. Run under ThreadSanitizer by scripts/sanitize.sh.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "rotary/rope.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;

TEST(threads_test, concurrent_calls_match_serial_calls) {
  RopeConfig dynamic = default_config(64);
  dynamic.rope_type = RopeType::kDynamic;
  dynamic.factor = 4;
  dynamic.max_position_embeddings = 256;
  for (int64_t cache : {0, 512}) {
    const Rope rope(dynamic, {.cache_positions = cache});
    constexpr int kThreads = 8, kCallsPerThread = 20, kTokens = 16, kHeads = 4;
    // Each call gets its own data and positions, some beyond max_position_embeddings.
    auto positions_for = [](int call) {
      std::vector<int64_t> p(kTokens);
      for (int t = 0; t < kTokens; ++t) p[t] = (call * 37 + t * (call % 3 == 0 ? 50 : 1)) % 1500;
      return p;
    };
    const int calls = kThreads * kCallsPerThread;
    std::vector<Buffer> serial, parallel;
    for (int c = 0; c < calls; ++c) {
      serial.emplace_back(DType::kBF16, kTokens * kHeads * 64);
      serial.back().fill_normal(static_cast<uint32_t>(c));
    }
    parallel = serial;
    for (int c = 0; c < calls; ++c) {
      rope.rotate(TensorView::contiguous(serial[c].data(), DType::kBF16, kTokens, kHeads, 64),
                  positions_for(c));
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kCallsPerThread; ++i) {
          const int c = t * kCallsPerThread + i;
          rope.rotate(TensorView::contiguous(parallel[c].data(), DType::kBF16, kTokens, kHeads, 64),
                      positions_for(c));
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int c = 0; c < calls; ++c) ASSERT_EQ(serial[c].bytes, parallel[c].bytes) << "call " << c;
  }
}

}  // namespace
}  // namespace rotary
