// rotate_bench: rotary against this machine's memory limits, measured in the same run.
//
//   cmake -S . -B build-bench -DROTARY_BUILD_BENCHMARKS=ON && cmake --build build-bench -j
//   build-bench/bench/rotate_bench                                  # everything
//   build-bench/bench/rotate_bench --benchmark_filter='/prefill/'    # one shape (regex)
//   build-bench/bench/rotate_bench --benchmark_filter=decode_latency
//   build-bench/bench/rotate_bench --rotary_target=AVX2             # pin the SIMD target
//
// --rotary_target=NAME (or ROTARY_BENCH_TARGET=NAME) pins the library's run-time dispatch to one
// Highway target this CPU supports (AVX3_DL, AVX3, AVX2, SSE4, ...; a wrong name lists them), so
// that one machine measures the kernels of each target. Without it the library picks the best one.
// The target is in the context ("rotary_simd_target") and in each rotary row's label.
//
// Defaults, overridden by the same flags given on the command line: --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true --benchmark_min_time=0.1
// --benchmark_min_warmup_time=0.05. Every reported figure is then the median of 5 repetitions.
//
// What is counted (bytes processed; counter "GB/s" in 10^9 bytes per second, while Google
// Benchmark's own bytes_per_second column is the same number in GiB/s):
//   in place      the bytes the rotation must touch, counted once read and once written:
//                 2 x tokens x heads x rotary_dim x element size (the whole tensor for full rotary;
//                 the pass-through channels of partial rotary are neither read nor written);
//   out of place  the whole input read once and the whole output written once: 2 x tensor bytes.
// The limits count the same way, over the same bytes (the case's own Q and K buffers):
//   limit/scale_in_place  STREAM "scale" on one buffer: x[i] *= s, s = 1 hidden from the compiler,
//                         over exactly the bytes the in-place rotation touches (rows of rotary_dim
//                         channels at the head stride for partial rotary), the 16-bit data taken
//                         as float pairs; a plain loop that the compiler vectorizes for the
//                         baseline ISA (no -march flag);
//   limit/memcpy          memcpy of Q and K into the out-of-place outputs.
// "other_cpus": cores that other processes kept busy during the loop (/proc/stat minus this
// process; 10 ms resolution): a row with more than a few tenths was disturbed.
// Each rotary row also carries "limit_GB/s": the matching limit measured right after the rotary
// loop on the same bytes for about as long (the best of 1..threads threads: a call small enough
// to stay on one thread is compared with the 1-thread limit), and "pct_of_limit" = 100 x GB/s /
// limit_GB/s. Pairing in time keeps the ratio meaningful on a noisy, shared machine; the
// limit/... rows report the limits on their own.
//
// Threads: rotary's RopeOptions::max_threads; the limits split their loops over OpenMP threads.
// Names: rotary/<shape>/<dtype>/<layout>/<mode>/threads:<n>/angles:<cache|otf>; "cache"
// precomputes cos/sin for every position of the call, "otf" computes them on the fly
// (cache_positions 0). Decode shapes use positions 123457 + 1009 t, on the fly.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hwy/targets.h"
#include "rotary/rotary.h"

#if defined(ROTARY_BENCH_OPENMP)
#include <omp.h>
#endif

namespace {

using rotary::DType;
using rotary::Layout;

// ---------------------------------------------------------------------------------------------
// Memory: one growing, 64-byte aligned buffer per slot, reused across benchmarks so that the 1.3 GB
// of the long prefill is allocated and faulted in once.

enum Slot { kInQ, kInK, kOutQ, kOutK, kLimitA, kLimitB, kNumSlots };

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

struct SlotState {
  std::unique_ptr<void, FreeDeleter> data;
  std::size_t capacity = 0;
  std::string filled_as;  // what the contents are, to refill only when that changes
};

SlotState g_slots[kNumSlots];

uint16_t to_bf16_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return static_cast<uint16_t>(bits >> 16);  // truncation is fine for test data
}

