#include "rotary/attention.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "numeric/float16.h"
#include "rotary/error.h"
#include "validate.h"

namespace rotary {
namespace {

using detail::invalid;

// One head's head_dim elements as float32.
void load_row(const void* data, DType dtype, int64_t n, float* out) {
  switch (dtype) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const float*>(data)[i];
      break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        out[i] = detail::to_float(detail::Float16{static_cast<const uint16_t*>(data)[i]});
      }
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        out[i] = detail::to_float(detail::BFloat16{static_cast<const uint16_t*>(data)[i]});
      }
      break;
  }
}

const void* element(const ConstTensorView& v, int64_t token, int64_t head) {
  return static_cast<const char*>(v.data) + (token * v.token_stride + head * v.head_stride) *
                                                static_cast<int64_t>(dtype_size(v.dtype));
}

}  // namespace

void attention(ConstTensorView q, const KvCache& cache, const BlockTable& sequence,
               int64_t first_index, std::span<float> out, const AttentionOptions& options) {
  const int64_t d = cache.head_dim();
  detail::check_view(q, "q", d);
  const int64_t kv_heads = cache.num_kv_heads();
  if (q.num_heads % kv_heads != 0) {
    invalid("q.num_heads", std::to_string(q.num_heads) + " query heads do not group over " +
                               std::to_string(kv_heads) + " KV heads");
  }
  if (first_index < 0 || first_index > sequence.length - q.num_tokens) {
    invalid("first_index", "queries at cache indices [" + std::to_string(first_index) + ", " +
                               std::to_string(first_index + q.num_tokens) +
                               ") are not all in the sequence's " +
                               std::to_string(sequence.length) + " tokens");
  }
  if (sequence.length > cache.capacity(sequence)) {
    invalid("sequence.length", "exceeds the sequence's blocks");
  }
  for (int32_t block : sequence.blocks) {
    if (block < 0 || block >= cache.num_blocks()) {
      invalid("sequence.blocks", "block " + std::to_string(block) + " is outside the pool");
    }
  }
  if (options.sliding_window < 0) invalid("options.sliding_window", "expected >= 0");
  if (!std::isfinite(options.scale) || options.scale < 0) {
    invalid("options.scale", "expected a finite number >= 0");
  }
  const auto needed = static_cast<std::size_t>(q.num_tokens * q.num_heads * d);
  if (out.size() != needed) {
    invalid("out", "expected " + std::to_string(needed) +
                       " floats (tokens x heads x head_dim), got " + std::to_string(out.size()));
  }
  const float scale = options.scale > 0 ? static_cast<float>(options.scale)
                                        : 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t group = q.num_heads / kv_heads;
  const int64_t block_size = cache.block_size();

  // Per query head of one KV group: its row, and its online-softmax state (running maximum m,
  // normaliser l, weighted sum acc, rescaled whenever a larger score arrives), so that no score row
  // is stored and each key and value is loaded once per group, not once per query head.
  const auto dim = static_cast<std::size_t>(d);
  std::vector<float> queries(static_cast<std::size_t>(group) * dim), acc(queries.size());
  std::vector<float> m(static_cast<std::size_t>(group)), l(m.size());
  std::vector<float> key(dim), value(dim);
  for (int64_t i = 0; i < q.num_tokens; ++i) {
    const int64_t last = first_index + i;
    const int64_t first =
        options.sliding_window > 0 ? std::max<int64_t>(0, last - options.sliding_window + 1) : 0;
    for (int64_t g = 0; g < kv_heads; ++g) {
      for (int64_t r = 0; r < group; ++r) {
        load_row(element(q, i, g * group + r), q.dtype, d, queries.data() + r * d);
      }
      std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.end(), 0.0f);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = first; j <= last; ++j) {
        const int64_t block = sequence.blocks[static_cast<std::size_t>(j / block_size)];
        load_row(element(cache.keys(block, j % block_size, 1), 0, g), cache.dtype(), d, key.data());
        load_row(element(cache.values(block, j % block_size, 1), 0, g), cache.dtype(), d,
                 value.data());
        for (int64_t r = 0; r < group; ++r) {
          const float* query = queries.data() + r * d;
          float* a = acc.data() + r * d;
          float score = 0;
          for (int64_t c = 0; c < d; ++c) score += query[c] * key[c];
          score *= scale;
          if (score > m[r]) {
            const float rescale = std::exp(m[r] - score);  // 0 for the first key
            l[r] *= rescale;
            for (int64_t c = 0; c < d; ++c) a[c] *= rescale;
            m[r] = score;
          }
          const float w = std::exp(score - m[r]);
          l[r] += w;
          for (int64_t c = 0; c < d; ++c) a[c] += w * value[c];
        }
      }
      for (int64_t r = 0; r < group; ++r) {
        float* o = out.data() + (i * q.num_heads + g * group + r) * d;
        for (int64_t c = 0; c < d; ++c) o[c] = acc[r * d + c] / l[r];
      }
    }
  }
}

}  // namespace rotary
