// The verifier's core (rotary/verify.h) on synthetic measurements. Every expected theta is computed
// here from the published formula written out (RoFormer's base^(-2i/d), Llama 3.1's wavelength
// bands, YaRN's ramp over the correction range), never with rotary's own frequencies, and every
// expected parameter comes from the config the formula was given.
#include "rotary/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "rotary/error.h"

namespace rotary::verify {
namespace {

constexpr double kPi = std::numbers::pi;

// theta_i = base^(-2i/d), rounded to float32 as a model stores it.
std::vector<double> plain_theta(double base, int d) {
  std::vector<double> theta;
  for (int i = 0; i < d / 2; ++i) {
    theta.push_back(static_cast<float>(std::pow(base, -2.0 * i / d)));
  }
  return theta;
}

// Llama 3.1: wavelengths below original / high_freq_factor kept, above original /
// low_freq_factor divided by the factor, a blend linear in original / wavelength in between.
std::vector<double> llama3_theta(double base, int d, double factor, double low_freq_factor,
                                 double high_freq_factor, double original) {
  std::vector<double> theta;
  for (int i = 0; i < d / 2; ++i) {
    const double t = std::pow(base, -2.0 * i / d), wavelength = 2 * kPi / t;
    double scaled = t;
    if (wavelength > original / low_freq_factor) {
      scaled = t / factor;
    } else if (wavelength >= original / high_freq_factor) {
      const double smooth =
          (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor);
      scaled = (1 - smooth) * t / factor + smooth * t;
    }
    theta.push_back(static_cast<float>(scaled));
  }
  return theta;
}

// YaRN's correction dimension of a rotation count: d ln(original / (2 pi n)) / (2 ln base).
double correction_dim(double rotations, int d, double base, double original) {
  return d * std::log(original / (rotations * 2 * kPi)) / (2 * std::log(base));
}

// YaRN: pair i blends theta_i (extrapolation) into theta_i / factor (interpolation) along a ramp
// from floor(correction_dim(beta_fast)) to ceil(correction_dim(beta_slow)).
std::vector<double> yarn_theta(double base, int d, double factor, double original) {
  const double low = std::floor(correction_dim(32, d, base, original));
  const double high = std::ceil(correction_dim(1, d, base, original));
  std::vector<double> theta;
  for (int i = 0; i < d / 2; ++i) {
    const double t = std::pow(base, -2.0 * i / d);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    theta.push_back(static_cast<float>(t / factor * ramp + t * (1 - ramp)));
  }
  return theta;
}

// Tolerances of a float32 table of 4096 rows.
std::vector<double> table_tolerance(const std::vector<double>& theta) {
  return theta_tolerance(Source::kTable, theta, 0x1p-24, 4095);
}

FamilyFit fit(const std::vector<double>& theta, int d, std::optional<double> hint = {}) {
  const std::vector<double> tol = table_tolerance(theta);
  return fit_family({.theta = theta,
                     .tolerance = tol,
                     .head_dim = d,
                     .rotary_dim = d,
                     .length = 4096,
                     .hint_base = hint});
}

// Angles of `theta` at `positions`, shifted by `offset` positions, wrapped as atan2 returns them.
std::vector<double> angles_at(const std::vector<int64_t>& positions,
                              const std::vector<double>& theta, int64_t offset = 0) {
  std::vector<double> angle;
  for (int64_t p : positions) {
    for (double t : theta) {
      const double a = static_cast<double>(p + offset) * t;
      angle.push_back(std::atan2(std::sin(a), std::cos(a)));
    }
  }
  return angle;
}

TEST(VerifyLines, RecoverThetaAndOffsetFromEveryRow) {
  const std::vector<double> theta = plain_theta(10000, 64);
  std::vector<int64_t> positions(2048);
  for (int64_t p = 0; p < 2048; ++p) positions[p] = p;
  const std::vector<double> angle = angles_at(positions, theta, 3);
  const Lines lines = fit_lines({positions, angle, 32});
  for (std::size_t i = 0; i < theta.size(); ++i) {
    EXPECT_NEAR(lines.theta[i], theta[i], 1e-12 * (1 + theta[i])) << "pair " << i;
  }
  const PositionOffset start =
      position_offset(Source::kTable, lines.theta, lines.intercept, 0x1p-24);
  ASSERT_TRUE(start.offset.has_value());
  EXPECT_EQ(*start.offset, 3);
  const auto finding = start_finding(Source::kTable, start);
  ASSERT_TRUE(finding.has_value());
  EXPECT_EQ(finding->message,
            "row 0 is not position 0: every pair's angle there is +3 x θ_i, so row p holds "
            "position p+3 (positions off by +3)");
}

TEST(VerifyLines, UnwrapSparseProbePositions) {
  // rotary.verify's positions: consecutive to 10, then at most 2.5x apart up to 1000.
  const std::vector<int64_t> positions = {0,  1,  2,  3,  4,  5,   6,   7,   8,   9,   10,
                                          16, 20, 32, 50, 64, 100, 128, 200, 256, 500, 1000};
  const std::vector<double> theta = {1.0, 0.3, -0.7, 0.0};
  const std::vector<double> angle = angles_at(positions, theta);
  const Lines lines = fit_lines({positions, angle, 4}, true);
  for (std::size_t i = 0; i < theta.size(); ++i) {
    EXPECT_NEAR(lines.theta[i], theta[i], 1e-12) << "pair " << i;
    EXPECT_NEAR(lines.intercept[i], 0, 1e-9) << "pair " << i;
  }
  for (double r : lines.residual) EXPECT_NEAR(r, 0, 1e-9);
  EXPECT_FALSE(position_offset(Source::kProbe, lines.theta, lines.intercept, 0x1p-24).offset);
}

TEST(VerifyLines, AttentionFactorIsTheMedianMagnitude) {
  const std::vector<int64_t> positions = {0, 1};
  const std::vector<double> angle = {0, 0, 0.5, 0.25};
  const auto factor = [&](std::vector<double> magnitudes) {
    return fit_angles(Source::kTable, {positions, angle, 2}, magnitudes, 0x1p-24).attention_factor;
  };
  EXPECT_EQ(factor({1.2, 1.0, 1.1}), 1.1);
  EXPECT_EQ(factor({1.4, 1.0, 1.3, 1.2}), 1.25);  // the mean of the middle two
}

TEST(VerifyFamily, DefaultBase) {
  const FamilyFit f = fit(plain_theta(500000, 128), 128);
  ASSERT_TRUE(f.fits()) << describe(f);
  EXPECT_EQ(*f.rope_type, RopeType::kDefault);
  EXPECT_EQ(f.param("base"), 500000);
  EXPECT_EQ(describe(f), "default: base 500000");
}

TEST(VerifyFamily, LinearFactor) {
  std::vector<double> theta;
  for (double t : plain_theta(10000, 128)) theta.push_back(static_cast<float>(t / 8));
  const FamilyFit f = fit(theta, 128);
  ASSERT_TRUE(f.fits()) << describe(f);
  EXPECT_EQ(*f.rope_type, RopeType::kLinear);
  EXPECT_EQ(f.param("base"), 10000);
  EXPECT_EQ(f.param("factor"), 8);
  EXPECT_EQ(describe(f), "linear: base 10000, factor 8 (every θ divided by it)");
}

TEST(VerifyFamily, VllmFixedNtk) {
  // vLLM's NTKScalingRotaryEmbedding: theta_i = base^(-2i/d) * factor^(-(2i + 2)/d).
  std::vector<double> theta;
  for (int i = 0; i < 64; ++i) {
    theta.push_back(static_cast<float>(std::pow(10000.0, -2.0 * i / 128) *
                                       std::pow(4.0, -(2.0 * i + 2) / 128)));
  }
  const FamilyFit f = fit(theta, 128);
  ASSERT_TRUE(f.fits()) << describe(f);
  EXPECT_EQ(*f.rope_type, RopeType::kNtk);
  EXPECT_EQ(f.param("base"), 10000);
  EXPECT_EQ(f.param("factor"), 4);
  EXPECT_EQ(describe(f),
            "ntk: base 10000, factor 4 (vLLM's fixed NTK: the base times it, then every θ divided "
            "by factor^(2/d))");
}

TEST(VerifyFamily, Llama3Bands) {
  // Llama 3.1 8B: factor 8, low_freq_factor 1, high_freq_factor 4, original context 8192.
  const FamilyFit f = fit(llama3_theta(500000, 128, 8, 1, 4, 8192), 128);
  ASSERT_TRUE(f.fits()) << describe(f);
  EXPECT_EQ(*f.rope_type, RopeType::kLlama3);
  EXPECT_EQ(f.param("base"), 500000);
  EXPECT_EQ(f.param("factor"), 8);
  // Only the band edges can be identified: original / low_freq_factor and / high_freq_factor.
  EXPECT_EQ(f.param("low_wavelength"), 8192.0 / 1);
  EXPECT_EQ(f.param("high_wavelength"), 8192.0 / 4);
}

TEST(VerifyFamily, YarnRamp) {
  // Qwen2.5-7B-Instruct with YaRN: base 1e6, factor 4, original context 32768, betas 32 and 1.
  const FamilyFit f = fit(yarn_theta(1e6, 128, 4, 32768), 128);
  ASSERT_TRUE(f.fits()) << describe(f);
  EXPECT_EQ(*f.rope_type, RopeType::kYarn);
  EXPECT_EQ(f.param("base"), 1e6);
  EXPECT_EQ(f.param("factor"), 4);
  EXPECT_EQ(f.param("ramp_low"), std::floor(correction_dim(32, 128, 1e6, 32768)));
  EXPECT_EQ(f.param("ramp_high"), std::ceil(correction_dim(1, 128, 1e6, 32768)));
}

TEST(VerifyFamily, NothingToFit) {
  const std::vector<double> theta(8, 0.0);
  const FamilyFit f = fit(theta, 16);
  EXPECT_FALSE(f.rope_type.has_value());
  EXPECT_EQ(describe(f), "no published scheme fits");
}

// The theta diagnosis of a table measured from `theta` against `config`.
ThetaVerdict diagnose(const std::vector<double>& theta, const RopeConfig& config,
                      const std::vector<double>& expected, const FamilyFit& f) {
  const std::vector<double> tol = table_tolerance(theta);
  return diagnose_theta({.measured = theta,
                         .tolerance = tol,
                         .expected = expected,
                         .config = &config,
                         .rotary_dim = 128,
                         .length = 4096,
                         .fit = &f,
                         .max_position = 4095});
}

TEST(VerifyDiagnosis, BaseMismatchNamesNtkScaling) {
  // NTK-aware scaling by 4 grows the base to base x 4^(d/(d-2)).
  const double grown = 10000 * std::pow(4.0, 128.0 / 126.0);
  const std::vector<double> theta = plain_theta(grown, 128);
  const FamilyFit f = fit(theta, 128);
  ASSERT_TRUE(f.fits());
  const ThetaVerdict v = diagnose(theta, default_config(128), plain_theta(10000, 128), f);
  EXPECT_FALSE(v.agree);
  ASSERT_TRUE(v.finding.has_value());
  const std::string& m = v.finding->message;
  EXPECT_EQ(m.rfind("θ matches base ", 0), 0u) << m;
  EXPECT_NE(m.find(", config says 10000 (that is NTK-aware scaling of base 10000 by factor 4: "
                   "base x factor^(d/(d-2)))"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("of 64 pairs differ)"), std::string::npos) << m;
}

TEST(VerifyDiagnosis, PlainThetaWhereTheConfigScales) {
  RopeConfig llama3 = default_config(128, 500000);
  llama3.rope_type = RopeType::kLlama3;
  llama3.factor = 8, llama3.low_freq_factor = 1, llama3.high_freq_factor = 4;
  llama3.original_max_position_embeddings = 8192;
  const std::vector<double> theta = plain_theta(500000, 128);
  const ThetaVerdict v =
      diagnose(theta, llama3, llama3_theta(500000, 128, 8, 1, 4, 8192), fit(theta, 128));
  ASSERT_TRUE(v.finding.has_value());
  EXPECT_EQ(v.finding->message.rfind("θ are plain RoPE with base 500000: the config's llama3 "
                                     "scaling is not applied; worst pair ",
                                     0),
            0u)
      << v.finding->message;
}

TEST(VerifyDiagnosis, AgreeingThetaIsNoFinding) {
  const std::vector<double> theta = plain_theta(10000, 128);
  const ThetaVerdict v = diagnose(theta, default_config(128), theta, fit(theta, 128));
  EXPECT_TRUE(v.agree);
  EXPECT_FALSE(v.finding.has_value());
}

TEST(VerifyDiagnosis, AttentionFactor) {
  const double yarn = 0.1 * std::log(4.0) + 1;
  const auto missing =
      diagnose_attention_factor(Source::kTable, 1.0, yarn, 0x1p-24, RopeType::kYarn);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->message,
            "attention factor missing: cos/sin are not scaled (hypot(cos, sin) = 1); the config's "
            "yarn gives 1.138629, which multiplies cos and sin");
  const auto twice =
      diagnose_attention_factor(Source::kProbe, yarn * yarn, yarn, 0x1p-24, RopeType::kYarn);
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(twice->message.rfind("attention factor applied twice: cos/sin are scaled by", 0), 0u);
  EXPECT_FALSE(diagnose_attention_factor(Source::kTable, yarn, yarn, 0x1p-24, RopeType::kYarn));
}

TEST(VerifyDiagnosis, PairingAndRotaryDim) {
  EXPECT_EQ(pairs_phrase(Layout::kHalfSplit, 128), "(i, i+64)");
  EXPECT_EQ(pairs_phrase(Layout::kInterleaved, 64), "(2i, 2i+1)");
  EXPECT_EQ(pairing_mismatch("(2i, 2i+1)", Layout::kHalfSplit, 128).message,
            "pairs are (2i, 2i+1) but the config's model family uses (i, i+64)");
  EXPECT_EQ(rotary_dim_mismatch("96 channels rotate", 24, 96).message,
            "96 channels rotate, the config rotates 24 of 96: channels 24..95 should pass through "
            "unchanged");
}

TEST(VerifyDiagnosis, BackwardsRotation) {
  const std::vector<double> theta = {-1.0, -0.1, -0.01};
  const std::vector<double> tol(3, 1e-6);
  const auto f = direction_finding(Source::kTable, theta, tol);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->message.rfind("every pair turns backwards", 0), 0u);
  EXPECT_FALSE(direction_finding(Source::kTable, std::vector<double>{1.0, 0.1, 0.01}, tol));
  EXPECT_THROW(direction_finding(Source::kTable, std::vector<double>{1.0, 0.1}, tol), Error);
}

TEST(VerifyQuantization, SixteenBitValuesStoredWider) {
  std::vector<double> cos, sin;
  for (int p = 1; p <= 64; ++p) {
    cos.push_back(std::cos(0.37 * p)), sin.push_back(std::sin(0.37 * p));
  }
  EXPECT_FALSE(quantized_to(cos, sin).has_value());  // float64 values
  const auto round = [](std::vector<double> v, int bits) {
    // `bits` significant bits: float16 keeps 11, bfloat16 8.
    for (double& x : v) {
      int e = 0;
      std::frexp(x, &e);
      x = std::ldexp(std::nearbyint(std::ldexp(x, bits - e)), e - bits);
    }
    return v;
  };
  EXPECT_EQ(quantized_to(round(cos, 11), round(sin, 11)), Storage::kFloat16);
  EXPECT_EQ(quantized_to(round(cos, 8), round(sin, 8)), Storage::kBFloat16);
  EXPECT_EQ(measurement_noise(Storage::kFloat32, Storage::kFloat16), 0x1p-11);
}

TEST(VerifyPrecision, ExactAnglesAreWithinTheFloat32Bound) {
  const std::vector<double> theta = plain_theta(10000, 16);
  std::vector<int64_t> positions(20000);
  for (int64_t p = 0; p < 20000; ++p) positions[p] = p;
  const std::vector<double> angle = angles_at(positions, theta);
  std::vector<DecadeRow> rows;
  for (const auto& [first, last] : decades(19999)) {
    rows.push_back(measure_decade(first, last, {.angles = {positions, angle, 8}, .theta = theta}));
  }
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows.back().first, 10000);
  EXPECT_EQ(rows.back().last, 19999);
  for (const DecadeRow& r : rows) {
    EXPECT_FALSE(r.exceeds);
    EXPECT_LT(r.worst_error, 1e-9);
  }
  const auto findings = precision_findings(rows, {});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].message,
            "angles are exact to float32 rounding at every position (exact angles)");
}

TEST(VerifyPrecision, CoarseAnglesExceedIt) {
  const std::vector<double> theta = plain_theta(10000, 16);
  std::vector<int64_t> positions(100);
  for (int64_t p = 0; p < 100; ++p) positions[p] = p;
  std::vector<double> angle = angles_at(positions, theta);
  angle[3 * 8 + 2] += 1e-3;  // position 3, pair 2
  const DecadeRow row = measure_decade(1, 9, {.angles = {positions, angle, 8}, .theta = theta});
  EXPECT_TRUE(row.exceeds);
  EXPECT_EQ(row.position, 3);
  EXPECT_EQ(row.pair, 2);
  const auto findings = precision_findings(std::vector<DecadeRow>{row}, {});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].message.rfind("angle errors exceed float32 rounding: 0.001 rad at position "
                                      "3 (pair 2) against the float64 oracle, where",
                                      0),
            0u)
      << findings[0].message;
}

}  // namespace
}  // namespace rotary::verify