uint16_t to_f16_bits(float x) {
  // Test data are normal values in [-2, 2): exponent rebias and mantissa truncation suffice; tiny
  // magnitudes flush to zero.
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const int exponent = static_cast<int>((bits >> 23) & 0xFFu) - 127 + 15;
  if (exponent <= 0) return sign;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FFu));
}

// Uniform values in [-2, 2) from a fixed-seed xorshift: timing does not depend on the values as
// long as they are finite and normal.
void fill_random(void* data, std::size_t bytes, DType dtype, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  const auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<float>(static_cast<double>(s >> 11) * 0x1.0p-53 * 4.0 - 2.0);
  };
  if (dtype == DType::kF32) {
    auto* p = static_cast<float*>(data);
    for (std::size_t i = 0; i < bytes / 4; ++i) p[i] = next();
  } else {
    auto* p = static_cast<uint16_t*>(data);
    for (std::size_t i = 0; i < bytes / 2; ++i) {
      const float x = next();
      p[i] = dtype == DType::kBF16 ? to_bf16_bits(x) : to_f16_bits(x);
    }
  }
}

// `contents`: "random:<dtype>:<seed>", "zero" or "ones" (float 1.0).
void* slot(Slot which, std::size_t bytes, const std::string& contents) {
  SlotState& s = g_slots[which];
  if (bytes > s.capacity) {
    s.data.reset();
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    s.data.reset(std::aligned_alloc(64, rounded));
    if (!s.data) {
      std::fprintf(stderr, "rotate_bench: cannot allocate %zu bytes\n", rounded);
      std::exit(1);
    }
    s.capacity = rounded;
    s.filled_as.clear();
  }
  const std::string key = contents + "/" + std::to_string(bytes);
  if (s.filled_as != key) {
    if (contents == "zero") {
      std::memset(s.data.get(), 0, bytes);
    } else if (contents == "ones") {
      auto* p = static_cast<float*>(s.data.get());
      std::fill(p, p + bytes / 4, 1.0f);
    } else {
      const DType dtype = contents.find("bf16") != std::string::npos  ? DType::kBF16
                          : contents.find("f16") != std::string::npos ? DType::kF16
                                                                      : DType::kF32;
      fill_random(s.data.get(), bytes, dtype, static_cast<uint64_t>(which) + 1);
    }
    s.filled_as = key;
  }
  return s.data.get();
}

// ---------------------------------------------------------------------------------------------
// The cases.

struct Shape {
  const char* name;
  int64_t tokens;
  int64_t q_heads;
  int64_t k_heads;
  int64_t head_dim;
  double partial_rotary_factor;
  Layout layout;
  double rope_theta;
  bool decode;  // positions far past any cache (123457 + 1009 t), angles on the fly
};

// Llama-3-8B attention: 32 Q heads, 8 KV heads, head_dim 128, base 500000.
// partial_neox: Pythia-6.9B (GPT-NeoX), 32 + 32 heads x 128, rotary_pct 0.25 (32 channels).
const Shape kShapes[] = {
    {"prefill", 4096, 32, 8, 128, 1.0, Layout::kHalfSplit, 500000.0, false},
    {"prefill_long", 32768, 32, 8, 128, 1.0, Layout::kHalfSplit, 500000.0, false},
    {"interleaved", 4096, 32, 8, 128, 1.0, Layout::kInterleaved, 500000.0, false},
    {"partial_neox", 4096, 32, 32, 128, 0.25, Layout::kHalfSplit, 10000.0, false},
    {"decode", 1, 32, 8, 128, 1.0, Layout::kHalfSplit, 500000.0, true},
    {"decode_batch64", 64, 32, 8, 128, 1.0, Layout::kHalfSplit, 500000.0, true},
};
constexpr int kDecodeShape = 4;

const DType kDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

struct RotaryCase {
  Shape shape;
  DType dtype;
  bool in_place;
  int threads;
  bool cache;  // cos/sin cache covering every position of the call; else on the fly

