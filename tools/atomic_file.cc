#include "atomic_file.h"

#include <unistd.h>

#include <filesystem>

#include "rotary/error.h"

namespace rotary::tools {

void write_atomically(const std::string& path, const std::function<void(std::ofstream&)>& write) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  try {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw Error(ErrorCode::kIoError, path, "cannot create the output file");
    write(file);
    file.close();
    if (!file) throw Error(ErrorCode::kIoError, path, "writing failed (disk full?)");
    std::filesystem::rename(temporary, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

}  // namespace rotary::tools
