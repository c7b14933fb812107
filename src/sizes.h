// Checks of caller-chosen sizes against rotary/limits.h, and allocations that report
// std::bad_alloc as rotary::Error. Every such error reads the same way:
//
//   options.cache_positions: 2000000000 positions need 953.7 GiB of cos/sin tables (64 pairs x 2
//   x 4 bytes each); the limit is 33554432 positions (rotary::kMaxTablePositions)
#pragma once

#include <cstdint>
#include <cstdio>
#include <new>
#include <string>

#include "rotary/error.h"
#include "rotary/limits.h"

namespace rotary::detail {

// "953.7 GiB": the largest binary unit that keeps the number at least 1, one decimal.
inline std::string format_bytes(double bytes) {
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

// What a request asks for, in the words of its error messages. `bytes` is a double so that the
// product of several int64 sizes cannot overflow before it is compared.
struct SizeRequest {
  std::string argument;  // "options.cache_positions"
  std::string amount;    // "2000000000 positions"
  double bytes = 0;      // what it would allocate (or write)
  std::string of_what;   // "cos/sin tables (64 pairs x 2 x 4 bytes each)"

  std::string need() const { return amount + " need " + format_bytes(bytes) + " of " + of_what; }
};

// A count limit of rotary/limits.h, as its messages name it.
struct CountLimit {
  int64_t value;
  const char* unit;  // "positions"
  const char* name;  // "rotary::kMaxTablePositions"
};

[[noreturn]] inline void too_large(const SizeRequest& r, const std::string& limit) {
  throw Error(ErrorCode::kInvalidArgument, r.argument, r.need() + "; the limit is " + limit);
}

inline void check_count(const SizeRequest& r, int64_t count, const CountLimit& limit) {
  if (count > limit.value) {
    too_large(r, std::to_string(limit.value) + " " + limit.unit + " (" + limit.name + ")");
  }
}

inline void check_bytes(const SizeRequest& r) {
  if (r.bytes > static_cast<double>(kMaxRequestBytes)) {
    too_large(r, format_bytes(static_cast<double>(kMaxRequestBytes)) +
                     " per request (rotary::kMaxRequestBytes)");
  }
}

// Runs `allocate`. A request inside the limits may still exceed this machine's memory: its
// std::bad_alloc becomes an Error naming the argument and the bytes, like every other size error.
template <typename Allocate>
void allocate_or_throw(const SizeRequest& r, Allocate&& allocate) {
  try {
    allocate();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kInvalidArgument, r.argument,
                r.need() + ", more than this machine could allocate");
  }
}

}  // namespace rotary::detail
