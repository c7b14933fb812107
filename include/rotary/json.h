// JSON that a user points rotary at (config.json files, config text, safetensors headers), held to
// fixed limits of size and nesting depth, so that hostile input ends in rotary::Error rather than
// exhausting the stack or memory (the limits: kMaxJsonDepth and kMaxConfigBytes, rotary/limits.h).
// The library reads all of its JSON within them; a caller that parses JSON with a reader of its own
// can hold the text to the same limits first.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "rotary/limits.h"

namespace rotary {

// Checks that `text` is one well-formed JSON value of at most `max_bytes` bytes whose arrays and
// objects nest at most kMaxJsonDepth levels deep, and whose numbers are within double's range.
// Depth is checked as each array or object opens, so a deep value is never built. Throws
// Error(kParseError) with `source` as the argument (a path or a name; "" for text a caller
// prefixes itself) otherwise. Text that passes parses with any JSON reader into a value that
// recursive code can walk safely.
void check_json(std::string_view text, const std::string& source,
                std::size_t max_bytes = kMaxConfigBytes);

// The contents of the file `path`, of at most `max_bytes` bytes. A regular file's size is checked
// before anything is read; anything else (a pipe, /dev/zero) is read no further than one chunk past
// the limit. Throws Error naming `path`: kIoError when it is a directory or cannot be opened or
// read, kParseError when it is too large. The contents are not parsed: check_json does that.
std::string read_json_file(const std::string& path, std::size_t max_bytes = kMaxConfigBytes);

}  // namespace rotary
