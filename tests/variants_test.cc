// The rope-type units (src/variants/) as the rest of the library sees them: names, the keys and
// rules each owns, how its frequencies depend on the length, and the words inspect prints. Each
// expected value is written out from the published formula, not taken from the library.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <set>
#include <string>

#include "rotary/config.h"
#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "variants/variant.h"

namespace rotary {
namespace {

#define ROTARY_TEST_TYPE(id, name) RopeType::id,
constexpr RopeType kEveryType[] = {ROTARY_ROPE_TYPES(ROTARY_TEST_TYPE)};
#undef ROTARY_TEST_TYPE

TEST(VariantsTest, EveryNameReadsBackAsItsTypeAndNoTwoShareOne) {
  std::set<std::string> names;
  for (RopeType type : kEveryType) {
    const std::string name(to_string(type));
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_EQ(parse_rope_type(name), type) << name;
    EXPECT_NE(detail::variant_of(type).validate, nullptr) << name;
    EXPECT_NE(detail::variant_of(type).frequencies, nullptr) << name;
  }
  EXPECT_EQ(parse_rope_type("su"), RopeType::kLongRope);
}

TEST(VariantsTest, AnUnknownNameListsEveryKnownOne) {
  try {
    parse_rope_type("warp");
    FAIL() << "accepted";
  } catch (const Error& e) {
    for (RopeType type : kEveryType) {
      EXPECT_NE(e.message().find(std::string(to_string(type))), std::string::npos) << e.message();
    }
    EXPECT_NE(e.message().find("longrope (su)"), std::string::npos) << e.message();
  }
}

TEST(VariantsTest, RequiredKeysAreThoseTransformersRequires) {
  // transformers 5.24, RotaryEmbeddingConfigMixin._validate_*_rope_parameters: required_keys.
  // The field named when the dict has only rope_type and `rest`.
  const auto refused_without = [](const std::string& type, const std::string& rest) {
    const std::string json = R"({"head_dim": 64, "max_position_embeddings": 4096,
        "rope_scaling": {"rope_type": ")" +
                             type + "\"" + rest + "}}";
    try {
      config_from_json(json);
      return std::string("accepted");
    } catch (const Error& e) {
      return e.argument();
    }
  };
  EXPECT_EQ(refused_without("linear", ""), "rope_scaling.factor");
  EXPECT_EQ(refused_without("dynamic", ""), "rope_scaling.factor");
  EXPECT_EQ(refused_without("yarn", ""), "rope_scaling.factor");
  EXPECT_EQ(refused_without("longrope", ""), "rope_scaling.short_factor");
  EXPECT_EQ(refused_without("llama3", R"(, "factor": 8)"), "rope_scaling.low_freq_factor");
}

TEST(VariantsTest, OnlyDynamicNtkAndLongRopeDependOnTheLength) {
  for (RopeType type : kEveryType) {
    RopeConfig c = default_config(64);
    c.rope_type = type;
    const bool expected = type == RopeType::kDynamic || type == RopeType::kLongRope;
    EXPECT_EQ(frequencies_depend_on_length(c), expected) << to_string(type);
  }
  RopeConfig hunyuan = default_config(64);
  hunyuan.rope_type = RopeType::kDynamic;
  hunyuan.alpha = 1000;  // one base at every length
  EXPECT_FALSE(frequencies_depend_on_length(hunyuan));
}

RopeConfig yarn_config() {
  RopeConfig c = default_config(128, 10000);
  c.rope_type = RopeType::kYarn;
  c.factor = 4;
  c.original_max_position_embeddings = 4096;
  return c;
}

TEST(VariantsTest, YarnPairsFollowTheRampOfThePublishedCorrectionRange) {
  const RopeConfig c = yarn_config();
  // YaRN (Peng et al.): the pair whose wavelength fits beta turns into the original context,
  // d ln(L / (2 pi beta)) / (2 ln base), floored (beta_fast 32) and ceiled (beta_slow 1).
  const auto pair_for = [](double beta) {
    return 128 * std::log(4096 / (beta * 2 * std::numbers::pi)) / (2 * std::log(10000.0));
  };
  const double low = std::floor(pair_for(32)), high = std::ceil(pair_for(1));
  const std::vector<PairExplanation> pairs = explain_pairs(c, 4096);
  ASSERT_EQ(pairs.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    char expected[32];
    std::snprintf(expected, sizeof expected, "ramp %.6g", ramp);
    EXPECT_EQ(pairs[i].rule, expected) << i;
    const char* regime = ramp == 0 ? "extrapolated" : ramp == 1 ? "interpolated" : "blended";
    EXPECT_EQ(pairs[i].regime, regime) << i;
  }
  const auto scheme = explain_scheme(c);
  ASSERT_TRUE(scheme);
  EXPECT_EQ(scheme->label, "YaRN ramp");
  EXPECT_EQ(scheme->key, "yarn_correction_range");
  EXPECT_EQ(scheme->values, (std::vector<double>{low, high}));
}

TEST(VariantsTest, Llama3PairsFallInTheBandOfTheirWavelength) {
  RopeConfig c = default_config(128, 500000);
  c.rope_type = RopeType::kLlama3;
  c.factor = 8, c.low_freq_factor = 1, c.high_freq_factor = 4;
  c.original_max_position_embeddings = 8192;
  const std::vector<PairExplanation> pairs = explain_pairs(c, 8192);
  for (int i = 0; i < 64; ++i) {
    // Llama 3.1's reference: wavelength 2 pi / theta_i against 8192 / 4 and 8192 / 1.
    const double wavelength = 2 * std::numbers::pi * std::pow(500000.0, 2.0 * i / 128);
    if (std::fabs(wavelength - 2048) < 1 || std::fabs(wavelength - 8192) < 1) continue;
    const char* band = wavelength < 2048   ? "high-frequency band"
                       : wavelength > 8192 ? "low-frequency band"
                                           : "smoothed band";
    EXPECT_EQ(pairs[i].rule, band) << i;
  }
  ASSERT_TRUE(explain_scheme(c));
  EXPECT_EQ(explain_scheme(c)->text, "low_freq_factor 1, high_freq_factor 4");
}

TEST(VariantsTest, LongRopeNamesTheListTheCallUses) {
  RopeConfig c = default_config(8, 10000);
  c.rope_type = RopeType::kLongRope;
  c.original_max_position_embeddings = 4096;
  c.short_factor = {1, 1.5, 2, 2.5};
  c.long_factor = {3, 3.5, 4, 4.5};
  EXPECT_EQ(explain_pairs(c, 4096)[1].rule, "short_factor 1.5");
  EXPECT_EQ(explain_pairs(c, 4097)[1].rule, "long_factor 3.5");
  c.short_mscale = 1.1, c.long_mscale = 1.2;  // PhiMoE keeps short_factor
  EXPECT_EQ(explain_pairs(c, 4097)[1].rule, "short_factor 1.5");
}

TEST(VariantsTest, PlainSchemesHaveNoRuleAndProportionalZeroPairsDoNotRotate) {
  EXPECT_EQ(explain_pairs(default_config(64), 0)[3].rule, "");
  EXPECT_EQ(explain_pairs(default_config(64), 0)[3].regime, "extrapolated");
  EXPECT_FALSE(explain_scheme(default_config(64)));
  RopeConfig c = default_config(64);
  c.rope_type = RopeType::kProportional;
  c.partial_rotary_factor = 0.25;  // 8 of 32 pairs rotate
  const std::vector<PairExplanation> pairs = explain_pairs(c, 0);
  ASSERT_EQ(pairs.size(), 32u);
  EXPECT_EQ(pairs[7].regime, "extrapolated");
  EXPECT_EQ(pairs[8].regime, "not rotated");
  // The unscaled config keeps the same pairs (used by inspect, plot and demo side by side).
  EXPECT_EQ(compute_frequencies(c.unscaled()).inv_freq.size(), 32u);
}

TEST(VariantsTest, TheLengthChangeIsExplainedWhereThereIsOne) {
  RopeConfig c = default_config(64);
  EXPECT_EQ(explain_length_change(c), "");
  c.rope_type = RopeType::kDynamic;
  c.factor = 2, c.max_position_embeddings = 4096;
  EXPECT_EQ(explain_length_change(c), "dynamic NTK grows the base past max_position_embeddings");
  c.alpha = 1000;  // HunYuan: one base at every length
  EXPECT_EQ(explain_length_change(c), "");
  RopeConfig phi = default_config(8);
  phi.rope_type = RopeType::kLongRope;
  phi.original_max_position_embeddings = 4096;
  phi.short_factor = phi.long_factor = {1, 1, 1, 1};
  EXPECT_EQ(explain_length_change(phi),
            "LongRoPE switches to long_factor past the original context");
  phi.short_mscale = 1.1, phi.long_mscale = 1.2;
  EXPECT_EQ(explain_length_change(phi),
            "PhiMoE's LongRoPE scales cos/sin by long_mscale past the original context");
}

TEST(VariantsTest, NtkFollowsVllmsFixedNtkFormula) {
  // vLLM's NTKScalingRotaryEmbedding (ntk_scaling_rope.py): the default frequencies of base * s,
  // each divided by s^(2/d), so theta_i = base^(-2i/d) * s^(-(2i + 2)/d).
  RopeConfig c = config_from_json(
      R"({"head_dim": 128, "rope_theta": 10000, "rope_scaling": {"rope_type": "ntk", "factor": 4}})");
  const Frequencies f = compute_frequencies(c);
  ASSERT_EQ(f.inv_freq.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    const double expected = std::pow(10000.0, -2.0 * i / 128) * std::pow(4.0, -(2.0 * i + 2) / 128);
    EXPECT_NEAR(f.inv_freq[i], expected, 4 * 0x1p-24 * expected) << i;
  }
  EXPECT_EQ(f.attention_factor, 1.0);
  EXPECT_FALSE(frequencies_depend_on_length(c));
  c.factor = 0.5;
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace rotary
