// The CUDA backend against the CPU backend on identical inputs.
//
// Tolerance: AngleMode::kHf is bit-equal in every dtype (the device evaluates the CPU's cos/sin
// recipe and rotation operation by operation, no fused multiply-adds, the same 16-bit rounding).
// AngleMode::kExact uses CUDA's float64 cos/sin (2 ulp of float64) where the CPU uses glibc's
// correctly rounded ones, so a cos/sin value may differ by one float32 ulp when the exact value
// lies within ~2^-52 of a float32 rounding boundary; those tests allow 2^-22 relative to the pair's
// magnitude (and are bit-equal in practice).
//
// Host-validation tests run everywhere: they pass pointers that are never dereferenced and expect
// rotary::Error(kInvalidArgument) before any device call. Tests that need a device skip without
// one.
#include "rotary/cuda.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "numeric/float16.h"
#include "rotary/error.h"
#include "rotary/kv_cache.h"
#include "rotary/rope.h"

namespace rotary {
namespace {

// A pointer that validation may compare but must never dereference.
void* fake_device_pointer() { return reinterpret_cast<void*>(std::uintptr_t{1} << 20); }

template <typename F>
void expect_invalid(F&& call, const std::string& argument) {
  try {
    call();
    ADD_FAILURE() << "expected rotary::Error on " << argument;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
}

TEST(cuda_validation_test, bad_views_throw_before_the_device) {
  const CudaRope rope(default_config(64));
  const CudaPositions pos{fake_device_pointer(), PositionType::kInt64, 4};
  TensorView q = TensorView::contiguous(fake_device_pointer(), DType::kBF16, 4, 2, 64);
  TensorView bad = q;
  bad.head_dim = 32;
  expect_invalid([&] { rope.rotate(bad, TensorView(), pos); }, "q.head_dim");
  bad = q;
  bad.token_stride = -1;
  expect_invalid([&] { rope.rotate(bad, TensorView(), pos); }, "q.token_stride");
  bad = q;
  bad.data = nullptr;
  expect_invalid([&] { rope.rotate(bad, TensorView(), pos); }, "q.data");
  TensorView k = q;
  k.num_tokens = 3;
  expect_invalid([&] { rope.rotate(q, k, pos); }, "k.num_tokens");
  expect_invalid([&] { rope.rotate(q, q, pos); }, "q_out");
  // Out of place onto a partially overlapping output.
  TensorView out = q;
  out.data = static_cast<char*>(q.data) + 2;
  expect_invalid([&] { rope.rotate(q, out, ConstTensorView(), TensorView(), pos); }, "q_out");
  TensorView self_overlap = q;
  self_overlap.token_stride = 64;  // two heads of 64 over a 64-element token stride
  expect_invalid([&] { rope.rotate(self_overlap, TensorView(), pos); }, "q_out");
  // The CPU's aliasing rule, on device addresses: in rows of 2 Q + 1 K heads, a K view starting at
  // Q's second head is refused (accepting the true K slice would launch, so it is left to the
  // CPU tests of the same check).
  TensorView packed_q = {fake_device_pointer(), DType::kBF16, 4, 2, 64, 3 * 64, 64};
  TensorView shared_k = {
      static_cast<char*>(fake_device_pointer()) + 64 * 2, DType::kBF16, 4, 1, 64, 3 * 64, 64};
  expect_invalid([&] { rope.rotate(packed_q, shared_k, pos); }, "q_out");
}

TEST(cuda_validation_test, bad_positions_throw_before_the_device) {
  const CudaRope rope(default_config(64));
  TensorView q = TensorView::contiguous(fake_device_pointer(), DType::kF32, 4, 2, 64);
  expect_invalid(
      [&] {
        rope.rotate(q, {fake_device_pointer(), PositionType::kInt32, 3});
      },
      "positions");
  expect_invalid([&] { rope.rotate(q, {nullptr, PositionType::kInt32, 4}); }, "positions");
  expect_invalid(
      [&] {
        rope.rotate(q, {fake_device_pointer(), PositionType::kInt32, 4, 3});
      },
      "positions");

  RopeConfig dynamic = default_config(64);
  dynamic.rope_type = RopeType::kDynamic;
  dynamic.factor = 2.0;
  dynamic.max_position_embeddings = 1024;
  const CudaRope ntk(dynamic);
  expect_invalid(
      [&] {
        ntk.rotate(q, {fake_device_pointer(), PositionType::kInt64, 4});
      },
      "positions.sequence_length");
}

TEST(cuda_validation_test, unsupported_sizes_and_caches) {
  expect_invalid([] { CudaRope rope(default_config(1024)); }, "config.rotary_dim");
  expect_invalid([] { CudaKvCache::paged(0, 16, 8, 128, DType::kBF16); }, "num_blocks");
  expect_invalid([] { CudaKvCache::paged(4, 16, 0, 128, DType::kBF16); }, "num_kv_heads");
  expect_invalid([] { CudaKvCache::contiguous(0, 8, 128, DType::kBF16); }, "capacity");
}

// --- device tests --------------------------------------------------------------------------------

#define REQUIRE_DEVICE()                                \
  if (!cuda_device_available())                         \
  GTEST_SKIP() << "no CUDA device: GPU tests skipped (" \
                  "host validation still runs)"

void check_cuda(cudaError_t e) { ASSERT_EQ(e, cudaSuccess) << cudaGetErrorString(e); }

struct DeviceBuffer {
  explicit DeviceBuffer(std::size_t n) : bytes(n) {
    if (n > 0) check_cuda(cudaMalloc(&ptr, n));
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const void* host) {
    check_cuda(cudaMemcpy(ptr, host, bytes, cudaMemcpyHostToDevice));
  }
  std::vector<unsigned char> download() const {
    std::vector<unsigned char> host(bytes);
    check_cuda(cudaMemcpy(host.data(), ptr, bytes, cudaMemcpyDeviceToHost));
    return host;
  }
  void* ptr = nullptr;
  std::size_t bytes;
};

float element(const std::vector<unsigned char>& bytes, DType dtype, std::size_t i) {
  switch (dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, bytes.data() + 4 * i, 4);
      return f;
    }
    case DType::kF16: {
      detail::Float16 h;
      std::memcpy(&h.bits, bytes.data() + 2 * i, 2);
      return detail::to_float(h);
    }
    case DType::kBF16: {
      detail::BFloat16 h;
      std::memcpy(&h.bits, bytes.data() + 2 * i, 2);
      return detail::to_float(h);
    }
  }
  return 0;
}

std::vector<unsigned char> random_bytes(std::size_t elements, DType dtype, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<unsigned char> out(elements * dtype_size(dtype));
  for (std::size_t i = 0; i < elements; ++i) {
    const float f = dist(rng);
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &f, 4);
    } else if (dtype == DType::kF16) {
      const uint16_t b = detail::to_float16(f).bits;
      std::memcpy(out.data() + 2 * i, &b, 2);
    } else {
      const uint16_t b = detail::to_bfloat16(f).bits;
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

// Bit-equal (kHf), or within 2^-22 of the larger magnitude (kExact).
void expect_same(const std::vector<unsigned char>& cpu, const std::vector<unsigned char>& gpu,
                 DType dtype, bool exact, const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size());
  if (!exact) {
    const std::size_t n = cpu.size() / dtype_size(dtype);
    std::size_t first = n;
    for (std::size_t i = 0; i < n && first == n; ++i) {
      if (std::memcmp(cpu.data() + i * dtype_size(dtype), gpu.data() + i * dtype_size(dtype),
                      dtype_size(dtype)) != 0) {
        first = i;
      }
    }
    EXPECT_EQ(first, n) << what << ": first difference at element " << first << ": cpu "
                        << element(cpu, dtype, first) << " gpu " << element(gpu, dtype, first);
    return;
  }
  const double ulp = dtype == DType::kF32 ? 0x1p-22 : dtype == DType::kF16 ? 0x1p-9 : 0x1p-6;
  for (std::size_t i = 0; i < cpu.size() / dtype_size(dtype); ++i) {
    const float a = element(cpu, dtype, i), b = element(gpu, dtype, i);
    ASSERT_LE(std::abs(a - b), ulp * 4.0) << what << " element " << i << ": " << a << " vs " << b;
  }
}

struct Case {
  DType dtype;
  Layout layout;
  int64_t head_dim;
  int64_t rotary_dim;
  AngleMode mode;
  bool in_place;
  Direction direction;
};

std::string describe(const Case& c) {
  return std::string(to_string(c.dtype)) + " " + std::string(to_string(c.layout)) + " head_dim " +
         std::to_string(c.head_dim) + " rotary_dim " + std::to_string(c.rotary_dim) +
         (c.mode == AngleMode::kExact ? " exact" : " hf") + (c.in_place ? " in place" : " out") +
         (c.direction == Direction::kInverse ? " inverse" : " forward");
}

// q (num_tokens x q_heads) and k (x k_heads) through both backends, comparing every output byte
// (pass-through channels and untouched stride gaps included).
void run_rotate_case(const Case& c, const RopeConfig& config, int64_t num_tokens, int64_t q_heads,
                     int64_t k_heads, const std::vector<int64_t>& positions, int num_axes,
                     int64_t sequence_length = 0, int64_t pad = 0) {
  SCOPED_TRACE(describe(c));
  const RopeOptions options{.angle_mode = c.mode};
  const Rope cpu(config, options);
  const CudaRope gpu(cpu);
  // Token stride padded by `pad` elements (strided views; odd pads force the scalar path).
  const int64_t q_ts = q_heads * c.head_dim + pad, k_ts = k_heads * c.head_dim + pad;
  const std::size_t q_n = static_cast<std::size_t>(num_tokens * q_ts);
  const std::size_t k_n = static_cast<std::size_t>(num_tokens * k_ts);
  const auto q_host = random_bytes(q_n, c.dtype, 1);
  const auto k_host = random_bytes(k_n, c.dtype, 2);
  auto q_cpu = q_host, k_cpu = k_host;
  auto q_cpu_out = std::vector<unsigned char>(q_host.size()), k_cpu_out = q_cpu_out;
  k_cpu_out.resize(k_host.size());
  const TensorView q_cpu_view{q_cpu.data(), c.dtype, num_tokens, q_heads,
                              c.head_dim,   q_ts,    c.head_dim};
  const TensorView k_cpu_view{k_cpu.data(), c.dtype, num_tokens, k_heads,
                              c.head_dim,   k_ts,    c.head_dim};
  const Positions host_positions(positions, num_axes);
  if (c.in_place) {
    cpu.rotate(q_cpu_view, k_cpu_view, host_positions, c.direction);
  } else {
    TensorView qo = q_cpu_view, ko = k_cpu_view;
    qo.data = q_cpu_out.data();
    ko.data = k_cpu_out.data();
    cpu.rotate(q_cpu_view, qo, k_cpu_view, ko, host_positions, c.direction);
  }

  DeviceBuffer q_dev(q_host.size()), k_dev(k_host.size()), q_out(q_host.size()),
      k_out(k_host.size()), pos_dev(positions.size() * sizeof(int64_t));
  q_dev.upload(q_host.data());
  k_dev.upload(k_host.data());
  check_cuda(cudaMemset(q_out.ptr, 0, q_out.bytes));
  check_cuda(cudaMemset(k_out.ptr, 0, k_out.bytes));
  pos_dev.upload(positions.data());
  const CudaPositions pos{pos_dev.ptr, PositionType::kInt64, num_tokens, num_axes,
                          0,           sequence_length};
  const TensorView q_view{q_dev.ptr, c.dtype, num_tokens, q_heads, c.head_dim, q_ts, c.head_dim};
  const TensorView k_view{k_dev.ptr, c.dtype, num_tokens, k_heads, c.head_dim, k_ts, c.head_dim};
  cudaStream_t stream;
  check_cuda(cudaStreamCreate(&stream));
  if (c.in_place) {
    gpu.rotate(q_view, k_view, pos, c.direction, stream);
  } else {
    TensorView qo = q_view, ko = k_view;
    qo.data = q_out.ptr;
    ko.data = k_out.ptr;
    gpu.rotate(q_view, qo, k_view, ko, pos, c.direction, stream);
  }
  check_cuda(cudaStreamSynchronize(stream));
  check_cuda(cudaStreamDestroy(stream));
  const bool exact = c.mode == AngleMode::kExact;
  if (c.in_place) {
    expect_same(q_cpu, q_dev.download(), c.dtype, exact, "q");
    expect_same(k_cpu, k_dev.download(), c.dtype, exact, "k");
  } else {
    expect_same(q_cpu_out, q_out.download(), c.dtype, exact, "q_out");
    expect_same(k_cpu_out, k_out.download(), c.dtype, exact, "k_out");
    // Inputs untouched.
    EXPECT_EQ(q_dev.download(), q_host);
    EXPECT_EQ(k_dev.download(), k_host);
  }
}

std::vector<int64_t> test_positions(int64_t n, int64_t first = 0) {
  std::vector<int64_t> p(static_cast<std::size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[static_cast<std::size_t>(t)] = first + t * 37 + (t % 3);
  p.back() = 1 << 20;  // a large position: hf and exact angles differ there
  return p;
}

RopeConfig partial_config(int64_t head_dim, int64_t rotary_dim, Layout layout) {
  RopeConfig c = default_config(head_dim, 10000.0, layout);
  c.rotary_dim = rotary_dim;
  c.validate();
  return c;
}

TEST(cuda_rope_test, every_dtype_layout_partial_direction_and_mode_matches_the_cpu) {
  REQUIRE_DEVICE();
  // (128, 128) and (128, 64) take the vector path; (80, 40) and (72, 70) the scalar one.
  const std::pair<int64_t, int64_t> dims[] = {{128, 128}, {128, 64}, {80, 40}, {72, 70}};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
      for (auto [head_dim, rotary_dim] : dims) {
        for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
          for (bool in_place : {true, false}) {
            for (Direction direction : {Direction::kForward, Direction::kInverse}) {
              const Case c{dtype, layout, head_dim, rotary_dim, mode, in_place, direction};
              run_rotate_case(c, partial_config(head_dim, rotary_dim, layout), 33, 4, 2,
                              test_positions(33), 1);
            }
          }
        }
      }
    }
  }
}

