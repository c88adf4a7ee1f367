/// @file packing.hpp
/// @brief Bit-stream packing of N-bit codes into 32-bit words, and the GPTQ checkpoint layouts.
///
/// A *bit stream* stores code `i` at bit offset `i*N`, lowest bits first, across consecutive
/// 32-bit words (a code may straddle two words when N does not divide 32). This is exactly the
/// published GPTQ packing: for 4 bits, codes 0..7 in one word read `0x76543210`; for 3 bits, 32
/// codes fill 3 words with codes 10 and 21 split across word boundaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "bits.hpp"
#include "config.hpp"
#include "error.hpp"

namespace lowbit {

/// Reads code `i` from a bit stream whose word `j` is at `words[j * stride]`.
/// @tparam B code width in bits.
template <int B>
LOWBIT_HOST_DEVICE std::uint32_t stream_get(const std::uint32_t* words, std::size_t stride, std::size_t i) {
  using T = Bits<B>;
  const std::size_t bit = i * B;
  const std::size_t w = bit / T::word_bits;
  const unsigned s = static_cast<unsigned>(bit % T::word_bits);
  std::uint32_t v = words[w * stride] >> s;
  if constexpr (!T::word_aligned) {
    if (s + B > static_cast<unsigned>(T::word_bits)) v |= words[(w + 1) * stride] << (T::word_bits - s);
  }
  return v & T::mask;
}

/// Writes code `v` (only its low B bits) at position `i` of a bit stream, leaving other codes intact.
/// @tparam B code width in bits.
template <int B>
LOWBIT_HOST_DEVICE void stream_set(std::uint32_t* words, std::size_t stride, std::size_t i, std::uint32_t v) {
  using T = Bits<B>;
  v &= T::mask;
  const std::size_t bit = i * B;
  const std::size_t w = bit / T::word_bits;
  const unsigned s = static_cast<unsigned>(bit % T::word_bits);
  std::uint32_t& lo = words[w * stride];
  lo = (lo & ~(T::mask << s)) | (v << s);
  if constexpr (!T::word_aligned) {
    if (s + B > static_cast<unsigned>(T::word_bits)) {
      const unsigned spill = s + B - T::word_bits;  // bits that land in the next word
      std::uint32_t& hi = words[(w + 1) * stride];
      const std::uint32_t hi_mask = (1u << spill) - 1u;
      hi = (hi & ~hi_mask) | (v >> (T::word_bits - s));
    }
  }
}

/// Axis along which a 2-D code matrix `[rows, cols]` is packed.
enum class PackAxis {
  rows,  ///< along rows: `[rows, cols]` codes become `[rows*B/32, cols]` words (GPTQ `qweight`, K = rows)
  cols,  ///< along columns: `[rows, cols]` codes become `[rows, cols*B/32]` words (GPTQ `qzeros`)
};

/// A packing layout: row-major `[rows, cols]` codes of width B packed into 32-bit words along one axis.
///
/// @tparam B    code width in bits (1..8).
/// @tparam Axis which axis is packed; the packed extent must be a multiple of Bits<B>::values_per_pack.
///
/// @code
/// using L = lowbit::GptqQWeightLayout<4>;           // codes [K, N] -> qweight [K/8, N]
/// std::vector<std::uint32_t> q(L::packed_size(K, N));
/// L::pack(codes.data(), K, N, q.data());
/// std::uint32_t c = L::get(q.data(), K, N, k, n); // one element, host or device
/// @endcode
template <int B, PackAxis Axis>
struct PackedLayout {
  /// The width traits.
  using bits = Bits<B>;
  /// The packed axis.
  static constexpr PackAxis axis = Axis;

