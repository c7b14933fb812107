// Multi-axis RoPE: the pair-to-axis maps of M-RoPE (chunked and interleaved) and 2D axial RoPE,
// the properties a multi-axis rotation must keep, and the position-id builders.
#include "rotary/multimodal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "rotary/config_json.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/rope.h"
#include "test_tensors.h"

namespace rotary {
namespace {

using testing::Buffer;

RopeConfig mrope_config(std::vector<int64_t> sections, bool interleaved, int64_t head_dim = 128,
                        Layout layout = Layout::kHalfSplit) {
  RopeConfig c = default_config(head_dim, 1000000.0, layout);
  c.mrope_section = std::move(sections);
  c.mrope_order = interleaved ? MropeOrder::kInterleaved : MropeOrder::kChunked;
  c.validate();
  return c;
}

std::vector<float> rotate_copy(const Rope& rope, const std::vector<float>& x, int64_t heads,
                               Positions positions) {
  std::vector<float> y = x;
  rope.rotate(
      TensorView::contiguous(y.data(), DType::kF32, positions.size(), heads, rope.head_dim()),
      positions);
  return y;
}

std::vector<float> random_vector(std::size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Chunked sections: consecutive runs (Qwen2-VL: pairs 0-15 temporal, 16-39 height, 40-63 width).
TEST(multimodal_test, chunked_sections_assign_consecutive_pairs) {
  const std::vector<int> axes = mrope_config({16, 24, 24}, false).pair_axes();
  ASSERT_EQ(axes.size(), 64u);
  for (int j = 0; j < 64; ++j) EXPECT_EQ(axes[j], j < 16 ? 0 : j < 40 ? 1 : 2) << j;
}

// Interleaved (Qwen3-VL, [24, 20, 20]): height owns j % 3 == 1 below 60, width j % 3 == 2 below
// 60, temporal the rest; each axis ends up with its section's count.
TEST(multimodal_test, interleaved_sections_cycle_through_the_axes) {
  const std::vector<int> axes = mrope_config({24, 20, 20}, true).pair_axes();
  ASSERT_EQ(axes.size(), 64u);
  int counts[3] = {0, 0, 0};
  for (int j = 0; j < 64; ++j) {
    const int expected = j < 60 ? j % 3 : 0;
    EXPECT_EQ(axes[j], expected) << j;
    ++counts[axes[j]];
  }
  EXPECT_EQ(counts[0], 24);
  EXPECT_EQ(counts[1], 20);
  EXPECT_EQ(counts[2], 20);
}

TEST(multimodal_test, bad_sections_are_config_errors) {
  RopeConfig c = default_config(128);
  c.mrope_section = {16, 24, 20};  // 60 pairs, not 64
  EXPECT_THROW(c.validate(), Error);
  c.mrope_section = {16, 24, 24, 0, 0};  // five axes
  EXPECT_THROW(c.validate(), Error);
  c.mrope_section = {-1, 33, 32};
  EXPECT_THROW(c.validate(), Error);
  c.mrope_section = {2, 31, 31};  // interleaved: height would need pair 1 + 3 * 30 = 91
  c.mrope_order = MropeOrder::kInterleaved;
  EXPECT_THROW(c.validate(), Error);
  // ERNIE-4.5-VL's order takes three sections, the first two equal (its class splits them so).
  c.mrope_order = MropeOrder::kSpatialAlternating;
  c.mrope_section = {24, 20, 20};
  EXPECT_THROW(c.validate(), Error);
  try {
    c.mrope_order = MropeOrder::kChunked;
    c.mrope_section = {16, 24, 20};
    c.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "mrope_section");
    EXPECT_NE(std::string(e.what()).find("rotary_dim / 2 = 64"), std::string::npos) << e.what();
  }
}

// The pair -> axis maps, written out from the model classes' recompositions (transformers 5.24).
TEST(multimodal_test, each_order_deals_pairs_as_its_model_class) {
  RopeConfig c = default_config(128);
  // Qwen4 / Qwen3-VL with sections claiming fewer pairs than there are: the rest stay temporal.
  c.mrope_order = MropeOrder::kInterleaved;
  c.mrope_section = {11, 11, 10};
  c.validate();
  std::vector<int> axes = c.pair_axes();
  for (int j = 0; j < 64; ++j) {
    const int expected = (j % 3 == 1 && j < 33) ? 1 : (j % 3 == 2 && j < 30) ? 2 : 0;
    EXPECT_EQ(axes[j], expected) << j;
  }
  // ERNIE-4.5-VL: split [22, 22, 20] -> sections 0 and 1 are height and width, stacked pair by
  // pair; section 2 temporal.
  c.mrope_order = MropeOrder::kSpatialAlternating;
  c.mrope_section = {22, 22, 20};
  c.validate();
  axes = c.pair_axes();
  for (int j = 0; j < 64; ++j) EXPECT_EQ(axes[j], j < 44 ? 1 + j % 2 : 0) << j;
  // Llama 4's and Step3's towers: columns take the first rotary_dim / 4 pairs.
  RopeConfig tower = default_config(88);
  tower.rope_type = RopeType::kAxial;
  tower.axial_columns_first = true;
  tower.validate();
  axes = tower.pair_axes();
  for (int j = 0; j < 44; ++j) EXPECT_EQ(axes[j], j < 22 ? 1 : 0) << j;
}

// A text token of a multi-axis model carries the same value on every axis and must rotate exactly
// as the one-axis RoPE of the same frequencies, for every layout, dtype and section order.
TEST(multimodal_test, equal_components_reduce_to_one_dimensional_rope) {
  for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
    for (bool interleaved : {false, true}) {
      for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
        SCOPED_TRACE(std::string(to_string(layout)) + (interleaved ? " interleaved" : " chunked") +
                     " " + std::string(to_string(dtype)));
        const RopeConfig multi = mrope_config(
            interleaved ? std::vector<int64_t>{24, 20, 20} : std::vector<int64_t>{16, 24, 24},
            interleaved, 128, layout);
        RopeConfig single = multi;
        single.mrope_section.clear();
        const Rope a(multi), b(single);
        const std::vector<int64_t> text = {0, 1, 2, 3, 500, 70000};
        std::vector<int64_t> three_axes;
        for (int axis = 0; axis < 3; ++axis)
          three_axes.insert(three_axes.end(), text.begin(), text.end());
        const int64_t tokens = 6, heads = 3;
        Buffer x(dtype, tokens * heads * 128);
        x.fill_normal(7);
        Buffer y = x, z = x;
        a.rotate(TensorView::contiguous(x.data(), dtype, tokens, heads, 128),
                 Positions(three_axes, 3));
        b.rotate(TensorView::contiguous(y.data(), dtype, tokens, heads, 128), Positions(text));
        EXPECT_EQ(x.bytes, y.bytes);
        // One component per token stands for equal components.
        a.rotate(TensorView::contiguous(z.data(), dtype, tokens, heads, 128), Positions(text));
        EXPECT_EQ(z.bytes, y.bytes);
      }
    }
  }
}

