// Test helper: the rotary::Error a call throws.
#pragma once

#include <gtest/gtest.h>

#include "rotary/error.h"

namespace rotary::testing {

// The rotary::Error `call` throws (a test failure when it throws none).
template <typename F>
Error thrown_by(F call) {
  try {
    call();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no rotary::Error";
  return Error(ErrorCode::kInvalidArgument, "", "none thrown");
}

}  // namespace rotary::testing
