// Fuzzes the GGUF reader (rotary/gguf.h): any byte string, read as a file, yields either metadata
// that keeps the reader's promises or rotary::Error. Anything else (a crash, a sanitizer report,
// an allocation the file's size does not justify, another exception type escaping) is a bug. The
// seeds (fuzz/corpus/gguf) are the fixtures of tests/data/gguf, written by llama.cpp's gguf-py.
//
// read_gguf takes a path, so each input is written to an in-memory file (memfd, Linux) and read
// through /proc/self/fd: no disk traffic per input.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "rotary/error.h"
#include "rotary/gguf.h"

namespace {

int memory_file() {
  static const int fd = memfd_create("gguf_fuzzer", 0);
  if (fd < 0) std::abort();
  return fd;
}

void check(const rotary::GgufMetadata& metadata) {
  const auto architecture = metadata.keys.find("general.architecture");
  if (architecture == metadata.keys.end()) std::abort();
  if (std::get<std::string>(architecture->second) != metadata.architecture) std::abort();
  for (const auto& [name, values] : metadata.rope_tensors) {
    if (name != "rope_freqs" && name != "rope_factors_long" && name != "rope_factors_short") {
      std::abort();
    }
    for (float value : values) {
      if (!std::isfinite(value)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memory_file();
  if (ftruncate(fd, 0) != 0) std::abort();
  for (size_t written = 0; written < size;) {
    const ssize_t n = pwrite(fd, data + written, size - written, static_cast<off_t>(written));
    if (n <= 0) std::abort();
    written += static_cast<size_t>(n);
  }
  try {
    check(rotary::read_gguf("/proc/self/fd/" + std::to_string(fd)));
  } catch (const rotary::Error&) {
    // A clear error is a correct outcome.
  }
  return 0;
}
