#include "overlap.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "rotary/error.h"

namespace rotary::detail {
namespace {

// Sums of byte offsets of two tensors can pass 2^63; 128 bits hold every intermediate value.
__extension__ typedef __int128 Wide;

// Steps of the search before it gives up. Views of real layouts (BSHD, BHSD, packed QKV, slices
// of any of them) take a few dozen; the bound keeps a hostile stride pattern to about a
// millisecond.
constexpr int64_t kSearchBudget = int64_t{1} << 18;

struct Term {
  Wide coefficient;  // > 0
  Wide bound;        // the variable ranges over [0, bound]
};

// Decides whether Σ coefficient_i · x_i = target has a solution with every x_i in [0, bound_i].
// Terms are sorted by decreasing coefficient; reach[k] is the largest sum terms k.. can make, so
// at each level only the values of x_k that leave a reachable remainder are tried: for nested
// strides (each larger than everything the smaller ones span) that is one or two values.
class BoundedSum {
 public:
  explicit BoundedSum(std::vector<Term> terms) : terms_(std::move(terms)) {
    reach_.assign(terms_.size() + 1, 0);
    for (std::size_t k = terms_.size(); k-- > 0;) {
      reach_[k] = reach_[k + 1] + terms_[k].coefficient * terms_[k].bound;
    }
  }

  // False as well when the budget ran out; exhausted() tells which.
  bool solvable(Wide target) { return search(0, target); }
  bool exhausted() const { return steps_ > kSearchBudget; }

 private:
  bool search(std::size_t k, Wide target) {
    if (target < 0 || target > reach_[k]) return false;
    if (k == terms_.size()) return target == 0;
    if (++steps_ > kSearchBudget) return false;
    const Term& t = terms_[k];
    const Wide rest = reach_[k + 1];
    const Wide lowest = target > rest ? (target - rest + t.coefficient - 1) / t.coefficient : 0;
    const Wide highest = std::min(t.bound, target / t.coefficient);
    for (Wide x = highest; x >= lowest; --x) {
      if (search(k + 1, target - x * t.coefficient)) return true;
      if (exhausted()) return false;
    }
    return false;
  }