// Changing one axis's component moves only the pairs of that axis, each by (delta * theta_j).
TEST(multimodal_test, each_axis_rotates_only_its_own_pairs) {
  const RopeConfig c = mrope_config({24, 20, 20}, true);
  const Rope rope(c, {.angle_mode = AngleMode::kExact});
  const std::vector<int> axes = c.pair_axes();
  const std::vector<float> x = random_vector(128, 3);
  const std::vector<int64_t> base = {10, 20, 30};
  const std::vector<float> y0 = rotate_copy(rope, x, 1, Positions(base, 3));
  for (int axis = 0; axis < 3; ++axis) {
    std::vector<int64_t> moved = base;
    moved[axis] += 7;
    const std::vector<float> y1 = rotate_copy(rope, x, 1, Positions(moved, 3));
    for (int j = 0; j < 64; ++j) {
      const bool same = y0[j] == y1[j] && y0[j + 64] == y1[j + 64];
      EXPECT_EQ(same, axes[j] != axis) << "axis " << axis << " pair " << j;
    }
  }
}

// Attention scores depend on each axis only through the difference of the two tokens' components:
// shifting one axis for both q and k leaves <R q, R k> unchanged.
TEST(multimodal_test, scores_are_shift_invariant_per_axis) {
  for (bool interleaved : {false, true}) {
    const RopeConfig c = mrope_config(
        interleaved ? std::vector<int64_t>{24, 20, 20} : std::vector<int64_t>{16, 24, 24},
        interleaved);
    const Rope rope(c, {.angle_mode = AngleMode::kExact});
    const std::vector<float> q = random_vector(128, 11), k = random_vector(128, 12);
    const auto score = [&](std::vector<int64_t> qp, std::vector<int64_t> kp) {
      const std::vector<float> rq = rotate_copy(rope, q, 1, Positions(qp, 3));
      const std::vector<float> rk = rotate_copy(rope, k, 1, Positions(kp, 3));
      double s = 0;
      for (int i = 0; i < 128; ++i) s += static_cast<double>(rq[i]) * rk[i];
      return s;
    };
    const double reference = score({5, 9, 2}, {40, 3, 17});
    for (int axis = 0; axis < 3; ++axis) {
      for (int64_t shift : {1, 1000, 1000000}) {
        std::vector<int64_t> qp = {5, 9, 2}, kp = {40, 3, 17};
        qp[axis] += shift;
        kp[axis] += shift;
        EXPECT_NEAR(score(qp, kp), reference, 2e-4) << "axis " << axis << " shift " << shift;
      }
    }
  }
}

