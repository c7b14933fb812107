// From positions and inverse frequencies to cos/sin.
//
// Two documented modes:
//   AngleMode::kHf     angle = float32(position) * theta_i in one float32 multiply, then float32
//                      cos/sin: what transformers computes, bit for bit up to the last-ulp
//                      differences between math libraries. Its angle error grows with the position
//                      (about position * theta_i * 2^-24 radians), exactly as the reference's does.
//   AngleMode::kExact  theta_i (the model's float32 frequency) times the position formed exactly in
//                      float64 (a two-product), reduced modulo 2 pi in float64, cos/sin in float64,
//                      rounded once to float32. Accurate to float32 rounding for |position| < 2^53.
// In both, cos and sin are multiplied by the attention factor (in float32 for kHf as transformers
// does, in float64 before the final rounding for kExact).
#pragma once

#include <cstdint>
#include <span>

namespace rotary {

enum class AngleMode { kHf, kExact };

// Fills cos[i] and sin[i], i < inv_freq.size(), for one position. cos and sin must have
// inv_freq.size() entries.
void compute_cos_sin(std::span<const float> inv_freq, double attention_factor, int64_t position,
                     AngleMode mode, std::span<float> cos, std::span<float> sin);

// The reduced angle position * theta (in (-pi, pi]) that kExact uses, in float64.
double exact_angle(int64_t position, float inv_freq);

}  // namespace rotary
