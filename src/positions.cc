#include "rotary/positions.h"

#include <string>

#include "rotary/error.h"

namespace rotary {

template <typename T>
void Positions::init(std::span<const T> values, int num_axes) {
  if (num_axes < 1 || num_axes > kMaxAxes) {
    throw Error(ErrorCode::kInvalidArgument, "positions",
                "expected 1 to " + std::to_string(kMaxAxes) + " position axes, got " +
                    std::to_string(num_axes));
  }
  if (values.size() % static_cast<std::size_t>(num_axes) != 0) {
    throw Error(ErrorCode::kInvalidArgument, "positions",
                std::to_string(values.size()) + " values do not split into " +
                    std::to_string(num_axes) + " equal axis rows");
  }
  values_ = values;
  num_axes_ = num_axes;
  count_ = static_cast<int64_t>(values.size()) / num_axes;
  axis_stride_ = count_;
  offset_ = 0;
}

template void Positions::init(std::span<const int32_t>, int);
template void Positions::init(std::span<const int64_t>, int);

}  // namespace rotary
