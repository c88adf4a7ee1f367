/// @file error.hpp
/// @brief The library's error type (host paths throw) and status codes (launch paths return).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lowbit {

/// Exception thrown by every host-side entry point on bad input; `what()` names the problem.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Status codes returned by launch functions (which never throw across a stream boundary).
enum class StatusCode {
  ok = 0,
  invalid_argument,     ///< a shape, pointer or option is not acceptable
  misaligned,           ///< a pointer or leading dimension breaks an alignment requirement
  unsupported,          ///< a valid but not implemented combination (bits, group, dtype, arch)
  workspace_too_small,  ///< the caller's workspace is smaller than the query said
  not_positive_definite,///< a Cholesky factorization failed even after damping escalation
  non_finite,           ///< a NaN or infinity where finite values are required
  cuda_error,           ///< a CUDA runtime / library call failed
};

/// Result of a launch: a code and a human-readable message (empty when ok).
struct Status {
  StatusCode code = StatusCode::ok;  ///< what happened (StatusCode::ok on success)
  std::string message;               ///< human-readable reason; empty when ok

  /// True when the call succeeded.
  [[nodiscard]] bool ok() const noexcept { return code == StatusCode::ok; }
  /// Shorthand for a successful status.
  static Status success() { return {}; }
  /// Throws lowbit::Error with the message unless ok() (for callers that prefer exceptions).
  void throw_if_error() const {
    if (!ok()) throw Error(message);
  }
};

namespace detail {

/// Concatenates the arguments with operator<< into one message string.
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

/// Throws lowbit::Error built from the arguments.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(concat(std::forward<Args>(args)...));
}

/// Builds a failed Status from a code and message parts.
template <class... Args>
Status make_status(StatusCode code, Args&&... args) {
  return Status{code, concat(std::forward<Args>(args)...)};
}

}  // namespace detail
}  // namespace lowbit

/// Throws lowbit::Error with the given message parts unless `cond` holds (host code only).
#define LOWBIT_CHECK(cond, ...)                      \
  do {                                               \
    if (!(cond)) ::lowbit::detail::fail(__VA_ARGS__); \
  } while (0)
