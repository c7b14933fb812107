// rotary/json.h: JSON text held to the library's limits before any reader walks it, and config
// files read within their size limit.
#include "rotary/json.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "rotary/error.h"
#include "test_errors.h"

namespace rotary {
namespace {

using testing::thrown_by;

std::string nested_arrays(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') +
         std::string(static_cast<std::size_t>(depth), ']');
}

std::string temporary_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) /
          ("rotary_json_test_" + std::to_string(std::random_device()()) + "_" + name))
      .string();
}

TEST(json_test, well_formed_text_within_the_limits_passes) {
  EXPECT_NO_THROW(check_json(R"({"head_dim": 64, "rope_scaling": {"factor": [1, 2.5]}})", "c"));
  EXPECT_NO_THROW(check_json("[]", "c"));
  EXPECT_NO_THROW(check_json(nested_arrays(kMaxJsonDepth), "c"));
}

TEST(json_test, malformed_text_is_a_parse_error_naming_the_source) {
  const Error e = thrown_by([] { check_json(R"({"head_dim": 64, )", "config.json"); });
  EXPECT_EQ(e.code(), ErrorCode::kParseError);
  EXPECT_EQ(e.argument(), "config.json");
  EXPECT_NE(e.message().find("malformed JSON"), std::string::npos) << e.what();
}

// A million levels once overflowed the stack; the check stops at the limit without building them.
TEST(json_test, nesting_past_the_depth_limit_is_refused) {
  for (const std::string& text : {nested_arrays(kMaxJsonDepth + 1), nested_arrays(1'000'000)}) {
    const Error e = thrown_by([&] { check_json(text, "deep.json"); });
    EXPECT_EQ(e.code(), ErrorCode::kParseError);
    EXPECT_NE(
        e.message().find("nesting depth exceeds the limit of " + std::to_string(kMaxJsonDepth)),
        std::string::npos)
        << e.what();
  }
}

TEST(json_test, text_past_the_size_limit_is_refused_by_its_length) {
  const Error e = thrown_by([] { check_json("[1, 2, 3]", "header", 8); });
  EXPECT_EQ(e.code(), ErrorCode::kParseError);
  EXPECT_EQ(e.message(), "JSON text of 9 bytes exceeds the size limit of 8 bytes");
  EXPECT_NO_THROW(check_json("[1, 2, 3]", "header", 9));
}

// RFC 8259 admits 1e400; double cannot hold it, so no reader rotary uses can.
TEST(json_test, a_number_past_the_range_of_double_is_a_parse_error) {
  const Error e = thrown_by([] { check_json(R"({"rope_theta": 1e400})", "config.json"); });
  EXPECT_EQ(e.code(), ErrorCode::kParseError);
  EXPECT_EQ(e.argument(), "config.json");
}

TEST(json_test, a_file_is_read_whole_within_its_limit) {
  const std::string path = temporary_path("config.json");
  std::ofstream(path) << R"({"head_dim": 64})";
  EXPECT_EQ(read_json_file(path), R"({"head_dim": 64})");
  const Error e = thrown_by([&] { read_json_file(path, 4); });
  std::filesystem::remove(path);
  EXPECT_EQ(e.code(), ErrorCode::kParseError);
  EXPECT_EQ(e.argument(), path);
  EXPECT_NE(e.message().find("exceeds the size limit of 4 bytes"), std::string::npos) << e.what();
}

TEST(json_test, a_missing_file_or_a_directory_is_an_io_error) {
  const std::string missing = temporary_path("absent.json");
  EXPECT_EQ(thrown_by([&] { read_json_file(missing); }).code(), ErrorCode::kIoError);
  const Error e = thrown_by([] { read_json_file(::testing::TempDir()); });
  EXPECT_EQ(e.code(), ErrorCode::kIoError);
  EXPECT_NE(e.message().find("is a directory"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace rotary
