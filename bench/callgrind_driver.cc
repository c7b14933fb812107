// A fixed-shape driver for instruction counts (bench/callgrind.sh runs it under
// valgrind --tool=callgrind --toggle-collect=callgrind_measured_region).
//
//   callgrind_driver CASE     CASE is one of the names `callgrind_driver --list` prints
//
// Each case rotates one fixed tensor once outside the measured region (first-touch, lazy set-up),
// then kCalls times inside callgrind_measured_region(), the only function whose instructions are
// collected. Shapes: Llama-3-8B attention (32 Q + 8 KV heads x 128, base 500000), hf angles,
// max_threads 1.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "rotary/kv_cache.h"
#include "rotary/rotary.h"

namespace {

constexpr int kCalls = 4;

struct Case {
  const char* name;
  int64_t tokens;
  rotary::DType dtype;
  rotary::Layout layout;
  bool in_place;
  bool cache;  // cos/sin cache over the call's positions; otherwise computed on the fly
  int64_t first_position;
  // 3: Qwen2-VL's M-RoPE (sections 16/24/24) over a 16 x 16 image: temporal fixed, height t / 16,
  // width t % 16, so every token takes the multi-axis gather. 1: one position per token.
  int axes = 1;
  // Decode into a paged KV cache (kAppend: KvCache::append, which rotates q and k and writes k and
  // v; kRotateThenCopy: Rope::rotate in place, then k and v copied into the cache by hand).
  enum Kv { kNone, kAppend, kRotateThenCopy } kv = kNone;
};

const Case kCases[] = {
    {"prefill256_f32_half_split_in_place_otf", 256, rotary::DType::kF32, rotary::Layout::kHalfSplit,
     true, false, 0},
    {"prefill256_bf16_half_split_in_place_otf", 256, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, true, false, 0},
    {"prefill256_f32_half_split_in_place_cache", 256, rotary::DType::kF32,
     rotary::Layout::kHalfSplit, true, true, 0},
    {"prefill256_bf16_half_split_in_place_cache", 256, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, true, true, 0},
    {"prefill256_bf16_half_split_out_of_place_cache", 256, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, false, true, 0},
    {"prefill256_bf16_interleaved_in_place_cache", 256, rotary::DType::kBF16,
     rotary::Layout::kInterleaved, true, true, 0},
    {"decode1_f32_half_split_in_place_otf_pos123457", 1, rotary::DType::kF32,
     rotary::Layout::kHalfSplit, true, false, 123457},
    {"decode1_bf16_half_split_in_place_otf_pos123457", 1, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, true, false, 123457},
    {"decode1_f16_half_split_in_place_otf_pos123457", 1, rotary::DType::kF16,
     rotary::Layout::kHalfSplit, true, false, 123457},
    {"decode1_bf16_interleaved_in_place_otf_pos123457", 1, rotary::DType::kBF16,
     rotary::Layout::kInterleaved, true, false, 123457},
    {"prefill256_f16_half_split_in_place_cache", 256, rotary::DType::kF16,
     rotary::Layout::kHalfSplit, true, true, 0},
    {"prefill256_f16_interleaved_in_place_cache", 256, rotary::DType::kF16,
     rotary::Layout::kInterleaved, true, true, 0},
    {"prefill256_f32_interleaved_in_place_cache", 256, rotary::DType::kF32,
     rotary::Layout::kInterleaved, true, true, 0},
    {"prefill256_bf16_mrope_image_in_place_cache", 256, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, true, true, 0, 3},
    {"prefill256_bf16_mrope_image_in_place_otf", 256, rotary::DType::kBF16,
     rotary::Layout::kHalfSplit, true, false, 0, 3},
    // One token at index 1000 of a 64-block table (block_size 16) over a pool of 128 blocks.
    {"decode1_f32_append_paged", 1, rotary::DType::kF32, rotary::Layout::kHalfSplit, true, false,
     1000, 1, Case::kAppend},
    {"decode1_f32_rotate_then_copy", 1, rotary::DType::kF32, rotary::Layout::kHalfSplit, true,
     false, 1000, 1, Case::kRotateThenCopy},
    {"decode1_f16_append_paged", 1, rotary::DType::kF16, rotary::Layout::kHalfSplit, true, false,
     1000, 1, Case::kAppend},
    {"decode1_f16_rotate_then_copy", 1, rotary::DType::kF16, rotary::Layout::kHalfSplit, true,
     false, 1000, 1, Case::kRotateThenCopy},
    {"decode1_bf16_append_paged", 1, rotary::DType::kBF16, rotary::Layout::kHalfSplit, true, false,
     1000, 1, Case::kAppend},
    {"decode1_bf16_rotate_then_copy", 1, rotary::DType::kBF16, rotary::Layout::kHalfSplit, true,
     false, 1000, 1, Case::kRotateThenCopy},
};

constexpr int64_t kBlockSize = 16, kPoolBlocks = 128, kTableBlocks = 64;

struct Call {
  const rotary::Rope* rope;
  rotary::TensorView q, k, q_out, k_out;
  const std::vector<int64_t>* positions;
  int axes;
  bool in_place;
  Case::Kv kv = Case::kNone;
  rotary::KvCache* cache = nullptr;
  rotary::BlockTable* table = nullptr;
  rotary::ConstTensorView v;
};

// k and v of the call's one token copied, head by head, to its row of the cache.
void copy_to_cache(const Call& c) {
  const int64_t index = c.table->length;
  const int64_t block = c.table->blocks[static_cast<std::size_t>(index / kBlockSize)];
  const rotary::ConstTensorView kv_rows[] = {c.cache->keys(block, index % kBlockSize, 1),
                                             c.cache->values(block, index % kBlockSize, 1)};
  const rotary::ConstTensorView k(c.k);
  const rotary::ConstTensorView* sources[] = {&k, &c.v};
  const std::size_t esize = rotary::dtype_size(c.k.dtype);
  for (int i = 0; i < 2; ++i) {
    for (int64_t h = 0; h < sources[i]->num_heads; ++h) {
      std::memcpy(static_cast<char*>(const_cast<void*>(kv_rows[i].data)) +
                      h * kv_rows[i].head_stride * esize,
                  static_cast<const char*>(sources[i]->data) + h * sources[i]->head_stride * esize,
                  static_cast<std::size_t>(sources[i]->head_dim) * esize);
    }
  }
}

void call_once(const Call& c) {
  const rotary::Positions positions(*c.positions, c.axes);
  if (c.kv == Case::kAppend) {
    const int64_t length = c.table->length;
    c.cache->append(*c.rope, c.q, c.k, c.v, positions, *c.table);
    c.table->length = length;  // every call appends the same token
  } else if (c.kv == Case::kRotateThenCopy) {
    c.rope->rotate(c.q, c.k, positions);
    copy_to_cache(c);
  } else if (c.in_place) {
    c.rope->rotate(c.q, c.k, positions);
  } else {
    c.rope->rotate(c.q, c.q_out, c.k, c.k_out, positions);
  }
}

}  // namespace

