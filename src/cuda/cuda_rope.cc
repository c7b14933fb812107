// The CUDA backend's host side: validation (the CPU driver's checks, same argument names), the
// frequency set of each call, and the launch-argument struct. Nothing here touches the device
// before every check has passed, so the checks run (and are tested) on machines without a GPU.
#include "rotary/cuda.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "cuda/launch.h"
#include "kv_storage.h"
#include "rotary/error.h"
#include "validate.h"

namespace rotary {
namespace {

namespace dc = detail::cuda;

using detail::invalid;

RopeOptions device_options(RopeOptions options) {
  options.cache_positions = 0;  // the device never reads a cache
  return options;
}

// A position that makes frequencies_for() choose the set of a call whose max(positions) + 1 is
// `length`.
Frequencies frequencies_for_length(const Rope& rope, int64_t length) {
  const int64_t last = length - 1;
  return rope.frequencies_for(Positions(std::span<const int64_t>(&last, 1)));
}

}  // namespace

struct CudaRope::State {
  explicit State(Rope r) : rope(std::move(r)) {}
  Rope rope;
  bool length_dependent = false;
  dc::KernelParams base;  // everything but the tensors, positions and direction

  void set_frequencies(dc::KernelParams& p, const Frequencies& f) const {
    std::fill(std::begin(p.inv_freq), std::end(p.inv_freq), 0.0f);
    std::copy(f.inv_freq.begin(), f.inv_freq.end(), p.inv_freq);
    p.hf_scale = static_cast<float>(f.attention_factor);
    p.exact_scale = f.attention_factor;
  }

  void init() {
    const RopeConfig& c = rope.config();
    const int64_t rotary_dim = rope.rotary_dim();
    if (rotary_dim / 2 > dc::kMaxPairs) {
      invalid("config.rotary_dim",
              "the CUDA backend supports rotary_dim <= " + std::to_string(2 * dc::kMaxPairs) +
                  ", got " + std::to_string(rotary_dim));
    }
    if (c.head_dim > (int64_t{1} << 20)) {
      invalid("config.head_dim", "the CUDA backend supports head_dim <= 2^20");
    }
    base.head_dim = static_cast<int32_t>(c.head_dim);
    base.rotary_dim = static_cast<int32_t>(rotary_dim);
    base.exact = rope.options().angle_mode == AngleMode::kExact ? 1 : 0;
    set_frequencies(base, rope.frequencies());
    const std::vector<int> axes = c.pair_axes();
    for (std::size_t j = 0; j < axes.size(); ++j) base.pair_axis[j] = static_cast<uint8_t>(axes[j]);
  }

