// rotary::Rope: validation, the cos/sin source for each token, and the loop that hands each token's
// heads to a kernel.
#include "rotary/rope.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "frequencies_of_valid.h"
#include "rope_call.h"
#include "rotary/error.h"
#include "rotary/limits.h"
#include "sizes.h"
#include "validate.h"
#include "variants/variant.h"

namespace rotary {

struct Rope::State {
  RopeConfig config;
  RopeOptions options;
  Frequencies frequencies;  // at initialisation
  // Calls longer than this use other frequencies (variant.h); the largest int64_t if none do.
  int64_t change_after = std::numeric_limits<int64_t>::max();
  Frequencies long_frequencies;  // the one set past change_after, where there is one (LongRoPE)
  int64_t half = 0;
  bool fixed_frequencies = false;  // given by the caller: never switched per call
  // cos/sin for positions [0, cache_positions) with `frequencies`, row-major, half floats per row.
  std::vector<float> cos_cache, sin_cache;
  // Multi-axis RoPE: the pairs of each position axis (from config.pair_axes()); empty for one axis.
  int num_axes = 1;
  std::vector<std::vector<int>> axis_pairs;
};

namespace {

// The cos/sin cache that cache_positions asks for: two tables of `half` floats per position.
detail::SizeRequest cache_request(int64_t positions, int64_t half) {
  return {"options.cache_positions", std::to_string(positions) + " positions",
          static_cast<double>(positions) * static_cast<double>(half) * 2 * sizeof(float),
          "cos/sin tables (" + std::to_string(half) + " pairs x 2 x 4 bytes each)"};
}

void check_options(const RopeOptions& options, int64_t half) {
  if (options.cache_positions < 0) {
    throw Error(ErrorCode::kInvalidArgument, "options.cache_positions",
                "expected >= 0, got " + std::to_string(options.cache_positions));
  }
  const detail::SizeRequest cache = cache_request(options.cache_positions, half);
  detail::check_count(cache, options.cache_positions,
                      {kMaxTablePositions, "positions", "rotary::kMaxTablePositions"});
  detail::check_bytes(cache);
  // OpenMP aborts the process when it cannot start the threads it was asked for.
  if (options.max_threads < 0 || options.max_threads > kMaxThreads) {
    throw Error(ErrorCode::kInvalidArgument, "options.max_threads",
                "expected 0 (every hardware thread) to " + std::to_string(kMaxThreads) +
                    " (rotary::kMaxThreads), got " + std::to_string(options.max_threads));
  }
}

// Positions [0, cache_positions) with the initial frequencies.
void fill_cache(Rope::State& s) {
  const int64_t positions = s.options.cache_positions;
  const auto entries = static_cast<std::size_t>(positions * s.half);
  detail::allocate_or_throw(cache_request(positions, s.half), [&] {
    s.cos_cache.resize(entries);
    s.sin_cache.resize(entries);
  });
  const auto n = static_cast<std::size_t>(s.half);
  for (int64_t p = 0; p < positions; ++p) {
    const auto row = static_cast<std::size_t>(p * s.half);
    compute_cos_sin(s.frequencies.inv_freq, s.frequencies.attention_factor, p, s.options.angle_mode,
                    {s.cos_cache.data() + row, n}, {s.sin_cache.data() + row, n});
  }
}

}  // namespace

namespace {

// The config, once it has passed validate(): lets the constructors validate before anything else
// is computed from it.
const RopeConfig& validated(const RopeConfig& config) {
  config.validate();
  return config;
}

}  // namespace

Rope::Rope(const RopeConfig& config, const RopeOptions& options)
    : Rope(Validated{}, config, detail::frequencies_of_valid(validated(config)), options) {
  state_->fixed_frequencies = false;
  state_->change_after = detail::frequencies_change_after(config);
  if (detail::variant_of(config.rope_type).one_set_past_change) {
    // One set serves every longer call (LongRoPE's long factors, which transformers computes once,
    // with seq_len = original_max_position_embeddings + 1): computed here, once.
    state_->long_frequencies = detail::frequencies_of_valid(config, state_->change_after + 1);
  }
}

Rope::Rope(const RopeConfig& config, const Frequencies& frequencies, const RopeOptions& options)
    : Rope(Validated{}, validated(config), frequencies, options) {}

Rope::Rope(Validated, const RopeConfig& config, const Frequencies& frequencies,
           const RopeOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.config = config;
  s.options = options;
  s.fixed_frequencies = true;
  const int64_t rotary_dim = config.resolved_rotary_dim();
  if (static_cast<int64_t>(frequencies.inv_freq.size()) != rotary_dim / 2) {
    throw Error(ErrorCode::kInvalidArgument, "frequencies.inv_freq",
                "expected rotary_dim / 2 = " + std::to_string(rotary_dim / 2) + " entries, got " +
                    std::to_string(frequencies.inv_freq.size()));
  }
  for (float theta : frequencies.inv_freq) {
    if (!std::isfinite(theta)) {
      throw Error(ErrorCode::kInvalidArgument, "frequencies.inv_freq", "expected finite values");
    }
  }
  if (!std::isfinite(frequencies.attention_factor) || frequencies.attention_factor <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "frequencies.attention_factor",
                "expected a finite number > 0");
  }
  s.frequencies = frequencies;
  s.frequencies.rotary_dim = rotary_dim;
  s.half = rotary_dim / 2;
  s.num_axes = config.num_axes();
  if (s.num_axes > 1) {
    s.axis_pairs.resize(static_cast<std::size_t>(s.num_axes));
    const std::vector<int> pair_axes = config.pair_axes();
    for (std::size_t i = 0; i < pair_axes.size(); ++i) {
      s.axis_pairs[static_cast<std::size_t>(pair_axes[i])].push_back(static_cast<int>(i));
    }
  }
  check_options(options, s.half);
  fill_cache(s);
}

