// `rotary verify TABLE --config CONFIG`: checks cos/sin tables another engine exported against a
// configuration, and says what differs in words a user can act on.
//
// From the table alone: the column layout (one column per pair, transformers' duplicated cat(f, f),
// or GPT-J's repeat_interleave(f, 2), which fix the pairing), the angle atan2(sin, cos) and the
// magnitude hypot(cos, sin) (the attention factor) of every pair at every row, theta_i and any
// position offset (a least-squares line through the unwrapped angles of all rows), whether the
// values are float16/bfloat16 numbers, and the worst angle error per decade of positions against a
// float64 oracle: position * theta_i formed exactly (rotary::exact_angle) from the config's float32
// frequencies for a sequence of the table's length.
//
// Tolerances, all stated in the report:
//   theta_i:          3e-7 relative (about five float32 ulps) + 4 * angle noise / (rows - 1);
//   attention factor: 4 unit roundoffs of the storage type (float32 at best), relative;
//   angle per entry:  3e-7 + 2^-21 * position * theta_i (float32 position * theta and cos/sin,
//                     theta within three ulps of the config's), plus 2^-10 (float16) or 2^-7
//                     (bfloat16) when that precision is accepted (--precision, default: the
//                     table's storage type; float64 counts as float32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_source.h"
#include "table_reader.h"

namespace rotary::tools {

struct VerifyRequest {
  std::string table;
  std::string names;      // --names: "" (automatic), "COS,SIN" or "TABLE"
  std::string precision;  // --precision: f32 | f16 | bf16, "" = the table's storage type
};

struct DecadeRow {
  int64_t first = 0, last = 0;
  double worst_error = 0;  // rad
  int64_t position = 0, pair = 0;
  double float32_bound = 0;  // the largest float32 bound in the decade
  bool exceeds = false;
  // The entry furthest past its own bound, when exceeds.
  int64_t over_position = 0, over_pair = 0;
  double over_error = 0, over_allowed = 0;
};

struct Finding {
  std::string severity;  // mismatch | warning | note
  std::string topic;
  std::string message;
};

struct TableVerification {
  LoadedConfig loaded;
  // The table, without its values.
  std::string path, format, arrangement;
  StorageType storage = StorageType::kF32;
  int64_t positions = 0, width = 0;
  std::string column_layout;  // per_pair | cat | repeat_interleave | unrecognised
  int64_t table_rotary_dim = 0;
  // The config.
  int64_t rotary_dim = 0;
  double attention_factor_expected = 1;
  std::vector<double> theta_expected;
  // Measured.
  double attention_factor = 0;
  std::vector<double> theta, theta_tolerance;
  std::optional<int64_t> position_offset;
  std::string quantized;  // "", "float16" or "bfloat16": every value is exactly such a number
  std::string precision;  // the accepted precision: float32 | float16 | bfloat16
  std::vector<DecadeRow> decades;
  std::vector<Finding> findings;

  bool matches() const;
};

TableVerification verify_table(const LoadedConfig& loaded, const VerifyRequest& request);
nlohmann::json to_json(const TableVerification& verification);
void print_verification(const TableVerification& verification);

}  // namespace rotary::tools
