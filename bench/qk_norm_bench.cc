// qk_norm benchmarks, linked into rotate_bench: rms_norm_rotate (one pass) against the unfused
// sequence (a norm pass over Q and K, then Rope::rotate), in place, on the prefill shape
// (T = 4096 tokens, 32 Q + 8 KV heads x 128, Qwen3's norm: per head, rounded before the weight).
//
//   build-bench/bench/rotate_bench --benchmark_filter=qk_norm
//
// The unfused norm pass is written here as a caller would write it: per head, 16-bit values
// widened through rotary's public span conversions (float16.h), the sum of squares in 8 partial
// sums (which the compiler vectorises), the product rounded as Qwen3RMSNorm rounds it, and the
// head written back. Both rows process the same bytes; "GB/s" counts Q and K read once and written
// once (2 x tensor bytes), so the two rows compare directly and their ratio is the speedup.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "rotary/float16.h"
#include "rotary/qk_norm.h"
#include "rotary/rope.h"

namespace {

constexpr int64_t kTokens = 4096, kQHeads = 32, kKvHeads = 8, kHeadDim = 128;

struct Setup {
  rotary::DType dtype;
  std::vector<unsigned char> q, k;
  std::vector<int64_t> positions;
  rotary::QkNorm norms;
  rotary::Rope rope;

  Setup(rotary::DType t, int threads)
      : dtype(t),
        q(static_cast<std::size_t>(kTokens * kQHeads * kHeadDim) * rotary::dtype_size(t)),
        k(static_cast<std::size_t>(kTokens * kKvHeads * kHeadDim) * rotary::dtype_size(t)),
        positions(kTokens),
        rope(rotary::default_config(kHeadDim, 1000000.0),
             {.cache_positions = kTokens, .max_threads = threads}) {
    std::iota(positions.begin(), positions.end(), 0);
    fill(q, 1);
    fill(k, 2);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (rotary::RmsNorm* n : {&norms.q, &norms.k}) {
      n->weight.resize(kHeadDim);
      for (float& w : n->weight) w = rotary::round_to_dtype(u(rng), t);
      n->eps = 1e-6f;
      n->round_before_weight = true;
    }
  }
  void fill(std::vector<unsigned char>& bytes, uint32_t seed) const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t n = bytes.size() / rotary::dtype_size(dtype);
    std::vector<float> values(n);
    for (float& v : values) v = normal(rng);
    if (dtype == rotary::DType::kF32) {
      std::memcpy(bytes.data(), values.data(), bytes.size());
    } else {
      rotary::to_16bit(values, dtype, {reinterpret_cast<uint16_t*>(bytes.data()), n});
    }
  }
  rotary::TensorView view(std::vector<unsigned char>& bytes, int64_t heads) const {
    return rotary::TensorView::contiguous(bytes.data(), dtype, kTokens, heads, kHeadDim);
  }
};

// One head normalised in place: Qwen3RMSNorm's formula, float32.
void norm_head(void* head, rotary::DType dtype, const std::vector<float>& weight, float eps,
               float* scratch) {
  const std::span<float> x(scratch, kHeadDim);
  if (dtype == rotary::DType::kF32) {
    std::memcpy(x.data(), head, kHeadDim * sizeof(float));
  } else {
    rotary::from_16bit({static_cast<const uint16_t*>(head), kHeadDim}, dtype, x);
  }
  float partial[8] = {};
  for (int64_t j = 0; j < kHeadDim; j += 8) {
    for (int64_t l = 0; l < 8; ++l) partial[l] += x[j + l] * x[j + l];
  }
  const float sum = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                    ((partial[4] + partial[5]) + (partial[6] + partial[7]));
  const float r = 1.0f / std::sqrt(sum / static_cast<float>(kHeadDim) + eps);
  for (int64_t j = 0; j < kHeadDim; ++j) x[j] *= r;
  if (dtype == rotary::DType::kF32) {
    for (int64_t j = 0; j < kHeadDim; ++j) x[j] *= weight[j];
    std::memcpy(head, x.data(), kHeadDim * sizeof(float));
    return;
  }
  const std::span<uint16_t> bits(static_cast<uint16_t*>(head), kHeadDim);
  rotary::to_16bit(x, dtype, bits);  // rounded before the weight, as Qwen3RMSNorm
  rotary::from_16bit(bits, dtype, x);
  for (int64_t j = 0; j < kHeadDim; ++j) x[j] *= weight[j];
  rotary::to_16bit(x, dtype, bits);
}

void norm_pass(Setup& s, std::vector<unsigned char>& bytes, int64_t heads,
               const rotary::RmsNorm& norm, int threads) {
  const std::size_t head_bytes = kHeadDim * rotary::dtype_size(s.dtype);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#else
  (void)threads;
#endif
  for (int64_t t = 0; t < kTokens; ++t) {
    float scratch[kHeadDim];
    for (int64_t h = 0; h < heads; ++h) {
      norm_head(bytes.data() + static_cast<std::size_t>(t * heads + h) * head_bytes, s.dtype,
                norm.weight, norm.eps, scratch);
    }
  }
}

void set_counters(benchmark::State& state, const Setup& s) {
  const double bytes = 2.0 * static_cast<double>(s.q.size() + s.k.size());
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void bm_fused(benchmark::State& state, rotary::DType dtype) {
  const int threads = static_cast<int>(state.range(0));
  Setup s(dtype, threads);
  for (auto _ : state) {
    rotary::rms_norm_rotate(s.rope, s.norms, s.view(s.q, kQHeads), s.view(s.k, kKvHeads),
                            s.positions);
    benchmark::ClobberMemory();
  }
  set_counters(state, s);
}

void bm_unfused(benchmark::State& state, rotary::DType dtype) {
  const int threads = static_cast<int>(state.range(0));
  Setup s(dtype, threads);
  for (auto _ : state) {
    norm_pass(s, s.q, kQHeads, s.norms.q, threads);
    norm_pass(s, s.k, kKvHeads, s.norms.k, threads);
    s.rope.rotate(s.view(s.q, kQHeads), s.view(s.k, kKvHeads), s.positions);
    benchmark::ClobberMemory();
  }
  set_counters(state, s);
}

void register_all() {
  for (const rotary::DType dtype : {rotary::DType::kF32, rotary::DType::kBF16}) {
    const std::string suffix = "/prefill/" + std::string(rotary::to_string(dtype)) + "/in_place";
    benchmark::RegisterBenchmark(("qk_norm/fused" + suffix).c_str(), bm_fused, dtype)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("qk_norm/unfused" + suffix).c_str(), bm_unfused, dtype)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

const bool registered = (register_all(), true);

}  // namespace
