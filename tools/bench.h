// `rotary bench`: in-place rotation of one prefill step (Llama-3-8B shape by default) in each
// storage type, as GB/s and as a percentage of two limits measured in the same run on the same
// number of bytes: an in-place scale loop (read and write back, STREAM "scale" on one buffer) and
// memcpy.
#pragma once

#include <cstdint>

namespace rotary::tools {

struct BenchRequest {
  int64_t tokens = 4096;
  int64_t q_heads = 32;
  int64_t kv_heads = 8;
  int64_t head_dim = 128;
  int threads = 1;
  int repeats = 15;
};

// Throws rotary::Error naming --tokens, --threads or --repeats past rotary/limits.h, or --tokens
// with the bytes when this machine cannot allocate the buffers.
int run_bench(const BenchRequest& request);

}  // namespace rotary::tools
