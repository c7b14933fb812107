// JSON the tool reads (config records, the family sweep, safetensors headers), parsed only after
// the library has held it to its limits of size and depth (rotary/json.h), so that the tool's own
// reader never meets input the library would refuse.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "rotary/json.h"

namespace rotary::tools {

// Throws rotary::Error(kParseError) naming `source` as rotary::check_json does.
inline nlohmann::json parse_bounded_json(std::string_view text, const std::string& source,
                                         std::size_t max_bytes = kMaxConfigBytes) {
  check_json(text, source, max_bytes);
  return nlohmann::json::parse(text);
}

}  // namespace rotary::tools
