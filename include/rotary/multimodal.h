// Position ids for multimodal prompts, built as transformers builds them.
//
// Qwen2-VL and its successors (M-RoPE) give every token of the language model three position
// components (temporal, height, width). Text tokens carry one value on all three axes and count up
// one per token; an image or video placed at position s gives its patch at (t, h, w) of the merged
// grid the components (s + t * time_interval, s + h, s + w), and the text after it resumes at
// s + max(grid_h, grid_w) / spatial_merge_size. Vision towers rotate each patch by its (row,
// column) in the grid.
//
//   const std::vector<rotary::PromptSegment> prompt = {
//       rotary::PromptSegment::text(5), rotary::PromptSegment::image({1, 28, 42}),
//       rotary::PromptSegment::text(9)};
//   const rotary::MultimodalPositions ids = rotary::mrope_positions(prompt, 2);
//   rope.rotate(q, k, ids.positions());           // prefill, three components per token
//   // decode: the token at cache index c has position c + ids.rope_delta on every axis.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rotary/positions.h"

namespace rotary {

// An image or video in patches, before the spatial merge: `t` frames (temporal patches) of h x w.
struct VisionGrid {
  int64_t t = 1;
  int64_t h = 0;
  int64_t w = 0;
};

// One run of a prompt: text tokens, or one image or video.
struct PromptSegment {
  int64_t text_tokens = 0;  // > 0 for a run of text
  VisionGrid grid;          // otherwise
  // Temporal spacing of a video's frames in position units. Qwen2-VL and Qwen3-VL: 1; Qwen2.5-VL:
  // tokens_per_second * second_per_grid_t. Frame f sits at trunc(float32(f) * float32(interval)).
  double time_interval = 1.0;

  static PromptSegment text(int64_t tokens) { return {tokens, {}, 1.0}; }
  static PromptSegment image(VisionGrid grid) { return {0, grid, 1.0}; }
  static PromptSegment video(VisionGrid grid, double time_interval) {
    return {0, grid, time_interval};
  }
};

// Owned position ids, axis-major (num_axes rows of num_tokens), with a view for Rope::rotate.
struct MultimodalPositions {
  std::vector<int64_t> ids;
  int num_axes = 0;
  int64_t num_tokens = 0;
  // M-RoPE: max(position) + 1 - num_tokens; decode token c then sits at c + rope_delta.
  int64_t rope_delta = 0;

  Positions positions() const { return Positions(std::span<const int64_t>(ids), num_axes); }
  int64_t at(int64_t token, int axis) const { return ids[axis * num_tokens + token]; }
};

// The (temporal, height, width) ids of a prompt, as transformers' get_rope_index for Qwen2-VL,
// Qwen2.5-VL and Qwen3-VL (Qwen3-VL: give each video frame as its own segment with t = 1, as its
// processor separates frames by timestamp text). Grid h and w must be multiples of
// spatial_merge_size. Throws rotary::Error naming the segment on bad input, and naming
// "segments" (with the bytes) when the prompt has more than kMaxPositionIds tokens
// (rotary/limits.h).
MultimodalPositions mrope_positions(std::span<const PromptSegment> segments,
                                    int64_t spatial_merge_size);

// The (row, column) ids of a vision tower's patches, images one after another. Every frame of a
// video repeats its image's ids. spatial_merge_size > 1 orders the patches window by window
// (Qwen2-VL's merge_size x merge_size blocks, row-major inside each); 1 is plain row-major
// (Pixtral). More than kMaxPositionIds patches in all throws rotary::Error naming "grids".
MultimodalPositions vision_patch_positions(std::span<const VisionGrid> grids,
                                           int64_t spatial_merge_size);

}  // namespace rotary