// The cache and the on-the-fly path give the same bits for multi-axis tokens, including
// components outside the cache.
TEST(multimodal_test, cache_and_on_the_fly_agree) {
  const RopeConfig c = mrope_config({16, 24, 24}, false);
  const Rope cached(c, {.cache_positions = 64}), uncached(c);
  const std::vector<int64_t> ids = {0,  3, 63,      64, 5000, /*h*/ 1, 3, 10,
                                    64, 2, /*w*/ 2, 3,  70,   0,       9};
  const std::vector<float> x = random_vector(5 * 2 * 128, 5);
  EXPECT_EQ(rotate_copy(cached, x, 2, Positions(ids, 3)),
            rotate_copy(uncached, x, 2, Positions(ids, 3)));
  std::vector<float> cos(5 * 64), sin(5 * 64);
  cached.cos_sin(Positions(ids, 3), cos, sin);
  // Pair 20 (height) of token 2 is the height component's angle, 10 * theta_20.
  EXPECT_FLOAT_EQ(cos[2 * 64 + 20], std::cos(10.0f * cached.frequencies().inv_freq[20]));
  EXPECT_FLOAT_EQ(sin[2 * 64 + 50], std::sin(70.0f * cached.frequencies().inv_freq[50]));
}

TEST(multimodal_test, position_axis_count_must_match_the_config) {
  const Rope one_axis(default_config(64)), three_axes(mrope_config({8, 12, 12}, false, 64));
  std::vector<float> x(2 * 64);
  const TensorView view = TensorView::contiguous(x.data(), DType::kF32, 2, 1, 64);
  const std::vector<int64_t> six = {0, 1, 2, 3, 4, 5};
  EXPECT_THROW(one_axis.rotate(view, Positions(six, 3)), Error);
  std::vector<float> three_tokens(3 * 64);
  EXPECT_THROW(three_axes.rotate(TensorView::contiguous(three_tokens.data(), DType::kF32, 3, 1, 64),
                                 Positions(six, 2)),
               Error);
  EXPECT_THROW(Positions(six, 4), Error);  // 6 values do not split into 4 rows
  EXPECT_THROW(Positions(six, 5), Error);
  EXPECT_NO_THROW(three_axes.rotate(view, Positions(six, 3)));
}