TEST(cuda_rope_test, strided_and_unaligned_views_match_the_cpu) {
  REQUIRE_DEVICE();
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    for (int64_t pad : {8, 3}) {  // 8: still vectorizable (bf16), 3: scalar path
      const Case c{dtype, Layout::kHalfSplit, 128, 128, AngleMode::kHf, false, Direction::kForward};
      run_rotate_case(c, default_config(128), 17, 8, 1, test_positions(17), 1, 0, pad);
    }
  }
}

TEST(cuda_rope_test, multi_axis_positions_match_the_cpu) {
  REQUIRE_DEVICE();
  RopeConfig config = default_config(128);
  config.mrope_section = {16, 24, 24};
  for (bool interleaved : {false, true}) {
    config.mrope_order = interleaved ? MropeOrder::kInterleaved : MropeOrder::kChunked;
    config.validate();
    const int64_t n = 20;
    std::vector<int64_t> positions(static_cast<std::size_t>(3 * n));
    for (int64_t a = 0; a < 3; ++a) {
      for (int64_t t = 0; t < n; ++t)
        positions[static_cast<std::size_t>(a * n + t)] = t * (a + 1) + a;
    }
    const Case c{DType::kBF16, Layout::kHalfSplit, 128, 128, AngleMode::kHf,
                 true,         Direction::kForward};
    run_rotate_case(c, config, n, 4, 2, positions, 3);
  }
}

