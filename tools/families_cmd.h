// `rotary families [--state STATE] [--json]`: which transformers RoPE families rotary reads as
// transformers does, from the family sweep's committed result (tests/data/families.json, embedded
// at build time), so that a user can look a model up without Python or transformers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace rotary::tools {

// The text of tests/data/families.json (generated from it at build time).
std::string_view families_json();

// The states the sweep ends a family in, in the order the summary counts them.
inline const std::vector<std::string> kFamilyStates = {"match", "refused", "mismatch", "unchecked"};

struct FamiliesRequest {
  std::string state;  // empty: every family
  bool json = false;
};

// One record per family, sorted by name: {"family", "kind", "module", "model_types", "state",
// "layout", "rope_types", "detail"}. "layout" is the pairing rotary reads ("half_split" or
// "interleaved"), null where the sweep compared no case of the family (refused or unchecked).
nlohmann::json family_records();

// "families: N match, M refused, X known mismatches, U unchecked", the wording of the sweep's
// own summary. Every mismatch in the committed file is a known one: the sweep fails on others.
std::string families_summary(const nlohmann::json& records);

// Prints the table (one line per family, then the summary) or, with `json`, the records.
int run_families(const FamiliesRequest& request);

}  // namespace rotary::tools
