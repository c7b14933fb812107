#include "export.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "atomic_file.h"
#include "npy.h"
#include "rotary/error.h"
#include "rotary/float16.h"
#include "rotary/limits.h"
#include "rotary/rope.h"
#include "safetensors.h"

namespace rotary::tools {
namespace {

constexpr int64_t kChunk = 1 << 16;  // positions computed and written per step

[[noreturn]] void fail(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

StorageType storage_of(DType dtype) {
  return dtype == DType::kF32   ? StorageType::kFloat32
         : dtype == DType::kF16 ? StorageType::kFloat16
                                : StorageType::kBFloat16;
}

// Converts float32 values to the storage dtype's little-endian bytes.
std::vector<unsigned char> encode(const std::vector<float>& values, DType dtype) {
  std::vector<unsigned char> bytes(values.size() * dtype_size(dtype));
  if (dtype == DType::kF32) {
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }
  std::vector<uint16_t> bits(values.size());
  to_16bit(values, dtype, bits);
  std::memcpy(bytes.data(), bits.data(), bytes.size());
  return bytes;
}

// The file holds two tables of n x half values; the header and inv_freq are negligible. It is
// written, not held in memory, but a table past the limits is a mistyped count all the same.
void check_table_size(int64_t n, int64_t half, DType dtype) {
  const std::size_t element = dtype_size(dtype);
  const SizeRequest table{
      "--positions", std::to_string(n) + " positions",
      2.0 * static_cast<double>(n) * static_cast<double>(half) * static_cast<double>(element),
      "cos/sin tables (" + std::to_string(half) + " pairs x 2 x " + std::to_string(element) +
          " bytes each)"};
  check_count(table, n, {kMaxTablePositions, "positions", "rotary::kMaxTablePositions"});
  check_bytes(table);
}

// What a table file holds before its cos/sin rows, and where the two tables start.
struct TableFile {
  std::string head;  // the format's header (and, in safetensors, inv_freq)
  uint64_t cos_offset = 0, sin_offset = 0;
};

uint64_t table_bytes(int64_t n, int64_t half, DType dtype) {
  return static_cast<uint64_t>(n) * static_cast<uint64_t>(half) * dtype_size(dtype);
}

// One array (2, n, half): cos, then sin.
TableFile npy_file(int64_t n, int64_t half, DType dtype) {
  TableFile f;
  f.head = npy::header(real_type(storage_of(dtype)), {2, n, half});
  f.cos_offset = f.head.size();
  f.sin_offset = f.cos_offset + table_bytes(n, half, dtype);
  return f;
}

// What the tables were computed from, as strings (the format's metadata holds only strings).
std::map<std::string, std::string> metadata(const LoadedConfig& loaded, const Rope& rope,
                                            const Frequencies& freqs, const ExportRequest& r) {
  const RopeConfig& c = loaded.config;
  return {{"model", loaded.label},
          {"rope_type", std::string(to_string(c.rope_type))},
          {"rope_theta", nlohmann::json(c.rope_theta).dump()},
          {"rotary_dim", std::to_string(rope.rotary_dim())},
          {"layout", std::string(to_string(c.layout))},
          {"attention_factor", nlohmann::json(freqs.attention_factor).dump()},
          {"angle_mode", r.angle_mode == AngleMode::kHf ? "hf" : "exact"},
          {"positions", std::to_string(r.positions)},
          {"producer", "rotary export"}};
}

// Tensors inv_freq (float32), cos and sin (n, half), in that order.
TableFile safetensors_file(const LoadedConfig& loaded, const Rope& rope, const Frequencies& freqs,
                           const ExportRequest& r) {
  const int64_t half = rope.rotary_dim() / 2, n = r.positions;
  const StorageType storage = storage_of(r.dtype);
  const safetensors::Layout layout =
      safetensors::layout({{"inv_freq", StorageType::kFloat32, {half}},
                           {"cos", storage, {n, half}},
                           {"sin", storage, {n, half}}},
                          metadata(loaded, rope, freqs, r));
  TableFile f;
  f.head = layout.header;
  f.head.append(reinterpret_cast<const char*>(freqs.inv_freq.data()),
                freqs.inv_freq.size() * sizeof(float));
  f.cos_offset = layout.offsets[1];
  f.sin_offset = layout.offsets[2];
  return f;
}

// Writes the head, then cos and sin a chunk of positions at a time, each chunk to its place in
// both tables.
void write_tables(std::ofstream& file, const TableFile& f, const Rope& fixed,
                  const ExportRequest& r) {
  file.write(f.head.data(), static_cast<std::streamsize>(f.head.size()));
  const int64_t n = r.positions, half = fixed.rotary_dim() / 2;
  std::vector<float> cos, sin;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t count = std::min(kChunk, n - start);
    std::vector<int64_t> positions(static_cast<std::size_t>(count));
    std::iota(positions.begin(), positions.end(), start);
    cos.resize(static_cast<std::size_t>(count * half));
    sin.resize(cos.size());
    fixed.cos_sin(positions, cos, sin);
    const uint64_t row = table_bytes(start, half, r.dtype);
    for (auto [values, offset] : {std::pair{&cos, f.cos_offset}, std::pair{&sin, f.sin_offset}}) {
      const std::vector<unsigned char> bytes = encode(*values, r.dtype);
      file.seekp(static_cast<std::streamoff>(offset + row));
      file.write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
    }
    if (r.progress) {
      std::fprintf(stderr, "\rexporting %lld positions: %3d%%", static_cast<long long>(n),
                   static_cast<int>(100 * (start + count) / n));
    }
  }
  if (r.progress) std::fprintf(stderr, "\n");
}

}  // namespace

void export_tables(const LoadedConfig& loaded, const ExportRequest& r) {
  if (r.positions <= 0) {
    fail("--positions", "expected a positive count, got " + std::to_string(r.positions));
  }
  if (r.format == ExportFormat::kNpy && r.dtype == DType::kBF16) {
    fail("--dtype", "NumPy's .npy has no bfloat16; use --format safetensors, or --dtype f32/f16");
  }
  const Rope rope(loaded.config, {.angle_mode = r.angle_mode, .max_threads = 1});
  const int64_t half = rope.rotary_dim() / 2;
  check_table_size(r.positions, half, r.dtype);
  // Frequencies for a sequence of n positions (dynamic NTK / LongRoPE decide from its length).
  const Frequencies freqs = rope.frequencies_for(std::vector<int64_t>{r.positions - 1});
  const TableFile file = r.format == ExportFormat::kNpy ? npy_file(r.positions, half, r.dtype)
                                                        : safetensors_file(loaded, rope, freqs, r);
  const Rope fixed(loaded.config, freqs, {.angle_mode = r.angle_mode, .max_threads = 1});
  write_atomically(r.out, [&](std::ofstream& out) { write_tables(out, file, fixed, r); });
}

}  // namespace rotary::tools