TEST(cuda_rope_test, dynamic_ntk_uses_the_given_sequence_length) {
  REQUIRE_DEVICE();
  RopeConfig config = default_config(64);
  config.rope_type = RopeType::kDynamic;
  config.factor = 2.0;
  config.max_position_embeddings = 16;
  config.validate();
  const std::vector<int64_t> positions = test_positions(40);
  int64_t length = 0;
  for (int64_t p : positions) length = std::max(length, p + 1);
  const Case c{DType::kF32, Layout::kHalfSplit, 64, 64, AngleMode::kHf, true, Direction::kForward};
  run_rotate_case(c, config, 40, 2, 2, positions, 1, length);
}

TEST(cuda_rope_test, q_and_k_of_different_dtypes) {
  REQUIRE_DEVICE();
  const Rope cpu(default_config(64));
  const CudaRope gpu(cpu);
  const int64_t n = 9;
  auto q = random_bytes(static_cast<std::size_t>(n * 4 * 64), DType::kF32, 3);
  auto k = random_bytes(static_cast<std::size_t>(n * 2 * 64), DType::kBF16, 4);
  DeviceBuffer qd(q.size()), kd(k.size()), pd(static_cast<std::size_t>(n) * 8);
  qd.upload(q.data());
  kd.upload(k.data());
  const std::vector<int64_t> positions = test_positions(n);
  pd.upload(positions.data());
  cpu.rotate(TensorView::contiguous(q.data(), DType::kF32, n, 4, 64),
             TensorView::contiguous(k.data(), DType::kBF16, n, 2, 64), Positions(positions));
  gpu.rotate(TensorView::contiguous(qd.ptr, DType::kF32, n, 4, 64),
             TensorView::contiguous(kd.ptr, DType::kBF16, n, 2, 64),
             {pd.ptr, PositionType::kInt64, n});
  check_cuda(cudaDeviceSynchronize());
  expect_same(q, qd.download(), DType::kF32, false, "q");
  expect_same(k, kd.download(), DType::kBF16, false, "k");
}

