// `rotary demo`: what rotary computes for a real model, shown on one page.
#include "demo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <vector>

#include "config_source.h"
#include "rotary/rotary.h"

namespace rotary::tools {
namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

std::vector<float> rotated(const Rope& rope, std::vector<float> x, int64_t position) {
  rope.rotate(TensorView::contiguous(x.data(), DType::kF32, 1, 1, rope.head_dim()),
              std::span<const int64_t>(&position, 1));
  return x;
}

void print_configuration(const RopeConfig& c, const Frequencies& f) {
  std::printf("Configuration\n");
  std::printf("  rope_type          %s\n", std::string(to_string(c.rope_type)).c_str());
  std::printf("  rope_theta         %g\n", c.rope_theta);
  std::printf("  head_dim           %lld (rotary_dim %lld, %s)\n",
              static_cast<long long>(c.head_dim), static_cast<long long>(f.rotary_dim),
              c.layout == Layout::kHalfSplit ? "half-split pairs (j, j + rotary_dim/2)"
                                             : "interleaved pairs (2j, 2j + 1)");
  if (c.factor) std::printf("  factor             %g\n", *c.factor);
  if (c.low_freq_factor) {
    std::printf("  low/high_freq      %g / %g\n", *c.low_freq_factor, *c.high_freq_factor);
  }
  std::printf("  original context   %lld tokens (max_position_embeddings %lld)\n",
              static_cast<long long>(c.resolved_original_max_position_embeddings()),
              static_cast<long long>(c.max_position_embeddings));
  std::printf("  attention factor   %.7f\n\n", f.attention_factor);
}

void print_frequency_table(const RopeConfig& c, const Frequencies& f) {
  const Frequencies plain = compute_frequencies(c.unscaled());
  const double context = static_cast<double>(c.resolved_original_max_position_embeddings());
  std::printf("Frequencies: theta_i per rotated pair (wavelength = 2 pi / theta_i, in tokens)\n");
  std::printf("  pair  theta unscaled  theta scaled   wavelength  scaled by  at %lld tokens\n",
              static_cast<long long>(context));
  for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
    const double wavelength = 2 * std::numbers::pi / f.inv_freq[i];
    const double ratio = static_cast<double>(f.inv_freq[i]) / plain.inv_freq[i];
    const char* regime = ratio > 0.999999 ? "extrapolated (kept)"
                         : std::fabs(ratio * (c.factor ? *c.factor : 1) - 1) < 1e-6
                             ? "interpolated (/factor)"
                             : "blended";
    std::printf("  %4zu  %-14.6e  %-13.6e  %-10.4g  %-9.5f  %s\n", i, plain.inv_freq[i],
                f.inv_freq[i], wavelength, ratio, regime);
  }
  std::printf("\n");
}

void print_rotation_example(const Rope& rope) {
  const int64_t d = rope.head_dim();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> q(static_cast<std::size_t>(d)), k(static_cast<std::size_t>(d));
  for (auto& v : q) v = normal(rng);
  for (auto& v : k) v = normal(rng);
  const std::size_t h = static_cast<std::size_t>(rope.rotary_dim() / 2);
  std::printf("One query head (random, seed 1) rotated in place; channel j pairs with j + %zu\n",
              h);
  std::printf("  position   q[0]       q[%zu]      q[1]       q[%zu]      |q|\n", h, h + 1);
  for (int64_t p : {0, 1, 2, 1000, 100000}) {
    const std::vector<float> r = rotated(rope, q, p);
    std::printf("  %-9lld  %-9.5f  %-9.5f  %-9.5f  %-9.5f  %.6f\n", static_cast<long long>(p), r[0],
                r[h], r[1], r[h + 1], std::sqrt(dot(r, r)));
  }
  std::printf("  (the norm never changes: RoPE only rotates)\n\n");

  std::printf("Relative position: the score <R_m q, R_n k> at distance n - m = 5 for growing m\n");
  std::printf("  m           hf mode (transformers' float32 angles)   exact mode\n");
  const Rope exact(rope.config(), {.angle_mode = AngleMode::kExact});
  for (int64_t m : {0, 1000, 100000, 1000000, 10000000}) {
    const double hf = dot(rotated(rope, q, m), rotated(rope, k, m + 5));
    const double ex = dot(rotated(exact, q, m), rotated(exact, k, m + 5));
    std::printf("  %-10lld  %-40.6f %.6f\n", static_cast<long long>(m), hf, ex);
  }
  std::printf(
      "  (the same score at every offset: attention sees only relative distance; float32\n"
      "   angles drift at large positions, exact-mode angles do not)\n\n");
}

void print_angle_precision(const Frequencies& f) {
  std::printf(
      "Angle precision: worst |cos/sin error| over all pairs against a long double oracle\n");
  std::printf("  position    hf mode       exact mode\n");
  const std::size_t n = f.inv_freq.size();
  std::vector<float> c(n), s(n);
  for (int64_t p = 1000; p <= 10000000; p *= 10) {
    double worst[2] = {0, 0};
    for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
      compute_cos_sin(f.inv_freq, 1.0, p, mode, c, s);
      for (std::size_t i = 0; i < n; ++i) {
        const long double angle = static_cast<long double>(p) * f.inv_freq[i];
        double& w = worst[mode == AngleMode::kExact];
        w = std::max({w, static_cast<double>(std::fabs(c[i] - std::cos(angle))),
                      static_cast<double>(std::fabs(s[i] - std::sin(angle)))});
      }
    }
    std::printf("  %-10lld  %-12.3e  %.3e\n", static_cast<long long>(p), worst[0], worst[1]);
  }
}

}  // namespace

int run_demo() {
  const LoadedConfig loaded = load_config("llama-3.1-8b", "");
  std::printf("rotary demo: %s (built-in config: the RoPE fields of its config.json, from %s)\n\n",
              loaded.label.c_str(), loaded.source.c_str());
  const RopeConfig& config = loaded.config;
  const Rope rope(config);
  print_configuration(config, rope.frequencies());
  print_frequency_table(config, rope.frequencies());
  print_rotation_example(rope);
  print_angle_precision(rope.frequencies());
  return 0;
}

}  // namespace rotary::tools
