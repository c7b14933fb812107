// Packed sequences and their context-parallel shards: which tokens a rank holds and their
// positions.
//
// A packed (THD) batch lays its sequences one after another on one token axis, described by
// cu_seqlens, the cumulative sequence lengths (flash-attention's and TransformerEngine's
// convention): sequence s is tokens [cu_seqlens[s], cu_seqlens[s + 1]), and cu_seqlens starts at 0
// and never decreases. RoPE rotates a token by its position in its own sequence, so positions
// restart at every sequence, from that sequence's offset (0, or the tokens of a prefix already in
// the KV cache).
//
// Context parallelism splits every sequence over cp_size ranks. A rank must rotate its tokens by
// their global positions, not by their order in the shard. Two layouts:
//
//   CpScheme::kContiguous  the sequence cut into cp_size equal chunks, rank r holding chunk r;
//   CpScheme::kZigzag      the sequence cut into 2 * cp_size equal chunks, rank r holding chunks r
//                          and 2 * cp_size - 1 - r in that order, so that every rank has the same
//                          share of causal attention work (TransformerEngine's and Megatron's
//                          load-balanced layout).
//
// Each sequence of a packed batch is cut on its own, and a rank's shard is its part of every
// sequence, in sequence order. Every rank holds the same number of tokens.
//
//   const std::vector<int64_t> cu_seqlens = {0, 8, 20};  // two sequences of 8 and 12 tokens
//   const int64_t n = rotary::packed_shard_size(cu_seqlens, /*cp_size=*/2, CpScheme::kZigzag);
//   std::vector<int64_t> indices(n), positions(n), shard_cu_seqlens(cu_seqlens.size());
//   rotary::packed_shard(cu_seqlens, {}, 2, /*cp_rank=*/1, CpScheme::kZigzag, indices, positions,
//                        shard_cu_seqlens);
//   // indices   = {2, 3, 4, 5, 11, 12, 13, 14, 15, 16}  (tokens of the packed batch)
//   // positions = {2, 3, 4, 5, 3, 4, 5, 6, 7, 8}        (rotate q[indices] by these)
//   // shard_cu_seqlens = {0, 4, 10}                       (the shard's own sequences)
//
// Every function checks all its arguments before it writes an output element and throws
// rotary::Error (kInvalidArgument) naming the argument: cu_seqlens empty, not starting at 0 or
// decreasing; offsets not one per sequence, or negative; a position past the int64 range; cp_size
// below 1; cp_rank outside [0, cp_size); a sequence whose length does not split into the layout's
// equal chunks (pad it: the attention kernels need equal chunks too); an output of the wrong size.
// `offsets` may be empty: every sequence then starts at position 0. Nothing is allocated.
#pragma once

#include <cstdint>
#include <span>

namespace rotary {

enum class CpScheme {
  kContiguous,  // cp_size chunks, rank r holds chunk r
  kZigzag,      // 2 * cp_size chunks, rank r holds chunks r and 2 * cp_size - 1 - r
};

// The number of tokens of a packed batch, cu_seqlens.back(), once cu_seqlens and offsets are
// checked (as packed_positions checks them). For sizing packed_positions' output.
int64_t packed_tokens(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets);

// The positions of a packed batch: token t of sequence s gets offsets[s] + t - cu_seqlens[s].
// `positions` holds cu_seqlens.back() values (one per token).
void packed_positions(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets,
                      std::span<int64_t> positions);

// The number of tokens each rank holds (the same for every rank): cu_seqlens.back() / cp_size,
// once every sequence is known to split into the scheme's chunks. For sizing packed_shard's
// outputs.
int64_t packed_shard_size(std::span<const int64_t> cu_seqlens, int64_t cp_size, CpScheme scheme);

// Rank cp_rank's shard of a packed batch: `indices`, the tokens it holds (indices into the packed
// token axis, in the rank's order); `positions`, their positions (offsets as packed_positions);
// `shard_cu_seqlens`, the cu_seqlens of the shard itself (where each sequence's part starts in
// `indices`). `indices` and `positions` hold packed_shard_size() values, `shard_cu_seqlens` as
// many as cu_seqlens.
void packed_shard(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets,
                  int64_t cp_size, int64_t cp_rank, CpScheme scheme, std::span<int64_t> indices,
                  std::span<int64_t> positions, std::span<int64_t> shard_cu_seqlens);

}  // namespace rotary
