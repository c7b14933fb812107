// RMSNorm on queries and keys fused with the rotation: one pass that normalises each head (or each
// token) of Q and K as the model family defines it, then rotates it exactly as Rope::rotate does.
//
//   rotary::QkNorm norms{.q = {.weight = q_weight, .eps = 1e-6f},   // Qwen3: per head,
//                        .k = {.weight = k_weight, .eps = 1e-6f}};  // rounded before the weight
//   norms.q.round_before_weight = norms.k.round_before_weight = true;
//   rotary::rms_norm_rotate(rope, norms, q, k, positions);          // in place
//
// The models differ in details that change bits in bfloat16 and float16, so RmsNorm spells each
// one out. With x the float32 value of each element of one group (a head, or a token's heads):
//
//   r = 1 / sqrt(sum(x * x) / n + eps)          float32 throughout; n = group size
//   y = x * r                                   float32
//   y = round(y)                                only when round_before_weight (Qwen3, Llama-style)
//   y = y * w      w = weight or 1 + weight     float32 (unit_offset: Gemma 3's 1 + weight)
//   stored rotated: rotate(round(y))            the normalised value is rounded to the storage
//                                               dtype, as a norm module's output is, then rotated
//
// round() is the storage dtype's round to nearest even (nothing for float32). The sum of squares
// runs in a fixed order (8 float32 partial sums, lane j % 8 of each head, combined pairwise),
// whatever the CPU's SIMD width, so results never depend on the machine; a reference that sums in
// another order (torch's reduction) can differ in the last bit of r.
//
// Families (the norms of transformers 5.24):
//   Qwen3, Qwen3-MoE (Qwen3RMSNorm)  per head, round_before_weight = true
//   Gemma 3 (Gemma3RMSNorm)          per head, unit_offset = true
//   OLMo 2 (Olmo2RMSNorm)            per token (scope kToken: over num_heads * head_dim)
// LayerNorm-based q/k norms (mean subtracted, a bias) are not RMSNorms and have no description
// here.
//
// Contract: every argument is checked before any output element is written, and the views obey
// Rope::rotate's rules (rope.h): outputs are their inputs (in place) or disjoint from everything.
// The norm is not invertible: there is no inverse direction.
#pragma once

#include <vector>

#include "rotary/kv_cache.h"
#include "rotary/positions.h"
#include "rotary/rope.h"
#include "rotary/tensor.h"

namespace rotary {

// Which elements one normalisation runs over.
enum class NormScope {
  kHead,   // each head of a token on its own: weight has head_dim entries (Qwen3, Gemma 3)
  kToken,  // all heads of a token together: weight has num_heads * head_dim entries (OLMo 2)
};

struct RmsNorm {
  // One finite float32 per normalised element (head_dim, or num_heads * head_dim for kToken), the
  // module's weight converted exactly to float32.
  std::vector<float> weight;
  // Added to the mean square before the square root: finite, > 0. Rounded to float32 (as torch
  // adds a Python float to a float32 tensor).
  float eps = 1e-6f;
  // Multiply by 1 + weight (computed in float32) instead of weight: Gemma's convention.
  bool unit_offset = false;
  NormScope scope = NormScope::kHead;
  // Round x * r to the storage dtype before multiplying by the weight, as Qwen3RMSNorm's
  // `weight * x.to(input_dtype)` does; the product is then rounded again. Exact for float32.
  bool round_before_weight = false;
};

// The norms of one attention layer: q's, and k's (used only when a k is given).
struct QkNorm {
  RmsNorm q;
  RmsNorm k;
};

// In place: normalises q and k with norms.q and norms.k, then rotates them by `positions`. `k` may
// be an empty view (no K). Throws rotary::Error naming the argument ("norms.q.weight",
// "norms.k.eps", "q", "positions", ...) before any write.
void rms_norm_rotate(const Rope& rope, const QkNorm& norms, TensorView q, TensorView k,
                     Positions positions);

// Out of place: reads q_in/k_in, writes q_out/k_out (pass-through channels normalised too).
void rms_norm_rotate(const Rope& rope, const QkNorm& norms, ConstTensorView q_in, TensorView q_out,
                     ConstTensorView k_in, TensorView k_out, Positions positions);

// KvCache::append with the norms: q normalised and rotated in place, k normalised and rotated into
// the cache, v copied; the same checks, errors and all-or-nothing guarantee as KvCache::append
// (kv_cache.h), plus the norms'. One pass per token, as rms_norm_rotate: k is only read, and each
// normalised, rotated key is written straight into its cache row.
void rms_norm_rotate_append(KvCache& cache, const Rope& rope, const QkNorm& norms, TensorView q,
                            ConstTensorView k, ConstTensorView v, Positions positions,
                            BlockTable& sequence);

}  // namespace rotary
