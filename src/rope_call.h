// One Rope call after its checks: the cos/sin rows of its tokens and the loop that hands each
// token's heads to a kernel. Rope::rotate is the checks plus rotate_checked(); KvCache::append and
// the fused norm-and-rotate entry points run their own checks and then use the same two pieces, so
// a call is validated once and every entry point rotates exactly as Rope::rotate does.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "rotary/rope.h"

namespace rotary::detail {

// The cos/sin rows of one call. The frequency set is chosen once from the call's sequence length
// (dynamic NTK and LongRoPE switch sets past their threshold); a row comes from the Rope's cache
// when the call uses the initial set and the position is inside the cache, else it is computed on
// the fly into per-thread scratch (no allocation after a thread's first call). A multi-axis token
// gathers each pair from the row of its pair's axis.
class CallAngles {
 public:
  // `positions` must have passed check_positions, which returned `sequence_length`.
  CallAngles(const Rope& rope, Positions positions, int64_t sequence_length, Direction direction);
  CallAngles(const CallAngles&) = delete;
  CallAngles& operator=(const CallAngles&) = delete;

  // {cos, sin} of token t: rotary_dim / 2 floats each, attention factor included, sin negated for
  // the inverse rotation. Valid until the calling thread's next row().
  std::pair<const float*, const float*> row(int64_t t) const;

  // The frequency set the call uses.
  const Frequencies& frequencies() const { return *frequencies_; }

 private:
  std::pair<const float*, const float*> single_row(int64_t position, float* out) const;
  std::pair<const float*, const float*> multi_axis_row(int64_t t, float* buf) const;
  int64_t cached_positions() const;

  const Rope::State& state_;
  Positions positions_;
  bool inverse_;
  Frequencies storage_;  // a per-call dynamic-NTK set
  const Frequencies* frequencies_;
  bool cacheable_;  // the call uses the initial set, which the cache was built from
  std::vector<std::vector<float>> axis_theta_;  // multi-axis: each axis's own frequencies
};

// Rope::rotate after its checks (check_rotate_views and check_positions, which returned
// `sequence_length`): rotates q_in into q_out and k_in into k_out (either may have no tokens or no
// heads), token blocks over threads as the Rope's options allow.
void rotate_checked(const Rope& rope, const ConstTensorView& q_in, const TensorView& q_out,
                    const ConstTensorView& k_in, const TensorView& k_out,
                    const Positions& positions, int64_t sequence_length, Direction direction);

}  // namespace rotary::detail
