// A small random-weight attention stack on rotary's KV cache: prefill a prompt, decode token by
// token, and check that decoding gives the same outputs as one forward pass over the whole
// sequence.
//
//   attention_stack [--layers 4] [--heads 8] [--kv-heads 4] [--head-dim 64] [--prompt 1000]
//                   [--decode 200] [--block-size 16 (0: contiguous cache)] [--threads 1]
//
// Each layer: q, k, v projections of the hidden state (random weights), RoPE (Llama 3's base
// 500000) applied by KvCache::append while the keys go into the cache, causal grouped-query
// attention over the cache, an output projection, a residual add and an RMS norm. The decode
// inputs are fixed in advance (there is no language-model head to sample from), so "decode" and
// "forward" see the same tokens. Exit status 1 when they differ.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rotary/rotary.h"

namespace {

struct Settings {
  int64_t layers = 4, heads = 8, kv_heads = 4, head_dim = 64, prompt = 1000, decode = 200;
  int64_t block_size = 16;
  int threads = 1;
};

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "attention_stack: %s needs a value\n", flag.c_str());
      std::exit(2);
    }
    const long long value = std::atoll(argv[++i]);
    if (flag == "--layers")
      s.layers = value;
    else if (flag == "--heads")
      s.heads = value;
    else if (flag == "--kv-heads")
      s.kv_heads = value;
    else if (flag == "--head-dim")
      s.head_dim = value;
    else if (flag == "--prompt")
      s.prompt = value;
    else if (flag == "--decode")
      s.decode = value;
    else if (flag == "--block-size")
      s.block_size = value;
    else if (flag == "--threads")
      s.threads = static_cast<int>(value);
    else {
      std::fprintf(stderr, "attention_stack: unknown option %s\n", flag.c_str());
      std::exit(2);
    }
  }
  if (s.layers <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0 ||
      s.head_dim <= 0 || s.head_dim % 2 != 0 || s.prompt <= 0 || s.decode < 0 || s.block_size < 0) {
    std::fprintf(stderr,
                 "attention_stack: invalid sizes (heads must be a multiple of kv-heads, "
                 "head-dim even, prompt > 0)\n");
    std::exit(2);
  }
  return s;
}

// y[n x cols] = x[n x rows] * w[rows x cols], one output row at a time in a fixed order, so a row
// gets the same bits whether it is computed alone or with others.
void matmul(const float* x, const std::vector<float>& w, int64_t n, int64_t rows, int64_t cols,
            float* y) {
  for (int64_t t = 0; t < n; ++t) {
    float* out = y + t * cols;
    std::fill(out, out + cols, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float xr = x[t * rows + r];
      const float* wr = w.data() + r * cols;
      for (int64_t c = 0; c < cols; ++c) out[c] += xr * wr[c];
    }
  }
}

struct Layer {
  std::vector<float> wq, wk, wv, wo;
};

class Stack {
 public:
  Stack(const Settings& s, const std::vector<Layer>& layers, const rotary::Rope& rope)
      : s_(s), layers_(layers), rope_(rope) {
    const int64_t total = s.prompt + s.decode;
    for (int64_t l = 0; l < s.layers; ++l) {
      if (s.block_size > 0) {
        // Paged: the sequence's blocks are taken from the pool in a scrambled order.
        const int64_t blocks = (total + s.block_size - 1) / s.block_size;
        caches_.push_back(rotary::KvCache::paged(blocks + 3, s.block_size, s.kv_heads, s.head_dim,
                                                 rotary::DType::kF32));
        rotary::BlockTable table;
        for (int64_t b = 0; b < blocks; ++b)
          table.blocks.push_back(static_cast<int32_t>((b * 7 + 3) % (blocks + 3)));
        sequences_.push_back(table);
      } else {
        caches_.push_back(
            rotary::KvCache::contiguous(total, s.kv_heads, s.head_dim, rotary::DType::kF32));
        sequences_.push_back({{0}, 0});
      }
    }
  }

