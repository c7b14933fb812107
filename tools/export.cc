#include "export.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "atomic_file.h"
#include "numeric/float16.h"
#include "rotary/error.h"
#include "rotary/limits.h"
#include "rotary/rope.h"
#include "sizes.h"

namespace rotary::tools {
namespace {

constexpr int64_t kChunk = 1 << 16;  // positions computed and written per step

[[noreturn]] void fail(const std::string& argument, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, argument, message);
}

// Converts float32 values to the storage dtype's little-endian bytes.
std::vector<unsigned char> encode(const std::vector<float>& values, DType dtype) {
  std::vector<unsigned char> bytes(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kF32:
        std::memcpy(&bytes[4 * i], &values[i], 4);
        break;
      case DType::kF16: {
        const uint16_t b = detail::to_float16(values[i]).bits;
        std::memcpy(&bytes[2 * i], &b, 2);
        break;
      }
      case DType::kBF16: {
        const uint16_t b = detail::to_bfloat16(values[i]).bits;
        std::memcpy(&bytes[2 * i], &b, 2);
        break;
      }
    }
  }
  return bytes;
}

std::string npy_header(DType dtype, int64_t n, int64_t half) {
  std::string dict = std::string("{'descr': '") + (dtype == DType::kF32 ? "<f4" : "<f2") +
                     "', 'fortran_order': False, 'shape': (2, " + std::to_string(n) + ", " +
                     std::to_string(half) + "), }";
  // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string header("\x93NUMPY\x01\x00", 8);
  header.push_back(static_cast<char>(dict.size() & 0xFF));
  header.push_back(static_cast<char>(dict.size() >> 8));
  return header + dict;
}

std::string safetensors_dtype(DType dtype) {
  return dtype == DType::kF32 ? "F32" : dtype == DType::kF16 ? "F16" : "BF16";
}

// The file holds two tables of n x half values; the header and inv_freq are negligible. It is
// written, not held in memory, but a table past the limits is a mistyped count all the same.
void check_table_size(int64_t n, int64_t half, DType dtype) {
  const std::size_t element = dtype_size(dtype);
  const detail::SizeRequest table{
      "--positions", std::to_string(n) + " positions",
      2.0 * static_cast<double>(n) * static_cast<double>(half) * static_cast<double>(element),
      "cos/sin tables (" + std::to_string(half) + " pairs x 2 x " + std::to_string(element) +
          " bytes each)"};
  detail::check_count(table, n, {kMaxTablePositions, "positions", "rotary::kMaxTablePositions"});
  detail::check_bytes(table);
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
  const int64_t n = r.positions;
  check_table_size(n, half, r.dtype);
  const auto table_bytes =
      static_cast<uint64_t>(n) * static_cast<uint64_t>(half) * dtype_size(r.dtype);
  // Frequencies for a sequence of n positions (dynamic NTK / LongRoPE decide from its length).
  const Frequencies freqs = rope.frequencies_for(std::vector<int64_t>{n - 1});

  std::string header;
  uint64_t cos_offset, sin_offset;
  if (r.format == ExportFormat::kNpy) {
    header = npy_header(r.dtype, n, half);
    cos_offset = header.size();
    sin_offset = cos_offset + table_bytes;
  } else {
    const uint64_t inv_bytes = static_cast<uint64_t>(half) * 4;
    nlohmann::json h;
    h["inv_freq"] = {{"dtype", "F32"}, {"shape", {half}}, {"data_offsets", {0, inv_bytes}}};
    h["cos"] = {{"dtype", safetensors_dtype(r.dtype)},
                {"shape", {n, half}},
                {"data_offsets", {inv_bytes, inv_bytes + table_bytes}}};
    h["sin"] = {{"dtype", safetensors_dtype(r.dtype)},
                {"shape", {n, half}},
                {"data_offsets", {inv_bytes + table_bytes, inv_bytes + 2 * table_bytes}}};
    const RopeConfig& c = loaded.config;
    h["__metadata__"] = {{"model", loaded.label},
                         {"rope_type", std::string(to_string(c.rope_type))},
                         {"rope_theta", nlohmann::json(c.rope_theta).dump()},
                         {"rotary_dim", std::to_string(rope.rotary_dim())},
                         {"layout", std::string(to_string(c.layout))},
                         {"attention_factor", nlohmann::json(freqs.attention_factor).dump()},
                         {"angle_mode", r.angle_mode == AngleMode::kHf ? "hf" : "exact"},
                         {"positions", std::to_string(n)},
                         {"producer", "rotary export"}};
    std::string json = h.dump();
    json.append((8 - json.size() % 8) % 8, ' ');  // the spec allows trailing spaces
    header.resize(8);
    const uint64_t length = json.size();
    for (int b = 0; b < 8; ++b) header[b] = static_cast<char>((length >> (8 * b)) & 0xFF);
    header += json;
    header.append(reinterpret_cast<const char*>(freqs.inv_freq.data()),
                  static_cast<std::size_t>(inv_bytes));
    cos_offset = header.size();
    sin_offset = cos_offset + table_bytes;
  }

  write_atomically(r.out, [&](std::ofstream& file) {
    file.write(header.data(), static_cast<std::streamsize>(header.size()));
    std::vector<float> cos, sin;
    const Rope fixed(loaded.config, freqs, {.angle_mode = r.angle_mode, .max_threads = 1});
    for (int64_t start = 0; start < n; start += kChunk) {
      const int64_t count = std::min(kChunk, n - start);
      std::vector<int64_t> positions(static_cast<std::size_t>(count));
      std::iota(positions.begin(), positions.end(), start);
      cos.resize(static_cast<std::size_t>(count * half));
      sin.resize(cos.size());
      fixed.cos_sin(positions, cos, sin);
      const uint64_t row = static_cast<uint64_t>(start) * half * dtype_size(r.dtype);
      for (auto [values, offset] : {std::pair{&cos, cos_offset}, std::pair{&sin, sin_offset}}) {
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
  });
}

}  // namespace rotary::tools
