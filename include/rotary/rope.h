// rotary::Rope: a validated configuration, its frequencies and (optionally) a cos/sin cache, ready
// to rotate query and key tensors.
//
//   rotary::Rope rope(config, {.angle_mode = rotary::AngleMode::kHf});
//   rope.rotate(q, k, positions);                    // in place, Q and K in one call
//   rope.rotate(q, k, positions, Direction::kInverse);  // the backward pass
//
// The layout (which channels pair up) comes from config.layout. Pair j rotates by
// position * theta_j; channels [rotary_dim, head_dim) pass through unchanged.
//
// Contract. Every argument is checked before any output element is written; a violation throws
// rotary::Error naming the argument. Output views must not overlap themselves. Each output is
// exactly its input view (in place) or shares no byte with it, and shares no byte with the other
// input or the other output. This is decided element by element, not by address ranges, so the Q
// and K slices of one packed QKV buffer (which interleave without sharing an element) pass, and Q
// and K views that share a head are refused. A Rope is immutable after construction: concurrent
// rotate() calls on one Rope are safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "rotary/angles.h"
#include "rotary/config.h"
#include "rotary/frequencies.h"
#include "rotary/limits.h"
#include "rotary/tensor.h"

namespace rotary {

namespace detail {
class CallAngles;  // src/rope_call.h
}  // namespace detail

enum class Direction { kForward, kInverse };

struct RopeOptions {
  AngleMode angle_mode = AngleMode::kHf;
  // Precompute cos/sin for positions [0, cache_positions). Positions outside the cache, and calls
  // whose frequencies depend on the sequence length beyond the initial set, are computed on the fly
  // with the same function, so the values never depend on whether a cache exists. The cache takes
  // cache_positions * rotary_dim * 4 bytes (cos and sin); at most kMaxTablePositions positions
  // and kMaxRequestBytes (rotary/limits.h), else the constructor throws Error naming
  // "options.cache_positions" and the bytes.
  int64_t cache_positions = 0;
  // Threads for one call: 0 uses every hardware thread, 1 keeps the call on the caller's thread.
  // Calls too small to repay waking threads run on the caller's thread whatever this says.
  // 0 .. kMaxThreads.
  int max_threads = 0;
};

class Rope {
 public:
  explicit Rope(const RopeConfig& config, const RopeOptions& options = {});
  // Uses `frequencies` (rotary_dim / 2 finite inverse frequencies and an attention factor) instead
  // of deriving them from the config, for every call: to reproduce another engine's float32
  // theta bit for bit, or to run a custom scheme. The config still gives head_dim, rotary_dim and
  // layout.
  Rope(const RopeConfig& config, const Frequencies& frequencies, const RopeOptions& options = {});
  ~Rope();
  Rope(Rope&&) noexcept;
  Rope& operator=(Rope&&) noexcept;

  const RopeConfig& config() const;
  const RopeOptions& options() const;
  // The frequencies at initialisation (no sequence length), as transformers builds them.
  const Frequencies& frequencies() const;
  int64_t head_dim() const;
  int64_t rotary_dim() const;

  // The frequencies a call with these positions uses: for dynamic NTK and LongRoPE they follow
  // transformers' per-call rule with sequence_length = max(positions) + 1.
  Frequencies frequencies_for(Positions positions) const;

  // cos/sin rows (rotary_dim / 2 floats per position, row-major) exactly as the kernels use them,
  // attention factor included. cos and sin must each hold positions.size() * rotary_dim / 2 floats.
  void cos_sin(Positions positions, std::span<float> cos, std::span<float> sin) const;

  // In place. `k` may be an empty view (no K); GQA/MQA: q and k may have different head counts.
  void rotate(TensorView q, TensorView k, Positions positions,
              Direction direction = Direction::kForward) const;
  void rotate(TensorView x, Positions positions, Direction direction = Direction::kForward) const;

  // Out of place: reads q_in/k_in, writes q_out/k_out (pass-through channels are copied).
  void rotate(ConstTensorView q_in, TensorView q_out, ConstTensorView k_in, TensorView k_out,
              Positions positions, Direction direction = Direction::kForward) const;

  struct State;  // implementation detail (src/rope.cc)

 private:
  // Both public constructors validate the config once, then build through this one.
  struct Validated {};
  Rope(Validated, const RopeConfig& config, const Frequencies& frequencies,
       const RopeOptions& options);

  std::unique_ptr<State> state_;
  friend class detail::CallAngles;  // reads the cache and the frequency sets
};

}  // namespace rotary
