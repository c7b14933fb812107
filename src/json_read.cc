#include "json_read.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>

#include "rotary/error.h"

namespace rotary::detail {
namespace {

using Json = nlohmann::json;

std::string size_text(std::size_t bytes) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  return std::to_string(bytes) + " bytes";
}

[[noreturn]] void too_large(const std::string& source, const std::string& what,
                            std::optional<std::uintmax_t> size, std::size_t max_bytes) {
  throw Error(ErrorCode::kParseError, source,
              what + (size ? " of " + std::to_string(*size) + " bytes" : "") +
                  " exceeds the size limit of " + size_text(max_bytes));
}

// Called by the parser as each value, key, array or object is met, with the number of arrays and
// objects enclosing it. Throwing here abandons the parse while the partial value is still at most
// kMaxJsonDepth deep, so its destruction is shallow too.
Json::parser_callback_t depth_guard(const std::string& source) {
  return [&source](int depth, Json::parse_event_t event, Json&) {
    const bool opens =
        event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) {
      throw Error(ErrorCode::kParseError, source,
                  "JSON nesting depth exceeds the limit of " + std::to_string(kMaxJsonDepth) +
                      " levels of arrays and objects");
    }
    return true;
  };
}

// Rejects what cannot be read as a file before it is opened: a directory opens as a stream on
// Linux and reads as empty, and a regular file's size is known without reading it.
void check_file(const std::string& path, std::size_t max_bytes) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) {
    throw Error(ErrorCode::kIoError, path, "is a directory, expected a JSON file");
  }
  if (!std::filesystem::is_regular_file(status)) return;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) too_large(path, "file", size, max_bytes);
}

}  // namespace

Json parse_json(std::string_view text, const std::string& source, std::size_t max_bytes) {
  if (text.size() > max_bytes) too_large(source, "JSON text", text.size(), max_bytes);
  try {
    return Json::parse(text.begin(), text.end(), depth_guard(source));
  } catch (const Json::parse_error& e) {
    throw Error(ErrorCode::kParseError, source, std::string("malformed JSON: ") + e.what());
  }
}

std::string read_json_file(const std::string& path, std::size_t max_bytes) {
  check_file(path, max_bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIoError, path, "cannot open file");
  // Read in chunks, so that a file whose size was not known up front (or that grew since) is
  // never held beyond the limit.
  std::string text;
  std::string chunk(std::size_t{1} << 16, '\0');
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) too_large(path, "file", std::nullopt, max_bytes);
  }
  if (in.bad()) throw Error(ErrorCode::kIoError, path, "read failed");
  return text;
}

}  // namespace rotary::detail
