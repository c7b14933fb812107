// rotary's one error type.
//
// Every function of the library validates its arguments before it writes a single output element
// and reports a violation by throwing rotary::Error. The message names the argument and says what
// was expected; code() lets callers branch without parsing text.
#pragma once

#include <stdexcept>
#include <string>

namespace rotary {

enum class ErrorCode {
  kInvalidArgument,  // a tensor, size, stride, pointer or position that the call cannot accept
  kInvalidConfig,    // a RoPE configuration that is incomplete or contradicts itself
  kParseError,       // malformed JSON, or a field of the wrong type
  kIoError,          // a file that cannot be read
  kDeviceError,      // the CUDA runtime refused a launch or an allocation (CUDA backend)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string argument, const std::string& message)
      : std::runtime_error(argument.empty() ? message : argument + ": " + message),
        code_(code),
        argument_(std::move(argument)),
        message_(message) {}

  ErrorCode code() const noexcept { return code_; }
  // The offending argument or configuration field, e.g. "q.head_stride" or "rope_scaling.factor".
  const std::string& argument() const noexcept { return argument_; }
  // What was expected, without the argument prefix.
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_;
  std::string argument_;
  std::string message_;
};

}  // namespace rotary
