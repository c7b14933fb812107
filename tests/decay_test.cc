// RoFormer's long-term decay bound against its definition: the closed form at r = 0, an
// independent long double recomputation, the decay itself, and the use of scaled frequencies.
#include "rotary/decay.h"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <vector>

#include "rotary/error.h"
#include "rotary/frequencies.h"

namespace rotary {
namespace {

// B(r) = (1/(d/2)) sum_{j=1}^{d/2} |S_j|, S_j = sum_{k<j} e^{i r theta_k}, in long double with the
// running sums kept as separate real and imaginary parts (not std::complex, not the library's
// order of operations beyond what the definition fixes).
long double reference_bound(const std::vector<float>& inv_freq, int64_t r) {
  long double re = 0, im = 0, total = 0;
  for (float theta : inv_freq) {
    const long double angle = static_cast<long double>(r) * static_cast<long double>(theta);
    re += std::cos(angle);
    im += std::sin(angle);
    total += std::sqrt(re * re + im * im);
  }
  return total / static_cast<long double>(inv_freq.size());
}

double mean_bound(const RopeConfig& config, int64_t first, int64_t last) {
  std::vector<int64_t> distances;
  for (int64_t r = first; r <= last; ++r) distances.push_back(r);
  double sum = 0;
  for (const DecayPoint& p : long_term_decay(config, distances)) sum += p.bound;
  return sum / static_cast<double>(distances.size());
}

// Qwen2.5-7B-Instruct with its model card's YaRN block (factor 4 over 32768 tokens).
RopeConfig qwen25_yarn() {
  RopeConfig c = default_config(128, 1e6);
  c.max_position_embeddings = 32768;
  c.rope_type = RopeType::kYarn;
  c.factor = 4.0;
  c.original_max_position_embeddings = 32768;
  return c;
}

TEST(decay_test, at_distance_zero_every_partial_sum_is_j_so_the_bound_is_half_of_d_over_2_plus_1) {
  // S_j(0) = j, so (1/n) sum_{j=1}^{n} j = (n + 1) / 2 with n = d/2: 32.5 for a 128-dim head. Every
  // step is an exact integer operation in double, hence EXPECT_EQ.
  for (int64_t head_dim : {2, 64, 80, 128, 256}) {
    const int64_t pairs = head_dim / 2;
    const int64_t zero[] = {0};
    const std::vector<DecayPoint> points = long_term_decay(default_config(head_dim), zero);
    ASSERT_EQ(points.size(), 1u);
    EXPECT_EQ(points[0].distance, 0);
    EXPECT_EQ(points[0].bound, static_cast<double>(pairs + 1) / 2) << "head_dim " << head_dim;
  }
}

TEST(decay_test, equals_an_independent_long_double_recomputation) {
  const int64_t distances[] = {1, 2, 7, 100, 1000, 4096, 32767, 65536, 1000003};
  for (double base : {1e4, 5e5, 1e6}) {
    const RopeConfig c = default_config(128, base);
    const std::vector<float> theta = compute_frequencies(c).inv_freq;
    const std::vector<DecayPoint> points = long_term_decay(c, distances);
    ASSERT_EQ(points.size(), std::size(distances));
    for (std::size_t i = 0; i < points.size(); ++i) {
      EXPECT_EQ(points[i].distance, distances[i]);
      const long double expected = reference_bound(theta, distances[i]);
      EXPECT_LE(std::fabs(static_cast<long double>(points[i].bound) - expected), 1e-12L * expected)
          << "base " << base << ", r = " << distances[i];
    }
  }
}

TEST(decay_test, decays_with_distance) {
  // RoFormer's figure 2 (base 1e4, d = 128): far tokens have a much smaller bound than near ones.
  const RopeConfig c = default_config(128, 1e4);
  EXPECT_LT(mean_bound(c, 1000, 2000), mean_bound(c, 10, 20));
  EXPECT_LT(mean_bound(c, 10, 20), 32.5);
  // Llama 3's base 5e5 decays too, later: its slowest pairs turn less per token.
  const RopeConfig llama3 = default_config(128, 5e5);
  EXPECT_LT(mean_bound(llama3, 10000, 12000), mean_bound(llama3, 10, 20));
  EXPECT_GT(mean_bound(llama3, 1000, 2000), mean_bound(c, 1000, 2000));
}

TEST(decay_test, uses_the_scaled_frequencies_and_leaves_out_the_attention_factor) {
  const RopeConfig yarn = qwen25_yarn();
  RopeConfig base = yarn;
  base.rope_type = RopeType::kDefault;
  const Frequencies f = compute_frequencies(yarn);
  ASSERT_GT(f.attention_factor, 1.0);

  const int64_t distances[] = {0, 100, 10000, 50000, 100000};
  const std::vector<DecayPoint> scaled = long_term_decay(yarn, distances);
  const std::vector<DecayPoint> plain = long_term_decay(base, distances);
  // r = 0: (n + 1) / 2 for both, not multiplied by YaRN's attention factor.
  EXPECT_EQ(scaled[0].bound, 32.5);
  EXPECT_EQ(plain[0].bound, 32.5);
  for (std::size_t i = 1; i < scaled.size(); ++i) {
    EXPECT_NE(scaled[i].bound, plain[i].bound) << "r = " << distances[i];
    EXPECT_EQ(scaled[i].bound,
              long_term_decay_bound(f.inv_freq, static_cast<double>(distances[i])));
  }
  // Interpolated low frequencies turn more slowly, so the bound stays higher at long range.
  EXPECT_GT(mean_bound(yarn, 60000, 61000), mean_bound(base, 60000, 61000));
}

TEST(decay_test, is_even_in_the_distance_and_accepts_fractional_distances) {
  const std::vector<float> theta = compute_frequencies(default_config(64)).inv_freq;
  for (double r : {0.5, 3.25, 1234.5}) {
    EXPECT_EQ(long_term_decay_bound(theta, r), long_term_decay_bound(theta, -r));
  }
}

TEST(decay_test, log_spaced_distances_start_with_every_small_integer_and_end_at_the_maximum) {
  const std::vector<int64_t> d = log_spaced_distances(65536, 20);
  ASSERT_GE(d.size(), 11u);
  for (int64_t r = 0; r <= 10; ++r) EXPECT_EQ(d[static_cast<std::size_t>(r)], r);
  EXPECT_EQ(d.back(), 65536);
  for (std::size_t i = 1; i < d.size(); ++i) EXPECT_LT(d[i - 1], d[i]);
  // 10 .. 65536 is 3.8 decades: 20 per decade, less the duplicates rounding makes near 10.
  EXPECT_GT(d.size(), 11u + 3 * 20);
  EXPECT_LE(d.size(), 11u + 4 * 20 + 1);

  EXPECT_EQ(log_spaced_distances(0, 10), std::vector<int64_t>{0});
  EXPECT_EQ(log_spaced_distances(4, 10), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(log_spaced_distances(100, 1),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100}));
  EXPECT_EQ(log_spaced_distances(150, 1).back(), 150);
}

TEST(decay_test, rejects_bad_arguments_naming_them) {
  const auto expect_error = [](auto&& call, const std::string& argument) {
    try {
      call();
      ADD_FAILURE() << argument << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(e.argument(), argument);
    }
  };
  const int64_t negative[] = {5, -1};
  expect_error([&] { long_term_decay(default_config(64), negative); }, "distances[1]");
  const int64_t huge[] = {kMaxDecayDistance + 1};
  expect_error([&] { long_term_decay(default_config(64), huge); }, "distances[0]");
  expect_error([] { long_term_decay_bound({}, 1.0); }, "inv_freq");
  const std::vector<float> theta = {1.0f};
  expect_error([&] { long_term_decay_bound(theta, NAN); }, "distance");
  expect_error([] { log_spaced_distances(-1, 10); }, "max_distance");
  expect_error([] { log_spaced_distances(100, 0); }, "points_per_decade");
  // A bad config is the config's error.
  const int64_t zero[] = {0};
  EXPECT_THROW(long_term_decay(default_config(0), zero), Error);
}

}  // namespace
}  // namespace rotary
