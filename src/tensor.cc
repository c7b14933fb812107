#include "rotary/tensor.h"

namespace rotary {

std::size_t dtype_size(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "?";
}

}  // namespace rotary
