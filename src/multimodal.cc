#include "rotary/multimodal.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "rotary/error.h"
#include "rotary/limits.h"
#include "sizes.h"
#include "validate.h"

namespace rotary {
namespace {

using detail::invalid;

// Bounds keep every id and count far inside int64; rotary/limits.h bounds the total.
constexpr int64_t kMaxExtent = int64_t{1} << 24;

void check_grid(const VisionGrid& g, int64_t merge, const std::string& name) {
  for (auto [value, axis] : {std::pair{g.t, "t"}, std::pair{g.h, "h"}, std::pair{g.w, "w"}}) {
    if (value <= 0 || value > kMaxExtent) {
      invalid(name + "." + axis, "expected 1 .. 2^24 patches, got " + std::to_string(value));
    }
  }
  if (g.h % merge != 0 || g.w % merge != 0) {
    invalid(name, "h and w (" + std::to_string(g.h) + " x " + std::to_string(g.w) +
                      ") must be multiples of spatial_merge_size " + std::to_string(merge));
  }
  // In double: three extents of up to 2^24 overflow int64. Past this check t * h * w <= 2^44.
  const double merged = static_cast<double>(g.t) * static_cast<double>(g.h / merge) *
                        static_cast<double>(g.w / merge);
  if (merged > static_cast<double>(int64_t{1} << 32)) {
    invalid(name, "more than 2^32 merged patches");
  }
}

void check_merge(int64_t merge) {
  if (merge <= 0 || merge > 64) {
    invalid("spatial_merge_size", "expected 1 .. 64, got " + std::to_string(merge));
  }
}

// The ids of `tokens` tokens with `axes` int64 components each, in the words of size errors.
detail::SizeRequest ids_request(int64_t tokens, int axes, const char* argument) {
  return {argument, std::to_string(tokens) + " tokens",
          static_cast<double>(tokens) * axes * sizeof(int64_t),
          "position ids (" + std::to_string(axes) + " axes x 8 bytes each)"};
}

void check_id_count(int64_t tokens, int axes, const char* argument) {
  detail::check_count(ids_request(tokens, axes, argument), tokens,
                      {kMaxPositionIds, "tokens", "rotary::kMaxPositionIds"});
}

MultimodalPositions allocate_ids(int64_t tokens, int axes, const char* argument) {
  MultimodalPositions out;
  out.num_axes = axes;
  out.num_tokens = tokens;
  detail::allocate_or_throw(ids_request(tokens, axes, argument),
                            [&] { out.ids.resize(static_cast<std::size_t>(axes * tokens)); });
  return out;
}

}  // namespace

MultimodalPositions mrope_positions(std::span<const PromptSegment> segments,
                                    int64_t spatial_merge_size) {
  check_merge(spatial_merge_size);
  int64_t total = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const PromptSegment& s = segments[i];
    const std::string name = "segments[" + std::to_string(i) + "]";
    if (s.text_tokens < 0 || s.text_tokens > (int64_t{1} << 40)) {
      invalid(name + ".text_tokens", "expected 0 .. 2^40, got " + std::to_string(s.text_tokens));
    }
    if (s.text_tokens > 0) {
      total += s.text_tokens;
    } else {
      check_grid(s.grid, spatial_merge_size, name + ".grid");
      if (!std::isfinite(s.time_interval) || s.time_interval < 0 || s.time_interval > 1e6) {
        invalid(name + ".time_interval", "expected a finite number in [0, 1e6]");
      }
      total += s.grid.t * (s.grid.h / spatial_merge_size) * (s.grid.w / spatial_merge_size);
    }
    // Checked as it grows: each segment adds at most 2^40, so the sum cannot overflow.
    check_id_count(total, 3, "segments");
  }

  MultimodalPositions out = allocate_ids(total, 3, "segments");
  int64_t* axis_row[3] = {out.ids.data(), out.ids.data() + total, out.ids.data() + 2 * total};
  int64_t token = 0, current = 0, max_id = -1;
  const auto put = [&](int64_t t, int64_t h, int64_t w) {
    axis_row[0][token] = t;
    axis_row[1][token] = h;
    axis_row[2][token] = w;
    max_id = std::max({max_id, t, h, w});
    ++token;
  };
  for (const PromptSegment& s : segments) {
    if (s.text_tokens > 0) {
      for (int64_t i = 0; i < s.text_tokens; ++i) put(current + i, current + i, current + i);
      current += s.text_tokens;
      continue;
    }
    const int64_t grid_h = s.grid.h / spatial_merge_size, grid_w = s.grid.w / spatial_merge_size;
    // transformers: (arange(t) * time_interval).long(), an int tensor times a Python float, which
    // PyTorch computes in float32 and truncates.
    const auto interval = static_cast<float>(s.time_interval);
    for (int64_t f = 0; f < s.grid.t; ++f) {
      const auto frame = static_cast<int64_t>(static_cast<float>(f) * interval);
      for (int64_t h = 0; h < grid_h; ++h) {
        for (int64_t w = 0; w < grid_w; ++w) put(current + frame, current + h, current + w);
      }
    }
    // The next run starts max(h, w) / merge past this one's start (not past its largest id).
    current += std::max(s.grid.h, s.grid.w) / spatial_merge_size;
  }
  out.rope_delta = total == 0 ? 0 : max_id + 1 - total;
  return out;
}

MultimodalPositions vision_patch_positions(std::span<const VisionGrid> grids,
                                           int64_t spatial_merge_size) {
  check_merge(spatial_merge_size);
  int64_t total = 0;
  for (std::size_t i = 0; i < grids.size(); ++i) {
    check_grid(grids[i], spatial_merge_size, "grids[" + std::to_string(i) + "]");
    total += grids[i].t * grids[i].h * grids[i].w;  // at most 2^44 per grid: no overflow
    check_id_count(total, 2, "grids");
  }
  MultimodalPositions out = allocate_ids(total, 2, "grids");
  int64_t* rows = out.ids.data();
  int64_t* columns = out.ids.data() + total;
  int64_t token = 0;
  const int64_t m = spatial_merge_size;
  for (const VisionGrid& g : grids) {
    for (int64_t f = 0; f < g.t; ++f) {
      // Window (bh, bw) of m x m patches, then row-major inside the window.
      for (int64_t bh = 0; bh < g.h / m; ++bh) {
        for (int64_t bw = 0; bw < g.w / m; ++bw) {
          for (int64_t ih = 0; ih < m; ++ih) {
            for (int64_t iw = 0; iw < m; ++iw) {
              rows[token] = bh * m + ih;
              columns[token] = bw * m + iw;
              ++token;
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace rotary
