// Output files that appear only when complete: written under a temporary name in the same
// directory, then renamed over the target; on any error the temporary file is removed, so a
// failed command leaves nothing behind.
#pragma once

#include <fstream>
#include <functional>
#include <string>

namespace rotary::tools {

void write_atomically(const std::string& path, const std::function<void(std::ofstream&)>& write);

}  // namespace rotary::tools
