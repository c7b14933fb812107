#include "rotary/packing.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "validate.h"

namespace rotary {

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

std::string str(int64_t value) { return std::to_string(value); }

int64_t sequence_count(std::span<const int64_t> cu_seqlens) {
  return static_cast<int64_t>(cu_seqlens.size()) - 1;
}

int64_t length_of(std::span<const int64_t> cu_seqlens, int64_t s) {
  return cu_seqlens[static_cast<std::size_t>(s) + 1] - cu_seqlens[static_cast<std::size_t>(s)];
}

int64_t offset_of(std::span<const int64_t> offsets, int64_t s) {
  return offsets.empty() ? 0 : offsets[static_cast<std::size_t>(s)];
}

void check_cu_seqlens(std::span<const int64_t> cu_seqlens) {
  if (cu_seqlens.empty()) {
    detail::invalid("cu_seqlens",
                    "expected the cumulative sequence lengths, starting at 0; got no values");
  }
  if (cu_seqlens[0] != 0) {
    detail::invalid("cu_seqlens", "expected the cumulative sequence lengths, starting at 0; got " +
                                      str(cu_seqlens[0]) + " first");
  }
  for (std::size_t i = 1; i < cu_seqlens.size(); ++i) {
    if (cu_seqlens[i] < cu_seqlens[i - 1]) {
      detail::invalid("cu_seqlens", "expected non-decreasing values (cumulative lengths); got " +
                                        str(cu_seqlens[i]) + " after " + str(cu_seqlens[i - 1]) +
                                        " at index " + std::to_string(i));
    }
  }
}

// Offsets one per sequence (or none), each >= 0, and every sequence's last position
// offset + length - 1 inside int64.
void check_offsets(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets) {
  const int64_t sequences = sequence_count(cu_seqlens);
  if (offsets.empty()) return;
  if (static_cast<int64_t>(offsets.size()) != sequences) {
    detail::invalid("offsets", "expected one offset per sequence (" + str(sequences) + "), got " +
                                   std::to_string(offsets.size()));
  }
  for (int64_t s = 0; s < sequences; ++s) {
    const int64_t offset = offset_of(offsets, s), length = length_of(cu_seqlens, s);
    if (offset < 0) {
      detail::invalid("offsets",
                      "expected offsets >= 0; sequence " + str(s) + " has " + str(offset));
    }
    if (length > 0 && offset > kInt64Max - (length - 1)) {
      detail::invalid("offsets", "sequence " + str(s) + ": offset " + str(offset) + " + " +
                                     str(length) + " tokens puts positions past the int64 range");
    }
  }
}

void check_packed(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets) {
  check_cu_seqlens(cu_seqlens);
  check_offsets(cu_seqlens, offsets);
}

const char* scheme_name(CpScheme scheme) {
  return scheme == CpScheme::kZigzag ? "zigzag" : "contiguous";
}

// The number of equal chunks each sequence is cut into; checks cp_size and the scheme.
int64_t chunk_count(int64_t cp_size, CpScheme scheme) {
  if (scheme != CpScheme::kContiguous && scheme != CpScheme::kZigzag) {
    detail::invalid("scheme", "expected CpScheme::kContiguous or CpScheme::kZigzag, got " +
                                  std::to_string(static_cast<int>(scheme)));
  }
  if (cp_size < 1) detail::invalid("cp_size", "expected >= 1, got " + str(cp_size));
  if (scheme == CpScheme::kContiguous) return cp_size;
  if (cp_size > kInt64Max / 2) {
    detail::invalid("cp_size", "expected at most " + str(kInt64Max / 2) +
                                   " (zigzag cuts 2 * cp_size chunks), got " + str(cp_size));
  }
  return 2 * cp_size;
}

// Every sequence splits into `chunks` equal chunks, else the first that does not is named.
void check_chunks(std::span<const int64_t> cu_seqlens, int64_t cp_size, CpScheme scheme,
                  int64_t chunks) {
  for (int64_t s = 0; s < sequence_count(cu_seqlens); ++s) {
    const int64_t length = length_of(cu_seqlens, s);
    if (length % chunks != 0) {
      detail::invalid("cu_seqlens", "sequence " + str(s) + ": " + str(length) +
                                        " tokens do not split into " + str(chunks) +
                                        " equal chunks (" + scheme_name(scheme) +
                                        " over cp_size = " + str(cp_size) +
                                        "); pad to a multiple of " + str(chunks));
    }
  }
}

void check_size(std::span<int64_t> out, int64_t expected, const char* name, const char* what) {
  if (static_cast<int64_t>(out.size()) != expected) {
    detail::invalid(name, "expected " + str(expected) + " values (" + what + "), got " +
                              std::to_string(out.size()));
  }
}

// Appends tokens [first, first + count) of sequence s to the shard at `at`.
int64_t copy_chunk(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets, int64_t s,
                   int64_t first, int64_t count, int64_t at, std::span<int64_t> indices,
                   std::span<int64_t> positions) {
  const int64_t start = cu_seqlens[static_cast<std::size_t>(s)], offset = offset_of(offsets, s);
  for (int64_t i = first; i < first + count; ++i, ++at) {
    indices[static_cast<std::size_t>(at)] = start + i;
    positions[static_cast<std::size_t>(at)] = offset + i;
  }
  return at;
}

}  // namespace

