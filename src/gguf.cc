// Reads a GGUF file's metadata and its RoPE tensors (include/rotary/gguf.h).
//
// The layout (llama.cpp ggml/include/gguf.h, gguf-py's gguf_reader.py), little-endian:
//   "GGUF", uint32 version, uint64 tensor_count, uint64 kv_count,
//   kv_count x (string key, uint32 value type, value),
//   tensor_count x (string name, uint32 n_dims, n_dims x uint64 dim, uint32 ggml type, uint64
//   offset), padding to general.alignment, then the tensor data (a tensor starts at data start +
//   offset).
// A string is a uint64 byte length and the bytes; an array is a uint32 element type, a uint64
// count and the elements.
//
// Every count and length is compared with the bytes left in the file before anything is
// allocated or skipped, so a hostile file is refused where it lies, with its byte offset.
#include "rotary/gguf.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "rotary/error.h"

namespace rotary {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
// llama.cpp's GGML_MAX_DIMS and GGML_MAX_NAME: it refuses a file that exceeds them.
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxTensorNameBytes = 63;
// Keys are dotted identifiers; anything this long is not a key llama.cpp would look up.
constexpr uint64_t kMaxKeyBytes = 65535;
// Values larger than these are read past and not kept: no RoPE setting is that large, and a
// tokenizer's score lists or an embedded tokenizer.json would only cost memory.
constexpr uint64_t kMaxKeptArrayElements = uint64_t{1} << 20;
constexpr uint64_t kMaxKeptStringBytes = uint64_t{1} << 24;
// A RoPE tensor holds one factor per rotated pair.
constexpr uint64_t kMaxRopeTensorElements = uint64_t{1} << 20;
constexpr uint32_t kGgmlTypeF32 = 0;

// The smallest encodings, used to bound claimed counts by the bytes left: a key/value is a
// length, at least one key byte, a type and a one-byte value; a tensor info a name length, n_dims,
// a type and an offset (n_dims may be 0).
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
constexpr uint64_t kMinArrayBytes = 4 + 8;  // an array nested in an array: type and count

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
constexpr uint32_t kValueTypeCount = 13;

const char* type_name(ValueType type) {
  static constexpr std::array<const char*, kValueTypeCount> kNames = {
      "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
      "bool",  "string", "array",  "uint64", "int64",  "float64"};
  return kNames[static_cast<uint32_t>(type)];
}

// Bytes of one element of a fixed-size type; 0 for string and array.
uint64_t fixed_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
    case ValueType::kArray:
      return 0;
  }
  return 0;
}

bool is_float(ValueType type) { return type == ValueType::kFloat32 || type == ValueType::kFloat64; }

