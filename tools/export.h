// `rotary export`: cos/sin tables for positions [0, N) in a file another engine can load.
#pragma once

#include <cstdint>
#include <string>

#include "config_source.h"
#include "rotary/angles.h"
#include "rotary/tensor.h"

namespace rotary::tools {

enum class ExportFormat { kNpy, kSafetensors };

struct ExportRequest {
  int64_t positions = 0;  // 1 .. kMaxTablePositions, and both tables within kMaxRequestBytes
  ExportFormat format = ExportFormat::kSafetensors;
  DType dtype = DType::kF32;
  AngleMode angle_mode = AngleMode::kHf;
  std::string out;
  bool progress = false;  // a progress bar on stderr
};

// Layouts written:
//   npy:         one array of shape (2, N, rotary_dim / 2): [0] = cos, [1] = sin (float32 or
//                float16; NumPy has no bfloat16, so bf16 is refused for npy).
//   safetensors: tensors "cos" and "sin" of shape (N, rotary_dim / 2) in the chosen dtype, and
//                "inv_freq" (float32, rotary_dim / 2); __metadata__ records the configuration.
// cos/sin include the attention factor. The file appears only when complete: it is written under
// a temporary name and renamed; on any error nothing is left behind.
void export_tables(const LoadedConfig& loaded, const ExportRequest& request);

}  // namespace rotary::tools
