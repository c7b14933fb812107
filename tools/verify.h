// `rotary verify TABLE --config CONFIG`: checks cos/sin tables another engine exported against a
// configuration, and says what differs in words a user can act on.
//
// This command reads the table and works out its column layout (one column per pair,
// transformers' duplicated cat(f, f), or GPT-J's repeat_interleave(f, 2), which fix the pairing),
// turns every pair at every row into an angle atan2(sin, cos) and a magnitude hypot(cos, sin), and
// hands them to the verifier's core (rotary/verify.h), which rotary.verify shares: the
// least-squares lines that give theta_i and any position offset, whether the values are
// float16/bfloat16 numbers, the diagnoses against the config, and the worst angle error per decade
// of positions against a float64 oracle (position * theta_i formed exactly from the config's
// float32 frequencies for a sequence of the table's length). The tolerances are the core's
// (Source::kTable); the accepted precision is --precision, by default the table's storage type
// (float64 counts as float32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_source.h"
#include "rotary/verify.h"
#include "table_reader.h"

namespace rotary::tools {

struct VerifyRequest {
  std::string table;
  std::string names;      // --names: "" (automatic), "COS,SIN" or "TABLE"
  std::string precision;  // --precision: f32 | f16 | bf16, "" = the table's storage type
};

struct TableVerification {
  LoadedConfig loaded;
  // The table, without its values.
  std::string path, format, arrangement;
  StorageType storage = StorageType::kFloat32;
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
  std::vector<verify::DecadeRow> decades;
  std::vector<verify::Finding> findings;

  bool matches() const;
};

TableVerification verify_table(const LoadedConfig& loaded, const VerifyRequest& request);
nlohmann::json to_json(const TableVerification& verification);
void print_verification(const TableVerification& verification);

}  // namespace rotary::tools