  rotary::RopeConfig config() const {
    rotary::RopeConfig c = rotary::default_config(shape.head_dim, shape.rope_theta, shape.layout);
    c.partial_rotary_factor = shape.partial_rotary_factor;
    return c;
  }
  int64_t rotary_dim() const { return config().resolved_rotary_dim(); }
  int64_t esize() const { return static_cast<int64_t>(rotary::dtype_size(dtype)); }
  std::vector<int64_t> positions() const {
    std::vector<int64_t> p(static_cast<std::size_t>(shape.tokens));
    for (int64_t t = 0; t < shape.tokens; ++t) {
      p[static_cast<std::size_t>(t)] = shape.decode ? 123457 + 1009 * t : t;
    }
    return p;
  }
  // Bytes counted per call, read once + written once (the header comment).
  double counted_bytes() const {
    const int64_t rows = shape.tokens * (shape.q_heads + shape.k_heads);
    return 2.0 * static_cast<double>(rows * (in_place ? rotary_dim() : shape.head_dim) * esize());
  }
};

// The tensors of a case, in the reusable slots: Q and K (and their outputs out of place).
struct Workspace {
  explicit Workspace(const RotaryCase& c) : c_(c) {
    const Shape& s = c.shape;
    const std::string contents = "random:" + std::string(rotary::to_string(c.dtype));
    q_bytes = static_cast<std::size_t>(s.tokens * s.q_heads * s.head_dim * c.esize());
    k_bytes = static_cast<std::size_t>(s.tokens * s.k_heads * s.head_dim * c.esize());
    q = static_cast<char*>(slot(kInQ, q_bytes, contents));
    k = static_cast<char*>(slot(kInK, k_bytes, contents));
    if (!c.in_place) {
      q_out = static_cast<char*>(slot(kOutQ, q_bytes, "zero"));
      k_out = static_cast<char*>(slot(kOutK, k_bytes, "zero"));
    }
  }
  rotary::TensorView view(char* p, int64_t heads) const {
    return rotary::TensorView::contiguous(p, c_.dtype, c_.shape.tokens, heads, c_.shape.head_dim);
  }

  RotaryCase c_;
  std::size_t q_bytes = 0, k_bytes = 0;
  char* q = nullptr;
  char* k = nullptr;
  char* q_out = nullptr;
  char* k_out = nullptr;
};

// ---------------------------------------------------------------------------------------------
// The limits, over the same bytes as the case's rotation.

float g_one = 1.0f;

// STREAM "scale" over one span: a plain loop, auto-vectorized (SSE2 on x86-64 without -march).
inline void scale_span(float* __restrict p, std::size_t n, float s) {
  for (std::size_t i = 0; i < n; ++i) p[i] *= s;
}

// Rows [row_begin, row_end) of `row_floats` floats every `stride_floats` floats.
__attribute__((noinline)) void scale_rows(float* p, int64_t row_begin, int64_t row_end,
                                          int64_t row_floats, int64_t stride_floats, float s) {
  if (row_floats == stride_floats) {  // contiguous: one span
    scale_span(p + row_begin * stride_floats,
               static_cast<std::size_t>((row_end - row_begin) * row_floats), s);
    return;
  }
  for (int64_t r = row_begin; r < row_end; ++r) {
    scale_span(p + r * stride_floats, static_cast<std::size_t>(row_floats), s);
  }
}

bool threads_available([[maybe_unused]] int threads) {
#if defined(ROTARY_BENCH_OPENMP)
  return true;
#else
  return threads == 1;
#endif
}

// Runs body(thread, thread_count) on `threads` OpenMP threads.
template <typename Body>
void on_threads(int threads, const Body& body) {
#if defined(ROTARY_BENCH_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(int64_t{omp_get_thread_num()}, int64_t{omp_get_num_threads()});
    return;
  }
#endif
  (void)threads;
  body(int64_t{0}, int64_t{1});
}

// In place: scale (by 1) the channels the rotation touches, in Q's and K's own memory, rows split
// evenly over the threads. Out of place: memcpy Q -> Q out and K -> K out, split on cache lines.
// The scale leaves every value as it was (x * 1 == x), so the case's data stay valid.
class Limit {
 public:
  Limit(const Workspace& ws, int threads) : ws_(ws), threads_(threads) {}