// A bounded, buffered little-endian reader over the file. It knows the file's size, so every
// read and skip is checked against it first, and skips within the buffer cost no system call
// (a vocabulary of 150k strings is skipped one short string at a time).
class GgufStream {
 public:
  explicit GgufStream(const std::string& path) : path_(path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (std::filesystem::is_directory(status)) {
      throw Error(ErrorCode::kIoError, path, "is a directory, expected a GGUF file");
    }
    file_.open(path, std::ios::binary);
    if (!file_) throw Error(ErrorCode::kIoError, path, "cannot open the file for reading");
    file_.seekg(0, std::ios::end);
    const std::streamoff end = file_.tellg();
    file_.seekg(0, std::ios::beg);
    if (end < 0 || !file_) throw Error(ErrorCode::kIoError, path, "cannot read the file's size");
    size_ = static_cast<uint64_t>(end);
  }

  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }
  uint64_t left() const { return size_ - offset_; }

  // Throws the parse error for what was expected at `at`.
  [[noreturn]] void fail_at(uint64_t at, const std::string& message) const {
    throw Error(ErrorCode::kParseError, path_, "byte " + std::to_string(at) + ": " + message);
  }
  [[noreturn]] void fail(const std::string& message) const { fail_at(offset_, message); }

  // Refuses `count` items of at least `min_bytes` each when they cannot fit in what is left.
  void require_fits(uint64_t count, uint64_t min_bytes, const std::string& what) const {
    if (count > left() / min_bytes) {
      fail(what + ": " + std::to_string(count) + " of at least " + std::to_string(min_bytes) +
           " bytes each cannot fit in the " + std::to_string(left()) + " bytes left in the file");
    }
  }

  void read(void* destination, uint64_t bytes, const std::string& what) {
    if (bytes > left()) truncated(bytes, what);
    auto* out = static_cast<char*>(destination);
    while (bytes > 0) {
      if (buffer_pos_ == buffer_end_) refill();
      const uint64_t n = std::min<uint64_t>(bytes, buffer_end_ - buffer_pos_);
      std::memcpy(out, buffer_.data() + buffer_pos_, n);
      buffer_pos_ += n;
      offset_ += n;
      out += n;
      bytes -= n;
    }
  }

  void skip(uint64_t bytes, const std::string& what) {
    if (bytes > left()) truncated(bytes, what);
    if (bytes <= buffer_end_ - buffer_pos_) {
      buffer_pos_ += bytes;
    } else {
      buffer_pos_ = buffer_end_ = 0;
      file_.clear();
      file_.seekg(static_cast<std::streamoff>(offset_ + bytes));
      if (!file_) throw Error(ErrorCode::kIoError, path_, "cannot seek in the file");
    }
    offset_ += bytes;
  }

  void seek(uint64_t absolute, const std::string& what) {
    if (absolute < offset_ || absolute - offset_ > buffer_end_ - buffer_pos_) {
      if (absolute > size_)
        fail(what + " at byte " + std::to_string(absolute) + " lies past the end of the file (" +
             std::to_string(size_) + " bytes)");
      buffer_pos_ = buffer_end_ = 0;
      file_.clear();
      file_.seekg(static_cast<std::streamoff>(absolute));
      if (!file_) throw Error(ErrorCode::kIoError, path_, "cannot seek in the file");
      offset_ = absolute;
      return;
    }
    skip(absolute - offset_, what);
  }

  // An unsigned little-endian integer of sizeof(T) bytes.
  template <typename T>
  T little_endian(const std::string& what) {
    std::array<unsigned char, sizeof(T)> bytes{};
    read(bytes.data(), sizeof(T), std::to_string(sizeof(T)) + "-byte " + what);
    T value = 0;
    for (std::size_t b = sizeof(T); b-- > 0;) value = static_cast<T>((value << 8) | bytes[b]);
    return value;
  }
  uint32_t u32(const std::string& what) { return little_endian<uint32_t>(what); }
  uint64_t u64(const std::string& what) { return little_endian<uint64_t>(what); }

  // A string's uint64 length, checked against what is left.
  uint64_t string_length(const std::string& what) {
    const uint64_t length = u64("length of " + what);
    if (length > left()) {
      fail_at(offset_ - 8, "the length of " + what + " is " + std::to_string(length) +
                               " bytes, but only " + std::to_string(left()) +
                               " bytes are left in the file");
    }
    return length;
  }
  std::string string_of(uint64_t length, const std::string& what) {
    std::string text(length, '\0');
    read(text.data(), length, what);
    return text;
  }

 private:
  [[noreturn]] void truncated(uint64_t bytes, const std::string& what) const {
    fail("the file ends after " + std::to_string(size_) + " bytes, expected " + what + " (" +
         std::to_string(bytes) + " bytes)");
  }

  void refill() {
    buffer_pos_ = 0;
    const uint64_t want = std::min<uint64_t>(buffer_.size(), left());
    file_.read(buffer_.data(), static_cast<std::streamsize>(want));
    buffer_end_ = static_cast<uint64_t>(file_.gcount());
    if (buffer_end_ != want) throw Error(ErrorCode::kIoError, path_, "cannot read the file");
  }

  std::string path_;
  std::ifstream file_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  std::array<char, 1 << 16> buffer_{};
  uint64_t buffer_pos_ = 0;
  uint64_t buffer_end_ = 0;
};

// Built by appending: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string + "'".
std::string in_quotes(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.append(1, '\'').append(text).append(1, '\'');
  return quoted;
}

ValueType value_type(GgufStream& in, const std::string& what) {
  const uint64_t at = in.offset();
  const uint32_t code = in.u32("value type of " + what);
  if (code >= kValueTypeCount) {
    in.fail_at(at, what + " has value type " + std::to_string(code) +
                       ", expected a GGUF value type 0 to 12");
  }
  return static_cast<ValueType>(code);
}

