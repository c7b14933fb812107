// rms_norm_rotate: the checks of Rope::rotate plus the norms', then one pass per token that
// normalises its heads into per-thread scratch (cpu/rms_norm.h) and rotates the scratch into the
// output with the very kernels Rope::rotate uses.
#include "rotary/qk_norm.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cache_rotation.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/rms_norm.h"
#include "rope_call.h"
#include "validate.h"

namespace rotary {
namespace {

using detail::invalid;

// Every field of one norm against the view it normalises; `name` is "norms.q" or "norms.k".
void check_norm(const RmsNorm& norm, const std::string& name, const ConstTensorView& view) {
  if (norm.scope != NormScope::kHead && norm.scope != NormScope::kToken) {
    invalid(name + ".scope", "expected NormScope::kHead or NormScope::kToken");
  }
  if (!std::isfinite(norm.eps) || !(norm.eps > 0)) {
    invalid(name + ".eps", "expected a finite number > 0, got " + std::to_string(norm.eps));
  }
  const bool per_head = norm.scope == NormScope::kHead;
  const int64_t expected = per_head ? view.head_dim : view.num_heads * view.head_dim;
  if (static_cast<int64_t>(norm.weight.size()) != expected) {
    invalid(name + ".weight", "expected " + std::to_string(expected) +
                                  (per_head ? " entries (head_dim, scope per head)"
                                            : " entries (num_heads x head_dim, scope per token)") +
                                  ", got " + std::to_string(norm.weight.size()));
  }
  for (std::size_t i = 0; i < norm.weight.size(); ++i) {
    if (!std::isfinite(norm.weight[i])) {
      invalid(name + ".weight", "expected finite values, entry " + std::to_string(i) + " is " +
                                    std::to_string(norm.weight[i]));
    }
  }
}

// The factor each element is multiplied by: weight, or 1 + weight in float32 (Gemma).
std::vector<float> multiplier_of(const RmsNorm& norm) {
  std::vector<float> m = norm.weight;
  if (norm.unit_offset) {
    for (float& w : m) w = 1.0f + w;
  }
  return m;
}

// Per thread, per tensor (0: q, 1: k): one token's normalised heads. No allocation after a
// thread's first call of a size.
void* scratch(int which, std::size_t bytes) {
  thread_local std::vector<unsigned char> buffers[2];
  std::vector<unsigned char>& b = buffers[which];
  if (b.size() < bytes) b.resize(bytes);
  return b.data();
}

// One tensor's part of a call: its kernels, norm and views.
struct Side {
  const RmsNorm* norm = nullptr;
  std::vector<float> multiplier;
  detail::NormHeadsFn normalise = nullptr;
  detail::RotateHeadsFn rotate = nullptr;
  ConstTensorView in;
  TensorView out;
  std::size_t esize = 0;

  Side(const RmsNorm& n, const ConstTensorView& i, const TensorView& o, Layout layout)
      : norm(&n),
        multiplier(multiplier_of(n)),
        normalise(detail::simd_norm_kernel(i.dtype)),
        rotate(detail::simd_kernel(i.dtype, layout)),
        in(i),
        out(o),
        esize(dtype_size(i.dtype)) {}

