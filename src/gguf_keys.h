// Typed access to a GGUF file's `<arch>.*` keys, each error naming the full key. Private to
// gguf_rope.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rotary/error.h"
#include "rotary/gguf.h"

namespace rotary::detail {

// A number for messages: nine significant digits (every float32 key exactly).
inline std::string show(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

inline bool among(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

[[noreturn]] inline void invalid_gguf(const std::string& key, const std::string& message) {
  throw Error(ErrorCode::kInvalidConfig, key, message);
}

class GgufKeys {
 public:
  explicit GgufKeys(const GgufMetadata& metadata)
      : metadata_(metadata), prefix_(metadata.architecture + ".") {}

  // "<arch>.<suffix>", as the file spells it.
  std::string name(std::string_view suffix) const { return prefix_ + std::string(suffix); }
  const std::string& prefix() const { return prefix_; }
  bool has(std::string_view suffix) const { return find(suffix) != nullptr; }

  std::optional<int64_t> integer(std::string_view suffix) const {
    const GgufValue* v = find(suffix);
    if (!v) return std::nullopt;
    if (const auto* i = std::get_if<int64_t>(v)) return *i;
    invalid_gguf(name(suffix), "expected an integer");
  }

  // A float key; an integer value is taken as the same number.
  std::optional<double> number(std::string_view suffix) const {
    const GgufValue* v = find(suffix);
    if (!v) return std::nullopt;
    if (const auto* d = std::get_if<double>(v)) return *d;
    if (const auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
    invalid_gguf(name(suffix), "expected a number");
  }

  // A finite number > 0 (every scale and base llama.cpp reads is one).
  std::optional<double> positive(std::string_view suffix) const {
    const std::optional<double> v = number(suffix);
    if (v && !(std::isfinite(*v) && *v > 0)) {
      invalid_gguf(name(suffix), "expected a finite number > 0, got " + std::to_string(*v));
    }
    return v;
  }

  std::optional<std::string> text(std::string_view suffix) const {
    const GgufValue* v = find(suffix);
    if (!v) return std::nullopt;
    if (const auto* s = std::get_if<std::string>(v)) return *s;
    invalid_gguf(name(suffix), "expected a string");
  }

  // An integer array, or one integer standing for `count` equal entries, as llama.cpp's
  // get_key_or_arr reads it (count 0: any array length, a single integer is one entry).
  std::optional<std::vector<int64_t>> integers(std::string_view suffix, std::size_t count) const {
    const GgufValue* v = find(suffix);
    if (!v) return std::nullopt;
    if (const auto* i = std::get_if<int64_t>(v)) return std::vector<int64_t>(count ? count : 1, *i);
    const auto* a = std::get_if<std::vector<int64_t>>(v);
    if (!a) invalid_gguf(name(suffix), "expected an integer or an array of integers");
    if (count != 0 && a->size() != count) {
      invalid_gguf(name(suffix), "expected " + std::to_string(count) + " entries, got " +
                                     std::to_string(a->size()));
    }
    return *a;
  }

 private:
  const GgufValue* find(std::string_view suffix) const {
    const auto it = metadata_.keys.find(name(suffix));
    return it == metadata_.keys.end() ? nullptr : &it->second;
  }

  const GgufMetadata& metadata_;
  std::string prefix_;
};

}  // namespace rotary::detail
