#include "npy.h"

#include <cctype>
#include <cstring>

#include "rotary/error.h"

namespace rotary::tools::npy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;
// NumPy aligns the data of every array it writes to 64 bytes, and so does the tool.
constexpr std::size_t kAlignment = 64;

[[noreturn]] void bad(ErrorCode code, const std::string& path, const std::string& message) {
  throw Error(code, path, message);
}

// The element types by their descr without the byte order ('<f4' is little-endian "f4").
struct Kind {
  const char* name;
  StorageType storage;
  bool complex;
};
constexpr Kind kKinds[] = {{"f8", StorageType::kFloat64, false},
                           {"f4", StorageType::kFloat32, false},
                           {"f2", StorageType::kFloat16, false},
                           {"c8", StorageType::kFloat32, true},
                           {"c16", StorageType::kFloat64, true}};

// Where the header dict lies in the file.
struct Preamble {
  std::size_t offset = 0;  // of the dict
  std::size_t length = 0;  // of the dict, padding and '\n' included
};

Preamble preamble(const std::string& path, std::span<const unsigned char> bytes) {
  if (bytes.size() < 10) bad(ErrorCode::kParseError, path, "truncated npy header");
  const int major = bytes[6];
  Preamble p;
  if (major == 1) {
    p.length = bytes[8] | (bytes[9] << 8);
    p.offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(ErrorCode::kParseError, path, "truncated npy header");
    p.length = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) |
               (static_cast<std::size_t>(bytes[11]) << 24);
    p.offset = 12;
  } else {
    bad(ErrorCode::kParseError, path, "unsupported npy version " + std::to_string(major));
  }
  if (p.length > bytes.size() - p.offset) bad(ErrorCode::kParseError, path, "truncated npy header");
  return p;
}

// The text of `key`'s value in the header dict: a quoted string without its quotes, a tuple with
// its parentheses, or anything else up to the next ',' or '}'; "" when absent.
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

ElementType element_type(const std::string& path, const std::string& descr) {
  if (descr[0] == '>')
    bad(ErrorCode::kInvalidArgument, path, "big-endian npy data is not supported");
  const std::string kind = descr.size() >= 2 ? descr.substr(1) : descr;
  for (const Kind& k : kKinds) {
    if (kind == k.name) return {k.storage, real_type(k.storage).bytes, k.complex};
  }
  bad(ErrorCode::kInvalidArgument, path,
      "npy dtype '" + descr + "': expected float16/32/64 or complex64/128");
}

[[noreturn]] void too_large(const std::string& path, const std::string& shape) {
  bad(ErrorCode::kParseError, path, "npy shape " + shape + " is too large");
}

// The dimensions of a shape tuple, "(2, 16, 64)" or "(16,)".
std::vector<int64_t> dimensions(const std::string& path, const std::string& shape) {
  constexpr std::size_t kMaxDigits = 18;  // below 10^18: every such number is an int64
  std::vector<int64_t> out;
  std::string digits;
  for (char c : shape) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      if (digits.size() == kMaxDigits) too_large(path, shape);
      digits += c;
    } else if (!digits.empty()) {
      out.push_back(std::stoll(digits));
      digits.clear();
    }
  }
  return out;
}

std::string descr(const ElementType& type) {
  for (const Kind& k : kKinds) {
    if (k.storage == type.storage && k.complex == type.complex) return std::string("<") + k.name;
  }
  throw Error(ErrorCode::kInvalidArgument, "dtype",
              "NumPy's .npy has no " + std::string(verify::to_string(type.storage)));
}

void append_little_endian(std::string& out, std::size_t value, int bytes) {
  for (int b = 0; b < bytes; ++b) out.push_back(static_cast<char>((value >> (8 * b)) & 0xFF));
}

}  // namespace

bool is_npy(std::span<const unsigned char> bytes) {
  return bytes.size() >= kMagicBytes && std::memcmp(bytes.data(), kMagic, kMagicBytes) == 0;
}

std::string header(const ElementType& type, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '" + descr(type) +
                     "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // Magic, version and length take 10 bytes in version 1.0, 12 in 2.0; the dict ends in '\n'.
  const bool version1 = dict.size() + 1 + kAlignment <= 0xFFFF;
  const std::size_t unpadded = (version1 ? 10 : 12) + dict.size() + 1;
  dict.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicBytes);
  out.push_back(version1 ? '\x01' : '\x02');
  out.push_back('\x00');
  append_little_endian(out, dict.size(), version1 ? 2 : 4);
  return out + dict;
}

StoredArray read(const std::string& path, std::span<const unsigned char> bytes) {
  const Preamble p = preamble(path, bytes);
  const std::string header(reinterpret_cast<const char*>(bytes.data() + p.offset), p.length);
  const std::string descr = header_value(header, "descr");
  const std::string fortran = header_value(header, "fortran_order");
  const std::string shape = header_value(header, "shape");
  if (descr.empty() || shape.empty())
    bad(ErrorCode::kParseError, path, "npy header without descr or shape");
  if (fortran.find("True") != std::string::npos) {
    bad(ErrorCode::kInvalidArgument, path,
        "Fortran-ordered npy arrays are not supported (save in C order)");
  }
  StoredArray a;
  a.type = element_type(path, descr);
  a.shape = dimensions(path, shape);
  const std::size_t data_offset = p.offset + p.length;
  a.data = bytes.data() + data_offset;
  const std::optional<uint64_t> needed = array_bytes(a.shape, a.type.element_bytes());
  if (!needed) too_large(path, shape);
  if (*needed > bytes.size() - data_offset) {
    bad(ErrorCode::kParseError, path,
        "truncated npy data: shape " + shape_text(a.shape) + " needs " + std::to_string(*needed) +
            " bytes");
  }
  return a;
}

}  // namespace rotary::tools::npy