  std::vector<Term> terms_;
  std::vector<Wide> reach_;
  int64_t steps_ = 0;
};

// Terms with the same coefficient add up to one term (c·x + c·y over [0,u] x [0,v] is c·z over
// [0, u + v]), which is what makes the Q and K slices of one buffer cheap; zero terms drop out.
std::vector<Term> merged(std::vector<Term> terms) {
  std::erase_if(terms, [](const Term& t) { return t.coefficient == 0 || t.bound == 0; });
  std::sort(terms.begin(), terms.end(),
            [](const Term& a, const Term& b) { return a.coefficient > b.coefficient; });
  std::vector<Term> out;
  for (const Term& t : terms) {
    if (!out.empty() && out.back().coefficient == t.coefficient) {
      out.back().bound += t.bound;
    } else {
      out.push_back(t);
    }
  }
  return out;
}

}  // namespace

StridedBytes strided_bytes(const ConstTensorView& v) {
  StridedBytes r;
  if (v.empty()) return r;  // its strides were never checked, and nothing is touched
  const auto size = static_cast<int64_t>(dtype_size(v.dtype));
  r.base = reinterpret_cast<std::uintptr_t>(v.data);
  r.run_bytes = v.head_dim * size;
  r.dims[0] = byte_dim(v.num_tokens, v.token_stride, size);
  r.dims[1] = byte_dim(v.num_heads, v.head_stride, size);
  return r;
}

bool same_elements(const StridedBytes& a, const StridedBytes& b) {
  if (a.base != b.base || a.run_bytes != b.run_bytes) return false;
  for (std::size_t d = 0; d < a.dims.size(); ++d) {
    if (a.dims[d].size != b.dims[d].size) return false;
    if (a.dims[d].size > 1 && a.dims[d].stride != b.dims[d].stride) return false;
  }
  return true;
}

bool share_bytes(const StridedBytes& a, const StridedBytes& b, std::string_view a_name,
                 std::string_view b_name) {
  if (a.empty() || b.empty()) return false;
  if (a.end() <= b.begin() || b.end() <= a.begin()) return false;
  // A byte of both: a.base + Σ i_d·A_d + r = b.base + Σ j_d·B_d + s, r < run_a, s < run_b.
  // With j'_d = (size_d - 1) - j_d and s' = run_b - 1 - s every unknown is non-negative:
  //   Σ i_d·A_d + Σ j'_d·B_d + (r + s') = b.base - a.base + Σ (size_d - 1)·B_d + run_b - 1.
  std::vector<Term> terms;
  Wide target = static_cast<Wide>(b.base) - static_cast<Wide>(a.base) + b.run_bytes - 1;
  for (const auto& d : a.dims) terms.push_back({d.stride, d.size - 1});
  for (const auto& d : b.dims) {
    terms.push_back({d.stride, d.size - 1});
    target += static_cast<Wide>(d.size - 1) * d.stride;
  }
  terms.push_back({1, a.run_bytes - 1 + b.run_bytes - 1});
  BoundedSum problem(merged(std::move(terms)));
  const bool found = problem.solvable(target);
  if (!found && problem.exhausted()) {
    throw Error(ErrorCode::kInvalidArgument, std::string(a_name),
                "cannot tell within " + std::to_string(kSearchBudget) +
                    " steps whether it shares memory with " + std::string(b_name) +
                    " (irregular strides in one buffer); pass tensors in separate buffers");
  }
  return found;
}

void check_no_aliasing(std::span<const Operand> inputs, std::span<const Operand> outputs) {
  const auto refuse = [](const Operand& out, const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, std::string(out.name),
                what +
                    "; an output must be exactly its own input (in place) or share no memory "
                    "with any other tensor of the call");
  };
  // Tensors whose address ranges do not meet (the common case: separate buffers, or in place)
  // take no further look; this check runs on every call, decode steps included, so each range is
  // computed once.
  struct Range {
    std::uintptr_t begin = 0, end = 0;  // empty: begin == end
  };
  constexpr std::size_t kMaxOperands = 4;
  if (inputs.size() > kMaxOperands || outputs.size() > kMaxOperands) {
    throw Error(ErrorCode::kInvalidArgument, "operands", "more than 4 inputs or outputs");
  }
  std::array<Range, kMaxOperands> in_range{}, out_range{};
  const auto range = [](const StridedBytes& r) {
    return r.empty() ? Range{} : Range{r.begin(), r.end()};
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) in_range[i] = range(inputs[i].bytes);
  for (std::size_t o = 0; o < outputs.size(); ++o) out_range[o] = range(outputs[o].bytes);
  const auto meet = [](Range a, Range b) {
    return a.begin < a.end && b.begin < b.end && a.begin < b.end && b.begin < a.end;
  };
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const Operand& out = outputs[o];
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Operand& in = inputs[i];
      if (!meet(out_range[o], in_range[i])) continue;
      const bool own = out.own_input == static_cast<int>(i);
      if (own && same_elements(out.bytes, in.bytes)) continue;
      if (share_bytes(out.bytes, in.bytes, out.name, in.name)) {
        const std::string name(in.name);
        refuse(out, own ? "overlaps " + name + " partially (not the same view)"
                        : "shares memory with " + name);
      }
    }
    for (std::size_t other = 0; other < o; ++other) {
      if (!meet(out_range[o], out_range[other])) continue;
      if (share_bytes(out.bytes, outputs[other].bytes, out.name, outputs[other].name)) {
        refuse(out, "shares memory with " + std::string(outputs[other].name) + " (both outputs)");
      }
    }
  }
}

}  // namespace rotary::detail
