#include "safetensors.h"

#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "rotary/error.h"

namespace rotary::tools::safetensors {
namespace {

constexpr std::size_t kLengthBytes = 8;
// The format lets a header end in spaces; the tool pads to 8 bytes so that every tensor's data
// stays aligned for its element type.
constexpr std::size_t kAlignment = 8;

[[noreturn]] void bad(const std::string& path, const std::string& message) {
  throw Error(ErrorCode::kParseError, path, message);
}

struct Dtype {
  const char* name;
  StorageType storage;
};
constexpr Dtype kDtypes[] = {{"F64", StorageType::kFloat64},
                             {"F32", StorageType::kFloat32},
                             {"F16", StorageType::kFloat16},
                             {"BF16", StorageType::kBFloat16}};

std::string dtype_name(StorageType storage) {
  for (const Dtype& d : kDtypes) {
    if (d.storage == storage) return d.name;
  }
  return "?";
}

// Unreadable (0 bytes) for a dtype the tool does not read.
ElementType element_type(const std::string& dtype) {
  for (const Dtype& d : kDtypes) {
    if (dtype == d.name) return real_type(d.storage);
  }
  return {StorageType::kFloat32, 0, false};
}

uint64_t header_length(const std::string& path, std::span<const unsigned char> bytes) {
  if (bytes.size() < kLengthBytes) bad(path, "not a safetensors file (too short)");
  uint64_t length = 0;
  for (int b = static_cast<int>(kLengthBytes) - 1; b >= 0; --b) length = (length << 8) | bytes[b];
  if (length > kMaxHeaderBytes) {
    bad(path, "safetensors header length " + std::to_string(length) +
                  " exceeds the format's limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (length > bytes.size() - kLengthBytes) bad(path, "truncated safetensors header");
  return length;
}

nlohmann::json parse_header(const std::string& path, std::span<const unsigned char> bytes,
                            uint64_t length) {
  nlohmann::json header;
  try {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + kLengthBytes, length);
    header = parse_bounded_json(text, path, kMaxHeaderBytes);
  } catch (const Error& e) {
    throw Error(e.code(), path, "safetensors header: " + e.message());
  }
  if (!header.is_object()) bad(path, "safetensors header is not a JSON object");
  return header;
}

// The tensor `name` described by `info`, its data inside `buffer` (what follows the header).
StoredArray tensor(const std::string& path, const std::string& name, const nlohmann::json& info,
                   std::span<const unsigned char> buffer) {
  StoredArray a;
  a.name = name;
  const std::string dtype = info.at("dtype").get<std::string>();
  a.type = element_type(dtype);
  a.shape = info.at("shape").get<std::vector<int64_t>>();
  const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
  if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > buffer.size()) {
    bad(path, "tensor '" + name + "': data_offsets outside the file");
  }
  if (a.type.readable() && array_bytes(a.shape, a.type.bytes) != offsets[1] - offsets[0]) {
    bad(path, "tensor '" + name + "': data_offsets do not match its shape");
  }
  a.data = buffer.data() + offsets[0];
  if (!a.type.readable()) a.name += " (dtype " + dtype + ")";
  return a;
}

}  // namespace

Layout layout(const std::vector<TensorSpec>& tensors,
              const std::map<std::string, std::string>& metadata) {
  nlohmann::json json = nlohmann::json::object();
  std::vector<uint64_t> starts;
  uint64_t end = 0;
  for (const TensorSpec& t : tensors) {
    const std::optional<uint64_t> bytes = array_bytes(t.shape, real_type(t.storage).bytes);
    if (!bytes) {
      throw Error(ErrorCode::kInvalidArgument, t.name,
                  "shape " + shape_text(t.shape) + " too large");
    }
    json[t.name] = {{"dtype", dtype_name(t.storage)},
                    {"shape", t.shape},
                    {"data_offsets", {end, end + *bytes}}};
    starts.push_back(end);
    end += *bytes;
  }
  if (!metadata.empty()) json["__metadata__"] = metadata;
  std::string text = json.dump();
  text.append((kAlignment - text.size() % kAlignment) % kAlignment, ' ');
  Layout out;
  for (std::size_t b = 0; b < kLengthBytes; ++b) {
    out.header.push_back(static_cast<char>((text.size() >> (8 * b)) & 0xFF));
  }
  out.header += text;
  for (uint64_t start : starts) out.offsets.push_back(out.header.size() + start);
  return out;
}

std::vector<StoredArray> read(const std::string& path, std::span<const unsigned char> bytes) {
  const uint64_t length = header_length(path, bytes);
  const nlohmann::json header = parse_header(path, bytes, length);
  const std::span<const unsigned char> buffer = bytes.subspan(kLengthBytes + length);
  std::vector<StoredArray> arrays;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      arrays.push_back(tensor(path, name, info, buffer));
    } catch (const nlohmann::json::exception& e) {
      bad(path, "tensor '" + name + "': " + e.what());
    }
  }
  return arrays;
}

}  // namespace rotary::tools::safetensors
