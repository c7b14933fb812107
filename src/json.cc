#include "rotary/json.h"

#include <nlohmann/json.hpp>

#include "json_read.h"
#include "rotary/error.h"

namespace rotary {

void check_json(std::string_view text, const std::string& source, std::size_t max_bytes) {
  try {
    detail::parse_json(text, source, max_bytes);
  } catch (const nlohmann::json::exception& e) {
    // What the JSON library itself rejects past the grammar (a number beyond double's range) is a
    // parse error too, reported as config_from_json reports it.
    throw Error(ErrorCode::kParseError, source, std::string("invalid JSON value: ") + e.what());
  }
}

std::string read_json_file(const std::string& path, std::size_t max_bytes) {
  return detail::read_json_file(path, max_bytes);
}

}  // namespace rotary
