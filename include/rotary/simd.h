// Which vector instruction set the CPU kernels use on this machine, chosen at run time.
#pragma once

#include <string>

namespace rotary {

// The Highway target the kernels dispatch to, e.g. "AVX3", "AVX2", "SSE4", "NEON", "EMU128".
std::string simd_target_name();

}  // namespace rotary