uint64_t load_little_endian(const unsigned char* bytes, uint64_t size) {
  uint64_t value = 0;
  for (uint64_t b = size; b-- > 0;) value = (value << 8) | bytes[b];
  return value;
}

constexpr uint64_t kScalar = std::numeric_limits<uint64_t>::max();

// One element of a fixed-size integer or bool type, as int64. `at` is its byte offset and `what`
// names it (with `index`, for an array's element), for the errors: a uint64 above INT64_MAX, a
// bool byte other than 0 or 1. The message is built only when one is thrown.
int64_t integer_of(GgufStream& in, ValueType type, const unsigned char* bytes, uint64_t at,
                   const std::string& what, uint64_t index = kScalar) {
  const auto name = [&] {
    return index == kScalar ? what : "element " + std::to_string(index) + " of " + what;
  };
  const uint64_t raw = load_little_endian(bytes, fixed_size(type));
  switch (type) {
    case ValueType::kInt8:
      return static_cast<int8_t>(raw);
    case ValueType::kInt16:
      return static_cast<int16_t>(raw);
    case ValueType::kInt32:
      return static_cast<int32_t>(raw);
    case ValueType::kInt64:
      return static_cast<int64_t>(raw);
    case ValueType::kUint64:
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        in.fail_at(at, name() + " is the uint64 " + std::to_string(raw) +
                           ", expected at most 9223372036854775807");
      }
      return static_cast<int64_t>(raw);
    case ValueType::kBool:
      if (raw > 1) {
        in.fail_at(at,
                   name() + " is a bool stored as " + std::to_string(raw) + ", expected 0 or 1");
      }
      return static_cast<int64_t>(raw);
    default:  // uint8, uint16, uint32
      return static_cast<int64_t>(raw);
  }
}

double float_of(ValueType type, const unsigned char* bytes) {
  const uint64_t raw = load_little_endian(bytes, fixed_size(type));
  if (type == ValueType::kFloat32) return std::bit_cast<float>(static_cast<uint32_t>(raw));
  return std::bit_cast<double>(raw);
}

// One scalar of a fixed-size type.
GgufValue read_scalar(GgufStream& in, ValueType type, const std::string& what) {
  std::array<unsigned char, 8> bytes{};
  const uint64_t at = in.offset();
  in.read(bytes.data(), fixed_size(type), what + " (" + type_name(type) + ")");
  if (is_float(type)) return float_of(type, bytes.data());
  const int64_t value = integer_of(in, type, bytes.data(), at, what);
  if (type == ValueType::kBool) return value != 0;
  return value;
}

// Skips the strings of an array (a vocabulary): each length is checked against what is left,
// and the message naming the element is only built for a failure.
void skip_strings(GgufStream& in, uint64_t count, const std::string& what) {
  in.require_fits(count, 8, what + " (strings)");
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = in.offset();
    const uint64_t length = in.u64("string length");
    if (length > in.left()) {
      in.fail_at(at, what + "[" + std::to_string(i) + "] has length " + std::to_string(length) +
                         ", but only " + std::to_string(in.left()) + " bytes are left in the file");
    }
    in.skip(length, "string");
  }
}

// Skips one array's elements (its type and count already read); an array nested in it is
// skipped too, but no deeper (llama.cpp reads no array of arrays at all).
void skip_array_elements(GgufStream& in, ValueType type, uint64_t count, int depth,
                         const std::string& what) {
  if (type == ValueType::kString) {
    skip_strings(in, count, what);
  } else if (type == ValueType::kArray) {
    if (depth > 0) in.fail(what + " nests arrays two levels deep; expected at most one");
    in.require_fits(count, kMinArrayBytes, what + " (arrays)");
    for (uint64_t i = 0; i < count; ++i) {
      const std::string element = what + "[" + std::to_string(i) + "]";
      const ValueType inner = value_type(in, "the elements of " + element);
      const uint64_t inner_count = in.u64("element count of " + element);
      skip_array_elements(in, inner, inner_count, depth + 1, element);
    }
  } else {
    in.require_fits(count, fixed_size(type), what + " (" + type_name(type) + " elements)");
    in.skip(count * fixed_size(type), what);
  }
}

