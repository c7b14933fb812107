// rotary/limits.h: every size a caller chooses is checked before anything is allocated, the error
// names the argument, the value, the bytes and the limit, and the limit itself is accepted. A size
// inside the limits that the machine cannot allocate is an Error too, not std::bad_alloc.
#include "rotary/limits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "rotary/config.h"
#include "rotary/decay.h"
#include "rotary/error.h"
#include "rotary/kv_cache.h"
#include "rotary/multimodal.h"
#include "rotary/rope.h"
#include "sizes.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROTARY_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define ROTARY_TEST_SANITIZED 1
#endif
#endif

namespace rotary {
namespace {

// Runs `call`, which must throw Error(kInvalidArgument) for `argument` with every fragment in its
// message.
void expect_refused(const std::function<void()>& call, const std::string& argument,
                    const std::vector<std::string>& fragments) {
  try {
    call();
    ADD_FAILURE() << "no error for " << argument;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_EQ(e.argument(), argument) << e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "'" << e.what() << "' lacks '" << fragment << "'";
    }
  }
}

TEST(LimitsTest, bytes_are_written_in_binary_units) {
  EXPECT_EQ(detail::format_bytes(512), "512 bytes");
  EXPECT_EQ(detail::format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(detail::format_bytes(static_cast<double>(kMaxRequestBytes)), "64.0 GiB");
  EXPECT_EQ(detail::format_bytes(2e9 * 64 * 8), "953.7 GiB");
}

// rotary/limits.h's checks, as a caller sizing buffers of its own (the command-line tool) uses
// them.
TEST(LimitsTest, a_callers_own_request_is_refused_in_the_librarys_words) {
  const CountLimit tokens{kMaxBenchTokens, "tokens", "rotary::kMaxBenchTokens"};
  const SizeRequest request{"--tokens", "70000 tokens", 70000.0 * 20480 * 4, "benchmark buffers"};
  expect_refused([&] { check_count(request, 70000, tokens); }, "--tokens",
                 {"70000 tokens need 5.3 GiB of benchmark buffers; the limit is 65536 tokens "
                  "(rotary::kMaxBenchTokens)"});
  EXPECT_NO_THROW(check_count(request, kMaxBenchTokens, tokens));
  const SizeRequest tables{"--positions", "3 positions", 65.0 * (1 << 30), "tables"};
  expect_refused([&] { check_bytes(tables); }, "--positions",
                 {"3 positions need 65.0 GiB of tables; the limit is 64.0 GiB per request "
                  "(rotary::kMaxRequestBytes)"});
  EXPECT_NO_THROW(check_bytes({"x", "y", static_cast<double>(kMaxRequestBytes), "z"}));
}

TEST(LimitsTest, a_callers_bad_alloc_becomes_an_error_naming_the_request) {
  const SizeRequest request{"--tokens", "8 tokens", 1024, "buffers"};
  expect_refused([&] { allocate_or_throw(request, [] { throw std::bad_alloc(); }); }, "--tokens",
                 {"8 tokens need 1.0 KiB of buffers, more than this machine could allocate"});
  int calls = 0;
  allocate_or_throw(request, [&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(LimitsTest, cache_positions_past_the_limit_names_the_bytes) {
  const RopeConfig config = default_config(128);
  expect_refused([&] { Rope(config, {.cache_positions = 2'000'000'000}); },
                 "options.cache_positions",
                 {"2000000000 positions need 953.7 GiB of cos/sin tables (64 pairs x 2 x 4 bytes",
                  "the limit is 33554432 positions (rotary::kMaxTablePositions)"});
  expect_refused([&] { Rope(config, {.cache_positions = kMaxTablePositions + 1}); },
                 "options.cache_positions", {"33554433 positions need 16.0 GiB"});
  expect_refused([&] { Rope(config, {.cache_positions = int64_t{1} << 62}); },
                 "options.cache_positions", {"4611686018427387904 positions need"});
}

TEST(LimitsTest, cache_past_the_byte_limit_is_refused) {
  // 2048 channels (1024 pairs) x 2^25 positions x 8 bytes = 256 GiB.
  expect_refused([] { Rope(default_config(2048), {.cache_positions = kMaxTablePositions}); },
                 "options.cache_positions",
                 {"need 256.0 GiB of cos/sin tables (1024 pairs", "64.0 GiB per request"});
}

TEST(LimitsTest, cache_at_the_limit_is_built) {
#ifdef ROTARY_TEST_SANITIZED
  GTEST_SKIP() << "2^25 cos/sin rows take seconds under a sanitizer and check nothing it sees";
#endif
  // One pair: 2^25 positions x 8 bytes = 256 MiB.
  const Rope rope(default_config(2), {.cache_positions = kMaxTablePositions});
  std::vector<float> cos(1), sin(1);
  rope.cos_sin(std::vector<int64_t>{kMaxTablePositions - 1}, cos, sin);
  const Rope uncached(default_config(2));
  std::vector<float> cos2(1), sin2(1);
  uncached.cos_sin(std::vector<int64_t>{kMaxTablePositions - 1}, cos2, sin2);
  EXPECT_EQ(cos, cos2);
  EXPECT_EQ(sin, sin2);
}

TEST(LimitsTest, max_threads_is_bounded) {
  const RopeConfig config = default_config(64);
  expect_refused([&] { Rope(config, {.max_threads = kMaxThreads + 1}); }, "options.max_threads",
                 {"4097", "rotary::kMaxThreads"});
  expect_refused([&] { Rope(config, {.max_threads = -1}); }, "options.max_threads", {"-1"});
  EXPECT_NO_THROW(Rope(config, {.max_threads = kMaxThreads}));
}

TEST(LimitsTest, kv_pool_past_the_byte_limit_names_the_bytes) {
  expect_refused([] { KvCache::paged(int64_t{1} << 30, 1024, 64, 128, DType::kF32); }, "num_blocks",
                 {"1073741824 blocks x 1024 tokens x 64 heads x 128 channels need 64.0 PiB of "
                  "keys and values (float32, 4 bytes each)",
                  "the limit is 64.0 GiB per request (rotary::kMaxRequestBytes)"});
  expect_refused([] { KvCache::contiguous(int64_t{1} << 24, 64, 128, DType::kBF16); }, "capacity",
                 {"16777216 tokens x 64 heads x 128 channels need 512.0 GiB"});
}

TEST(LimitsTest, kv_sizes_past_their_limits_are_refused) {
  expect_refused([] { KvCache::paged(kMaxKvBlocks + 1, 1, 1, 1, DType::kF16); }, "num_blocks",
                 {"2147483649 blocks", "rotary::kMaxKvBlocks"});
  expect_refused([] { KvCache::paged(2, kMaxKvBlockSize + 1, 1, 1, DType::kF16); }, "block_size",
                 {"16777217 tokens", "rotary::kMaxKvBlockSize"});
  expect_refused([] { KvCache::contiguous(kMaxKvBlockSize + 1, 1, 1, DType::kF16); }, "capacity",
                 {"16777217 tokens", "need 64.0 MiB", "rotary::kMaxKvBlockSize"});
  expect_refused([] { KvCache::paged(1, 1, kMaxKvHeads + 1, 1, DType::kF16); }, "num_kv_heads",
                 {"65537 heads", "rotary::kMaxKvHeads"});
  expect_refused([] { KvCache::paged(1, 1, 1, kMaxKvHeadDim + 1, DType::kF16); }, "head_dim",
                 {"65537 channels", "rotary::kMaxKvHeadDim"});
  expect_refused([] { KvCache::paged(0, 1, 1, 1, DType::kF16); }, "num_blocks", {"positive"});
}

TEST(LimitsTest, kv_sizes_at_their_limits_are_allocated) {
  EXPECT_EQ(KvCache::contiguous(kMaxKvBlockSize, 1, 1, DType::kF16).block_size(), kMaxKvBlockSize);
  EXPECT_EQ(KvCache::paged(1, 1, kMaxKvHeads, 1, DType::kF16).num_kv_heads(), kMaxKvHeads);
  EXPECT_EQ(KvCache::paged(1, 1, 1, kMaxKvHeadDim, DType::kF16).head_dim(), kMaxKvHeadDim);
}

TEST(LimitsTest, position_ids_past_the_limit_name_the_bytes) {
  const std::vector<PromptSegment> prompt = {PromptSegment::text(kMaxPositionIds),
                                             PromptSegment::image({1, 4, 4})};
  expect_refused([&] { mrope_positions(prompt, 2); }, "segments",
                 {"16777220 tokens need 384.0 MiB of position ids (3 axes x 8 bytes each)",
                  "rotary::kMaxPositionIds"});
  // Once the sum of t * h * w overflowed int64 before any check saw it.
  const std::vector<VisionGrid> huge = {{1 << 24, 1 << 24, 1 << 24}};
  expect_refused([&] { vision_patch_positions(huge, 1); }, "grids[0]", {"2^32"});
  const std::vector<VisionGrid> many(257, VisionGrid{1, 256, 256});
  expect_refused([&] { vision_patch_positions(many, 1); }, "grids",
                 {"16842752 tokens need 257.0 MiB of position ids (2 axes"});
}

TEST(LimitsTest, position_ids_at_the_limit_are_built) {
  const std::vector<VisionGrid> grids = {{1, 4096, 4096}};  // 2^24 patches, 256 MiB of ids
  const MultimodalPositions ids = vision_patch_positions(grids, 1);
  EXPECT_EQ(ids.num_tokens, kMaxPositionIds);
  EXPECT_EQ(ids.at(kMaxPositionIds - 1, 0), 4095);
}

TEST(LimitsTest, decay_points_per_decade_is_bounded) {
  EXPECT_NO_THROW(log_spaced_distances(1000, kMaxPointsPerDecade));
  expect_refused([] { log_spaced_distances(1000, kMaxPointsPerDecade + 1); }, "points_per_decade",
                 {"10001"});
}

// The second line of defence: sizes inside the limits that this process cannot allocate. The
// address-space limit makes the allocation fail on any machine (no overcommit can hide it).
// Sanitizers reserve address space of their own and abort instead of throwing, so they skip.
class OutOfMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef ROTARY_TEST_SANITIZED
    GTEST_SKIP() << "sanitizers abort on a failed allocation instead of throwing";
#else
    ASSERT_EQ(getrlimit(RLIMIT_AS, &saved_), 0);
    long pages = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr || std::fscanf(statm, "%ld", &pages) != 1) GTEST_SKIP() << "no statm";
    std::fclose(statm);
    // What the process maps now, plus 1 GiB of headroom for everything but the request.
    rlimit lowered = saved_;
    lowered.rlim_cur =
        static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (rlim_t{1} << 30);
    ASSERT_EQ(setrlimit(RLIMIT_AS, &lowered), 0);
    lowered_ = true;
#endif
  }
  void TearDown() override {
    if (lowered_) setrlimit(RLIMIT_AS, &saved_);
  }

 private:
  rlimit saved_{};
  bool lowered_ = false;
};

TEST_F(OutOfMemoryTest, kv_pool_the_machine_cannot_hold_is_an_error) {
  // 32 GiB of keys and 32 of values: inside kMaxRequestBytes, outside the lowered address space.
  expect_refused([] { KvCache::paged(1024, 1024, 64, 128, DType::kF32); }, "num_blocks",
                 {"need 64.0 GiB of keys and values", "more than this machine could allocate"});
}

TEST_F(OutOfMemoryTest, cache_the_machine_cannot_hold_is_an_error) {
  // 1024 pairs x 2^23 positions x 8 bytes = 64 GiB.
  expect_refused([] { Rope(default_config(2048), {.cache_positions = int64_t{1} << 23}); },
                 "options.cache_positions",
                 {"8388608 positions need 64.0 GiB", "more than this machine could allocate"});
}

}  // namespace
}  // namespace rotary
