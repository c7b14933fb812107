// Packed-sequence benchmarks, linked into rotate_bench: what rotary/packing.h costs a rank before
// it rotates, on a packed batch of 32768 tokens in 8 sequences of 4096 split over cp_size 4
// (8192 tokens per rank), so the figure sits next to the rotation rows of the same run.
//
//   build-bench/bench/rotate_bench --benchmark_filter=packing
//
// packing/positions: packed_positions of the whole batch (32768 positions, offsets given);
// packing/shard: packed_shard of rank 1, zigzag (8192 indices and positions, the shard's
// cu_seqlens). The time column is one call; "tokens/s" counts the values written.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "rotary/packing.h"

namespace {

constexpr int64_t kSequences = 8, kSequenceLength = 4096, kCpSize = 4, kCpRank = 1;

struct Batch {
  std::vector<int64_t> cu_seqlens{0}, offsets;
  Batch() {
    for (int64_t s = 0; s < kSequences; ++s) {
      cu_seqlens.push_back(cu_seqlens.back() + kSequenceLength);
      offsets.push_back(100 * s);  // a cached prefix per sequence
    }
  }
};

void bm_positions(benchmark::State& state) {
  const Batch batch;
  std::vector<int64_t> positions(static_cast<std::size_t>(batch.cu_seqlens.back()));
  for (auto _ : state) {
    rotary::packed_positions(batch.cu_seqlens, batch.offsets, positions);
    benchmark::DoNotOptimize(positions.data());
    benchmark::ClobberMemory();
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(positions.size()),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void bm_shard(benchmark::State& state) {
  const Batch batch;
  const auto scheme = rotary::CpScheme::kZigzag;
  const int64_t size = rotary::packed_shard_size(batch.cu_seqlens, kCpSize, scheme);
  std::vector<int64_t> indices(static_cast<std::size_t>(size)), positions(indices.size());
  std::vector<int64_t> shard_cu_seqlens(batch.cu_seqlens.size());
  for (auto _ : state) {
    rotary::packed_shard(batch.cu_seqlens, batch.offsets, kCpSize, kCpRank, scheme, indices,
                         positions, shard_cu_seqlens);
    benchmark::DoNotOptimize(indices.data());
    benchmark::DoNotOptimize(positions.data());
    benchmark::ClobberMemory();
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(size), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  benchmark::RegisterBenchmark("packing/positions/8x4096", bm_positions)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("packing/shard/8x4096/zigzag/cp_size:4", bm_shard)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

const bool registered = (register_all(), true);

}  // namespace
