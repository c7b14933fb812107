#include "table_reader.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "json_read.h"
#include "numeric/float16.h"
#include "rotary/error.h"
#include "rotary/limits.h"

namespace rotary::tools {
namespace {

[[noreturn]] void bad(ErrorCode code, const std::string& path, const std::string& message) {
  throw Error(code, path, message);
}

// The element types a table may be stored in. Complex types hold (real, imaginary) pairs.
struct ElementType {
  StorageType storage = StorageType::kF32;
  int bytes = 4;  // of one real component
  bool complex = false;
};

double load(const unsigned char* p, const ElementType& t) {
  switch (t.storage) {
    case StorageType::kF64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case StorageType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case StorageType::kF16: {
      detail::Float16 h;
      std::memcpy(&h.bits, p, 2);
      return detail::to_float(h);
    }
    case StorageType::kBF16: {
      detail::BFloat16 h;
      std::memcpy(&h.bits, p, 2);
      return detail::to_float(h);
    }
  }
  return 0;
}

// Little-endian storage is assumed throughout (npy '<' / '|', safetensors by definition).
static_assert(std::endian::native == std::endian::little,
              "table_reader assumes a little-endian host");

// The whole table file: a regular file (its size known before reading, so that /dev/zero or a
// pipe cannot make the reader hang) of at most kMaxRequestBytes, what `rotary export` may write.
std::vector<unsigned char> read_file(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    bad(ErrorCode::kIoError, path, "expected a regular file (an .npy or .safetensors table)");
  }
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) bad(ErrorCode::kIoError, path, "cannot read the table file's size");
  if (size > static_cast<std::uintmax_t>(kMaxRequestBytes)) {
    bad(ErrorCode::kInvalidArgument, path,
        "the table file has " + std::to_string(size) + " bytes; the limit is " +
            std::to_string(kMaxRequestBytes) + " (rotary::kMaxRequestBytes)");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) bad(ErrorCode::kIoError, path, "cannot open the table file");
  std::vector<unsigned char> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(size));
  } catch (const std::bad_alloc&) {
    bad(ErrorCode::kInvalidArgument, path,
        "the table file's " + std::to_string(size) + " bytes cannot be allocated");
  }
  file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (file.gcount() != static_cast<std::streamsize>(size)) {
    bad(ErrorCode::kIoError, path, "the table file changed while it was read");
  }
  return bytes;
}

struct Array {
  ElementType type;
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;
  std::string name;

  int64_t elements() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  // Real component `component` (0 real, 1 imaginary) of element `index`.
  double at(int64_t index, int component = 0) const {
    const int64_t stride = type.bytes * (type.complex ? 2 : 1);
    return load(data + index * stride + component * type.bytes, type);
  }
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// ---- npy
// -----------------------------------------------------------------------------------------

std::string header_value(const std::string& header, const std::string& key) {
  const std::size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return {};
  std::size_t colon = header.find(':', k);
  if (colon == std::string::npos) return {};
  std::size_t begin = header.find_first_not_of(' ', colon + 1);
  if (begin == std::string::npos) return {};
  std::size_t end;
  if (header[begin] == '\'') {
    end = header.find('\'', begin + 1);
    return end == std::string::npos ? std::string() : header.substr(begin + 1, end - begin - 1);
  }
  if (header[begin] == '(') {
    end = header.find(')', begin);
    return end == std::string::npos ? std::string() : header.substr(begin, end - begin + 1);
  }
  end = header.find_first_of(",}", begin);
  return header.substr(begin, end - begin);
}

Array parse_npy(const std::string& path, const std::vector<unsigned char>& bytes) {
  if (bytes.size() < 10) bad(ErrorCode::kParseError, path, "truncated npy header");
  const int major = bytes[6];
  std::size_t header_length, offset;
  if (major == 1) {
    header_length = bytes[8] | (bytes[9] << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(ErrorCode::kParseError, path, "truncated npy header");
    header_length = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) |
                    (static_cast<std::size_t>(bytes[11]) << 24);
    offset = 12;
  } else {
    bad(ErrorCode::kParseError, path, "unsupported npy version " + std::to_string(major));
  }
  if (offset + header_length > bytes.size())
    bad(ErrorCode::kParseError, path, "truncated npy header");
  const std::string header(reinterpret_cast<const char*>(bytes.data() + offset), header_length);
  const std::string descr = header_value(header, "descr");
  const std::string fortran = header_value(header, "fortran_order");
  const std::string shape = header_value(header, "shape");
  if (descr.empty() || shape.empty())
    bad(ErrorCode::kParseError, path, "npy header without descr or shape");
  if (fortran.find("True") != std::string::npos) {
    bad(ErrorCode::kInvalidArgument, path,
        "Fortran-ordered npy arrays are not supported (save in C order)");
  }
  Array a;
  const std::string kind = descr.size() >= 2 ? descr.substr(1) : descr;
  if (descr[0] == '>')
    bad(ErrorCode::kInvalidArgument, path, "big-endian npy data is not supported");
  if (kind == "f8")
    a.type = {StorageType::kF64, 8, false};
  else if (kind == "f4")
    a.type = {StorageType::kF32, 4, false};
  else if (kind == "f2")
    a.type = {StorageType::kF16, 2, false};
  else if (kind == "c8")
    a.type = {StorageType::kF32, 4, true};
  else if (kind == "c16")
    a.type = {StorageType::kF64, 8, true};
  else {
    bad(ErrorCode::kInvalidArgument, path,
        "npy dtype '" + descr + "': expected float16/32/64 or complex64/128");
  }
  std::string digits;
  for (char c : shape) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (!digits.empty()) {
      a.shape.push_back(std::stoll(digits));
      digits.clear();
    }
  }
  a.data = bytes.data() + offset + header_length;
  const uint64_t needed =
      static_cast<uint64_t>(a.elements()) * a.type.bytes * (a.type.complex ? 2 : 1);
  if (offset + header_length + needed > bytes.size()) {
    bad(ErrorCode::kParseError, path,
        "truncated npy data: shape " + shape_text(a.shape) + " needs " + std::to_string(needed) +
            " bytes");
  }
  return a;
}

