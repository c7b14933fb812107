// rotary/packing.h: positions of packed sequences and the tokens a context-parallel rank holds,
// checked against the layouts written out here, and every refusal named before any output is
// written.
#include "rotary/packing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "test_errors.h"

namespace rotary {
namespace {

using Ints = std::vector<int64_t>;

// The tokens [first, first + count) as a list.
Ints range(int64_t first, int64_t count) {
  Ints r;
  for (int64_t i = first; i < first + count; ++i) r.push_back(i);
  return r;
}

Ints concat(Ints a, const Ints& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// TransformerEngine's / Megatron's load-balanced layout: 2 * cp_size chunks, rank r holds chunks
// r and 2 * cp_size - 1 - r.
Ints zigzag_formula(int64_t length, int64_t cp_size, int64_t rank) {
  const int64_t chunk = length / (2 * cp_size);
  return concat(range(rank * chunk, chunk), range((2 * cp_size - 1 - rank) * chunk, chunk));
}

// cp_size chunks, rank r holds chunk r.
Ints contiguous_formula(int64_t length, int64_t cp_size, int64_t rank) {
  const int64_t chunk = length / cp_size;
  return range(rank * chunk, chunk);
}

struct ShardResult {
  Ints indices, positions, cu_seqlens;
};

ShardResult shard_of(const Ints& cu_seqlens, const Ints& offsets, int64_t cp_size, int64_t rank,
                     CpScheme scheme) {
  const int64_t n = packed_shard_size(cu_seqlens, cp_size, scheme);
  ShardResult r{Ints(static_cast<std::size_t>(n)), Ints(static_cast<std::size_t>(n)),
                Ints(cu_seqlens.size())};
  packed_shard(cu_seqlens, offsets, cp_size, rank, scheme, r.indices, r.positions, r.cu_seqlens);
  return r;
}

TEST(PackedPositions, RestartPerSequenceFromTheirOffsets) {
  const Ints cu_seqlens = {0, 3, 3, 7};  // lengths 3, 0, 4
  Ints positions(7);
  packed_positions(cu_seqlens, {}, positions);
  EXPECT_EQ(positions, (Ints{0, 1, 2, 0, 1, 2, 3}));
  packed_positions(cu_seqlens, Ints{5, 9, 2}, positions);
  EXPECT_EQ(positions, (Ints{5, 6, 7, 2, 3, 4, 5}));
}

TEST(PackedPositions, TokensAreTheLastCumulativeLength) {
  EXPECT_EQ(packed_tokens(Ints{0, 3, 3, 7}, {}), 7);
  EXPECT_EQ(packed_tokens(Ints{0}, {}), 0);
  EXPECT_EQ(testing::thrown_by([] { packed_tokens(Ints{0, 3, 2}, {}); }).argument(), "cu_seqlens");
  EXPECT_EQ(testing::thrown_by([] { packed_tokens(Ints{0, 3}, Ints{-2}); }).argument(), "offsets");
}

TEST(PackedPositions, NoSequencesAndEmptySequencesGiveNoPositions) {
  Ints none;
  packed_positions(Ints{0}, {}, none);
  packed_positions(Ints{0, 0, 0}, Ints{4, 5}, none);
  EXPECT_TRUE(none.empty());
}

TEST(PackedShard, ZigzagOfEightTokensOverTwoRanks) {
  EXPECT_EQ(shard_of({0, 8}, {}, 2, 0, CpScheme::kZigzag).indices, (Ints{0, 1, 6, 7}));
  EXPECT_EQ(shard_of({0, 8}, {}, 2, 1, CpScheme::kZigzag).indices, (Ints{2, 3, 4, 5}));
}

// Every sequence cut on its own by the formulas above, the rank's parts in sequence order, and
// every token of the batch held by exactly one rank.
TEST(PackedShard, FollowsTheLayoutsAndCoversEveryTokenOnce) {
  const Ints lengths = {0, 24, 48, 0, 72};  // multiples of 2 * cp_size for cp_size 1..4
  const Ints offsets = {7, 0, 100, 3, 1000};
  Ints cu_seqlens = {0};
  for (int64_t length : lengths) cu_seqlens.push_back(cu_seqlens.back() + length);
  for (CpScheme scheme : {CpScheme::kContiguous, CpScheme::kZigzag}) {
    for (int64_t cp_size = 1; cp_size <= 4; ++cp_size) {
      SCOPED_TRACE("scheme " + std::to_string(static_cast<int>(scheme)) + ", cp_size " +
                   std::to_string(cp_size));
      Ints seen;
      for (int64_t rank = 0; rank < cp_size; ++rank) {
        const ShardResult r = shard_of(cu_seqlens, offsets, cp_size, rank, scheme);
        Ints indices, positions, local = {0};
        for (std::size_t s = 0; s < lengths.size(); ++s) {
          const Ints part = scheme == CpScheme::kZigzag
                                ? zigzag_formula(lengths[s], cp_size, rank)
                                : contiguous_formula(lengths[s], cp_size, rank);
          for (int64_t i : part) {
            indices.push_back(cu_seqlens[s] + i);
            positions.push_back(offsets[s] + i);
          }
          local.push_back(local.back() + static_cast<int64_t>(part.size()));
        }
        EXPECT_EQ(r.indices, indices);
        EXPECT_EQ(r.positions, positions);
        EXPECT_EQ(r.cu_seqlens, local);
        seen.insert(seen.end(), r.indices.begin(), r.indices.end());
      }
      std::sort(seen.begin(), seen.end());
      EXPECT_EQ(seen, range(0, cu_seqlens.back()));
    }
  }
}

TEST(PackedShard, PositionsAreThePackedPositionsOfTheIndices) {
  const Ints cu_seqlens = {0, 8, 20}, offsets = {0, 100};
  const ShardResult r = shard_of(cu_seqlens, offsets, 2, 1, CpScheme::kZigzag);
  EXPECT_EQ(r.indices, (Ints{2, 3, 4, 5, 11, 12, 13, 14, 15, 16}));
  EXPECT_EQ(r.positions, (Ints{2, 3, 4, 5, 103, 104, 105, 106, 107, 108}));
  EXPECT_EQ(r.cu_seqlens, (Ints{0, 4, 10}));
}

TEST(PackedShard, LargestPositionsAtTheEndOfInt64) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  Ints positions(4);
  packed_positions(Ints{0, 4}, Ints{max - 3}, positions);
  EXPECT_EQ(positions.back(), max);
}

// --- refusals
// --------------------------------------------------------------------------------------

constexpr int64_t kSentinel = -777;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

struct Outputs {
  Ints a = Ints(8, kSentinel), b = Ints(8, kSentinel), c = Ints(3, kSentinel);
  bool untouched() const {
    auto all = [](const Ints& v) {
      return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == kSentinel; });
    };
    return all(a) && all(b) && all(c);
  }
};