  // The launch arguments of one call: frequencies for the call's sequence length, positions.
  dc::KernelParams call_params(const CudaPositions& positions, int64_t num_tokens,
                               Direction direction) const {
    const int config_axes = rope.config().num_axes();
    if (positions.num_tokens != num_tokens) {
      invalid("positions", "expected one position per token (" + std::to_string(num_tokens) +
                               "), got " + std::to_string(positions.num_tokens));
    }
    if (positions.num_axes != 1 && positions.num_axes != config_axes) {
      invalid("positions",
              "expected 1" +
                  (config_axes > 1 ? " or " + std::to_string(config_axes) : std::string()) +
                  " position components per token (the config's axes), got " +
                  std::to_string(positions.num_axes));
    }
    const int64_t axis_stride =
        positions.axis_stride == 0 ? positions.num_tokens : positions.axis_stride;
    if (positions.num_axes > 1 && axis_stride < positions.num_tokens) {
      invalid("positions.axis_stride", "expected >= num_tokens (" +
                                           std::to_string(positions.num_tokens) + "), got " +
                                           std::to_string(positions.axis_stride));
    }
    if (positions.axis_stride < 0) invalid("positions.axis_stride", "expected >= 0");
    if (num_tokens > 0 && positions.data == nullptr) invalid("positions", "null pointer");
    if (num_tokens > std::numeric_limits<int32_t>::max()) {
      invalid("positions", "the CUDA backend takes at most 2^31 - 1 tokens per call");
    }
    dc::KernelParams p = base;
    if (length_dependent && num_tokens > 0) {
      if (positions.sequence_length <= 0 ||
          positions.sequence_length > detail::kMaxAbsPosition + 1) {
        invalid("positions.sequence_length",
                "this configuration's frequencies follow the sequence length (" +
                    std::string(to_string(rope.config().rope_type)) +
                    "): give max(positions) + 1, in 1 .. 2^53 + 1, got " +
                    std::to_string(positions.sequence_length));
      }
      set_frequencies(p, frequencies_for_length(rope, positions.sequence_length));
    }
    p.num_tokens = num_tokens;
    p.positions = positions.data;
    p.positions_int64 = positions.type == PositionType::kInt64 ? 1 : 0;
    p.position_axes = positions.num_axes;
    p.axis_stride = axis_stride;
    p.inverse = direction == Direction::kInverse ? 1 : 0;
    return p;
  }
};

namespace {

void check_token_size(int64_t heads, int64_t head_dim) {
  if (heads > (int64_t{1} << 31) / std::max<int64_t>(head_dim, 1)) {
    invalid("num_heads", "the CUDA backend takes fewer than 2^31 elements per token");
  }
}

dc::DeviceTensor device_tensor(const ConstTensorView& in, const TensorView& out) {
  return {in.data,        out.data,         in.num_heads,   in.token_stride,
          in.head_stride, out.token_stride, out.head_stride};
}

}  // namespace

bool cuda_device_available() { return dc::device_count() > 0; }

CudaRope::CudaRope(const RopeConfig& config, const RopeOptions& options)
    : state_(std::make_unique<State>(Rope(config, device_options(options)))) {
  state_->length_dependent = frequencies_depend_on_length(config);
  state_->init();
}

CudaRope::CudaRope(const RopeConfig& config, const Frequencies& frequencies,
                   const RopeOptions& options)
    : state_(std::make_unique<State>(Rope(config, frequencies, device_options(options)))) {
  state_->init();
}

CudaRope::CudaRope(const Rope& rope)
    : state_(std::make_unique<State>(
          Rope(rope.config(), rope.frequencies(), device_options(rope.options())))) {
  // A Rope built from its config switches frequency sets with the sequence length; one built from
  // given frequencies never does. Probe at a length past every threshold to tell them apart.
  const RopeConfig& c = rope.config();
  if (frequencies_depend_on_length(c)) {
    const int64_t beyond =
        2 * std::max(c.max_position_embeddings, c.resolved_original_max_position_embeddings()) + 2;
    const Frequencies probe = frequencies_for_length(rope, beyond);
    if (probe.inv_freq != rope.frequencies().inv_freq ||
        probe.attention_factor != rope.frequencies().attention_factor) {
      state_ = std::make_unique<State>(Rope(c, device_options(rope.options())));
      state_->length_dependent = true;
    }
  }
  state_->init();
}

CudaRope::~CudaRope() = default;
CudaRope::CudaRope(CudaRope&&) noexcept = default;
CudaRope& CudaRope::operator=(CudaRope&&) noexcept = default;

const Rope& CudaRope::host_rope() const { return state_->rope; }
int64_t CudaRope::head_dim() const { return state_->rope.head_dim(); }
int64_t CudaRope::rotary_dim() const { return state_->rope.rotary_dim(); }

void CudaRope::rotate(TensorView q, TensorView k, const CudaPositions& positions,
                      Direction direction, CudaStream stream) const {
  rotate(ConstTensorView(q), q, ConstTensorView(k), k, positions, direction, stream);
}

void CudaRope::rotate(TensorView x, const CudaPositions& positions, Direction direction,
                      CudaStream stream) const {
  rotate(ConstTensorView(x), x, ConstTensorView(), TensorView(), positions, direction, stream);
}

void CudaRope::rotate(ConstTensorView q_in, TensorView q_out, ConstTensorView k_in,
                      TensorView k_out, const CudaPositions& positions, Direction direction,
                      CudaStream stream) const {
  const State& s = *state_;
  const int64_t head_dim = s.rope.head_dim();

  // The CPU driver's checks (src/rope.cc), on the views' addresses only.
  const bool has_k = detail::check_rotate_views(q_in, q_out, k_in, k_out, head_dim);
  const bool q_any = !q_in.empty();
  const bool k_any = has_k && !k_in.empty();
  check_token_size((q_any ? q_in.num_heads : 0) + (k_any ? k_in.num_heads : 0), head_dim);
  dc::KernelParams p = s.call_params(positions, q_in.num_tokens, direction);
  if (!q_any && !k_any) return;

  const Layout layout = s.rope.config().layout;
  const dc::DeviceTensor q_dev = device_tensor(q_in, q_out);
  const dc::DeviceTensor k_dev = device_tensor(k_in, k_out);
  if (q_any && k_any && q_in.dtype != k_in.dtype) {
    // One kernel reads one storage type: Q and K of different dtypes take a launch each.
    p.q = q_dev;
    dc::launch_rotate(p, q_in.dtype, layout, dc::vector_path_applies(p, q_in.dtype, layout, false),
                      stream);
    p.q = {};
    p.k = k_dev;
    dc::launch_rotate(p, k_in.dtype, layout, dc::vector_path_applies(p, k_in.dtype, layout, false),
                      stream);
    return;
  }
  if (q_any) p.q = q_dev;
  if (k_any) p.k = k_dev;
  const DType dtype = q_any ? q_in.dtype : k_in.dtype;
  dc::launch_rotate(p, dtype, layout, dc::vector_path_applies(p, dtype, layout, false), stream);
}

// --- CudaKvCache ---------------------------------------------------------------------------------

CudaKvCache::CudaKvCache(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                         int64_t head_dim, DType dtype)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      num_kv_heads_(num_kv_heads),
      head_dim_(head_dim),
      dtype_(dtype) {
  const std::size_t bytes = detail::check_kv_shape(shape());
  keys_ = dc::device_alloc_zeroed(bytes);
  try {
    values_ = dc::device_alloc_zeroed(bytes);
  } catch (...) {
    dc::device_free(keys_);
    throw;
  }
}

CudaKvCache CudaKvCache::contiguous(int64_t capacity, int64_t num_kv_heads, int64_t head_dim,
                                    DType dtype) {
  detail::check_kv_capacity(capacity);
  return CudaKvCache(1, capacity, num_kv_heads, head_dim, dtype);
}

CudaKvCache CudaKvCache::paged(int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                               int64_t head_dim, DType dtype) {
  return CudaKvCache(num_blocks, block_size, num_kv_heads, head_dim, dtype);
}

CudaKvCache::~CudaKvCache() {
  dc::device_free(keys_);
  dc::device_free(values_);
}

CudaKvCache::CudaKvCache(CudaKvCache&& other) noexcept
    : num_blocks_(other.num_blocks_),
      block_size_(other.block_size_),
      num_kv_heads_(other.num_kv_heads_),
      head_dim_(other.head_dim_),
      dtype_(other.dtype_),
      keys_(std::exchange(other.keys_, nullptr)),
      values_(std::exchange(other.values_, nullptr)) {}

CudaKvCache& CudaKvCache::operator=(CudaKvCache&& other) noexcept {
  if (this != &other) {
    dc::device_free(keys_);
    dc::device_free(values_);
    num_blocks_ = other.num_blocks_;
    block_size_ = other.block_size_;
    num_kv_heads_ = other.num_kv_heads_;
    head_dim_ = other.head_dim_;
    dtype_ = other.dtype_;
    keys_ = std::exchange(other.keys_, nullptr);
    values_ = std::exchange(other.values_, nullptr);
  }
  return *this;
}

int64_t CudaKvCache::capacity(const CudaBlockTable& sequence) const {
  return (sequence.blocks == nullptr ? 1 : sequence.num_blocks) * block_size_;
}

detail::KvStorageShape CudaKvCache::shape() const {
  return {num_blocks_, block_size_, num_kv_heads_, head_dim_, dtype_};
}

ConstTensorView CudaKvCache::keys(int64_t block, int64_t first, int64_t count) const {
  return detail::kv_rows(keys_, shape(), block, first, count);
}

ConstTensorView CudaKvCache::values(int64_t block, int64_t first, int64_t count) const {
  return detail::kv_rows(values_, shape(), block, first, count);
}

void CudaKvCache::append(const CudaRope& rope, TensorView q, ConstTensorView k, ConstTensorView v,
                         const CudaPositions& positions, CudaBlockTable& sequence,
                         CudaStream stream) {
  // KvCache::append's checks, in its order; the block table's entries are on the device and are
  // the caller's promise (an entry outside the pool drops its tokens' keys and values).
  const int64_t n = k.num_tokens;
  const bool has_q =
      detail::check_append_views(rope.head_dim(), num_kv_heads_, head_dim_, dtype_, q, k, v,
                                 {keys_, values_, detail::check_kv_shape(shape())});
  if (sequence.blocks != nullptr && sequence.num_blocks < 0) {
    invalid("sequence.num_blocks", "expected >= 0");
  }
  if (sequence.blocks == nullptr && num_blocks_ != 1) {
    invalid("sequence.blocks", "a paged cache needs a device block table");
  }
  if (sequence.blocks != nullptr && sequence.num_blocks > num_blocks_) {
    invalid("sequence.num_blocks", "more blocks (" + std::to_string(sequence.num_blocks) +
                                       ") than the pool holds (" + std::to_string(num_blocks_) +
                                       "): a block would repeat");
  }
  if (sequence.length < 0) invalid("sequence.length", "expected >= 0");
  if (sequence.length > capacity(sequence) || n > capacity(sequence) - sequence.length) {
    invalid("sequence", "appending " + std::to_string(n) + " tokens to " +
                            std::to_string(sequence.length) + " exceeds its capacity of " +
                            std::to_string(capacity(sequence)) + " (" +
                            std::to_string(capacity(sequence) / block_size_) + " blocks of " +
                            std::to_string(block_size_) + ")");
  }
  const bool q_any = has_q && !ConstTensorView(q).empty();
  check_token_size((q_any ? q.num_heads : 0) + 2 * num_kv_heads_, head_dim_);
  dc::KernelParams p = rope.state_->call_params(positions, n, Direction::kForward);
  if (n == 0) return;

  const Layout layout = rope.host_rope().config().layout;
  const dc::DeviceTensor q_dev = device_tensor(ConstTensorView(q), q);
  if (q_any && q.dtype != dtype_) {
    // Q of another storage type: its own in-place launch, before the cache's.
    dc::KernelParams qp = p;
    qp.q = q_dev;
    dc::launch_rotate(qp, q.dtype, layout, dc::vector_path_applies(qp, q.dtype, layout, false),
                      stream);
  } else if (q_any) {
    p.q = q_dev;
  }
  p.k = {k.data, nullptr, k.num_heads, k.token_stride, k.head_stride, 0, 0};
  p.v = {v.data, nullptr, v.num_heads, v.token_stride, v.head_stride, 0, 0};
  p.block_table = sequence.blocks;
  p.table_blocks = sequence.blocks == nullptr ? 1 : sequence.num_blocks;
  p.start = sequence.length;
  p.block_size = block_size_;
  p.cache_blocks = num_blocks_;
  p.key_cache = keys_;
  p.value_cache = values_;
  dc::launch_append(p, dtype_, layout, dc::vector_path_applies(p, dtype_, layout, true), stream);
  sequence.length += n;
}

}  // namespace rotary
