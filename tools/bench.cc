#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "rotary/error.h"
#include "rotary/limits.h"
#include "rotary/rope.h"
#include "rotary/simd.h"

namespace rotary::tools {
namespace {

template <typename Body>
double median_seconds(int repeats, Body&& body) {
  body();  // warm-up: page faults, caches, thread start
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
  return times[static_cast<std::size_t>(repeats / 2)];
}

// Peak memory: the positions, and Q and K in float32 held four times over (rotated, scaled,
// copied from and to).
SizeRequest bench_request(const BenchRequest& r) {
  const double qk_bytes = static_cast<double>(r.tokens) *
                          static_cast<double>((r.q_heads + r.kv_heads) * r.head_dim) * 4;
  return {"--tokens", std::to_string(r.tokens) + " tokens",
          4 * qk_bytes + 8 * static_cast<double>(r.tokens),
          "benchmark buffers (" + std::to_string(r.q_heads) + " + " + std::to_string(r.kv_heads) +
              " heads x " + std::to_string(r.head_dim) + " float32 channels, 4 copies)"};
}

void check_request(const BenchRequest& r) {
  const auto in_range = [](int64_t value, int64_t high, const char* option, const char* name) {
    if (value < 0 || value > high) {
      throw Error(ErrorCode::kInvalidArgument, option,
                  "expected at most " + std::to_string(high) + " (" + name + "), got " +
                      std::to_string(value));
    }
  };
  in_range(r.threads, kMaxThreads, "--threads", "rotary::kMaxThreads");
  in_range(r.repeats, kMaxBenchRepeats, "--repeats", "rotary::kMaxBenchRepeats");
  check_count(bench_request(r), r.tokens, {kMaxBenchTokens, "tokens", "rotary::kMaxBenchTokens"});
}

int measure(const BenchRequest& r) {
  const RopeConfig config = default_config(r.head_dim, 500000.0);
  std::vector<int64_t> positions(static_cast<std::size_t>(r.tokens));
  std::iota(positions.begin(), positions.end(), 0);
  std::printf(
      "rotary bench: %lld tokens x (%lld Q + %lld KV heads) x %lld, in place, %d thread(s), "
      "SIMD target %s, median of %d\n",
      static_cast<long long>(r.tokens), static_cast<long long>(r.q_heads),
      static_cast<long long>(r.kv_heads), static_cast<long long>(r.head_dim), r.threads,
      simd_target_name().c_str(), r.repeats);
  std::printf(
      "  dtype      MB moved   rotary GB/s  scale-loop GB/s  memcpy GB/s  %% of scale loop  %% of "
      "memcpy\n");
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const Rope rope(config, {.max_threads = r.threads});
    const std::size_t q_bytes =
        static_cast<std::size_t>(r.tokens * r.q_heads * r.head_dim) * dtype_size(dtype);
    const std::size_t k_bytes =
        static_cast<std::size_t>(r.tokens * r.kv_heads * r.head_dim) * dtype_size(dtype);
    std::vector<unsigned char> q(q_bytes, 0x3C), k(k_bytes, 0x3C);
    const auto qv = TensorView::contiguous(q.data(), dtype, r.tokens, r.q_heads, r.head_dim);
    const auto kv = TensorView::contiguous(k.data(), dtype, r.tokens, r.kv_heads, r.head_dim);
    // Traffic: every byte of Q and K is read once and written once.
    const double moved = 2.0 * static_cast<double>(q_bytes + k_bytes);
    const double rotary_s = median_seconds(r.repeats, [&] { rope.rotate(qv, kv, positions); });

    // The limits, on the same number of bytes: in place (read + write back) and a copy.
    std::vector<float> buffer((q_bytes + k_bytes) / sizeof(float), 1.0f);
    volatile float one = 1.0f;
    const float factor = one;
    const double scale_s = median_seconds(r.repeats, [&] {
      for (float& v : buffer) v *= factor;
    });
    std::vector<unsigned char> src(q_bytes + k_bytes, 1), dst(q_bytes + k_bytes);
    const double copy_s =
        median_seconds(r.repeats, [&] { std::memcpy(dst.data(), src.data(), src.size()); });
    const double gbs = moved / rotary_s / 1e9, scale_gbs = moved / scale_s / 1e9,
                 copy_gbs = moved / copy_s / 1e9;
    std::printf("  %-9s  %-9.1f  %-11.1f  %-15.1f  %-11.1f  %-15.0f  %.0f\n",
                std::string(to_string(dtype)).c_str(), moved / 1e6, gbs, scale_gbs, copy_gbs,
                100 * gbs / scale_gbs, 100 * gbs / copy_gbs);
  }
  return 0;
}

}  // namespace

int run_bench(const BenchRequest& r) {
  check_request(r);
  int status = 0;
  allocate_or_throw(bench_request(r), [&] { status = measure(r); });
  return status;
}

}  // namespace rotary::tools