struct Refusal {
  std::string name, argument, words;
  std::function<void(Outputs&)> call;
};

void shard_call(Outputs& o, Ints cu, Ints offsets, int64_t cp_size, int64_t rank,
                CpScheme scheme = CpScheme::kZigzag) {
  packed_shard(cu, offsets, cp_size, rank, scheme, o.a, o.b, o.c);
}

void positions_call(Outputs& o, Ints cu, Ints offsets) { packed_positions(cu, offsets, o.a); }

std::vector<Refusal> refusals() {
  return {
      {"empty cu_seqlens", "cu_seqlens", "got no values",
       [](Outputs& o) { positions_call(o, {}, {}); }},
      {"cu_seqlens not at 0", "cu_seqlens", "starting at 0",
       [](Outputs& o) {
         positions_call(o, {1, 9}, {});
       }},
      {"decreasing cu_seqlens", "cu_seqlens", "non-decreasing",
       [](Outputs& o) {
         shard_call(o, {0, 8, 4, 16}, {}, 2, 0);
       }},
      {"offsets not one per sequence", "offsets", "one offset per sequence (2), got 1",
       [](Outputs& o) {
         shard_call(o, {0, 8, 16}, {0}, 2, 0);
       }},
      {"negative offset", "offsets", "expected offsets >= 0",
       [](Outputs& o) {
         positions_call(o, {0, 8}, {-1});
       }},
      {"positions past int64", "offsets", "past the int64 range",
       [](Outputs& o) {
         positions_call(o, {0, 8}, {kInt64Max - 6});
       }},
      {"cp_size 0", "cp_size", "expected >= 1, got 0",
       [](Outputs& o) {
         shard_call(o, {0, 8, 16}, {}, 0, 0);
       }},
      {"cp_size too large for zigzag", "cp_size", "2 * cp_size chunks",
       [](Outputs& o) {
         shard_call(o, {0, 0}, {}, kInt64Max, 0);
       }},
      {"cp_rank negative", "cp_rank", "[0, cp_size = 2), got -1",
       [](Outputs& o) {
         shard_call(o, {0, 8, 16}, {}, 2, -1);
       }},
      {"cp_rank past cp_size", "cp_rank", "[0, cp_size = 2), got 2",
       [](Outputs& o) {
         shard_call(o, {0, 8, 16}, {}, 2, 2);
       }},
      {"sequence not in equal chunks", "cu_seqlens",
       "sequence 1: 6 tokens do not split into 4 equal chunks (zigzag over cp_size = 2); pad to a "
       "multiple of 4",
       [](Outputs& o) {
         shard_call(o, {0, 8, 14}, {}, 2, 0);
       }},
      {"contiguous chunks", "cu_seqlens", "sequence 0: 7 tokens do not split into 2 equal chunks",
       [](Outputs& o) {
         shard_call(o, {0, 7, 16}, {}, 2, 0, CpScheme::kContiguous);
       }},
      {"positions of the wrong size", "positions", "expected 9 values",
       [](Outputs& o) {
         positions_call(o, {0, 9}, {});
       }},
      {"shard indices of the wrong size", "indices", "expected 4 values",
       [](Outputs& o) {
         shard_call(o, {0, 8}, {}, 2, 0);
       }},
      {"shard positions of the wrong size", "positions", "expected 8 values",
       [](Outputs& o) {
         packed_shard(Ints{0, 8, 16}, {}, 2, 0, CpScheme::kZigzag, o.a, std::span(o.b).first(7),
                      o.c);
       }},
      {"shard cu_seqlens of the wrong size", "shard_cu_seqlens", "expected 4 values",
       [](Outputs& o) {
         shard_call(o, {0, 4, 8, 16}, {}, 2, 0);
       }},
      {"unknown scheme", "scheme", "CpScheme::kContiguous or CpScheme::kZigzag",
       [](Outputs& o) {
         shard_call(o, {0, 8, 16}, {}, 2, 0, static_cast<CpScheme>(7));
       }},
  };
}

TEST(PackingRefusals, NameTheArgumentAndLeaveTheOutputsUntouched) {
  for (const Refusal& r : refusals()) {
    SCOPED_TRACE(r.name);
    Outputs outputs;
    const Error e = testing::thrown_by([&] { r.call(outputs); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.argument(), r.argument);
    EXPECT_NE(e.message().find(r.words), std::string::npos) << e.what();
    EXPECT_TRUE(outputs.untouched());
  }
}

TEST(PackingRefusals, ShardSizeChecksTheChunksToo) {
  const Error e = testing::thrown_by([] {
    packed_shard_size(Ints{0, 8, 14}, 2, CpScheme::kZigzag);
  });
  EXPECT_EQ(e.argument(), "cu_seqlens");
  EXPECT_NE(e.message().find("sequence 1: 6 tokens"), std::string::npos) << e.what();
  EXPECT_EQ(packed_shard_size(Ints{0, 8, 14}, 2, CpScheme::kContiguous), 7);
}

}  // namespace
}  // namespace rotary