// --- KV append -----------------------------------------------------------------------------------

void run_append_case(DType dtype, bool paged, int64_t head_dim) {
  SCOPED_TRACE(std::string(to_string(dtype)) + (paged ? " paged" : " contiguous") + " head_dim " +
               std::to_string(head_dim));
  const Rope cpu_rope(default_config(head_dim));
  const CudaRope gpu_rope(cpu_rope);
  const int64_t kv_heads = 2, q_heads = 4, block_size = 4, num_blocks = 6;
  KvCache cpu_cache = paged
                          ? KvCache::paged(num_blocks, block_size, kv_heads, head_dim, dtype)
                          : KvCache::contiguous(num_blocks * block_size, kv_heads, head_dim, dtype);
  CudaKvCache gpu_cache =
      paged ? CudaKvCache::paged(num_blocks, block_size, kv_heads, head_dim, dtype)
            : CudaKvCache::contiguous(num_blocks * block_size, kv_heads, head_dim, dtype);
  const std::vector<int32_t> blocks =
      paged ? std::vector<int32_t>{4, 1, 5, 0} : std::vector<int32_t>{0};
  BlockTable cpu_seq{blocks, 0};
  DeviceBuffer table(blocks.size() * sizeof(int32_t));
  table.upload(blocks.data());
  CudaBlockTable gpu_seq{paged ? static_cast<const int32_t*>(table.ptr) : nullptr,
                         static_cast<int64_t>(paged ? blocks.size() : 0), 0};
  // A prefill of 7 tokens, then two decode steps: chunks cross block boundaries.
  for (int64_t n : {7, 1, 1}) {
    const int64_t start = cpu_seq.length;
    auto q = random_bytes(static_cast<std::size_t>(n * q_heads * head_dim), dtype,
                          static_cast<uint32_t>(10 + start));
    auto k = random_bytes(static_cast<std::size_t>(n * kv_heads * head_dim), dtype,
                          static_cast<uint32_t>(20 + start));
    auto v = random_bytes(k.size() / dtype_size(dtype), dtype, static_cast<uint32_t>(30 + start));
    std::vector<int64_t> positions(static_cast<std::size_t>(n));
    for (int64_t t = 0; t < n; ++t) positions[static_cast<std::size_t>(t)] = start + t;
    DeviceBuffer qd(q.size()), kd(k.size()), vd(v.size()), pd(positions.size() * 8);
    qd.upload(q.data());
    kd.upload(k.data());
    vd.upload(v.data());
    pd.upload(positions.data());
    cpu_cache.append(cpu_rope, TensorView::contiguous(q.data(), dtype, n, q_heads, head_dim),
                     ConstTensorView::contiguous(k.data(), dtype, n, kv_heads, head_dim),
                     ConstTensorView::contiguous(v.data(), dtype, n, kv_heads, head_dim),
                     Positions(positions), cpu_seq);
    gpu_cache.append(gpu_rope, TensorView::contiguous(qd.ptr, dtype, n, q_heads, head_dim),
                     ConstTensorView::contiguous(kd.ptr, dtype, n, kv_heads, head_dim),
                     ConstTensorView::contiguous(vd.ptr, dtype, n, kv_heads, head_dim),
                     {pd.ptr, PositionType::kInt64, n}, gpu_seq);
    check_cuda(cudaDeviceSynchronize());
    EXPECT_EQ(gpu_seq.length, cpu_seq.length);
    expect_same(q, qd.download(), dtype, false, "q");
  }
  const std::size_t block_bytes =
      static_cast<std::size_t>(block_size * kv_heads * head_dim) * dtype_size(dtype);
  for (int64_t b = 0; b < gpu_cache.num_blocks(); ++b) {
    for (bool keys : {true, false}) {
      const ConstTensorView c =
          keys ? cpu_cache.keys(b, 0, block_size) : cpu_cache.values(b, 0, block_size);
      const ConstTensorView g =
          keys ? gpu_cache.keys(b, 0, block_size) : gpu_cache.values(b, 0, block_size);
      std::vector<unsigned char> cpu_bytes(block_bytes), gpu_bytes(block_bytes);
      std::memcpy(cpu_bytes.data(), c.data, block_bytes);
      check_cuda(cudaMemcpy(gpu_bytes.data(), g.data, block_bytes, cudaMemcpyDeviceToHost));
      expect_same(cpu_bytes, gpu_bytes, dtype, false,
                  (keys ? "keys of block " : "values of block ") + std::to_string(b));
    }
  }
}

