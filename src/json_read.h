// Reading JSON that a user points rotary at (config.json files, config text, safetensors headers)
// within fixed limits of nesting depth and size, so that hostile input ends in rotary::Error rather
// than exhausting the stack or memory.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "rotary/limits.h"

namespace rotary::detail {

// The limits are public (rotary/limits.h), so that callers can hold their own JSON to them.
using rotary::kMaxConfigBytes;
using rotary::kMaxJsonDepth;

// Parses `text`. Throws Error(kParseError) with `source` as the argument (a path, or "" for text a
// caller prefixes itself) when the text is malformed, longer than `max_bytes`, or nested deeper
// than kMaxJsonDepth. Depth is checked as each array or object opens, so a deep value is never
// built, let alone walked.
nlohmann::json parse_json(std::string_view text, const std::string& source,
                          std::size_t max_bytes = kMaxConfigBytes);

// The contents of the file `path`, of at most `max_bytes`. A regular file's size is checked before
// anything is read; anything else (a pipe, /dev/zero) is read no further than one byte past the
// limit. Throws Error naming `path`: kIoError when it cannot be opened or read, kParseError when
// it is too large.
std::string read_json_file(const std::string& path, std::size_t max_bytes = kMaxConfigBytes);

}  // namespace rotary::detail
