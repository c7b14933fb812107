#include "rotary/limits.h"

#include <cstdio>

namespace rotary {
namespace {

[[noreturn]] void too_large(const SizeRequest& r, const std::string& limit) {
  throw Error(ErrorCode::kInvalidArgument, r.argument, r.need() + "; the limit is " + limit);
}

}  // namespace

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(static_cast<int64_t>(bytes)) + " bytes";
  int unit = -1;
  while (bytes >= 1024 && unit < 5) {
    bytes /= 1024;
    ++unit;
  }
  char text[48];
  std::snprintf(text, sizeof text, "%.1f %s", bytes, kUnits[unit]);
  return text;
}

std::string SizeRequest::need() const {
  return amount + " need " + format_bytes(bytes) + " of " + of_what;
}

void check_count(const SizeRequest& request, int64_t count, const CountLimit& limit) {
  if (count > limit.value) {
    too_large(request, std::to_string(limit.value) + " " + limit.unit + " (" + limit.name + ")");
  }
}

void check_bytes(const SizeRequest& request) {
  if (request.bytes > static_cast<double>(kMaxRequestBytes)) {
    too_large(request, format_bytes(static_cast<double>(kMaxRequestBytes)) +
                           " per request (rotary::kMaxRequestBytes)");
  }
}

}  // namespace rotary