TEST(cuda_kv_cache_test, append_matches_the_cpu_cache) {
  REQUIRE_DEVICE();
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (bool paged : {false, true}) {
      for (int64_t head_dim : {128, 36}) run_append_case(dtype, paged, head_dim);
    }
  }
}

TEST(cuda_kv_cache_test, append_validation) {
  REQUIRE_DEVICE();
  const CudaRope rope(default_config(64));
  CudaKvCache cache = CudaKvCache::paged(4, 4, 2, 64, DType::kBF16);
  const ConstTensorView k =
      ConstTensorView::contiguous(fake_device_pointer(), DType::kBF16, 5, 2, 64);
  CudaBlockTable seq{static_cast<const int32_t*>(fake_device_pointer()), 1, 0};
  const CudaPositions pos{fake_device_pointer(), PositionType::kInt64, 5};
  expect_invalid([&] { cache.append(rope, TensorView(), k, k, pos, seq); }, "sequence");
  EXPECT_EQ(seq.length, 0);
  ConstTensorView wrong = k;
  wrong.dtype = DType::kF16;
  seq.num_blocks = 2;
  expect_invalid([&] { cache.append(rope, TensorView(), wrong, k, pos, seq); }, "k.dtype");
  CudaBlockTable none{nullptr, 0, 0};
  expect_invalid([&] { cache.append(rope, TensorView(), k, k, pos, none); }, "sequence.blocks");
}

}  // namespace
}  // namespace rotary
