// Every rope_type against values derived by hand from its published formula (long double here,
// float32 step by step in the library), plus the band/ramp boundaries quoted for real models.
#include "rotary/frequencies.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "rotary/error.h"

namespace rotary {
namespace {

constexpr long double kPi = std::numbers::pi_v<long double>;

long double plain_theta(long double base, int64_t i, int64_t dim) {
  return std::pow(base, -2.0L * static_cast<long double>(i) / static_cast<long double>(dim));
}

// Relative closeness for float32 results of a short chain of float32 operations.
void expect_close(long double expected, float actual, const std::string& what,
                  long double rel = 1e-6L) {
  EXPECT_LE(std::fabs(static_cast<long double>(actual) - expected), rel * std::fabs(expected))
      << what << ": expected " << static_cast<double>(expected) << ", got " << actual;
}

RopeConfig llama31_8b() {
  RopeConfig c;
  c.rope_type = RopeType::kLlama3;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.max_position_embeddings = 131072;
  c.factor = 8.0;
  c.low_freq_factor = 1.0;
  c.high_freq_factor = 4.0;
  c.original_max_position_embeddings = 8192;
  return c;
}

TEST(frequencies_test, default_is_base_to_the_minus_two_i_over_d) {
  const RopeConfig c = default_config(128, 10000.0);
  const Frequencies f = compute_frequencies(c);
  ASSERT_EQ(f.inv_freq.size(), 64u);
  EXPECT_EQ(f.inv_freq[0], 1.0f);
  EXPECT_EQ(f.attention_factor, 1.0);
  for (int64_t i = 0; i < 64; ++i) expect_close(plain_theta(10000, i, 128), f.inv_freq[i], "theta");
}

TEST(frequencies_test, partial_rotary_divides_the_exponent_by_the_rotary_dim) {
  RopeConfig c = default_config(96);  // GPT-NeoX-20B: head 96, rotary_pct 0.25
  c.partial_rotary_factor = 0.25;
  const Frequencies f = compute_frequencies(c);
  ASSERT_EQ(f.rotary_dim, 24);
  ASSERT_EQ(f.inv_freq.size(), 12u);
  for (int64_t i = 0; i < 12; ++i) expect_close(plain_theta(10000, i, 24), f.inv_freq[i], "theta");
}

TEST(frequencies_test, linear_divides_every_frequency_by_the_factor) {
  RopeConfig c = default_config(128, 1e6);
  c.rope_type = RopeType::kLinear;
  c.factor = 8.0;
  const Frequencies f = compute_frequencies(c);
  const Frequencies plain = compute_frequencies(default_config(128, 1e6));
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(f.inv_freq[i], plain.inv_freq[i] / 8.0f);
}

TEST(frequencies_test, dynamic_ntk_grows_the_base_past_the_trained_context) {
  RopeConfig c = default_config(128, 10000.0);
  c.rope_type = RopeType::kDynamic;
  c.factor = 2.0;
  c.max_position_embeddings = 4096;
  const Frequencies plain = compute_frequencies(default_config(128, 10000.0));
  // Within the trained context the frequencies are the plain ones.
  EXPECT_EQ(compute_frequencies(c).inv_freq, plain.inv_freq);
  EXPECT_EQ(compute_frequencies(c, 4096).inv_freq, plain.inv_freq);
  // At L = 8192: base' = base * (factor * L / max_pos - (factor - 1))^(d / (d - 2)) = base *
  // 3^(128/126).
  const long double grown = 10000.0L * std::pow(3.0L, 128.0L / 126.0L);
  const Frequencies f = compute_frequencies(c, 8192);
  for (int64_t i = 0; i < 64; ++i)
    expect_close(plain_theta(grown, i, 128), f.inv_freq[i], "theta", 2e-6L);
  EXPECT_EQ(f.attention_factor, 1.0);
}

// transformers forms the grown base with float32 tensors; the power `stretch ** (d / (d - 2))` is
// PyTorch's tensor ** python_float, which raises the float32 value to the double exponent in double
// and rounds once. InternLM2.5-7B (base 1e6, factor 2, 32768 context) at L = 65536: stretch 3,
// grown float32(3^(128/126)) = 3.0527737140655518, base 3052773.75 (powf with the exponent rounded
// to float32 would give 3.052773952484131 and base 3052774).
TEST(frequencies_test, dynamic_ntk_base_rounds_like_pytorch) {
  RopeConfig c = default_config(128, 1e6);
  c.rope_type = RopeType::kDynamic;
  c.factor = 2.0;
  c.max_position_embeddings = 32768;
  const Frequencies f = compute_frequencies(c, 65536);
  const float base = 3052773.75f;
  for (int64_t i = 0; i < 64; ++i) {
    const float exponent = static_cast<float>(2 * i) / 128.0f;
    EXPECT_EQ(f.inv_freq[i], 1.0f / std::pow(base, exponent)) << "pair " << i;
  }
}

// DeepSeek-V3: D = 64, base 1e4, factor 40, original context 4096, beta 32/1, mscale =
// mscale_all_dim = 1.
TEST(frequencies_test, yarn_deepseek_v3_ramp_and_attention_factor) {
  RopeConfig c;
  c.rope_type = RopeType::kYarn;
  c.head_dim = 64;
  c.rope_theta = 10000;
  c.max_position_embeddings = 163840;
  c.factor = 40;
  c.original_max_position_embeddings = 4096;
  c.beta_fast = 32;
  c.beta_slow = 1;
  c.mscale = 1.0;
  c.mscale_all_dim = 1.0;
  // Correction dims: 64 ln(4096 / (r 2 pi)) / (2 ln 1e4) = 10.47 (r = 32) and 22.51 (r = 1).
  const long double raw_low = 64 * std::log(4096 / (32 * 2 * kPi)) / (2 * std::log(10000.0L));
  const long double raw_high = 64 * std::log(4096 / (1 * 2 * kPi)) / (2 * std::log(10000.0L));
  ASSERT_NEAR(static_cast<double>(raw_low), 10.47, 0.01);
  ASSERT_NEAR(static_cast<double>(raw_high), 22.51, 0.01);
  const YarnCorrectionRange range = yarn_correction_range(c);
  EXPECT_EQ(range.low, 10);
  EXPECT_EQ(range.high, 23);
  const Frequencies f = compute_frequencies(c);
  EXPECT_EQ(f.attention_factor, 1.0);  // mscale / mscale_all_dim cancel
  for (int64_t i = 0; i < 32; ++i) {
    const long double theta = plain_theta(10000, i, 64);
    const long double ramp = std::clamp((i - 10.0L) / 13.0L, 0.0L, 1.0L);
    // Weight 1 - ramp on the original frequency (extrapolation), ramp on theta / factor.
    const long double expected = theta / 40 * ramp + theta * (1 - ramp);
    expect_close(expected, f.inv_freq[i], "theta " + std::to_string(i), 2e-6L);
  }
}

TEST(frequencies_test, yarn_attention_factor_defaults_to_point_one_ln_factor_plus_one) {
  // Qwen2-7B's YaRN block: factor 4, original 32768, D 128, base 1e6 -> ramp 23..40.
  RopeConfig c;
  c.rope_type = RopeType::kYarn;
  c.head_dim = 128;
  c.rope_theta = 1e6;
  c.max_position_embeddings = 32768;
  c.factor = 4;
  c.original_max_position_embeddings = 32768;
  const Frequencies f = compute_frequencies(c);
  EXPECT_NEAR(f.attention_factor, 0.1 * std::log(4.0) + 1, 1e-15);
  EXPECT_NEAR(f.attention_factor, 1.1386294, 1e-7);
  EXPECT_EQ(yarn_correction_range(c).low, 23);
  EXPECT_EQ(yarn_correction_range(c).high, 40);
  // An explicit attention_factor wins.
  c.attention_factor = 0.5;
  EXPECT_EQ(compute_frequencies(c).attention_factor, 0.5);
}

TEST(frequencies_test, yarn_without_truncation_keeps_fractional_bounds) {
  // gpt-oss: D 64, base 150000, factor 32, original 4096, truncate false.
  RopeConfig c;
  c.rope_type = RopeType::kYarn;
  c.head_dim = 64;
  c.rope_theta = 150000;
  c.max_position_embeddings = 131072;
  c.factor = 32;
  c.original_max_position_embeddings = 4096;
  c.truncate = false;
  const YarnCorrectionRange range = yarn_correction_range(c);
  const long double low = 64 * std::log(4096 / (32 * 2 * kPi)) / (2 * std::log(150000.0L));
  const long double high = 64 * std::log(4096 / (2 * kPi)) / (2 * std::log(150000.0L));
  EXPECT_NEAR(range.low, static_cast<double>(low), 1e-12);
  EXPECT_NEAR(range.high, static_cast<double>(high), 1e-12);
  EXPECT_NEAR(range.low, 8.093, 1e-3);
  EXPECT_NEAR(range.high, 17.398, 1e-3);
  EXPECT_NEAR(compute_frequencies(c).attention_factor, 1.3465736, 1e-7);
}

TEST(frequencies_test, yarn_zero_betas_mean_the_paper_defaults) {
  RopeConfig c;
  c.rope_type = RopeType::kYarn;
  c.head_dim = 64;
  c.max_position_embeddings = 8192;
  c.factor = 2;
  c.original_max_position_embeddings = 4096;
  const YarnCorrectionRange defaults = yarn_correction_range(c);
  c.beta_fast = 0;
  c.beta_slow = 0;
  EXPECT_EQ(yarn_correction_range(c).low, defaults.low);
  EXPECT_EQ(yarn_correction_range(c).high, defaults.high);
}

RopeConfig phi3_like() {
  // Shape of Phi-3-mini-128k (head 96, base 1e4, 131072 / 4096 = factor 32) with simple factors.
  RopeConfig c;
  c.rope_type = RopeType::kLongRope;
  c.head_dim = 96;
  c.rope_theta = 10000;
  c.max_position_embeddings = 131072;
  c.original_max_position_embeddings = 4096;
  for (int i = 0; i < 48; ++i) {
    c.short_factor.push_back(1.0 + 0.01 * i);
    c.long_factor.push_back(1.0 + 0.5 * i);
  }
  return c;
}

TEST(frequencies_test, longrope_switches_factors_past_the_original_context) {
  const RopeConfig c = phi3_like();
  const Frequencies init = compute_frequencies(c);
  const Frequencies short_set = compute_frequencies(c, 4096);
  const Frequencies long_set = compute_frequencies(c, 4097);
  EXPECT_EQ(init.inv_freq, short_set.inv_freq);
  for (int64_t i = 0; i < 48; ++i) {
    expect_close(plain_theta(10000, i, 96) / (1.0L + 0.01L * i), short_set.inv_freq[i], "short");
    expect_close(plain_theta(10000, i, 96) / (1.0L + 0.5L * i), long_set.inv_freq[i], "long");
  }
  // factor = 131072 / 4096 = 32: sqrt(1 + ln 32 / ln 4096) = sqrt(17 / 12), for both sets.
  EXPECT_NEAR(init.attention_factor, std::sqrt(17.0 / 12.0), 1e-15);
  EXPECT_NEAR(init.attention_factor, 1.1902381, 1e-7);
  EXPECT_EQ(long_set.attention_factor, init.attention_factor);
}

TEST(frequencies_test, llama3_keeps_high_smooths_middle_divides_low) {
  const Frequencies f = compute_frequencies(llama31_8b());
  ASSERT_EQ(f.inv_freq.size(), 64u);
  int kept = 0, smoothed = 0, divided = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const long double theta = plain_theta(500000, i, 128);
    const long double wavelen = 2 * kPi / theta;
    long double expected;
    if (wavelen < 8192 / 4.0L) {
      expected = theta, ++kept;
    } else if (wavelen > 8192 / 1.0L) {
      expected = theta / 8, ++divided;
    } else {
      const long double s = (8192 / wavelen - 1) / (4 - 1);
      expected = (1 - s) * theta / 8 + s * theta, ++smoothed;
    }
    expect_close(expected, f.inv_freq[i], "theta " + std::to_string(i), 2e-6L);
  }
  // The published split for Llama 3.1 8B: pairs 0-28 kept, 29-34 smoothed, 35-63 divided by 8.
  EXPECT_EQ(kept, 29);
  EXPECT_EQ(smoothed, 6);
  EXPECT_EQ(divided, 29);
}

TEST(frequencies_test, llama3_with_equal_band_factors_has_no_nan) {
  RopeConfig c = llama31_8b();  // Llama 4 Scout style: low == high == 1, factor 16
  c.factor = 16;
  c.high_freq_factor = 1.0;
  const Frequencies f = compute_frequencies(c);
  for (int64_t i = 0; i < 64; ++i) {
    const long double theta = plain_theta(500000, i, 128);
    const long double expected = 2 * kPi / theta > 8192 ? theta / 16 : theta;
    ASSERT_FALSE(std::isnan(f.inv_freq[i]));
    expect_close(expected, f.inv_freq[i], "theta " + std::to_string(i), 2e-6L);
  }
}

TEST(frequencies_test, proportional_rotates_a_proportion_with_exponent_over_head_dim) {
  RopeConfig c = default_config(256, 1e6);
  c.rope_type = RopeType::kProportional;
  c.partial_rotary_factor = 0.25;
  c.factor = 2.0;
  const Frequencies f = compute_frequencies(c);
  ASSERT_EQ(f.rotary_dim, 256);
  ASSERT_EQ(f.inv_freq.size(), 128u);
  for (int64_t i = 0; i < 128; ++i) {
    if (i < 32) {
      expect_close(plain_theta(1e6, i, 256) / 2, f.inv_freq[i], "rotated");
    } else {
      EXPECT_EQ(f.inv_freq[i], 0.0f) << i;
    }
  }
}

TEST(frequencies_test, depends_on_length_only_for_dynamic_and_longrope) {
  EXPECT_TRUE(frequencies_depend_on_length(phi3_like()));
  EXPECT_FALSE(frequencies_depend_on_length(llama31_8b()));
}

}  // namespace
}  // namespace rotary