  // Runs tokens [first, first + n) through every layer; x holds their hidden states (n x hidden)
  // and is replaced by the last layer's output.
  void forward(std::vector<float>& x, int64_t first, int64_t n) {
    const int64_t hidden = s_.heads * s_.head_dim, kv = s_.kv_heads * s_.head_dim;
    std::vector<float> q(n * hidden), k(n * kv), v(n * kv), attended(n * hidden), o(n * hidden);
    std::vector<int64_t> positions(n);
    for (int64_t t = 0; t < n; ++t) positions[t] = first + t;
    for (int64_t l = 0; l < s_.layers; ++l) {
      const Layer& w = layers_[l];
      matmul(x.data(), w.wq, n, hidden, hidden, q.data());
      matmul(x.data(), w.wk, n, hidden, kv, k.data());
      matmul(x.data(), w.wv, n, hidden, kv, v.data());
      const auto q_view =
          rotary::TensorView::contiguous(q.data(), rotary::DType::kF32, n, s_.heads, s_.head_dim);
      caches_[l].append(rope_, q_view,
                        rotary::ConstTensorView::contiguous(k.data(), rotary::DType::kF32, n,
                                                            s_.kv_heads, s_.head_dim),
                        rotary::ConstTensorView::contiguous(v.data(), rotary::DType::kF32, n,
                                                            s_.kv_heads, s_.head_dim),
                        positions, sequences_[l]);
      rotary::attention(q_view, caches_[l], sequences_[l], first, attended);
      matmul(attended.data(), w.wo, n, hidden, hidden, o.data());
      for (int64_t t = 0; t < n; ++t) {
        float sum = 0;
        for (int64_t c = 0; c < hidden; ++c) {
          x[t * hidden + c] += o[t * hidden + c];
          sum += x[t * hidden + c] * x[t * hidden + c];
        }
        const float inv = 1.0f / std::sqrt(sum / static_cast<float>(hidden) + 1e-6f);
        for (int64_t c = 0; c < hidden; ++c) x[t * hidden + c] *= inv;
      }
    }
  }

 private:
  Settings s_;
  const std::vector<Layer>& layers_;
  const rotary::Rope& rope_;
  std::vector<rotary::KvCache> caches_;
  std::vector<rotary::BlockTable> sequences_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  const int64_t hidden = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim;
  const int64_t total = s.prompt + s.decode;
  std::mt19937 gen(2024);
  std::normal_distribution<float> normal;
  const auto random = [&](int64_t count, float scale) {
    std::vector<float> values(count);
    for (float& x : values) x = normal(gen) * scale;
    return values;
  };
  std::vector<Layer> layers;
  const float w_scale = 1.0f / std::sqrt(static_cast<float>(hidden));
  for (int64_t l = 0; l < s.layers; ++l) {
    layers.push_back({random(hidden * hidden, w_scale), random(hidden * kv, w_scale),
                      random(hidden * kv, w_scale), random(hidden * hidden, w_scale)});
  }
  const std::vector<float> inputs = random(total * hidden, 1.0f);

  const rotary::Rope rope(rotary::default_config(s.head_dim, 500000.0),
                          {.cache_positions = total, .max_threads = s.threads});
  std::printf("attention stack: %lld layers, %lld query heads / %lld KV heads x %lld, %s cache\n",
              static_cast<long long>(s.layers), static_cast<long long>(s.heads),
              static_cast<long long>(s.kv_heads), static_cast<long long>(s.head_dim),
              s.block_size > 0
                  ? ("paged (" + std::to_string(s.block_size) + "-token blocks)").c_str()
                  : "contiguous");

  // Incremental: the prompt in one call, then one token per call.
  Stack incremental(s, layers, rope);
  std::vector<float> prompt(inputs.begin(), inputs.begin() + s.prompt * hidden);
  auto start = std::chrono::steady_clock::now();
  incremental.forward(prompt, 0, s.prompt);
  const double prefill_seconds = seconds_since(start);
  std::vector<float> decoded;
  start = std::chrono::steady_clock::now();
  for (int64_t t = s.prompt; t < total; ++t) {
    std::vector<float> token(inputs.begin() + t * hidden, inputs.begin() + (t + 1) * hidden);
    incremental.forward(token, t, 1);
    decoded.insert(decoded.end(), token.begin(), token.end());
  }
  const double decode_seconds = seconds_since(start);

  // The whole sequence in one forward pass, fresh caches.
  Stack whole(s, layers, rope);
  std::vector<float> everything = inputs;
  whole.forward(everything, 0, total);

  double worst = 0;
  for (int64_t i = 0; i < s.decode * hidden; ++i) {
    worst = std::max(worst, std::fabs(double{decoded[i]} - everything[s.prompt * hidden + i]));
  }
  std::printf("prefill: %lld tokens in %.3f s, %.0f tokens/s\n", static_cast<long long>(s.prompt),
              prefill_seconds, static_cast<double>(s.prompt) / prefill_seconds);
  if (s.decode > 0) {
    std::printf("decode:  %lld tokens in %.3f s, %.1f tokens/s (%.2f ms per token, all layers)\n",
                static_cast<long long>(s.decode), decode_seconds,
                static_cast<double>(s.decode) / decode_seconds,
                1e3 * decode_seconds / static_cast<double>(s.decode));
  }
  std::printf("decode == forward: max |decoded - forward| over the %lld decoded tokens = %g %s\n",
              static_cast<long long>(s.decode), worst, worst == 0 ? "(identical)" : "(MISMATCH)");
  return worst == 0 ? 0 : 1;
}