// An array's value: numbers (bools as 0 and 1) up to kMaxKeptArrayElements are kept; strings,
// nested arrays and longer arrays are read past (std::nullopt).
std::optional<GgufValue> read_array(GgufStream& in, const std::string& key) {
  const std::string what = "array " + in_quotes(key);
  const ValueType type = value_type(in, "the elements of " + what);
  const uint64_t count = in.u64("element count of " + what);
  const bool numeric = type != ValueType::kString && type != ValueType::kArray;
  if (!numeric || count > kMaxKeptArrayElements) {
    skip_array_elements(in, type, count, 0, what);
    return std::nullopt;
  }
  const uint64_t size = fixed_size(type);
  in.require_fits(count, size, what + " (" + type_name(type) + " elements)");
  const uint64_t at = in.offset();
  std::vector<unsigned char> bytes(count * size);
  in.read(bytes.data(), bytes.size(),
          "the " + std::string(type_name(type)) + " elements of " + what);
  if (is_float(type)) {
    std::vector<double> values(count);
    for (uint64_t i = 0; i < count; ++i) values[i] = float_of(type, &bytes[i * size]);
    return values;
  }
  std::vector<int64_t> values(count);
  for (uint64_t i = 0; i < count; ++i) {
    values[i] = integer_of(in, type, &bytes[i * size], at + i * size, what, i);
  }
  return values;
}

// One value; std::nullopt for what is read past (see read_array, and strings over
// kMaxKeptStringBytes).
std::optional<GgufValue> read_value(GgufStream& in, ValueType type, const std::string& key) {
  const std::string what = "the value of " + in_quotes(key);
  switch (type) {
    case ValueType::kString: {
      const uint64_t length = in.string_length(what);
      if (length > kMaxKeptStringBytes) {
        in.skip(length, what);
        return std::nullopt;
      }
      return in.string_of(length, what);
    }
    case ValueType::kArray:
      return read_array(in, key);
    default:
      return read_scalar(in, type, what);
  }
}

struct Header {
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
};

Header read_header(GgufStream& in) {
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size(), "the magic bytes 'GGUF'");
  if (std::string_view(magic.data(), magic.size()) != "GGUF") {
    in.fail_at(0, "not a GGUF file: expected the magic bytes 'GGUF'");
  }
  const uint32_t version = in.u32("GGUF version");
  if (version == 1) {
    in.fail_at(4,
               "GGUF version 1 is not supported (llama.cpp no longer reads it either); "
               "expected version 2 or 3");
  }
  if (version != 2 && version != 3) {
    const bool swapped = version != 0 && (version & 0xFFFFu) == 0;
    in.fail_at(4, "GGUF version " + std::to_string(version) + " is not known; expected 2 or 3" +
                      (swapped ? " (a big-endian file? only little-endian GGUF is read)" : ""));
  }
  Header header;
  header.tensor_count = in.u64("tensor count");
  header.kv_count = in.u64("key/value count");
  // Both lists follow: each must fit on its own, and together.
  in.require_fits(header.kv_count, kMinKeyValueBytes, "key/value count");
  in.require_fits(header.tensor_count, kMinTensorInfoBytes, "tensor count");
  if (header.kv_count * kMinKeyValueBytes + header.tensor_count * kMinTensorInfoBytes > in.left()) {
    in.fail_at(8, "the tensor count " + std::to_string(header.tensor_count) +
                      " and the key/value count " + std::to_string(header.kv_count) +
                      " cannot both fit in the " + std::to_string(in.left()) + " bytes left");
  }
  return header;
}

std::string read_key(GgufStream& in, uint64_t index) {
  const std::string what = "key " + std::to_string(index);
  const uint64_t at = in.offset();
  const uint64_t length = in.string_length(what);
  if (length == 0) in.fail_at(at, what + " is empty; expected a key name");
  if (length > kMaxKeyBytes) {
    in.fail_at(at, what + " is " + std::to_string(length) + " bytes long; expected at most " +
                       std::to_string(kMaxKeyBytes));
  }
  return in.string_of(length, what);
}

// general.alignment: a uint32 power of two (llama.cpp refuses any other type).
uint64_t read_alignment(GgufStream& in, ValueType type, uint64_t at) {
  if (type != ValueType::kUint32) {
    in.fail_at(
        at, "'general.alignment' has type " + std::string(type_name(type)) + ", expected uint32");
  }
  const uint64_t alignment = in.u32("the value of 'general.alignment'");
  if (alignment == 0 || !std::has_single_bit(alignment)) {
    in.fail_at(at,
               "'general.alignment' is " + std::to_string(alignment) + ", expected a power of two");
  }
  return alignment;
}

