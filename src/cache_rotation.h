// How KvCache::append turns one block's new tokens into cached keys: the step that differs between
// KvCache::append (Rope::rotate's kernels) and rms_norm_rotate_append (the fused norm and
// rotation), so that both share one set of checks and one loop over the blocks (src/kv_cache.cc).
#pragma once

#include <cstdint>

#include "rotary/positions.h"
#include "rotary/tensor.h"

namespace rotary::detail {

class CacheRotation {
 public:
  virtual ~CacheRotation() = default;
  // Checks of the rotation's own arguments, run after the append has checked q, k, v and the
  // positions and before anything is written. Throws rotary::Error naming the argument.
  virtual void check(const TensorView& q, const ConstTensorView& k) const = 0;
  // Called after every check of the append, once per block the call writes: rotates q (in place;
  // it may have no heads) and k into `key_rows`, the block's cache rows. `sequence_length` is the
  // whole call's (its frequency set, for dynamic NTK and LongRoPE, is chosen once per call).
  virtual void rotate(const TensorView& q, const ConstTensorView& k, const TensorView& key_rows,
                      const Positions& positions, int64_t sequence_length) const = 0;
};

}  // namespace rotary::detail