  void run_once() const {
    const RotaryCase& c = ws_.c_;
    const Shape& s = c.shape;
    if (c.in_place) {
      const float scale = *static_cast<volatile float*>(&g_one);  // 1, unknown to the compiler
      const int64_t row = c.rotary_dim() * c.esize() / 4;         // floats per head touched
      const int64_t stride = s.head_dim * c.esize() / 4;          // floats per head
      on_threads(threads_, [&](int64_t t, int64_t nt) {
        for (const auto& [p, rows] :
             {std::pair{ws_.q, s.tokens * s.q_heads}, std::pair{ws_.k, s.tokens * s.k_heads}}) {
          scale_rows(reinterpret_cast<float*>(p), rows * t / nt, rows * (t + 1) / nt, row, stride,
                     scale);
        }
      });
    } else {
      on_threads(threads_, [&](int64_t t, int64_t nt) {
        for (const auto& [from, to, bytes] : {std::tuple{ws_.q, ws_.q_out, ws_.q_bytes},
                                              std::tuple{ws_.k, ws_.k_out, ws_.k_bytes}}) {
          const auto lines = static_cast<int64_t>(bytes / 64);
          const int64_t begin = lines * t / nt * 64;
          const int64_t end = t + 1 == nt ? static_cast<int64_t>(bytes) : lines * (t + 1) / nt * 64;
          std::memcpy(to + begin, from + begin, static_cast<std::size_t>(end - begin));
        }
      });
    }
    benchmark::ClobberMemory();
  }

 private:
  const Workspace& ws_;
  int threads_;
};

// GB/s of the limit on `threads` threads, timed for at least `seconds` (and 3 calls) after one
// warm-up call.
double measure_limit(const Workspace& ws, int threads, double seconds) {
  const Limit limit(ws, threads);
  limit.run_once();
  int64_t calls = 0;
  double elapsed = 0;
  const auto start = std::chrono::steady_clock::now();
  do {
    limit.run_once();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds || calls < 3);
  return ws.c_.counted_bytes() * static_cast<double>(calls) / elapsed / 1e9;
}

// Cores kept busy by other processes: the machine's busy time (/proc/stat) minus this process's CPU
// time, over the wall-clock time between two readings. On a shared machine it tells a disturbed
// row.
class LoadMeter {
 public:
  LoadMeter() : start_(read()) {}
  double other_cpus() const {
    const Reading now = read();
    const double wall = std::chrono::duration<double>(now.when - start_.when).count();
    if (wall <= 0 || now.busy < 0 || start_.busy < 0) return 0;
    return std::max(0.0, ((now.busy - start_.busy) - (now.own - start_.own)) / wall);
  }

 private:
  struct Reading {
    std::chrono::steady_clock::time_point when;
    double busy;  // seconds, every CPU, all but idle and iowait
    double own;   // seconds of CPU used by this process
  };
  static Reading read() {
    Reading r{std::chrono::steady_clock::now(), -1, 0};
    std::ifstream stat("/proc/stat");
    std::string cpu;
    int64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) {
      const auto hz = static_cast<double>(sysconf(_SC_CLK_TCK));
      r.busy = static_cast<double>(user + nice + system + irq + softirq + steal) / hz;
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    r.own = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    return r;
  }
  Reading start_;
};

// Runs the benchmark loop; returns its wall-clock seconds (the counters use it, so that they are
// plain numbers: Google Benchmark's rate counters would print "/s" after a percentage).
// Also sets the counter "other_cpus" (LoadMeter) for the loop.
template <typename Body>
double timed_loop(benchmark::State& state, const Body& body) {
  const LoadMeter meter;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    body();
    benchmark::ClobberMemory();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.counters["other_cpus"] = meter.other_cpus();
  return seconds;
}

