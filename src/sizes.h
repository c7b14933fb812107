// Checks of caller-chosen sizes against rotary/limits.h, and allocations that report
// std::bad_alloc as rotary::Error: the public functions of rotary/limits.h, which the library's
// own checks use under these names.
#pragma once

#include "rotary/limits.h"

namespace rotary::detail {

using rotary::allocate_or_throw;
using rotary::check_bytes;
using rotary::check_count;
using rotary::CountLimit;
using rotary::format_bytes;
using rotary::SizeRequest;

}  // namespace rotary::detail
