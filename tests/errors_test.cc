// Every invalid argument gets rotary::Error naming it, and nothing is written before the error.
#include <gtest/gtest.h>

#include <limits>

#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/rope.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;

// {fmt}-style: the call throws rotary::Error whose message contains `fragment`.
#define EXPECT_ROTARY_ERROR(statement, expected_code, fragment)          \
  do {                                                                   \
    try {                                                                \
      statement;                                                         \
      ADD_FAILURE() << "no error from: " #statement;                     \
    } catch (const Error& e) {                                           \
      EXPECT_EQ(e.code(), expected_code) << e.what();                    \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) \
          << "message '" << e.what() << "' lacks '" << fragment << "'";  \
    }                                                                    \
  } while (0)

class ErrorsTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTokens = 4, kHeads = 2, kHeadDim = 8;
  Rope rope{default_config(kHeadDim)};
  Buffer q{DType::kF32, kTokens* kHeads* kHeadDim};
  Buffer k{DType::kF32, kTokens* kHeads* kHeadDim};
  std::vector<int64_t> positions{0, 1, 2, 3};

  void SetUp() override {
    q.fill_normal(1);
    k.fill_normal(2);
    q_before = q.bytes;
    k_before = k.bytes;
  }
  void TearDown() override {
    EXPECT_EQ(q.bytes, q_before) << "q was modified by a call that failed";
    EXPECT_EQ(k.bytes, k_before) << "k was modified by a call that failed";
  }
  TensorView qv() {
    return TensorView::contiguous(q.data(), DType::kF32, kTokens, kHeads, kHeadDim);
  }
  TensorView kv() {
    return TensorView::contiguous(k.data(), DType::kF32, kTokens, kHeads, kHeadDim);
  }

  std::vector<unsigned char> q_before, k_before;
};

TEST_F(ErrorsTest, null_pointer) {
  TensorView bad = qv();
  bad.data = nullptr;
  EXPECT_ROTARY_ERROR(rope.rotate(bad, kv(), positions), ErrorCode::kInvalidArgument, "q.data");
}

TEST_F(ErrorsTest, negative_sizes_and_strides) {
  TensorView bad = kv();
  bad.num_heads = -1;
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), bad, positions), ErrorCode::kInvalidArgument,
                      "k.num_heads");
  bad = kv();
  bad.token_stride = -16;
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), bad, positions), ErrorCode::kInvalidArgument,
                      "k.token_stride");
  bad = qv();
  bad.head_stride = -8;
  EXPECT_ROTARY_ERROR(rope.rotate(bad, kv(), positions), ErrorCode::kInvalidArgument,
                      "q.head_stride");
}

TEST_F(ErrorsTest, overflowing_sizes) {
  TensorView bad = qv();
  bad.token_stride = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_ROTARY_ERROR(rope.rotate(bad, kv(), positions), ErrorCode::kInvalidArgument, "overflow");
}

TEST_F(ErrorsTest, wrong_head_dim) {
  TensorView bad = qv();
  bad.head_dim = 6;
  EXPECT_ROTARY_ERROR(rope.rotate(bad, kv(), positions), ErrorCode::kInvalidArgument, "q.head_dim");
}

TEST_F(ErrorsTest, positions_count_and_range) {
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), kv(), std::vector<int64_t>{0, 1}),
                      ErrorCode::kInvalidArgument, "one position per token");
  EXPECT_ROTARY_ERROR(
      rope.rotate(qv(), kv(), std::vector<int64_t>{0, 1, 2, std::numeric_limits<int64_t>::min()}),
      ErrorCode::kInvalidArgument, "positions[3]");
}

TEST_F(ErrorsTest, token_count_mismatch_between_q_and_k) {
  TensorView bad = kv();
  bad.num_tokens = 3;
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), bad, positions), ErrorCode::kInvalidArgument,
                      "k.num_tokens");
}

TEST_F(ErrorsTest, output_overlapping_input_partially) {
  // q_out shifted by one element inside q: neither in place nor disjoint.
  TensorView out = qv();
  out.data = static_cast<float*>(q.data()) + 1;
  out.num_tokens = kTokens - 1;
  ConstTensorView in = qv();
  in.num_tokens = kTokens - 1;
  EXPECT_ROTARY_ERROR(
      rope.rotate(in, out, ConstTensorView(), TensorView(), std::vector<int64_t>{0, 1, 2}),
      ErrorCode::kInvalidArgument, "overlaps q partially");
}

TEST_F(ErrorsTest, output_overlapping_itself) {
  TensorView out = qv();
  out.head_stride = 4;  // heads of 8 channels, 4 apart
  EXPECT_ROTARY_ERROR(rope.rotate(out, kv(), positions), ErrorCode::kInvalidArgument,
                      "overlaps itself");
  out = qv();
  out.token_stride = 0;
  EXPECT_ROTARY_ERROR(rope.rotate(out, kv(), positions), ErrorCode::kInvalidArgument,
                      "overlaps itself");
}

TEST_F(ErrorsTest, q_and_k_the_same_memory) {
  // In place, q_out (= q) would be read again as k: K rotated twice.
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), qv(), positions), ErrorCode::kInvalidArgument,
                      "q_out: shares memory with k");
}