struct KeyValues {
  GgufMetadata metadata;
  uint64_t alignment = kDefaultAlignment;
};

KeyValues read_key_values(GgufStream& in, uint64_t kv_count) {
  KeyValues read;
  std::set<std::string> seen;  // also the keys read past, which `keys` does not hold
  for (uint64_t i = 0; i < kv_count; ++i) {
    const uint64_t key_at = in.offset();
    std::string key = read_key(in, i);
    if (!seen.insert(key).second) {
      in.fail_at(key_at, "key " + in_quotes(key) + " appears twice; expected each key once");
    }
    const uint64_t type_at = in.offset();
    const ValueType type = value_type(in, "key " + in_quotes(key));
    if (key == "general.alignment") {
      read.alignment = read_alignment(in, type, type_at);
      read.metadata.keys.emplace(std::move(key), static_cast<int64_t>(read.alignment));
      continue;
    }
    std::optional<GgufValue> value = read_value(in, type, key);
    if (key == "general.architecture") {
      if (type != ValueType::kString || !value) {
        in.fail_at(type_at, "'general.architecture' has type " + std::string(type_name(type)) +
                                ", expected a string");
      }
      read.metadata.architecture = std::get<std::string>(*value);
    }
    if (value) read.metadata.keys.emplace(std::move(key), std::move(*value));
  }
  return read;
}

struct Shape {
  uint64_t elements = 1;
  bool is_vector = false;  // one dimension, or more whose sizes past the first are all 1
};

struct RopeTensorInfo {
  std::string name;  // without ".weight"
  uint64_t info_at = 0;
  Shape shape;
  uint32_t ggml_type = 0;
  uint64_t offset = 0;
};

constexpr std::array<std::string_view, 3> kRopeTensors = {"rope_freqs", "rope_factors_long",
                                                          "rope_factors_short"};

// The RoPE tensor `name` denotes ("rope_freqs.weight" -> "rope_freqs"), or empty. A per-layer
// copy ("blk.3.rope_freqs.weight") is refused: llama.cpp loads one shared tensor, and rotary
// would not know which layer's to use.
std::string rope_tensor_name(GgufStream& in, std::string_view name, uint64_t at) {
  for (std::string_view rope : kRopeTensors) {
    if (name.size() == rope.size() + 7 && name.starts_with(rope) && name.ends_with(".weight")) {
      return std::string(rope);
    }
    if (name.starts_with("blk.") && name.find("." + std::string(rope) + ".") != name.npos) {
      in.fail_at(at, "tensor " + in_quotes(name) + " is a per-layer " + std::string(rope) +
                         "; expected one " + std::string(rope) + ".weight for all layers");
    }
  }
  return {};
}

// A tensor's dimensions: at most 4, each at most INT64_MAX, their product too (llama.cpp's
// rules).
Shape read_dims(GgufStream& in, const std::string& what) {
  const uint64_t at = in.offset();
  const uint32_t n_dims = in.u32("dimension count of " + what);
  if (n_dims > kMaxDims) {
    in.fail_at(at, what + " has " + std::to_string(n_dims) + " dimensions, expected at most " +
                       std::to_string(kMaxDims));
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  Shape shape;
  shape.is_vector = n_dims >= 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim_at = in.offset();
    const uint64_t dim = in.u64("dimension " + std::to_string(d) + " of " + what);
    if (dim > kMax) {
      in.fail_at(dim_at, what + " dimension " + std::to_string(d) + " is " + std::to_string(dim) +
                             ", expected at most " + std::to_string(kMax));
    }
    if (dim != 0 && shape.elements > kMax / dim) {
      in.fail_at(dim_at, what + " has more elements than an int64 can count");
    }
    shape.elements *= dim;
    if (d > 0 && dim != 1) shape.is_vector = false;
  }
  return shape;
}