Rope::~Rope() = default;
Rope::Rope(Rope&&) noexcept = default;
Rope& Rope::operator=(Rope&&) noexcept = default;

const RopeConfig& Rope::config() const { return state_->config; }
const RopeOptions& Rope::options() const { return state_->options; }
const Frequencies& Rope::frequencies() const { return state_->frequencies; }
int64_t Rope::head_dim() const { return state_->config.head_dim; }
int64_t Rope::rotary_dim() const { return state_->frequencies.rotary_dim; }

namespace detail {

namespace {

// Calls up to this many bytes of input are taken to be in cache already (a decode step: a few tens
// of KB; 64 sequences of Llama-3-8B's 40 heads in bfloat16: 640 KiB): below every L2 of the CPUs
// rotary targets.
constexpr int64_t kCacheResidentBytes = int64_t{512} << 10;

// Per thread (rows are computed in worker threads): the gathered row, the negated sin and a
// computed row.
float* row_scratch(int64_t half) {
  thread_local std::vector<float> buffer;
  const auto needed = static_cast<std::size_t>(5 * half);
  if (buffer.size() < needed) buffer.resize(needed);
  return buffer.data();
}

}  // namespace

CallAngles::CallAngles(const Rope& rope, Positions positions, int64_t sequence_length,
                       Direction direction)
    : state_(*rope.state_),
      positions_(positions),
      inverse_(direction == Direction::kInverse),
      frequencies_(&state_.frequencies),
      cacheable_(true) {
  if (!state_.fixed_frequencies && sequence_length > state_.change_after) {
    cacheable_ = false;
    if (!state_.long_frequencies.inv_freq.empty()) {
      frequencies_ = &state_.long_frequencies;
    } else {
      storage_ = frequencies_of_valid(state_.config, sequence_length);
      frequencies_ = &storage_;
    }
  }
  // Multi-axis: each axis's own frequencies, so that a token computes each pair's angle once.
  for (const std::vector<int>& pairs : state_.axis_pairs) {
    std::vector<float>& theta = axis_theta_.emplace_back();
    for (int i : pairs) theta.push_back(frequencies_->inv_freq[static_cast<std::size_t>(i)]);
  }
}

int64_t CallAngles::cached_positions() const {
  return static_cast<int64_t>(state_.cos_cache.size()) / std::max<int64_t>(state_.half, 1);
}

std::pair<const float*, const float*> CallAngles::row(int64_t t) const {
  const int64_t half = state_.half;
  float* buf = row_scratch(half);
  const int axes = positions_.num_axes();
  bool one_position = true;
  for (int a = 1; a < axes; ++a) one_position &= positions_.at(t, a) == positions_.at(t, 0);
  // Text tokens of a multi-axis model carry equal components: plain 1D RoPE.
  const std::pair<const float*, const float*> cs =
      one_position ? single_row(positions_.at(t, 0), buf + 3 * half) : multi_axis_row(t, buf);
  if (!inverse_) return cs;
  float* negated = buf + 2 * half;
  for (int64_t i = 0; i < half; ++i) negated[i] = -cs.second[i];
  return {cs.first, negated};
}

// One position's row, from the cache or computed into `out` (2 * half floats).
std::pair<const float*, const float*> CallAngles::single_row(int64_t position, float* out) const {
  const int64_t half = state_.half;
  if (cacheable_ && position >= 0 && position < cached_positions()) {
    return {state_.cos_cache.data() + position * half, state_.sin_cache.data() + position * half};
  }
  compute_cos_sin(frequencies_->inv_freq, frequencies_->attention_factor, position,
                  state_.options.angle_mode, {out, static_cast<std::size_t>(half)},
                  {out + half, static_cast<std::size_t>(half)});
  return {out, out + half};
}

// Each pair's angle from its own axis's component: the cache row of that component, or the axis's
// frequencies computed once and scattered to their pairs. Gathered into buf[0, 2 * half).
std::pair<const float*, const float*> CallAngles::multi_axis_row(int64_t t, float* buf) const {
  const int64_t half = state_.half;
  float* cos_tmp = buf + 3 * half;
  float* sin_tmp = buf + 4 * half;
  for (int a = 0; a < positions_.num_axes(); ++a) {
    const int64_t position = positions_.at(t, a);
    const std::vector<int>& pairs = state_.axis_pairs[static_cast<std::size_t>(a)];
    if (cacheable_ && position >= 0 && position < cached_positions()) {
      const float* cos_row = state_.cos_cache.data() + position * half;
      const float* sin_row = state_.sin_cache.data() + position * half;
      for (int i : pairs) {
        buf[i] = cos_row[i];
        buf[half + i] = sin_row[i];
      }
      continue;
    }
    const std::vector<float>& theta = axis_theta_[static_cast<std::size_t>(a)];
    compute_cos_sin(theta, frequencies_->attention_factor, position, state_.options.angle_mode,
                    {cos_tmp, theta.size()}, {sin_tmp, theta.size()});
    for (std::size_t j = 0; j < pairs.size(); ++j) {
      buf[pairs[j]] = cos_tmp[j];
      buf[half + pairs[j]] = sin_tmp[j];
    }
  }
  return {buf, buf + half};
}

void rotate_checked(const Rope& rope, const ConstTensorView& q_in, const TensorView& q_out,
                    const ConstTensorView& k_in, const TensorView& k_out,
                    const Positions& positions, int64_t sequence_length, Direction direction) {
  const bool has_q = !q_in.empty();
  const bool has_k = !k_in.empty();
  if (!has_q && !has_k) return;
  const CallAngles angles(rope, positions, sequence_length, direction);
  const Layout layout = rope.config().layout;
  // One dispatch per call: the kernels for this CPU's best SIMD target.
  const RotateHeadsFn q_kernel = has_q ? simd_kernel(q_in.dtype, layout) : nullptr;
  const RotateHeadsFn k_kernel = has_k ? simd_kernel(k_in.dtype, layout) : nullptr;
  const std::size_t q_size = dtype_size(q_in.dtype);
  const std::size_t k_size = dtype_size(k_in.dtype);
  const int64_t rotary_dim = rope.rotary_dim();
  const int64_t head_dim = rope.head_dim();
  const int64_t num_tokens = has_q ? q_in.num_tokens : k_in.num_tokens;
  const int64_t q_elements = has_q ? q_in.num_heads * head_dim : 0;
  const int64_t k_elements = has_k ? k_in.num_heads * head_dim : 0;
  // Whether the call's inputs come from memory rather than cache, so that prefetching pays.
  const bool streaming = num_tokens * (q_elements * static_cast<int64_t>(q_size) +
                                       k_elements * static_cast<int64_t>(k_size)) >
                         kCacheResidentBytes;

  // Each token's cos/sin row is computed once and shared by all of its Q and K heads.
  const auto rotate_token = [&](int64_t t) {
    const auto [cos, sin] = angles.row(t);
    const RotateParams params{cos, sin, rotary_dim, head_dim, streaming};
    if (has_q) {
      q_kernel(params, {static_cast<const char*>(q_in.data) + t * q_in.token_stride * q_size,
                        static_cast<char*>(q_out.data) + t * q_out.token_stride * q_size,
                        q_in.num_heads, q_in.head_stride, q_out.head_stride});
    }
    if (has_k) {
      k_kernel(params, {static_cast<const char*>(k_in.data) + t * k_in.token_stride * k_size,
                        static_cast<char*>(k_out.data) + t * k_out.token_stride * k_size,
                        k_in.num_heads, k_in.head_stride, k_out.head_stride});
    }
  };
  parallel_for(num_tokens, q_elements + k_elements, rope.options().max_threads, rotate_token);
}

}  // namespace detail

