#pragma once

namespace rotary::tools {

// Prints the built-in Llama-3.1-8B configuration, its frequency table, a rotated example and the
// relative-position property; returns the process exit code.
int run_demo();

}  // namespace rotary::tools
