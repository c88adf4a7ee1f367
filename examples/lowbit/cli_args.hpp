/// @file cli_args.hpp
/// @brief Small argument-parsing helpers shared by the `lowbit` commands.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>

#include "commands.hpp"

namespace lowbit_cli {

/// The value after option `argv[i]` (advances i).
/// @throws UsageError when the option is last.
inline const char* option_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) throw UsageError(std::string("option ") + argv[i] + " needs a value");
  return argv[++i];
}

/// Parses a whole decimal int (the flag name is used in messages).
/// @throws UsageError when `text` is not an integer in int range.
inline int parse_int(const char* flag, const char* text) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < INT_MIN || v > INT_MAX)
    throw UsageError(std::string(flag) + ": '" + text + "' is not an integer");
  return static_cast<int>(v);
}

/// Parses a whole decimal floating-point value (the flag name is used in messages).
/// @throws UsageError when `text` is not a finite number.
inline double parse_double(const char* flag, const char* text) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v == v) || v > 1e300 || v < -1e300)
    throw UsageError(std::string(flag) + ": '" + text + "' is not a number");
  return v;
}

/// True for "-x" / "--xyz" style arguments (a lone "-" is not an option).
inline bool is_option(const char* a) { return a[0] == '-' && a[1] != '\0'; }

}  // namespace lowbit_cli
