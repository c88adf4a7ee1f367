/// @file bits.hpp
/// @brief `Bits<N>`: everything derived from a code width (range, mask, packing geometry).
#pragma once

#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "config.hpp"
#include "error.hpp"

namespace lowbit {

/// Compile-time traits of an N-bit unsigned code packed into 32-bit words.
///
/// Codes are unsigned integers in `[0, max_code]`. A *pack* is the smallest run of whole 32-bit
/// words that holds a whole number of codes: one word of `32/N` codes when N divides 32, otherwise
/// `N/gcd(N,32)` words holding `32/gcd(N,32)` codes (3 bits: 32 codes in 3 words).
///
/// @tparam N code width in bits, 1 to 8.
///
/// @code
/// static_assert(lowbit::Bits<4>::values_per_pack == 8);
/// static_assert(lowbit::Bits<3>::words_per_pack == 3);
/// @endcode
template <int N>
struct Bits {
  static_assert(N >= 1 && N <= 8, "lowbit supports code widths of 1 to 8 bits");
  /// Storage word of packed codes.
  using word_type = std::uint32_t;
  /// Code width.
  static constexpr int bits = N;
  /// Bits in a storage word.
  static constexpr int word_bits = 32;
  /// Largest code, 2^N - 1.
  static constexpr int max_code = (1 << N) - 1;
  /// Number of distinct codes, 2^N.
  static constexpr int num_codes = 1 << N;
  /// Mask of the low N bits.
  static constexpr std::uint32_t mask = (1u << N) - 1u;
  /// Words in the smallest whole-code pack.
  static constexpr int words_per_pack = N / std::gcd(N, word_bits);
  /// Codes in the smallest whole-code pack.
  static constexpr int values_per_pack = word_bits / std::gcd(N, word_bits);
  /// True when codes never straddle a word boundary (N divides 32).
  static constexpr bool word_aligned = words_per_pack == 1;
  /// Codes per word when word_aligned (0 otherwise: codes straddle words).
  static constexpr int values_per_word = word_aligned ? word_bits / N : 0;

  static_assert(words_per_pack * word_bits == values_per_pack * N, "pack geometry must be exact");
};

/// True for the widths the runtime dispatchers instantiate (2, 3, 4, 8).
constexpr bool is_supported_bits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

/// Calls `f(std::integral_constant<int, B>{})` for the runtime width `bits` ∈ {2, 3, 4, 8}.
/// @throws lowbit::Error for any other width.
template <class F>
decltype(auto) dispatch_bits(int bits, F&& f) {
  switch (bits) {
    case 2: return std::forward<F>(f)(std::integral_constant<int, 2>{});
    case 3: return std::forward<F>(f)(std::integral_constant<int, 3>{});
    case 4: return std::forward<F>(f)(std::integral_constant<int, 4>{});
    case 8: return std::forward<F>(f)(std::integral_constant<int, 8>{});
    default: detail::fail("unsupported bit width ", bits, " (supported: 2, 3, 4, 8)");
  }
}

}  // namespace lowbit
