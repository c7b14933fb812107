// Builds against an installed rotary and rotates one vector by a quarter turn.
#include <rotary/rotary.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  rotary::RopeConfig config = rotary::default_config(/*head_dim=*/2);
  rotary::Rope rope(config);
  std::vector<float> x = {1.0f, 0.0f};
  // theta_0 = 1, so position 1 turns the pair by 1 radian.
  const int64_t position = 1;
  rope.rotate(rotary::TensorView::contiguous(x.data(), rotary::DType::kF32, 1, 1, 2),
              std::span<const int64_t>(&position, 1));
  const bool ok = std::fabs(x[0] - std::cos(1.0)) < 1e-6 && std::fabs(x[1] - std::sin(1.0)) < 1e-6;
  std::printf("consumer: (%f, %f) %s\n", x[0], x[1], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
