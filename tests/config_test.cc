#include "rotary/config.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rotary