// ---- safetensors
// ---------------------------------------------------------------------------------

// The safetensors format caps its JSON header at 100 MB (100,000,000 bytes).
constexpr std::size_t kMaxSafetensorsHeader = 100'000'000;

std::vector<Array> parse_safetensors(const std::string& path,
                                     const std::vector<unsigned char>& bytes) {
  if (bytes.size() < 8) bad(ErrorCode::kParseError, path, "not a safetensors file (too short)");
  uint64_t length = 0;
  for (int b = 7; b >= 0; --b) length = (length << 8) | bytes[b];
  if (length > kMaxSafetensorsHeader) {
    bad(ErrorCode::kParseError, path,
        "safetensors header length " + std::to_string(length) + " exceeds the format's limit of " +
            std::to_string(kMaxSafetensorsHeader) + " bytes");
  }
  if (length > bytes.size() - 8) bad(ErrorCode::kParseError, path, "truncated safetensors header");
  nlohmann::json header;
  try {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, length);
    header = detail::parse_json(text, path, kMaxSafetensorsHeader);
  } catch (const Error& e) {
    bad(e.code(), path, "safetensors header: " + e.message());
  }
  if (!header.is_object())
    bad(ErrorCode::kParseError, path, "safetensors header is not a JSON object");
  const unsigned char* buffer = bytes.data() + 8 + length;
  const uint64_t buffer_size = bytes.size() - 8 - length;
  std::vector<Array> arrays;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      Array a;
      a.name = name;
      const std::string dtype = info.at("dtype").get<std::string>();
      if (dtype == "F64")
        a.type = {StorageType::kF64, 8, false};
      else if (dtype == "F32")
        a.type = {StorageType::kF32, 4, false};
      else if (dtype == "F16")
        a.type = {StorageType::kF16, 2, false};
      else if (dtype == "BF16")
        a.type = {StorageType::kBF16, 2, false};
      else
        a.type.bytes = 0;  // not a table dtype; only an error if this tensor is asked for
      a.shape = info.at("shape").get<std::vector<int64_t>>();
      const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > buffer_size) {
        bad(ErrorCode::kParseError, path, "tensor '" + name + "': data_offsets outside the file");
      }
      if (a.type.bytes != 0 &&
          offsets[1] - offsets[0] != static_cast<uint64_t>(a.elements()) * a.type.bytes) {
        bad(ErrorCode::kParseError, path,
            "tensor '" + name + "': data_offsets do not match its shape");
      }
      a.data = buffer + offsets[0];
      if (a.type.bytes == 0) a.name += " (dtype " + dtype + ")";
      arrays.push_back(a);
    } catch (const nlohmann::json::exception& e) {
      bad(ErrorCode::kParseError, path, "tensor '" + name + "': " + e.what());
    }
  }
  return arrays;
}