// Axial 2D RoPE: rows and columns each own rotary_dim / 4 pairs; the frequencies follow the family.
TEST(multimodal_test, axial_frequencies) {
  RopeConfig shared;
  shared.rope_type = RopeType::kAxial;
  shared.head_dim = 80;
  shared.axial_frequencies = AxialFrequencies::kShared;
  const Frequencies fs = compute_frequencies(shared);
  const Frequencies quarter = compute_frequencies(default_config(40));
  ASSERT_EQ(fs.inv_freq.size(), 40u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(fs.inv_freq[i], quarter.inv_freq[i]);
    EXPECT_EQ(fs.inv_freq[i + 20], quarter.inv_freq[i]);
  }
  RopeConfig alternating = shared;
  alternating.head_dim = 64;
  alternating.axial_frequencies = AxialFrequencies::kAlternating;
  const Frequencies fa = compute_frequencies(alternating);
  const Frequencies full = compute_frequencies(default_config(64));
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(fa.inv_freq[i], full.inv_freq[2 * i]);
    EXPECT_EQ(fa.inv_freq[i + 16], full.inv_freq[2 * i + 1]);
  }
  const std::vector<int> axes = alternating.pair_axes();
  ASSERT_EQ(axes.size(), 32u);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(axes[j], j < 16 ? 0 : 1) << j;
}

// The worked example: 2 text tokens, a 1 x 4 x 6 image merged 2 x 2 (a 2 x 3 grid of LLM tokens),
// then 3 text tokens. The image starts at 2; text resumes at 2 + max(4, 6) / 2 = 5.
TEST(multimodal_test, mrope_positions_of_text_image_text) {
  const std::vector<PromptSegment> prompt = {
      PromptSegment::text(2), PromptSegment::image({1, 4, 6}), PromptSegment::text(3)};
  const MultimodalPositions p = mrope_positions(prompt, 2);
  ASSERT_EQ(p.num_tokens, 11);
  const std::vector<int64_t> t = {0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 7};
  const std::vector<int64_t> h = {0, 1, 2, 2, 2, 3, 3, 3, 5, 6, 7};
  const std::vector<int64_t> w = {0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7};
  for (int64_t i = 0; i < 11; ++i) {
    EXPECT_EQ(p.at(i, 0), t[i]) << i;
    EXPECT_EQ(p.at(i, 1), h[i]) << i;
    EXPECT_EQ(p.at(i, 2), w[i]) << i;
  }
  EXPECT_EQ(p.rope_delta, 8 - 11);
}

// A video's frames are spaced by time_interval (Qwen2.5-VL: tokens_per_second * seconds per
// temporal patch), truncated: interval 0.7 puts frames 0, 1, 2 at 0, 0, 1.
TEST(multimodal_test, mrope_positions_of_a_video) {
  const std::vector<PromptSegment> prompt = {PromptSegment::video({3, 2, 2}, 0.7)};
  const MultimodalPositions p = mrope_positions(prompt, 2);
  ASSERT_EQ(p.num_tokens, 3);
  EXPECT_EQ(p.at(0, 0), 0);
  EXPECT_EQ(p.at(1, 0), 0);
  EXPECT_EQ(p.at(2, 0), 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p.at(i, 1), 0);
}

// Patches in merge windows: a 4 x 4 grid with 2 x 2 windows visits (0,0) (0,1) (1,0) (1,1), then
// the window to the right.
TEST(multimodal_test, vision_patch_positions_in_merge_windows) {
  const std::vector<VisionGrid> grids = {{1, 4, 4}};
  const MultimodalPositions p = vision_patch_positions(grids, 2);
  ASSERT_EQ(p.num_tokens, 16);
  const std::vector<int64_t> rows = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
  const std::vector<int64_t> cols = {0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3};
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(p.at(i, 0), rows[i]) << i;
    EXPECT_EQ(p.at(i, 1), cols[i]) << i;
  }
  const MultimodalPositions row_major = vision_patch_positions(grids, 1);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(row_major.at(i, 0), i / 4);
    EXPECT_EQ(row_major.at(i, 1), i % 4);
  }
}

TEST(multimodal_test, builder_errors_name_the_segment) {
  const std::vector<PromptSegment> odd = {PromptSegment::text(1), PromptSegment::image({1, 5, 4})};
  try {
    mrope_positions(odd, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "segments[1].grid");
  }
  const std::vector<PromptSegment> empty_grid = {PromptSegment::image({1, 0, 4})};
  EXPECT_THROW(mrope_positions(empty_grid, 1), Error);
  EXPECT_THROW(mrope_positions(odd, 0), Error);
  const std::vector<VisionGrid> grids = {{1, 4, 4}};
  EXPECT_THROW(vision_patch_positions(grids, 3), Error);
}

}  // namespace
}  // namespace rotary
