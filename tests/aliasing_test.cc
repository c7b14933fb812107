// rotary::check_aliasing (rotary/tensor.h): the aliasing rule of every call that writes, over whole
// batches, for callers that rotate a batch one entry at a time.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "rotary/error.h"
#include "rotary/rope.h"
#include "rotary/tensor.h"
#include "test_errors.h"

namespace rotary {
namespace {

constexpr int64_t kTokens = 4, kHeads = 2, kDim = 8, kEntry = kTokens * kHeads * kDim;

// Batch entry b of a (batch, tokens, heads, dim) float32 tensor at `data`, entries `stride` apart.
BatchedTensorView batched(float* data, int64_t batch, int64_t stride) {
  return {ConstTensorView::contiguous(data, DType::kF32, kTokens, kHeads, kDim), batch, stride};
}

using testing::thrown_by;

void check(const BatchedTensorView& q, const BatchedTensorView& q_out, const BatchedTensorView& k,
           const BatchedTensorView& k_out) {
  const AliasingOperand inputs[] = {{"q", q}, {"k", k}};
  const AliasingOperand outputs[] = {{"q_out", q_out, 0}, {"k_out", k_out, 1}};
  check_aliasing(inputs, outputs);
}

// Q and K entries alternate in one buffer: q0 k0 q1 k1. Rotated in place, nothing is shared.
TEST(aliasing_test, interleaved_batches_in_place_pass) {
  std::vector<float> buffer(4 * kEntry);
  const BatchedTensorView q = batched(buffer.data(), 2, 2 * kEntry);
  const BatchedTensorView k = batched(buffer.data() + kEntry, 2, 2 * kEntry);
  EXPECT_NO_THROW(check(q, q, k, k));
}

// K starting at Q's second entry: no single entry's call sees it, the whole batch does.
TEST(aliasing_test, an_input_shared_across_batch_entries_is_refused) {
  std::vector<float> buffer(4 * kEntry);
  const BatchedTensorView q = batched(buffer.data(), 2, 2 * kEntry);
  const BatchedTensorView k = batched(buffer.data() + 2 * kEntry, 2, kEntry);
  const Error e = thrown_by([&] { check(q, q, k, k); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.argument(), "q_out");
  EXPECT_NE(e.message().find("shares memory with k"), std::string::npos) << e.what();
  // Entry by entry the views are disjoint: the library's per-call check passes each.
  const Rope rope(default_config(kDim));
  const std::vector<int64_t> positions(kTokens, 0);
  for (int64_t b = 0; b < 2; ++b) {
    float* qb = buffer.data() + b * 2 * kEntry;
    float* kb = buffer.data() + 2 * kEntry + b * kEntry;
    EXPECT_NO_THROW(rope.rotate(TensorView::contiguous(qb, DType::kF32, kTokens, kHeads, kDim),
                                TensorView::contiguous(kb, DType::kF32, kTokens, kHeads, kDim),
                                positions));
  }
}

TEST(aliasing_test, an_output_overlapping_its_own_input_partially_is_refused) {
  std::vector<float> buffer(3 * kEntry);
  const BatchedTensorView q = batched(buffer.data(), 2, kEntry);
  const BatchedTensorView shifted = batched(buffer.data() + 1, 2, kEntry);
  const AliasingOperand inputs[] = {{"q", q}};
  const AliasingOperand outputs[] = {{"q_out", shifted, 0}};
  const Error e = thrown_by([&] { check_aliasing(inputs, outputs); });
  EXPECT_EQ(e.argument(), "q_out");
  EXPECT_NE(e.message().find("overlaps q partially"), std::string::npos) << e.what();
}

// One view (batch 1) is judged as Rope::rotate judges it, in the same words.
TEST(aliasing_test, one_view_is_judged_as_the_rotation_judges_it) {
  std::vector<float> q(kEntry), k(kEntry), out(kEntry);
  const Rope rope(default_config(kDim));
  const std::vector<int64_t> positions(kTokens, 0);
  const auto view = [](float* data) {
    return TensorView::contiguous(data, DType::kF32, kTokens, kHeads, kDim);
  };
  const Error rotate_error = thrown_by([&] {
    rope.rotate(view(q.data()), view(out.data()), view(k.data()), view(out.data()), positions);
  });
  const Error check_error = thrown_by([&] {
    check(batched(q.data(), 1, 0), batched(out.data(), 1, 0), batched(k.data(), 1, 0),
          batched(out.data(), 1, 0));
  });
  EXPECT_EQ(check_error.argument(), rotate_error.argument());
  EXPECT_EQ(check_error.message(), rotate_error.message());
}

TEST(aliasing_test, empty_tensors_take_part_in_nothing) {
  std::vector<float> buffer(kEntry);
  const BatchedTensorView q = batched(buffer.data(), 1, 0);
  EXPECT_NO_THROW(check(q, q, batched(buffer.data(), 0, 0), batched(buffer.data(), 0, 0)));
  EXPECT_NO_THROW(check(q, q, BatchedTensorView{}, BatchedTensorView{}));
}

TEST(aliasing_test, negative_or_overflowing_strides_are_refused_by_name) {
  std::vector<float> buffer(2 * kEntry);
  BatchedTensorView q = batched(buffer.data(), 2, -kEntry);
  const auto alone = [](const BatchedTensorView& t) {
    const AliasingOperand inputs[] = {{"q", t}};
    const AliasingOperand outputs[] = {{"q_out", t, 0}};
    check_aliasing(inputs, outputs);
  };
  EXPECT_EQ(thrown_by([&] { alone(q); }).argument(), "q.batch_stride");
  q = batched(buffer.data(), -1, kEntry);
  EXPECT_EQ(thrown_by([&] { alone(q); }).argument(), "q.batch");
  q = batched(buffer.data(), 2, kEntry);
  q.view.token_stride = -1;
  EXPECT_EQ(thrown_by([&] { alone(q); }).argument(), "q.token_stride");
  q = batched(buffer.data(), 3, int64_t{1} << 62);
  const Error e = thrown_by([&] { alone(q); });
  EXPECT_EQ(e.argument(), "q");
  EXPECT_NE(e.message().find("overflow"), std::string::npos) << e.what();
}

TEST(aliasing_test, more_than_four_operands_are_refused) {
  std::vector<float> buffer(kEntry);
  const AliasingOperand one{"x", batched(buffer.data(), 1, 0)};
  const std::vector<AliasingOperand> five(5, one);
  EXPECT_EQ(thrown_by([&] { check_aliasing(five, {}); }).argument(), "operands");
}

}  // namespace
}  // namespace rotary
