// Fuzzes Rope::rotate with arbitrary shapes, strides, positions and dtypes against a buffer
// allocated to exactly the extent this harness computes for the view (independently of the
// library, in 128-bit arithmetic). Under AddressSanitizer any access outside the view is a crash.
// Views whose sizes or strides are negative or overflow must be rejected with rotary::Error; views
// too large to allocate here are skipped.
//
// One input in four instead carves q, q_out, k and k_out out of one small buffer at arbitrary
// offsets and strides, and checks the aliasing rule both ways by enumerating every byte: a call
// accepted must have had each output equal to its own input or disjoint from it and from every
// other tensor, and a call refused for sharing memory must really have shared a byte.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rotary/error.h"
#include "rotary/limits.h"
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

// A view of `heads` heads over the buffer, or nothing if it does not fit inside.
bool carve(Reader& r, unsigned char* buffer, int64_t elements, rotary::DType dtype, int64_t tokens,
           int64_t heads, int64_t head_dim, rotary::TensorView& view) {
  const int64_t offset = r.take<uint16_t>() % elements;
  const int64_t token_stride = r.take<uint8_t>() % 96, head_stride = r.take<uint8_t>() % 96;
  const int64_t extent = (tokens - 1) * token_stride + (heads - 1) * head_stride + head_dim;
  if (offset + extent > elements) return false;
  view = {buffer + offset * static_cast<int64_t>(rotary::dtype_size(dtype)),
          dtype,
          tokens,
          heads,
          head_dim,
          token_stride,
          head_stride};
  return true;
}

// Which bytes of the buffer a view touches, one flag per byte.
std::vector<bool> footprint(const rotary::ConstTensorView& v, const unsigned char* buffer,
                            std::size_t bytes) {
  std::vector<bool> touched(bytes);
  const auto size = static_cast<int64_t>(rotary::dtype_size(v.dtype));
  const auto first = static_cast<const unsigned char*>(v.data) - buffer;
  for (int64_t t = 0; t < v.num_tokens; ++t) {
    for (int64_t h = 0; h < v.num_heads; ++h) {
      const int64_t row = first + (t * v.token_stride + h * v.head_stride) * size;
      for (int64_t b = 0; b < v.head_dim * size; ++b)
        touched[static_cast<std::size_t>(row + b)] = true;
    }
  }
  return touched;
}

bool intersect(const std::vector<bool>& a, const std::vector<bool>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] && b[i]) return true;
  }
  return false;
}

// Whether the rule holds for (q, q_out) and (k, k_out), from the bytes alone.
bool aliasing_allowed(const rotary::TensorView views[4], const unsigned char* buffer,
                      std::size_t bytes) {
  std::vector<bool> touched[4];
  for (int i = 0; i < 4; ++i) touched[i] = footprint(views[i], buffer, bytes);
  const auto same = [&](int a, int b) {
    const rotary::TensorView &x = views[a], &y = views[b];
    return x.data == y.data && (x.num_tokens <= 1 || x.token_stride == y.token_stride) &&
           (x.num_heads <= 1 || x.head_stride == y.head_stride);
  };
  // 0 q, 1 q_out, 2 k, 3 k_out.
  return (same(0, 1) || !intersect(touched[0], touched[1])) &&
         (same(2, 3) || !intersect(touched[2], touched[3])) && !intersect(touched[1], touched[2]) &&
         !intersect(touched[3], touched[0]) && !intersect(touched[1], touched[3]);
}

void fuzz_aliasing(Reader& r, const rotary::Rope& rope, rotary::DType dtype) {
  const int64_t elements = 64 + r.take<uint16_t>() % 1024;
  const int64_t head_dim = rope.head_dim();
  const int64_t tokens = 1 + r.take<uint8_t>() % 4;
  const int64_t q_heads = 1 + r.take<uint8_t>() % 4, k_heads = 1 + r.take<uint8_t>() % 4;
  const std::size_t bytes = static_cast<std::size_t>(elements) * rotary::dtype_size(dtype);
  std::vector<unsigned char> buffer(bytes, 0x3C);
  rotary::TensorView v[4];  // q, q_out, k, k_out
  const uint8_t in_place = r.take<uint8_t>();
  for (int i = 0; i < 4; ++i) {
    if (i % 2 == 1 && (in_place >> i) % 2) {
      v[i] = v[i - 1];
    } else if (!carve(r, buffer.data(), elements, dtype, tokens, i < 2 ? q_heads : k_heads,
                      head_dim, v[i])) {
      return;
    }
  }
  std::vector<int64_t> positions(static_cast<std::size_t>(tokens));
  for (int64_t& p : positions) p = r.take<int8_t>();
  try {
    rope.rotate(v[0], v[1], v[2], v[3], positions);
    if (!aliasing_allowed(v, buffer.data(), bytes)) std::abort();  // accepted a real overlap
  } catch (const rotary::Error& e) {
    const std::string what = e.what();
    const bool aliasing = what.find("shares memory") != std::string::npos ||
                          what.find("partially") != std::string::npos;
    if (aliasing && aliasing_allowed(v, buffer.data(), bytes)) std::abort();  // refused wrongly
  }
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
    // Every order the library knows: chunked, interleaved, ERNIE's alternating (which refuses
    // sections whose first two differ).
    config.mrope_order = static_cast<rotary::MropeOrder>(r.take<uint8_t>() % 3);
    try {
      config.validate();
      axes = r.take<uint8_t>() % 2 ? 3 : 1;
    } catch (const rotary::Error&) {
      config.mrope_section.clear();  // an interleaved split that overruns: refused, as it must be
    }
  }
  const rotary::AngleMode angle_mode =
      r.take<uint8_t>() % 2 ? rotary::AngleMode::kExact : rotary::AngleMode::kHf;
  const uint8_t cache_choice = r.take<uint8_t>();
  if (cache_choice >= 250) {
    // A cache size past the limit, or negative: refused before any table is allocated.
    const int64_t size = cache_choice % 2 ? -1 - int64_t{r.take<uint16_t>()}
                                          : rotary::kMaxTablePositions + 1 + r.take<uint32_t>();
    try {
      const rotary::Rope refused(config, {.angle_mode = angle_mode, .cache_positions = size});
      std::abort();
    } catch (const rotary::Error&) {
    }
    return 0;
  }
  const rotary::RopeOptions options{.angle_mode = angle_mode, .cache_positions = cache_choice % 64};
  const rotary::Rope rope(config, options);
  const rotary::DType dtype = static_cast<rotary::DType>(r.take<uint8_t>() % 3);
  if (r.take<uint8_t>() % 4 == 3) {
    fuzz_aliasing(r, rope, dtype);
    return 0;
  }

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