// Counters "GB/s" (1e9 bytes per second) and bytes processed (Google Benchmark prints GiB/s).
double set_rate(benchmark::State& state, double bytes_per_iteration, double seconds) {
  const double total = bytes_per_iteration * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(total));
  const double gbps = seconds > 0 ? total / seconds / 1e9 : 0;
  state.counters["GB/s"] = gbps;
  return gbps;
}

void bm_limit(benchmark::State& state, RotaryCase c) {
  const Workspace ws(c);
  const Limit limit(ws, c.threads);
  limit.run_once();
  set_rate(state, c.counted_bytes(), timed_loop(state, [&] { limit.run_once(); }));
}

// ---------------------------------------------------------------------------------------------
// rotary.

void bm_rotary(benchmark::State& state, RotaryCase c) {
  state.SetLabel(rotary::simd_target_name());
  const Workspace ws(c);
  const Shape& s = c.shape;
  const std::vector<int64_t> positions = c.positions();
  const rotary::Rope rope(c.config(), rotary::RopeOptions{.angle_mode = rotary::AngleMode::kHf,
                                                          .cache_positions = c.cache ? s.tokens : 0,
                                                          .max_threads = c.threads});
  const rotary::TensorView q = ws.view(ws.q, s.q_heads);
  const rotary::TensorView k = ws.view(ws.k, s.k_heads);
  double seconds = 0;
  if (c.in_place) {
    rope.rotate(q, k, positions);
    seconds = timed_loop(state, [&] { rope.rotate(q, k, positions); });
  } else {
    const rotary::TensorView q_out = ws.view(ws.q_out, s.q_heads);
    const rotary::TensorView k_out = ws.view(ws.k_out, s.k_heads);
    rope.rotate(q, q_out, k, k_out, positions);
    seconds = timed_loop(state, [&] { rope.rotate(q, q_out, k, k_out, positions); });
  }
  const double gbps = set_rate(state, c.counted_bytes(), seconds);
  // The matching limit, paired: the same bytes right after, for about as long, with up to as many
  // threads (the best of 1..threads: a small call on one thread is the right call).
  double limit = 0;
  for (int t = 1; t <= c.threads; ++t) {
    limit = std::max(limit, measure_limit(ws, t, std::max(seconds / c.threads, 2e-3)));
  }
  state.counters["limit_GB/s"] = limit;
  state.counters["pct_of_limit"] = 100.0 * gbps / limit;
}

// One Llama-3-8B decode token: 32 Q + 8 KV heads x 128, position 123457 (no cache: angles on the
// fly), in place, on the caller's thread. The time column is the latency of one call.
void bm_decode_latency(benchmark::State& state, DType dtype) {
  bm_rotary(state, {kShapes[kDecodeShape], dtype, true, 1, false});
}

// ---------------------------------------------------------------------------------------------

// "model name [selected flags]" from /proc/cpuinfo.
std::string cpu_info() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string model;
  std::vector<std::string> flags;
  while (std::getline(in, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (model.empty() && line.rfind("model name", 0) == 0) model = line.substr(colon + 2);
    if (flags.empty() && line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(colon + 1));
      for (std::string w; words >> w;) flags.push_back(w);
    }
  }
  std::ostringstream out;
  out << model << " [";
  bool first = true;
  for (const char* f : {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                        "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_bf16"}) {
    if (std::find(flags.begin(), flags.end(), f) != flags.end()) {
      out << (first ? "" : " ") << f;
      first = false;
    }
  }
  out << "]";
  return out.str();
}

std::string thread_name(int threads) { return "threads:" + std::to_string(threads); }