const Array* find(const std::vector<Array>& arrays, const std::string& name) {
  for (const Array& a : arrays) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string tensor_names(const std::vector<Array>& arrays) {
  std::string s;
  for (const Array& a : arrays) s += (s.empty() ? "" : ", ") + a.name;
  return s.empty() ? "(none)" : s;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) parts.push_back(part);
  return parts;
}

// ---- turning arrays into cos/sin
// -----------------------------------------------------------------

void require_real(const std::string& path, const Array& a) {
  if (a.type.bytes == 0 || a.type.complex) {
    bad(ErrorCode::kInvalidArgument, path,
        "tensor '" + a.name + "': expected a float16/bfloat16/float32/float64 tensor");
  }
}

// (N, W), or (1, N, W) as transformers' modules return them for one batch entry.
void matrix_shape(const std::string& path, const Array& a, int64_t& rows, int64_t& cols) {
  std::vector<int64_t> s = a.shape;
  while (s.size() > 2 && s.front() == 1) s.erase(s.begin());
  if (s.size() != 2) {
    bad(ErrorCode::kInvalidArgument, path,
        "tensor '" + a.name + "' has shape " + shape_text(a.shape) +
            "; expected (positions, columns)");
  }
  rows = s[0];
  cols = s[1];
}

void fill_from_two(const std::string& path, const Array& c, const Array& s, CosSinTable& t) {
  require_real(path, c);
  require_real(path, s);
  int64_t rc, cc, rs, cs;
  matrix_shape(path, c, rc, cc);
  matrix_shape(path, s, rs, cs);
  if (rc != rs || cc != cs) {
    bad(ErrorCode::kInvalidArgument, path,
        "cos " + shape_text(c.shape) + " and sin " + shape_text(s.shape) + " differ in shape");
  }
  if (c.type.storage != s.type.storage)
    bad(ErrorCode::kInvalidArgument, path, "cos and sin differ in dtype");
  t.storage = c.type.storage;
  t.positions = rc;
  t.width = cc;
  t.cos.resize(static_cast<std::size_t>(rc * cc));
  t.sin.resize(t.cos.size());
  for (int64_t i = 0; i < rc * cc; ++i) {
    t.cos[i] = c.at(i);
    t.sin[i] = s.at(i);
  }
}

// (2, N, W): [first] and [1 - first] are cos and sin.
void fill_stacked(const std::string& path, const Array& a, bool sin_first, CosSinTable& t) {
  require_real(path, a);
  const int64_t n = a.shape[1], w = a.shape[2];
  t.storage = a.type.storage;
  t.positions = n;
  t.width = w;
  t.cos.resize(static_cast<std::size_t>(n * w));
  t.sin.resize(t.cos.size());
  const int64_t cos_base = sin_first ? n * w : 0, sin_base = sin_first ? 0 : n * w;
  for (int64_t i = 0; i < n * w; ++i) {
    t.cos[i] = a.at(cos_base + i);
    t.sin[i] = a.at(sin_base + i);
  }
}

void fill_complex(const Array& a, CosSinTable& t) {
  const int64_t n = a.shape[0], w = a.shape[1];
  t.storage = a.type.storage;
  t.positions = n;
  t.width = w;
  t.cos.resize(static_cast<std::size_t>(n * w));
  t.sin.resize(t.cos.size());
  for (int64_t i = 0; i < n * w; ++i) {
    if (a.type.complex) {
      t.cos[i] = a.at(i, 0);
      t.sin[i] = a.at(i, 1);
    } else {  // (N, W, 2) real/imaginary pairs
      t.cos[i] = a.at(2 * i);
      t.sin[i] = a.at(2 * i + 1);
    }
  }
}

// (N, 2W): cos | sin along the columns.
void fill_concatenated(const std::string& path, const Array& a, CosSinTable& t) {
  require_real(path, a);
  int64_t rows, cols;
  matrix_shape(path, a, rows, cols);
  if (cols % 2 != 0) {
    bad(ErrorCode::kInvalidArgument, path,
        "tensor '" + a.name + "' has an odd number of columns; a " +
            "concatenated cos | sin table has an even number");
  }
  t.storage = a.type.storage;
  t.positions = rows;
  t.width = cols / 2;
  t.cos.resize(static_cast<std::size_t>(rows * t.width));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < rows; ++p) {
    for (int64_t j = 0; j < t.width; ++j) {
      t.cos[p * t.width + j] = a.at(p * cols + j);
      t.sin[p * t.width + j] = a.at(p * cols + t.width + j);
    }
  }
}

