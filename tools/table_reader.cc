#include "table_reader.h"

#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>

#include "npy.h"
#include "rotary/error.h"
#include "rotary/limits.h"
#include "safetensors.h"

namespace rotary::tools {
namespace {

[[noreturn]] void bad(ErrorCode code, const std::string& path, const std::string& message) {
  throw Error(code, path, message);
}

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

const StoredArray* find(const std::vector<StoredArray>& arrays, const std::string& name) {
  for (const StoredArray& a : arrays) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string tensor_names(const std::vector<StoredArray>& arrays) {
  std::string s;
  for (const StoredArray& a : arrays) s += (s.empty() ? "" : ", ") + a.name;
  return s.empty() ? "(none)" : s;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) parts.push_back(part);
  return parts;
}

void require_real(const std::string& path, const StoredArray& a) {
  if (!a.type.readable() || a.type.complex) {
    bad(ErrorCode::kInvalidArgument, path,
        "tensor '" + a.name + "': expected a float16/bfloat16/float32/float64 tensor");
  }
}

// (N, W), or (1, N, W) as transformers' modules return them for one batch entry.
void matrix_shape(const std::string& path, const StoredArray& a, int64_t& rows, int64_t& cols) {
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

// Sizes `t` for `rows` x `width` values of `a`'s storage type.
void size_table(const StoredArray& a, int64_t rows, int64_t width, CosSinTable& t) {
  t.storage = a.type.storage;
  t.positions = rows;
  t.width = width;
  t.cos.resize(static_cast<std::size_t>(rows * width));
  t.sin.resize(t.cos.size());
}

void fill_from_two(const std::string& path, const StoredArray& c, const StoredArray& s,
                   CosSinTable& t) {
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
  size_table(c, rc, cc, t);
  for (int64_t i = 0; i < rc * cc; ++i) {
    t.cos[i] = c.at(i);
    t.sin[i] = s.at(i);
  }
}

// (2, N, W): [first] and [1 - first] are cos and sin.
void fill_stacked(const std::string& path, const StoredArray& a, bool sin_first, CosSinTable& t) {
  require_real(path, a);
  const int64_t n = a.shape[1], w = a.shape[2];
  size_table(a, n, w, t);
  const int64_t cos_base = sin_first ? n * w : 0, sin_base = sin_first ? 0 : n * w;
  for (int64_t i = 0; i < n * w; ++i) {
    t.cos[i] = a.at(cos_base + i);
    t.sin[i] = a.at(sin_base + i);
  }
}

// Complex (N, W), or real (N, W, 2) holding real/imaginary pairs.
void fill_complex(const StoredArray& a, CosSinTable& t) {
  const int64_t n = a.shape[0], w = a.shape[1];
  size_table(a, n, w, t);
  for (int64_t i = 0; i < n * w; ++i) {
    if (a.type.complex) {
      t.cos[i] = a.at(i, 0);
      t.sin[i] = a.at(i, 1);
    } else {
      t.cos[i] = a.at(2 * i);
      t.sin[i] = a.at(2 * i + 1);
    }
  }
}

// (N, 2W): cos | sin along the columns.
void fill_concatenated(const std::string& path, const StoredArray& a, CosSinTable& t) {
  require_real(path, a);
  int64_t rows, cols;
  matrix_shape(path, a, rows, cols);
  if (cols % 2 != 0) {
    bad(ErrorCode::kInvalidArgument, path,
        "tensor '" + a.name + "' has an odd number of columns; a " +
            "concatenated cos | sin table has an even number");
  }
  size_table(a, rows, cols / 2, t);
  for (int64_t p = 0; p < rows; ++p) {
    for (int64_t j = 0; j < t.width; ++j) {
      t.cos[p * t.width + j] = a.at(p * cols + j);
      t.sin[p * t.width + j] = a.at(p * cols + t.width + j);
    }
  }
}

bool stacked(const StoredArray& a) { return a.shape.size() == 3 && a.shape[0] == 2; }

// ---- the arrangements of each format

// The one array of an .npy file: stacked (2, N, W), complex (N, W), or (N, W, 2).
void read_npy(const std::string& path, std::span<const unsigned char> bytes,
              const std::vector<std::string>& names, CosSinTable& t) {
  t.format = "npy";
  const StoredArray a = npy::read(path, bytes);
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
}

// The tensors --names asks for, else the first of the names other engines write.
std::vector<std::string> chosen_tensors(const std::string& path,
                                        const std::vector<StoredArray>& arrays,
                                        const std::vector<std::string>& names) {
  if (!names.empty()) return names;
  if (find(arrays, "cos") && find(arrays, "sin")) return {"cos", "sin"};
  if (find(arrays, "cos_cached") && find(arrays, "sin_cached")) return {"cos_cached", "sin_cached"};
  if (find(arrays, "cos_sin_cache")) return {"cos_sin_cache"};
  if (arrays.size() == 1 && stacked(arrays[0])) return {arrays[0].name};
  bad(ErrorCode::kInvalidArgument, path,
      "no cos/sin tensors found (tensors: " + tensor_names(arrays) +
          "); name them with --names COS,SIN or --names TABLE");
}

// Two tensors (cos, sin), or one stacked (2, N, W) or concatenated (N, 2W).
void read_safetensors(const std::string& path, std::span<const unsigned char> bytes,
                      const std::vector<std::string>& names, CosSinTable& t) {
  t.format = "safetensors";
  const std::vector<StoredArray> arrays = safetensors::read(path, bytes);
  const std::vector<std::string> chosen = chosen_tensors(path, arrays, names);
  std::vector<const StoredArray*> found;
  for (const std::string& name : chosen) {
    const StoredArray* a = find(arrays, name);
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

}  // namespace

CosSinTable read_cos_sin_table(const std::string& path, const std::string& names_arg) {
  const std::vector<unsigned char> bytes = read_file(path);
  CosSinTable t;
  t.path = path;
  const std::vector<std::string> names = split(names_arg);
  if (names.size() > 2)
    bad(ErrorCode::kInvalidArgument, "--names",
        "expected one or two tensor names, got " + names_arg);
  if (npy::is_npy(bytes)) {
    read_npy(path, bytes, names, t);
  } else {
    read_safetensors(path, bytes, names, t);
  }
  if (t.positions < 2 || t.width < 1) {
    bad(ErrorCode::kInvalidArgument, path,
        "the table has " + std::to_string(t.positions) + " rows of " + std::to_string(t.width) +
            " columns; verify needs at least 2 positions");
  }
  return t;
}

}  // namespace rotary::tools