  /// True when a `[rows, cols]` code matrix can be packed (packed extent a multiple of a pack).
  LOWBIT_HOST_DEVICE static constexpr bool fits(std::size_t rows, std::size_t cols) {
    const std::size_t ext = Axis == PackAxis::rows ? rows : cols;
    return ext % static_cast<std::size_t>(bits::values_per_pack) == 0;
  }
  /// Throws lowbit::Error naming `what` unless fits(rows, cols).
  static void check(std::size_t rows, std::size_t cols, const char* what = "matrix") {
    LOWBIT_CHECK(fits(rows, cols), what, ": ", (Axis == PackAxis::rows ? "rows" : "columns"), " (",
                 (Axis == PackAxis::rows ? rows : cols), ") must be a multiple of ", bits::values_per_pack,
                 " to pack ", B, "-bit codes into 32-bit words");
  }
  /// Rows of the packed word matrix.
  LOWBIT_HOST_DEVICE static constexpr std::size_t packed_rows(std::size_t rows, std::size_t /*cols*/) {
    return Axis == PackAxis::rows ? rows / bits::values_per_pack * bits::words_per_pack : rows;
  }
  /// Columns of the packed word matrix.
  LOWBIT_HOST_DEVICE static constexpr std::size_t packed_cols(std::size_t /*rows*/, std::size_t cols) {
    return Axis == PackAxis::cols ? cols / bits::values_per_pack * bits::words_per_pack : cols;
  }
  /// Words in the packed matrix.
  LOWBIT_HOST_DEVICE static constexpr std::size_t packed_size(std::size_t rows, std::size_t cols) {
    return packed_rows(rows, cols) * packed_cols(rows, cols);
  }

  /// Code at (r, c) of a packed `[rows, cols]` matrix (host or device).
  LOWBIT_HOST_DEVICE static std::uint32_t get(const std::uint32_t* words, std::size_t rows, std::size_t cols,
                                              std::size_t r, std::size_t c) {
    if constexpr (Axis == PackAxis::rows) {
      (void)rows;
      return stream_get<B>(words + c, cols, r);
    } else {
      return stream_get<B>(words + r * packed_cols(rows, cols), 1, c);
    }
  }
  /// Stores code `v` at (r, c) of a packed `[rows, cols]` matrix (host or device).
  LOWBIT_HOST_DEVICE static void set(std::uint32_t* words, std::size_t rows, std::size_t cols, std::size_t r,
                                     std::size_t c, std::uint32_t v) {
    if constexpr (Axis == PackAxis::rows) {
      (void)rows;
      stream_set<B>(words + c, cols, r, v);
    } else {
      stream_set<B>(words + r * packed_cols(rows, cols), 1, c, v);
    }
  }

  /// Packs row-major codes `[rows, cols]` into `out` (packed_size words, overwritten).
  /// @throws lowbit::Error if the shape does not fit or a code exceeds Bits<B>::max_code.
  template <class Code>
  static void pack(const Code* codes, std::size_t rows, std::size_t cols, std::uint32_t* out) {
    check(rows, cols);
    const std::size_t n = packed_size(rows, cols);
    for (std::size_t i = 0; i < n; ++i) out[i] = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        const auto v = codes[r * cols + c];
        bool negative = false;
        if constexpr (std::is_signed_v<Code>) negative = v < 0;  // (no pointless test for unsigned codes)
        LOWBIT_CHECK(!negative && static_cast<long long>(v) <= bits::max_code, "code ", static_cast<long long>(v),
                     " at (", r, ", ", c, ") does not fit in ", B, " bits");
        set(out, rows, cols, r, c, static_cast<std::uint32_t>(v));
      }
    }
  }
  /// Unpacks into row-major codes `[rows, cols]`.
  /// @throws lowbit::Error if the shape does not fit.
  template <class Code>
  static void unpack(const std::uint32_t* words, std::size_t rows, std::size_t cols, Code* codes) {
    check(rows, cols);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) codes[r * cols + c] = static_cast<Code>(get(words, rows, cols, r, c));
  }
};

/// GPTQ `qweight` layout: codes `[K, N]` packed along K into int32 `[K*B/32, N]`.
template <int B>
using GptqQWeightLayout = PackedLayout<B, PackAxis::rows>;
/// GPTQ `qzeros` layout: zero codes `[K/g, N]` packed along N into int32 `[K/g, N*B/32]`.
template <int B>
using GptqQZerosLayout = PackedLayout<B, PackAxis::cols>;

}  // namespace lowbit