bool stacked(const Array& a) { return a.shape.size() == 3 && a.shape[0] == 2; }

}  // namespace

std::string to_string(StorageType storage) {
  switch (storage) {
    case StorageType::kF64:
      return "float64";
    case StorageType::kF32:
      return "float32";
    case StorageType::kF16:
      return "float16";
    case StorageType::kBF16:
      return "bfloat16";
  }
  return "?";
}

CosSinTable read_cos_sin_table(const std::string& path, const std::string& names_arg) {
  const std::vector<unsigned char> bytes = read_file(path);
  CosSinTable t;
  t.path = path;
  const std::vector<std::string> names = split(names_arg);
  if (names.size() > 2)
    bad(ErrorCode::kInvalidArgument, "--names",
        "expected one or two tensor names, got " + names_arg);
  const bool npy = bytes.size() >= 6 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0;
  if (npy) {
    t.format = "npy";
    const Array a = parse_npy(path, bytes);
    if (a.type.complex && a.shape.size() == 2) {
      fill_complex(a, t);
      t.arrangement = "complex (N, W): cos = real part, sin = imaginary part";
    } else if (!a.type.complex && stacked(a)) {
      const bool sin_first = names.size() == 2 && names[0] == "sin" && names[1] == "cos";
      if (names.size() == 2 && !sin_first && !(names[0] == "cos" && names[1] == "sin")) {
        bad(ErrorCode::kInvalidArgument, "--names", "for a stacked npy array: cos,sin or sin,cos");
      }
      fill_stacked(path, a, sin_first, t);
      t.arrangement =
          sin_first ? "stacked (2, N, W): [0] sin, [1] cos" : "stacked (2, N, W): [0] cos, [1] sin";
    } else if (!a.type.complex && a.shape.size() == 3 && a.shape[2] == 2) {
      fill_complex(a, t);
      t.arrangement = "(N, W, 2): real and imaginary parts (view_as_real of a complex table)";
    } else {
      bad(ErrorCode::kInvalidArgument, path,
          "npy array of shape " + shape_text(a.shape) +
              ": expected (2, N, W) cos and sin stacked, a complex (N, W) " +
              "table, or (N, W, 2) real/imaginary parts");
    }
  } else {
    t.format = "safetensors";
    const std::vector<Array> arrays = parse_safetensors(path, bytes);
    std::vector<std::string> chosen = names;
    if (chosen.empty()) {
      if (find(arrays, "cos") && find(arrays, "sin"))
        chosen = {"cos", "sin"};
      else if (find(arrays, "cos_cached") && find(arrays, "sin_cached"))
        chosen = {"cos_cached", "sin_cached"};
      else if (find(arrays, "cos_sin_cache"))
        chosen = {"cos_sin_cache"};
      else if (arrays.size() == 1 && stacked(arrays[0]))
        chosen = {arrays[0].name};
      else {
        bad(ErrorCode::kInvalidArgument, path,
            "no cos/sin tensors found (tensors: " + tensor_names(arrays) +
                "); name them with --names COS,SIN or --names TABLE");
      }
    }
    std::vector<const Array*> found;
    for (const std::string& name : chosen) {
      const Array* a = find(arrays, name);
      if (!a) {
        bad(ErrorCode::kInvalidArgument, path,
            "no tensor '" + name + "' (tensors: " + tensor_names(arrays) + ")");
      }
      found.push_back(a);
    }
    t.names = chosen;
    if (found.size() == 2) {
      fill_from_two(path, *found[0], *found[1], t);
      t.arrangement = "tensors '" + chosen[0] + "' (cos) and '" + chosen[1] + "' (sin)";
    } else if (stacked(*found[0])) {
      fill_stacked(path, *found[0], false, t);
      t.arrangement = "tensor '" + chosen[0] + "' stacked (2, N, W): [0] cos, [1] sin";
    } else {
      fill_concatenated(path, *found[0], t);
      t.arrangement = "tensor '" + chosen[0] + "' (N, 2W): cos | sin concatenated";
    }
  }
  if (t.positions < 2 || t.width < 1) {
    bad(ErrorCode::kInvalidArgument, path,
        "the table has " + std::to_string(t.positions) + " rows of " + std::to_string(t.width) +
            " columns; verify needs at least 2 positions");
  }
  return t;
}

}  // namespace rotary::tools