TEST_F(ErrorsTest, dtype_or_shape_mismatch_out_of_place) {
  Buffer out(DType::kBF16, q.size());
  const auto out_view = TensorView::contiguous(out.data(), DType::kBF16, kTokens, kHeads, kHeadDim);
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), out_view, ConstTensorView(), TensorView(), positions),
                      ErrorCode::kInvalidArgument, "q_out.dtype");
  Buffer small(DType::kF32, q.size());
  const auto wrong_shape = TensorView::contiguous(small.data(), DType::kF32, kTokens, 1, kHeadDim);
  EXPECT_ROTARY_ERROR(rope.rotate(qv(), wrong_shape, ConstTensorView(), TensorView(), positions),
                      ErrorCode::kInvalidArgument, "q_out");
}

TEST_F(ErrorsTest, cos_sin_buffer_sizes) {
  std::vector<float> c(3), s(16);
  EXPECT_ROTARY_ERROR(rope.cos_sin(std::vector<int64_t>{0, 1, 2, 3}, c, s),
                      ErrorCode::kInvalidArgument, "cos");
}

RopeConfig base_config() { return default_config(128); }

TEST(config_errors_test, each_bad_field_is_named) {
  RopeConfig c = base_config();
  c.rotary_dim = 63;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "rotary_dim");
  c.rotary_dim = 130;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "rotary_dim <= head_dim");
  c = base_config();
  c.partial_rotary_factor =
      0.3;  // 128 * 0.3 = 38.4 -> 38 is even: fine; 0.33 -> 42; 0.35 -> 44.8 -> 44
  EXPECT_NO_THROW(c.validate());
  c.partial_rotary_factor = 1.5;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "partial_rotary_factor");
  c = base_config();
  c.head_dim = 0;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "head_dim");
  c = base_config();
  c.rope_theta = 0;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "rope_theta");
  c.rope_theta = std::numeric_limits<double>::infinity();
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "rope_theta");
  c = base_config();
  c.rope_type = RopeType::kLinear;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "factor");
  c.factor = 0;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "factor");
  c = base_config();
  c.rope_type = RopeType::kDynamic;
  c.factor = 2;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "max_position_embeddings");
  c = base_config();
  c.rope_type = RopeType::kLlama3;
  c.factor = 8;
  c.original_max_position_embeddings = 8192;
  c.low_freq_factor = 1;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "high_freq_factor");
  c = base_config();
  c.rope_type = RopeType::kLongRope;
  c.original_max_position_embeddings = 4096;
  c.short_factor.assign(64, 1.0);
  c.long_factor.assign(32, 1.0);
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "long_factor");
  c = base_config();
  c.rope_type = RopeType::kYarn;
  c.factor = 4;
  EXPECT_ROTARY_ERROR(c.validate(), ErrorCode::kInvalidConfig, "original_max_position_embeddings");
  EXPECT_ROTARY_ERROR(parse_rope_type("ntk-by-parts"), ErrorCode::kInvalidConfig,
                      "unknown value 'ntk-by-parts'");
}

TEST(config_errors_test, constructing_a_rope_validates) {
  RopeConfig c = base_config();
  c.rotary_dim = 7;
  EXPECT_ROTARY_ERROR(Rope{c}, ErrorCode::kInvalidConfig, "rotary_dim");
  EXPECT_ROTARY_ERROR((Rope{base_config(), {.cache_positions = -1}}), ErrorCode::kInvalidArgument,
                      "cache_positions");
}

TEST(config_errors_test, json_errors_name_the_field) {
  EXPECT_ROTARY_ERROR(config_from_json("{\"head_dim\": 64, "), ErrorCode::kParseError,
                      "malformed JSON");
  EXPECT_ROTARY_ERROR(config_from_json(R"({"head_dim": "64"})"), ErrorCode::kParseError,
                      "head_dim: expected an integer");
  EXPECT_ROTARY_ERROR(config_from_json(R"({"hidden_size": 4096})"), ErrorCode::kInvalidConfig,
                      "head_dim");
  EXPECT_ROTARY_ERROR(
      config_from_json(R"({"head_dim": 64, "rope_scaling": {"type": "linear", "factor": "2"}})"),
      ErrorCode::kParseError, "rope_scaling.factor");
  EXPECT_ROTARY_ERROR(
      config_from_json(R"({"head_dim": 64, "rope_scaling": {"rope_type": "warp"}})"),
      ErrorCode::kInvalidConfig, "unknown value 'warp'");
  EXPECT_ROTARY_ERROR(
      config_from_json(R"({"head_dim": 64, "rope_scaling": {"rope_type": "linear"}})"),
      ErrorCode::kInvalidConfig, "factor");
  EXPECT_ROTARY_ERROR(
      config_from_json(
          R"({"head_dim": 64, "rope_scaling": {"rope_type": "longrope", "short_factor": [1, "x"]}})"),
      ErrorCode::kParseError, "short_factor[1]");
  EXPECT_ROTARY_ERROR(config_from_json_file("/nonexistent/config.json"), ErrorCode::kIoError,
                      "/nonexistent/config.json");
}

}  // namespace
}  // namespace rotary