void register_all() {
  std::set<std::string> limits;
  const auto add = [&](const RotaryCase& c) {
    const std::string mode = c.in_place ? "in_place" : "out_of_place";
    // The limit depends on the bytes only: one per shape, element size, mode and thread count.
    const std::string limit_name =
        std::string("limit/") + (c.in_place ? "scale_in_place/" : "memcpy/") + c.shape.name + "/" +
        (c.esize() == 4 ? "32bit" : "16bit") + "/" + thread_name(c.threads);
    if (limits.insert(limit_name).second) {
      benchmark::RegisterBenchmark(limit_name.c_str(), bm_limit, c)->UseRealTime();
    }
    const std::string name =
        std::string("rotary/") + c.shape.name + "/" + std::string(rotary::to_string(c.dtype)) +
        "/" + (c.shape.layout == Layout::kInterleaved ? "interleaved" : "half_split") + "/" + mode +
        "/" + thread_name(c.threads) + "/angles:" + (c.cache ? "cache" : "otf");
    benchmark::RegisterBenchmark(name.c_str(), bm_rotary, c)->UseRealTime();
  };
  for (const Shape& shape : kShapes) {
    for (const DType dtype : kDTypes) {
      for (const bool in_place : {true, false}) {
        for (const int threads : {1, 2}) {
          if (!threads_available(threads)) continue;
          add({shape, dtype, in_place, threads, !shape.decode});
          // Prefill (both layouts) again with angles on the fly: the cost of cos/sin when no cache
          // covers them.
          const std::string name = shape.name;
          if (name == "prefill" || name == "interleaved") {
            add({shape, dtype, in_place, threads, false});
          }
        }
      }
    }
  }
  for (const DType dtype : kDTypes) {
    const std::string name = "decode_latency/llama3_8b/" + std::string(rotary::to_string(dtype)) +
                             "/in_place/threads:1/pos:123457/angles:otf";
    benchmark::RegisterBenchmark(name.c_str(), bm_decode_latency, dtype)
        ->UseRealTime()
        ->Unit(benchmark::kNanosecond);
  }
}

// Pins Highway's dispatch (shared by the library: libhwy is one shared library) to the target named
// `name`; false, with the choices printed, when this CPU or build has no such target.
bool pin_simd_target(const std::string& name) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(target)) {
      hwy::SetSupportedTargetsForTest(target);
      return rotary::simd_target_name() == name;
    }
  }
  std::fprintf(stderr, "rotate_bench: --rotary_target=%s is not a target of this CPU; choose from:",
               name.c_str());
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    std::fprintf(stderr, " %s", hwy::TargetName(target));
  }
  std::fprintf(stderr, "\n");
  return false;
}

// Removes --rotary_target=NAME from the arguments; returns NAME, else $ROTARY_BENCH_TARGET, else
// "".
std::string take_target_flag(std::vector<char*>& args) {
  const std::string prefix = "--rotary_target=";
  std::string name;
  if (const char* env = std::getenv("ROTARY_BENCH_TARGET")) name = env;
  for (auto it = args.begin(); it != args.end();) {
    if (std::string(*it).rfind(prefix, 0) == 0) {
      name = std::string(*it).substr(prefix.size());
      it = args.erase(it);
    } else {
      ++it;
    }
  }
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  // Defaults first: flags given on the command line come later and win.
  std::vector<std::string> defaults = {
      "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true",
      "--benchmark_min_time=0.1", "--benchmark_min_warmup_time=0.05"};
  std::vector<char*> args = {argv[0]};
  for (auto& d : defaults) args.push_back(d.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  const std::string target = take_target_flag(args);
  if (!target.empty() && !pin_simd_target(target)) return 1;
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;

  benchmark::AddCustomContext("rotary_simd_target", rotary::simd_target_name());
  benchmark::AddCustomContext("rotary_simd_target_pinned", target.empty() ? "no" : "yes");
  benchmark::AddCustomContext("cpu", cpu_info());
  benchmark::AddCustomContext(
      "bytes_counted",
      "read once + written once: in place 2 x rotated bytes, out of place 2 x tensor bytes; "
      "GB/s = 1e9 B/s; pct_of_limit against limit_GB/s, the matching limit measured right after "
      "on the same bytes (best of 1..threads)");
#if defined(ROTARY_BENCH_OPENMP)
  benchmark::AddCustomContext("limit_threads", "OpenMP");
#else
  benchmark::AddCustomContext("limit_threads", "none (built without OpenMP: 1-thread runs only)");
#endif
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