// Not inlined, C linkage: callgrind's --toggle-collect finds it by this exact name.
extern "C" __attribute__((noinline)) void callgrind_measured_region(const Call* c) {
  for (int i = 0; i < kCalls; ++i) call_once(*c);
  __asm__ __volatile__("" ::: "memory");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASE | --list\n", argv[0]);
    return 2;
  }
  if (std::strcmp(argv[1], "--list") == 0) {
    for (const Case& c : kCases) std::printf("%s\n", c.name);
    return 0;
  }
  const Case* found = nullptr;
  for (const Case& c : kCases) {
    if (std::strcmp(argv[1], c.name) == 0) found = &c;
  }
  if (found == nullptr) {
    std::fprintf(stderr, "unknown case %s (--list)\n", argv[1]);
    return 2;
  }
  const Case& c = *found;
  const int64_t q_heads = 32, k_heads = 8, head_dim = 128;
  const std::size_t esize = rotary::dtype_size(c.dtype);
  // Deterministic contents: 1.0 in every element's storage format (f32 0x3F800000, bf16 0x3F80).
  std::vector<unsigned char> q(static_cast<std::size_t>(c.tokens * q_heads * head_dim) * esize);
  std::vector<unsigned char> k(static_cast<std::size_t>(c.tokens * k_heads * head_dim) * esize);
  const uint32_t one_f32 = 0x3F800000u;
  const uint16_t one_bf16 = 0x3F80u;
  for (std::size_t i = 0; i < q.size(); i += esize)
    std::memcpy(&q[i], esize == 4 ? static_cast<const void*>(&one_f32) : &one_bf16, esize);
  for (std::size_t i = 0; i < k.size(); i += esize)
    std::memcpy(&k[i], esize == 4 ? static_cast<const void*>(&one_f32) : &one_bf16, esize);
  std::vector<unsigned char> q_out(q.size()), k_out(k.size());
  std::vector<int64_t> positions(static_cast<std::size_t>(c.tokens * c.axes));
  for (int64_t t = 0; t < c.tokens; ++t) {
    positions[static_cast<std::size_t>(t)] = c.first_position + t;
    if (c.axes == 3) {
      positions[static_cast<std::size_t>(t)] = c.first_position;
      positions[static_cast<std::size_t>(c.tokens + t)] = c.first_position + t / 16;
      positions[static_cast<std::size_t>(2 * c.tokens + t)] = c.first_position + t % 16;
    }
  }

  rotary::RopeConfig config = rotary::default_config(head_dim, 500000.0, c.layout);
  if (c.axes == 3) config.mrope_section = {16, 24, 24};
  const rotary::Rope rope(config, {.angle_mode = rotary::AngleMode::kHf,
                                   .cache_positions = c.cache ? c.first_position + c.tokens : 0,
                                   .max_threads = 1});
  // The decode cases' cache: the table names every other block of the pool, last to first.
  std::optional<rotary::KvCache> cache;
  rotary::BlockTable table;
  std::vector<unsigned char> v(k);
  if (c.kv != Case::kNone) {
    cache.emplace(rotary::KvCache::paged(kPoolBlocks, kBlockSize, k_heads, head_dim, c.dtype));
    for (int64_t b = 0; b < kTableBlocks; ++b)
      table.blocks.push_back(static_cast<int32_t>(kPoolBlocks - 1 - 2 * b));
    table.length = c.first_position;
  }
  const Call call{
      &rope,
      rotary::TensorView::contiguous(q.data(), c.dtype, c.tokens, q_heads, head_dim),
      rotary::TensorView::contiguous(k.data(), c.dtype, c.tokens, k_heads, head_dim),
      rotary::TensorView::contiguous(q_out.data(), c.dtype, c.tokens, q_heads, head_dim),
      rotary::TensorView::contiguous(k_out.data(), c.dtype, c.tokens, k_heads, head_dim),
      &positions,
      c.axes,
      c.in_place,
      c.kv,
      cache ? &*cache : nullptr,
      &table,
      rotary::TensorView::contiguous(v.data(), c.dtype, c.tokens, k_heads, head_dim)};
  call_once(call);  // warm: first touch, lazily initialised state
  callgrind_measured_region(&call);
  std::printf("%s calls=%d simd_target=%s\n", c.name, kCalls, rotary::simd_target_name().c_str());
  return 0;
}
