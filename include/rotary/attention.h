// Reference grouped-query attention over a KvCache: causal, with an optional sliding window.
//
// The point is correctness and clarity, not speed: it is what rotary's tests and examples use to
// show that RoPE does what it promises inside attention (decoding token by token equals a forward
// pass over the whole sequence, scores depend on relative positions only). Memory stays O(head_dim)
// per query: keys and values are streamed from the cache with an online softmax, never as a
// score matrix.
#pragma once

#include <cstdint>
#include <span>

#include "rotary/kv_cache.h"
#include "rotary/tensor.h"

namespace rotary {

struct AttentionOptions {
  // Multiplies q . k; 0 means 1 / sqrt(head_dim).
  double scale = 0;
  // Each query sees at most this many most recent keys, itself included; 0: every earlier key.
  int64_t sliding_window = 0;
};

// out[i, h, :] = sum_j softmax_j(scale * q[i, h] . key[j, g]) value[j, g] over the cache indices
// j <= first_index + i (and j > first_index + i - sliding_window), where query i sits at cache
// index first_index + i and g = h / (q heads / KV heads) is its KV head (GQA; MQA when the cache
// has one head). q is already rotated (KvCache::append rotates it). out holds q.num_tokens *
// q.num_heads * head_dim floats, row-major. Arithmetic in float32 with float32 accumulation, in a
// fixed order: the same query over the same cache gives the same bits however it was appended.
// Throws rotary::Error naming the argument before writing.
void attention(ConstTensorView q, const KvCache& cache, const BlockTable& sequence,
               int64_t first_index, std::span<float> out, const AttentionOptions& options = {});

}  // namespace rotary
