// The largest size rotary accepts for each argument a caller chooses, in one place.
//
// Every size that makes rotary allocate memory, or write a file, is checked against these limits
// before anything is allocated. A request past a limit throws rotary::Error (kInvalidArgument)
// naming the argument, its value, the bytes it would need and the limit, instead of ending in
// std::bad_alloc. The limits are meant to be far above any real model (contexts of 10 million
// tokens, KV pools of tens of GB, heads of a few thousand channels) and far below what a typing
// mistake (an extra zero, a size in bytes where tokens were meant) would ask for.
//
// A request inside the limits can still exceed the memory of the machine it runs on. Then the
// allocation's std::bad_alloc is caught where it happens and rethrown as rotary::Error naming the
// argument and the bytes. (An operating system that overcommits memory may instead let the
// allocation succeed and stop the process when the memory is used; no library can check for that.)
//
// The Python package (rotary._limits) and the command-line tool use the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#include "rotary/error.h"

namespace rotary {

// The most bytes one request may make rotary allocate: the cos/sin cache of a Rope (cos and sin
// together), a KvCache (keys and values together), a result array built by the Python package.
// 64 GiB: a KV pool of tens of GB fits, a size typed in bytes instead of tokens does not.
inline constexpr int64_t kMaxRequestBytes = int64_t{64} << 30;

// The most rows of one cos/sin table: RopeOptions::cache_positions, the positions of one
// Rope.cos_sin call in Python (and Meta's precompute_freqs_cis `end`), and `rotary export
// --positions`. 2^25 = 33,554,432 covers twice the longest published context (10 million tokens;
// Meta's code builds its table for twice its context). Positions past a Rope's cache are computed
// on the fly, so rotating longer sequences needs no larger cache.
inline constexpr int64_t kMaxTablePositions = int64_t{1} << 25;

// The most tokens mrope_positions and vision_patch_positions build ids for in one call (3 or 2
// int64 components per token): 2^24 = 16,777,216, more than any multimodal context.
inline constexpr int64_t kMaxPositionIds = int64_t{1} << 24;

// KvCache sizes. Block ids are int32 (BlockTable::blocks), hence the block count. A contiguous
// cache is one block, so kMaxKvBlockSize is also its largest capacity. The total is further
// bounded by kMaxRequestBytes.
inline constexpr int64_t kMaxKvBlocks = int64_t{1} << 31;
inline constexpr int64_t kMaxKvBlockSize = int64_t{1} << 24;
inline constexpr int64_t kMaxKvHeads = int64_t{1} << 16;
inline constexpr int64_t kMaxKvHeadDim = int64_t{1} << 16;

// RopeOptions::max_threads: more threads than any machine has hardware threads, few enough that
// starting them cannot exhaust the process's thread limit.
inline constexpr int kMaxThreads = 4096;

// Long-term decay (rotary/decay.h, `rotary decay`): distances past 2^53 are not all representable
// in double; 10,000 points per decade is at most 160,000 points up to 2^53.
inline constexpr int64_t kMaxDecayDistance = int64_t{1} << 53;
inline constexpr int kMaxPointsPerDecade = 10000;

// `rotary bench --tokens`: the benchmark holds Q and K (32 + 8 heads of 128 float32 channels,
// 20 KiB per token) four times over (rotation, scale loop, memcpy source and destination), so
// 2^16 = 65,536 tokens, a long prefill, use 5 GiB.
inline constexpr int64_t kMaxBenchTokens = int64_t{1} << 16;
// `rotary bench --repeats`: each repeat is timed and kept.
inline constexpr int kMaxBenchRepeats = 10000;

// JSON (rotary/json.h): arrays and objects inside one another, the outermost counting as level 1.
// Real config.json files nest at most 4 levels (root, rope_parameters, a layer type, a LongRoPE
// factor list) and safetensors headers 3, so 64 rejects nothing real. It also keeps every recursive
// walk of a parsed value (dump, copy, comparison) within a few kilobytes of stack.
inline constexpr int kMaxJsonDepth = 64;

// A config.json is a few kilobytes, LongRoPE's factor lists included; 16 MiB is thousands of times
// that and still cheap to hold in memory.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;

// ---- Checking a request against the limits, in the words of the library's own errors:
//
//   options.cache_positions: 2000000000 positions need 953.7 GiB of cos/sin tables (64 pairs x 2
//   x 4 bytes each); the limit is 33554432 positions (rotary::kMaxTablePositions)
//
// For callers that size buffers or files of their own from a caller's numbers (the command-line
// tool does) and want them refused as the library refuses its own.

// "953.7 GiB": the largest binary unit that keeps the number at least 1, one decimal; "512 bytes"
// below 1 KiB.
std::string format_bytes(double bytes);

// What a request asks for, in the words of its error messages. `bytes` is a double so that the
// product of several int64 sizes cannot overflow before it is compared: compute it as a product
// of doubles.
struct SizeRequest {
  std::string argument;  // "options.cache_positions"
  std::string amount;    // "2000000000 positions"
  double bytes = 0;      // what it would allocate (or write)
  std::string of_what;   // "cos/sin tables (64 pairs x 2 x 4 bytes each)"

  // "<amount> need <bytes> of <of_what>".
  std::string need() const;
};

// A count limit above, as its messages name it.
struct CountLimit {
  int64_t value;     // kMaxTablePositions
  const char* unit;  // "positions"
  const char* name;  // "rotary::kMaxTablePositions"
};

// Throws Error(kInvalidArgument) naming request.argument, the bytes and the limit when `count` is
// past `limit`.
void check_count(const SizeRequest& request, int64_t count, const CountLimit& limit);

// Throws Error(kInvalidArgument) naming request.argument and the bytes when request.bytes is past
// kMaxRequestBytes.
void check_bytes(const SizeRequest& request);

// Runs `allocate`. A request inside the limits may still exceed the machine's memory: its
// std::bad_alloc becomes Error(kInvalidArgument) naming request.argument and the bytes, like every
// other size error.
template <typename Allocate>
void allocate_or_throw(const SizeRequest& request, Allocate&& allocate) {
  try {
    allocate();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kInvalidArgument, request.argument,
                request.need() + ", more than this machine could allocate");
  }
}

}  // namespace rotary
