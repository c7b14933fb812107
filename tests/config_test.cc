#include "rotary/config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "rotary/error.h"

namespace rotary {
namespace {

TEST(config_test, rope_type_names_round_trip) {
  for (RopeType t : {RopeType::kDefault, RopeType::kLinear, RopeType::kDynamic, RopeType::kYarn,
                     RopeType::kLongRope, RopeType::kLlama3, RopeType::kProportional}) {
    EXPECT_EQ(parse_rope_type(to_string(t)), t);
  }
  EXPECT_EQ(parse_rope_type("su"), RopeType::kLongRope);
}

TEST(config_test, rotary_dim_follows_transformers_truncation) {
  RopeConfig c = default_config(96);
  c.partial_rotary_factor = 0.25;  // GPT-NeoX-20B
  EXPECT_EQ(c.resolved_rotary_dim(), 24);
  c = default_config(80);
  c.partial_rotary_factor = 0.4;  // Phi-2: 80 * 0.4 = 32.000000000000004 -> 32
  EXPECT_EQ(c.resolved_rotary_dim(), 32);
  c = default_config(256);
  c.rotary_dim = 64;  // GPT-J states it directly
  EXPECT_EQ(c.resolved_rotary_dim(), 64);
  c = default_config(128);
  EXPECT_EQ(c.resolved_rotary_dim(), 128);
}

TEST(config_test, original_context_defaults_to_max_position_embeddings) {
  RopeConfig c = default_config(64);
  c.max_position_embeddings = 4096;
  EXPECT_EQ(c.resolved_original_max_position_embeddings(), 4096);
  c.original_max_position_embeddings = 2048;
  EXPECT_EQ(c.resolved_original_max_position_embeddings(), 2048);
}

// The field a validation error names ("" when validate() accepts the config).
std::string rejected_field(const RopeConfig& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
    return e.argument();
  }
  return "";
}

RopeConfig scaled(RopeType type) {
  RopeConfig c = default_config(64);
  c.rope_type = type;
  c.max_position_embeddings = 8192;
  c.original_max_position_embeddings = 2048;
  c.factor = 4;
  if (type == RopeType::kLlama3) {
    c.low_freq_factor = 1;
    c.high_freq_factor = 4;
  }
  if (type == RopeType::kLongRope) c.short_factor = c.long_factor = std::vector<double>(32, 1.0);
  return c;
}

TEST(config_test, head_dim_is_bounded_before_anything_is_sized_by_it) {
  RopeConfig c = default_config(RopeConfig::kMaxHeadDim);
  EXPECT_EQ(c.resolved_rotary_dim(), RopeConfig::kMaxHeadDim);
  c.head_dim = RopeConfig::kMaxHeadDim + 2;
  EXPECT_EQ(rejected_field(c), "head_dim");
  // 10^9 channels once took 15 s and 3.9 GB before anything failed.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(default_config(1'000'000'000), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(config_test, an_odd_head_rotated_whole_names_head_dim) {
  RopeConfig c = default_config(64);
  c.head_dim = 33;
  EXPECT_EQ(rejected_field(c), "head_dim");
  c.partial_rotary_factor = 0.5;  // 16 channels: even, fine
  EXPECT_EQ(rejected_field(c), "");
  c.head_dim = 66;  // 33 channels
  EXPECT_EQ(rejected_field(c), "partial_rotary_factor");
  c.rotary_dim = 31;
  EXPECT_EQ(rejected_field(c), "rotary_dim");
}

TEST(config_test, scaling_factors_below_one_are_refused) {
  for (RopeType type : {RopeType::kLinear, RopeType::kDynamic, RopeType::kYarn, RopeType::kLongRope,
                        RopeType::kLlama3}) {
    RopeConfig c = scaled(type);
    EXPECT_EQ(rejected_field(c), "") << to_string(type);
    c.factor = 1;
    EXPECT_EQ(rejected_field(c), "") << to_string(type);
    c.factor = 0.5;
    EXPECT_EQ(rejected_field(c), "factor") << to_string(type);
  }
  // Proportional's factor is not documented as >= 1: any positive one.
  RopeConfig proportional = default_config(64);
  proportional.rope_type = RopeType::kProportional;
  proportional.factor = 0.5;
  EXPECT_EQ(rejected_field(proportional), "");
  // YaRN without a factor derives max / original, which may be below 1.
  RopeConfig derived = scaled(RopeType::kYarn);
  derived.factor.reset();
  derived.original_max_position_embeddings = 16384;
  EXPECT_EQ(rejected_field(derived), "");
}

TEST(config_test, yarn_betas_are_non_negative_and_ordered) {
  RopeConfig c = scaled(RopeType::kYarn);
  c.beta_fast = 0;  // 0 means the default, as in transformers
  c.beta_slow = 0;
  EXPECT_EQ(rejected_field(c), "");
  c.beta_slow = -1;
  EXPECT_EQ(rejected_field(c), "beta_slow");
  c.beta_slow = 33;  // above the default beta_fast of 32
  EXPECT_EQ(rejected_field(c), "beta_fast");
  c.beta_fast = 33;
  EXPECT_EQ(rejected_field(c), "");
  c.mscale = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(rejected_field(c), "mscale");
}

TEST(config_test, llama3_accepts_equal_bands_but_not_reversed_ones) {
  RopeConfig c = scaled(RopeType::kLlama3);
  c.low_freq_factor = c.high_freq_factor = 1;  // Llama 4
  EXPECT_EQ(rejected_field(c), "");
  c.low_freq_factor = 2;
  EXPECT_EQ(rejected_field(c), "high_freq_factor");
}

TEST(config_test, errors_show_values_as_they_read_back) {
  RopeConfig c = scaled(RopeType::kLinear);
  c.factor = 0.1;
  try {
    c.validate();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "expected a finite number >= 1, got 0.1");
  }
}

}  // namespace
}  // namespace rotary