std::vector<RopeTensorInfo> read_tensor_infos(GgufStream& in, uint64_t tensor_count) {
  std::vector<RopeTensorInfo> rope;
  std::set<std::string> seen;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    const uint64_t at = in.offset();
    const std::string what = "tensor " + std::to_string(i);
    const uint64_t length = in.string_length("the name of " + what);
    if (length > kMaxTensorNameBytes) {
      in.fail_at(at, "the name of " + what + " is " + std::to_string(length) +
                         " bytes long; expected at most " + std::to_string(kMaxTensorNameBytes));
    }
    std::string name = in.string_of(length, "the name of " + what);
    if (!seen.insert(name).second) {
      in.fail_at(at, "tensor " + in_quotes(name) + " appears twice; expected each tensor once");
    }
    const std::string tensor = "tensor " + in_quotes(name);
    const Shape shape = read_dims(in, tensor);
    const uint32_t ggml_type = in.u32("ggml type of " + tensor);
    const uint64_t offset = in.u64("data offset of " + tensor);
    std::string rope_name = rope_tensor_name(in, name, at);
    if (!rope_name.empty()) rope.push_back({std::move(rope_name), at, shape, ggml_type, offset});
  }
  return rope;
}

// A RoPE tensor's float32 values, after checking its type, size, alignment and that its data
// lies inside the file.
std::vector<float> read_rope_tensor(GgufStream& in, const RopeTensorInfo& info, uint64_t data_start,
                                    uint64_t alignment) {
  const std::string what = "tensor '" + info.name + ".weight'";
  if (info.ggml_type != kGgmlTypeF32) {
    in.fail_at(info.info_at, what + " has ggml type " + std::to_string(info.ggml_type) +
                                 ", expected F32 (type 0)");
  }
  if (!info.shape.is_vector) {
    in.fail_at(info.info_at, what + " is not a vector; expected one factor per rotated pair");
  }
  const uint64_t elements = info.shape.elements;
  if (elements > kMaxRopeTensorElements) {
    in.fail_at(info.info_at, what + " has " + std::to_string(elements) +
                                 " elements, expected at most " +
                                 std::to_string(kMaxRopeTensorElements) + " (one per pair)");
  }
  if (info.offset % alignment != 0) {
    in.fail_at(info.info_at, what + " has data offset " + std::to_string(info.offset) +
                                 ", expected a multiple of the alignment " +
                                 std::to_string(alignment));
  }
  const uint64_t bytes = elements * 4;
  if (data_start > in.size() || info.offset > in.size() - data_start ||
      bytes > in.size() - data_start - info.offset) {
    in.fail_at(info.info_at, what + "'s " + std::to_string(bytes) + " bytes at data offset " +
                                 std::to_string(info.offset) + " (byte " +
                                 std::to_string(data_start) + " + offset) lie past the end of " +
                                 "the file (" + std::to_string(in.size()) + " bytes)");
  }
  in.seek(data_start + info.offset, "the data of " + what);
  const uint64_t at = in.offset();
  std::vector<unsigned char> data(bytes);
  in.read(data.data(), data.size(), "the float32 data of " + what);
  std::vector<float> values(elements);
  for (uint64_t i = 0; i < elements; ++i) {
    values[i] = static_cast<float>(float_of(ValueType::kFloat32, &data[i * 4]));
    if (!std::isfinite(values[i])) {
      in.fail_at(at + i * 4, what + "[" + std::to_string(i) + "] is " + std::to_string(values[i]) +
                                 ", expected a finite number");
    }
  }
  return values;
}

}  // namespace

GgufMetadata read_gguf(const std::string& path) {
  GgufStream in(path);
  const Header header = read_header(in);
  KeyValues read = read_key_values(in, header.kv_count);
  if (!read.metadata.keys.count("general.architecture")) {
    in.fail_at(24, "no key 'general.architecture'; expected the model's architecture (a string)");
  }
  const std::vector<RopeTensorInfo> rope = read_tensor_infos(in, header.tensor_count);
  // The data section starts at the next multiple of the alignment (from the file's start).
  const uint64_t end_of_infos = in.offset();
  const uint64_t padding = (read.alignment - end_of_infos % read.alignment) % read.alignment;
  if (header.tensor_count > 0 && padding > in.left()) {
    in.fail("the file ends before the tensor data, which starts at the next multiple of " +
            std::to_string(read.alignment));
  }
  const uint64_t data_start = end_of_infos + padding;
  for (const RopeTensorInfo& info : rope) {
    read.metadata.rope_tensors.emplace(info.name,
                                       read_rope_tensor(in, info, data_start, read.alignment));
  }
  return std::move(read.metadata);
}

}  // namespace rotary