  void run(int which, const detail::RotateParams& angles, int64_t t) const {
    const int64_t heads = in.num_heads, dim = in.head_dim;
    void* normalised = scratch(which, static_cast<std::size_t>(heads * dim) * esize);
    const detail::NormParams params{multiplier.data(), norm->eps, norm->round_before_weight,
                                    norm->scope == NormScope::kToken};
    normalise(params, static_cast<const char*>(in.data) + t * in.token_stride * esize, heads,
              in.head_stride, dim, normalised);
    rotate(angles, {normalised, static_cast<char*>(out.data) + t * out.token_stride * esize, heads,
                    dim, out.head_stride});
  }
};

// After every check: normalise and rotate q (and k) token by token.
void norm_rotate_checked(const Rope& rope, const QkNorm& norms, const ConstTensorView& q_in,
                         const TensorView& q_out, const ConstTensorView& k_in,
                         const TensorView& k_out, Positions positions, int64_t length) {
  const bool has_q = !q_in.empty(), has_k = !k_in.empty();
  if (!has_q && !has_k) return;
  const detail::CallAngles angles(rope, positions, length, Direction::kForward);
  const Layout layout = rope.config().layout;
  const Side q(norms.q, q_in, q_out, layout);
  const Side k(norms.k, has_k ? k_in : q_in, has_k ? k_out : q_out, layout);
  const auto token = [&](int64_t t) {
    const auto [cos, sin] = angles.row(t);
    // The kernels rotate from per-thread scratch, already in cache: no prefetch.
    const detail::RotateParams params{cos, sin, rope.rotary_dim(), rope.head_dim(), false};
    if (has_q) q.run(0, params, t);
    if (has_k) k.run(1, params, t);
  };
  const int64_t num_tokens = has_q ? q_in.num_tokens : k_in.num_tokens;
  const int64_t per_token =
      ((has_q ? q_in.num_heads : 0) + (has_k ? k_in.num_heads : 0)) * rope.head_dim();
  detail::parallel_for(num_tokens, per_token, rope.options().max_threads, token);
}

// rms_norm_rotate_append's rotation: each block's q normalised and rotated in place, its k
// normalised and rotated straight into the cache rows, one pass over each.
class NormRotation final : public detail::CacheRotation {
 public:
  NormRotation(const Rope& rope, const QkNorm& norms) : rope_(rope), norms_(norms) {}
  void check(const TensorView& q, const ConstTensorView& k) const override {
    if (q.num_heads > 0) check_norm(norms_.q, "norms.q", ConstTensorView(q));
    check_norm(norms_.k, "norms.k", k);
  }
  void rotate(const TensorView& q, const ConstTensorView& k, const TensorView& key_rows,
              const Positions& positions, int64_t sequence_length) const override {
    norm_rotate_checked(rope_, norms_, q, q, k, key_rows, positions, sequence_length);
  }

 private:
  const Rope& rope_;
  const QkNorm& norms_;
};

}  // namespace

void rms_norm_rotate(const Rope& rope, const QkNorm& norms, TensorView q, TensorView k,
                     Positions positions) {
  rms_norm_rotate(rope, norms, ConstTensorView(q), q, ConstTensorView(k), k, positions);
}

void rms_norm_rotate(const Rope& rope, const QkNorm& norms, ConstTensorView q_in, TensorView q_out,
                     ConstTensorView k_in, TensorView k_out, Positions positions) {
  // Every check happens before the first write: Rope::rotate's, then the norms'.
  const bool has_k = detail::check_rotate_views(q_in, q_out, k_in, k_out, rope.head_dim());
  const int64_t length =
      detail::check_positions(positions, q_in.num_tokens, rope.config().num_axes());
  // A q without heads (only k normalised, as Rope::rotate allows) needs no q norm.
  if (q_in.num_heads > 0) check_norm(norms.q, "norms.q", q_in);
  if (has_k) check_norm(norms.k, "norms.k", k_in);
  norm_rotate_checked(rope, norms, q_in, q_out, has_k ? k_in : ConstTensorView(),
                      has_k ? k_out : TensorView(), positions, length);
}

void rms_norm_rotate_append(KvCache& cache, const Rope& rope, const QkNorm& norms, TensorView q,
                            ConstTensorView k, ConstTensorView v, Positions positions,
                            BlockTable& sequence) {
  // Every check of KvCache::append (views, positions, then the norms, capacity and block table)
  // before any write: on error q, the cache and the sequence stay as they were.
  cache.append(NormRotation(rope, norms), rope, q, k, v, positions, sequence);
}

}  // namespace rotary