Frequencies Rope::frequencies_for(Positions positions) const {
  const int64_t length = detail::check_positions(positions, positions.size(), state_->num_axes);
  return detail::CallAngles(*this, positions, length, Direction::kForward).frequencies();
}

void Rope::cos_sin(Positions positions, std::span<float> cos, std::span<float> sin) const {
  const State& s = *state_;
  const int64_t n = positions.size();
  const int64_t length = detail::check_positions(positions, n, s.num_axes);
  const auto needed = static_cast<std::size_t>(n * s.half);
  for (auto [span, name] : {std::pair{cos, "cos"}, std::pair{sin, "sin"}}) {
    if (span.size() != needed) {
      throw Error(ErrorCode::kInvalidArgument, name,
                  "expected " + std::to_string(needed) +
                      " floats (positions x rotary_dim / 2), got " + std::to_string(span.size()));
    }
  }
  const detail::CallAngles angles(*this, positions, length, Direction::kForward);
  for (int64_t t = 0; t < n; ++t) {
    const auto [c, sn] = angles.row(t);
    std::copy(c, c + s.half, cos.begin() + t * s.half);
    std::copy(sn, sn + s.half, sin.begin() + t * s.half);
  }
}

void Rope::rotate(TensorView q, TensorView k, Positions positions, Direction direction) const {
  rotate(ConstTensorView(q), q, ConstTensorView(k), k, positions, direction);
}

void Rope::rotate(TensorView x, Positions positions, Direction direction) const {
  rotate(ConstTensorView(x), x, ConstTensorView(), TensorView(), positions, direction);
}

void Rope::rotate(ConstTensorView q_in, TensorView q_out, ConstTensorView k_in, TensorView k_out,
                  Positions positions, Direction direction) const {
  // Every check happens before the first write.
  const bool has_k = detail::check_rotate_views(q_in, q_out, k_in, k_out, state_->config.head_dim);
  const int64_t length = detail::check_positions(positions, q_in.num_tokens, state_->num_axes);
  detail::rotate_checked(*this, q_in, q_out, has_k ? k_in : ConstTensorView(),
                         has_k ? k_out : TensorView(), positions, length, direction);
}

}  // namespace rotary