int64_t packed_tokens(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets) {
  check_packed(cu_seqlens, offsets);
  return cu_seqlens.back();
}

void packed_positions(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets,
                      std::span<int64_t> positions) {
  check_size(positions, packed_tokens(cu_seqlens, offsets), "positions", "one per token");
  for (int64_t s = 0; s < sequence_count(cu_seqlens); ++s) {
    const int64_t start = cu_seqlens[static_cast<std::size_t>(s)], offset = offset_of(offsets, s);
    for (int64_t i = 0; i < length_of(cu_seqlens, s); ++i) {
      positions[static_cast<std::size_t>(start + i)] = offset + i;
    }
  }
}

int64_t packed_shard_size(std::span<const int64_t> cu_seqlens, int64_t cp_size, CpScheme scheme) {
  check_cu_seqlens(cu_seqlens);
  const int64_t chunks = chunk_count(cp_size, scheme);
  check_chunks(cu_seqlens, cp_size, scheme, chunks);
  return cu_seqlens.back() / cp_size;  // each sequence gives every rank length / cp_size tokens
}

void packed_shard(std::span<const int64_t> cu_seqlens, std::span<const int64_t> offsets,
                  int64_t cp_size, int64_t cp_rank, CpScheme scheme, std::span<int64_t> indices,
                  std::span<int64_t> positions, std::span<int64_t> shard_cu_seqlens) {
  check_packed(cu_seqlens, offsets);
  const int64_t chunks = chunk_count(cp_size, scheme);
  if (cp_rank < 0 || cp_rank >= cp_size) {
    detail::invalid("cp_rank",
                    "expected a rank in [0, cp_size = " + str(cp_size) + "), got " + str(cp_rank));
  }
  check_chunks(cu_seqlens, cp_size, scheme, chunks);
  const int64_t size = cu_seqlens.back() / cp_size;
  check_size(indices, size, "indices", "packed_shard_size: the tokens a rank holds");
  check_size(positions, size, "positions", "packed_shard_size: the tokens a rank holds");
  check_size(shard_cu_seqlens, static_cast<int64_t>(cu_seqlens.size()), "shard_cu_seqlens",
             "one more than the sequences, as cu_seqlens");

  int64_t at = 0;
  shard_cu_seqlens[0] = 0;
  for (int64_t s = 0; s < sequence_count(cu_seqlens); ++s) {
    const int64_t chunk = length_of(cu_seqlens, s) / chunks;
    at = copy_chunk(cu_seqlens, offsets, s, cp_rank * chunk, chunk, at, indices, positions);
    if (scheme == CpScheme::kZigzag) {
      const int64_t mirror = chunks - 1 - cp_rank;
      at = copy_chunk(cu_seqlens, offsets, s, mirror * chunk, chunk, at, indices, positions);
    }
    shard_cu_seqlens[static_cast<std::size_t>(s) + 1] = at;
  }
}

}  // namespace rotary
