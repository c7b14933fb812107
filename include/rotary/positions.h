// Token positions: one integer per token, or several (one per position axis) for multimodal RoPE.
//
// A text model gives each token one position. Vision-language models give a token one position per
// axis: Qwen2-VL's M-RoPE uses (temporal, height, width), a ViT's 2D RoPE uses (row, column). The
// components are stored axis-major, as transformers' `position_ids` of shape (num_axes, seq): the
// component of token t on axis a is values[a * axis_stride + t]. Nothing is copied or owned.
#pragma once

#include <concepts>
#include <cstdint>
#include <ranges>
#include <span>
#include <variant>

namespace rotary {

class Positions {
 public:
  // The most position axes a token can carry.
  static constexpr int kMaxAxes = 4;

  // One axis: one position per token.
  Positions(std::span<const int32_t> values) : Positions(values, 1) {}  // NOLINT
  Positions(std::span<const int64_t> values) : Positions(values, 1) {}  // NOLINT
  // Any contiguous container of int32_t or int64_t (std::vector, std::array, ...); not owned.
  template <std::ranges::contiguous_range Range>
  requires std::same_as<std::ranges::range_value_t<Range>, int32_t> ||
      std::same_as<std::ranges::range_value_t<Range>, int64_t>
      Positions(const Range& values, int num_axes = 1)  // NOLINT
      : Positions(std::span<const std::ranges::range_value_t<Range>>(std::ranges::data(values),
                                                                     std::ranges::size(values)),
                  num_axes) {}

  // `num_axes` rows of values.size() / num_axes tokens each (axis-major). Throws rotary::Error
  // ("positions") when num_axes is outside [1, kMaxAxes] or does not divide the size.
  Positions(std::span<const int32_t> values, int num_axes) { init(values, num_axes); }
  Positions(std::span<const int64_t> values, int num_axes) { init(values, num_axes); }

  // Tokens (not components).
  int64_t size() const { return count_; }
  int num_axes() const { return num_axes_; }
  // The component of token t on axis 0 (the only one of a one-axis array).
  int64_t operator[](int64_t t) const { return at(t, 0); }
  // The component of token t on `axis`.
  int64_t at(int64_t t, int axis) const {
    const int64_t i = offset_ + axis * axis_stride_ + t;
    return std::visit([i](auto s) { return static_cast<int64_t>(s[static_cast<std::size_t>(i)]); },
                      values_);
  }
  // Tokens [first, first + count) on every axis: the positions of one batch entry.
  Positions slice(int64_t first, int64_t count) const {
    Positions p = *this;
    p.offset_ += first;
    p.count_ = count;
    return p;
  }
  // The data pointer, for null checks (a non-empty span must not be null).
  const void* data() const {
    return std::visit([](auto s) { return static_cast<const void*>(s.data()); }, values_);
  }

 private:
  template <typename T>
  void init(std::span<const T> values, int num_axes);

  std::variant<std::span<const int32_t>, std::span<const int64_t>> values_;
  int num_axes_ = 1;
  int64_t axis_stride_ = 0;
  int64_t offset_ = 0;
  int64_t count_ = 0;
};

}  // namespace rotary
