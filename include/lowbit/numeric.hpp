/// @file numeric.hpp
/// @brief fp16 / bf16 storage types with exact round-to-nearest-even conversions, usable without CUDA.
///
/// `half_t` and `bfloat16_t` are 2-byte trivially copyable structs, layout-compatible with CUDA's
/// `__half` and `__nv_bfloat16`, so host buffers of them can be copied to the device and read there
/// through `reinterpret_cast`. Conversions are bit-exact IEEE round-to-nearest-even, including
/// subnormals, infinities and NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "config.hpp"

namespace lowbit {

namespace detail {
/// Bit-level reinterpretation (std::bit_cast without requiring <bit> in device code).
template <class To, class From>
LOWBIT_HOST_DEVICE To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}
}  // namespace detail

/// IEEE binary16 bits from a float, rounding to nearest even.
LOWBIT_HOST_DEVICE std::uint16_t float_to_half_bits(float f) {
  const std::uint32_t x = detail::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t absx = x & 0x7fffffffu;
  constexpr std::uint32_t kFloatInf = 0x7f800000u;
  constexpr std::uint32_t kHalfInf = 0x7c00u;
  constexpr std::uint32_t kOverflow = 0x477ff000u;   // 65520.0f: first value that rounds to inf
  constexpr std::uint32_t kMinNormal = 0x38800000u;  // 2^-14, smallest normal half
  constexpr std::uint32_t kRebias = (127u - 15u) << 23;
  if (absx >= kFloatInf) {  // inf or NaN (keep NaN quiet and non-zero)
    return static_cast<std::uint16_t>(sign | kHalfInf | (absx > kFloatInf ? 0x200u | ((absx >> 13) & 0x3ffu) : 0u));
  }
  if (absx >= kOverflow) return static_cast<std::uint16_t>(sign | kHalfInf);
  if (absx < kMinNormal) {  // half subnormal or zero: count units of 2^-24
    const std::uint32_t e = absx >> 23;
    if (e < 102) return static_cast<std::uint16_t>(sign);  // below 2^-25: rounds to zero
    const std::uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // 14..24
    std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
  }
  const std::uint32_t r = absx - kRebias;
  std::uint32_t q = r >> 13;
  const std::uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<std::uint16_t>(sign | q);
}

/// Float value of IEEE binary16 bits (exact).
LOWBIT_HOST_DEVICE float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  std::uint32_t out;
  if (e == 0) {
    if (m == 0) {
      out = sign;
    } else {  // subnormal: m * 2^-24
      const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
      out = sign | detail::bit_cast<std::uint32_t>(v);
    }
  } else if (e == 31) {
    out = sign | 0x7f800000u | (m << 13);
  } else {
    out = sign | ((e + 112u) << 23) | (m << 13);
  }
  return detail::bit_cast<float>(out);
}

/// bfloat16 bits from a float, rounding to nearest even (NaN stays NaN).
LOWBIT_HOST_DEVICE std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t x = detail::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

/// Float value of bfloat16 bits (exact).
LOWBIT_HOST_DEVICE float bf16_bits_to_float(std::uint16_t b) {
  return detail::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// IEEE binary16 storage type; layout-compatible with CUDA's `__half`.
struct half_t {
  std::uint16_t bits = 0;  ///< raw IEEE binary16 bits
  half_t() = default;
  /// Rounds a float to nearest even.
  LOWBIT_HOST_DEVICE explicit half_t(float f) : bits(float_to_half_bits(f)) {}
  /// Wraps raw bits.
  LOWBIT_HOST_DEVICE static half_t from_bits(std::uint16_t b) {
    half_t h;
    h.bits = b;
    return h;
  }
  /// Exact float value.
  LOWBIT_HOST_DEVICE explicit operator float() const { return half_bits_to_float(bits); }
};

/// bfloat16 storage type; layout-compatible with CUDA's `__nv_bfloat16`.
struct bfloat16_t {
  std::uint16_t bits = 0;  ///< raw bfloat16 bits
  bfloat16_t() = default;
  /// Rounds a float to nearest even.
  LOWBIT_HOST_DEVICE explicit bfloat16_t(float f) : bits(float_to_bf16_bits(f)) {}
  /// Wraps raw bits.
  LOWBIT_HOST_DEVICE static bfloat16_t from_bits(std::uint16_t b) {
    bfloat16_t h;
    h.bits = b;
    return h;
  }
  /// Exact float value.
  LOWBIT_HOST_DEVICE explicit operator float() const { return bf16_bits_to_float(bits); }
};

static_assert(sizeof(half_t) == 2 && std::is_trivially_copyable_v<half_t>);
static_assert(sizeof(bfloat16_t) == 2 && std::is_trivially_copyable_v<bfloat16_t>);

/// Rounds a float through fp16 and back (the value an fp16 tensor would hold).
LOWBIT_HOST_DEVICE float round_to_half(float f) { return half_bits_to_float(float_to_half_bits(f)); }
/// Rounds a float through bf16 and back.
LOWBIT_HOST_DEVICE float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

/// Converts any supported scalar (float, double, half_t, bfloat16_t) to float.
template <class T>
LOWBIT_HOST_DEVICE float to_float(T v) {
  return static_cast<float>(v);
}

/// Converts a float to any supported scalar type, rounding to nearest even.
template <class T>
LOWBIT_HOST_DEVICE T from_float(float v) {
  return T(v);
}

/// Element types the library stores on disk and feeds to kernels.
enum class DType { f32, f16, bf16, i32, i8, u8, f64, i64, i16, u16, u32, bool_ };

/// Bytes per element of a DType.
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::f32:
    case DType::i32:
    case DType::u32: return 4;
    case DType::f16:
    case DType::bf16:
    case DType::i16:
    case DType::u16: return 2;
    case DType::i8:
    case DType::u8:
    case DType::bool_: return 1;
  }
  return 0;
}

}  // namespace lowbit
