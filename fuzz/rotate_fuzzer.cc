// Fuzzes Rope::rotate with arbitrary shapes, strides, positions and dtypes against a buffer
// allocated to exactly the extent this harness computes for the view (independently of the
// library, in 128-bit arithmetic). Under AddressSanitizer any access outside the view is a crash.
// Views whose sizes or strides are negative or overflow must be rejected with rotary::Error; views
// too large to allocate here are skipped.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rotary/error.h"
#include "rotary/rope.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T take() {
    T value{};
    const size_t n = std::min(sizeof(T), size_ - pos_);
    std::memcpy(&value, data_ + pos_, n);
    pos_ += n;
    return value;
  }
  bool empty() const { return pos_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Mostly small values, sometimes anything (negative, huge).
int64_t shape_value(Reader& r) {
  const uint8_t mode = r.take<uint8_t>();
  if (mode < 200) return mode % 24;
  if (mode < 250) return r.take<int16_t>();
  return r.take<int64_t>();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const auto head_dim = static_cast<int64_t>(2 + 2 * (r.take<uint8_t>() % 20));
  rotary::RopeConfig config = rotary::default_config(
      head_dim, 10000.0,
      r.take<uint8_t>() % 2 ? rotary::Layout::kInterleaved : rotary::Layout::kHalfSplit);
  config.rotary_dim = 2 * (1 + r.take<uint8_t>() % (head_dim / 2));
  int axes = 1;
  if (r.take<uint8_t>() % 3 == 0) {
    // M-RoPE: three sections splitting the pairs, consecutive or interleaved.
    const int64_t half = *config.rotary_dim / 2;
    const int64_t a = r.take<uint8_t>() % (half + 1), b = r.take<uint8_t>() % (half - a + 1);
    config.mrope_section = {a, b, half - a - b};
    config.mrope_interleaved = r.take<uint8_t>() % 2;
    try {
      config.validate();
      axes = r.take<uint8_t>() % 2 ? 3 : 1;
    } catch (const rotary::Error&) {
      config.mrope_section.clear();  // an interleaved split that overruns: refused, as it must be
    }
  }
  const rotary::RopeOptions options{
      .angle_mode = r.take<uint8_t>() % 2 ? rotary::AngleMode::kExact : rotary::AngleMode::kHf,
      .cache_positions = r.take<uint8_t>() % 64};
  const rotary::Rope rope(config, options);
  const rotary::DType dtype = static_cast<rotary::DType>(r.take<uint8_t>() % 3);

  rotary::TensorView view;
  view.dtype = dtype;
  view.num_tokens = shape_value(r);
  view.num_heads = shape_value(r);
  view.head_dim = r.take<uint8_t>() % 8 == 0 ? shape_value(r) : head_dim;
  view.token_stride = shape_value(r);
  view.head_stride = shape_value(r);
  std::vector<int64_t> positions;
  const int64_t count = r.take<uint8_t>() % 8 == 0 ? shape_value(r) : view.num_tokens;
  for (int64_t i = 0; i < std::clamp<int64_t>(count, 0, 64) * axes; ++i) {
    positions.push_back(r.take<uint8_t>() % 4 == 0 ? r.take<int64_t>() : r.take<int16_t>());
  }

  const bool invalid_sizes = view.num_tokens < 0 || view.num_heads < 0 || view.token_stride < 0 ||
                             view.head_stride < 0 || view.head_dim < 0;
  __int128 extent = 0;  // elements touched, computed here independently of the library
  if (!invalid_sizes && view.num_tokens > 0 && view.num_heads > 0 && view.head_dim > 0) {
    extent = static_cast<__int128>(view.num_tokens - 1) * view.token_stride +
             static_cast<__int128>(view.num_heads - 1) * view.head_stride + view.head_dim;
  }
  if (extent > (1 << 16)) return 0;  // valid perhaps, but larger than this harness allocates
  // Exactly `extent` elements from a fresh allocation: the byte after the last one is poisoned.
  const size_t bytes = static_cast<size_t>(extent) * rotary::dtype_size(dtype);
  auto* buffer = static_cast<unsigned char*>(std::malloc(std::max<size_t>(bytes, 1)));
  std::memset(buffer, 0x3C, bytes);
  view.data = buffer;
  try {
    rope.rotate(view, rotary::Positions(positions, axes),
                r.take<uint8_t>() % 2 ? rotary::Direction::kInverse : rotary::Direction::kForward);
    if (invalid_sizes) std::abort();  // negative sizes or strides must never be accepted
  } catch (const rotary::Error&) {
  }
  std::free(buffer);
  return 0;
}
