/// @file footprint.hpp
/// @brief Exact bytes of a GPTQ-quantized layer as a checkpoint stores it, and deployment math.
///
/// A GPTQ checkpoint stores, per linear layer with weight `[N, K]`, `G = K / group` groups:
/// - `qweight` int32 `[K·b/32, N]` (codes packed along K, GptqQWeightLayout),
/// - `qzeros`  int32 `[G, N·b/32]` (zero codes packed along N, GptqQZerosLayout),
/// - `scales`  fp16 `[G, N]`,
/// - `g_idx`   int32 `[K]` (optional: some writers omit it when there is no act-order),
/// - `bias`    fp16 `[N]` (optional).
///
/// @code
/// lowbit::QuantSpec spec;  spec.bits = 4;  spec.group_size = 128;
/// lowbit::Footprint f = lowbit::gptq_footprint(4096, 4096, spec);
/// double ratio = double(lowbit::fp16_bytes(4096, 4096)) / double(f.total);  // ~3.9x
/// double gib = lowbit::deployment_gib(70e9, 4.0);                           // 32.6 GiB of codes
/// @endcode
#pragma once

#include <cstddef>
#include <cstdint>

#include "bits.hpp"
#include "error.hpp"
#include "numeric.hpp"
#include "packing.hpp"
#include "quant_types.hpp"

namespace lowbit {

/// Bytes of one quantized layer in a GPTQ checkpoint, per tensor and in total.
struct Footprint {
  std::uint64_t codes = 0;   ///< `qweight` bytes
  std::uint64_t scales = 0;  ///< `scales` bytes
  std::uint64_t zeros = 0;   ///< `qzeros` bytes
  std::uint64_t g_idx = 0;   ///< `g_idx` bytes (0 when not stored)
  std::uint64_t bias = 0;    ///< `bias` bytes (0 when not stored)
  std::uint64_t total = 0;   ///< sum of the above
  double bits_per_weight = 0;  ///< `8 · total / (N · K)`: storage cost per weight including metadata
};

/// Bytes of the same `[N, K]` weight stored in fp16.
/// @param N output features.
/// @param K input features.
inline std::uint64_t fp16_bytes(std::size_t N, std::size_t K) {
  return static_cast<std::uint64_t>(N) * static_cast<std::uint64_t>(K) * dtype_size(DType::f16);
}

namespace detail {
/// gptq_footprint for a compile-time width.
template <int B>
Footprint gptq_footprint_bits(std::size_t N, std::size_t K, const QuantSpec& spec, bool with_g_idx, bool with_bias) {
  using QW = GptqQWeightLayout<B>;
  using QZ = GptqQZerosLayout<B>;
  const std::size_t G = spec.num_groups(K);
  QW::check(K, N, "qweight [K, N]");
  QZ::check(G, N, "qzeros [G, N]");
  constexpr std::uint64_t kWordBytes = sizeof(typename Bits<B>::word_type);
  Footprint f;
  f.codes = static_cast<std::uint64_t>(QW::packed_size(K, N)) * kWordBytes;
  f.zeros = static_cast<std::uint64_t>(QZ::packed_size(G, N)) * kWordBytes;
  f.scales = static_cast<std::uint64_t>(G) * N * dtype_size(DType::f16);
  f.g_idx = with_g_idx ? static_cast<std::uint64_t>(K) * dtype_size(DType::i32) : 0;
  f.bias = with_bias ? static_cast<std::uint64_t>(N) * dtype_size(DType::f16) : 0;
  f.total = f.codes + f.zeros + f.scales + f.g_idx + f.bias;
  f.bits_per_weight = 8.0 * static_cast<double>(f.total) / (static_cast<double>(N) * static_cast<double>(K));
  return f;
}
}  // namespace detail

/// Exact bytes a GPTQ checkpoint stores for an `[N, K]` layer quantized with `spec`.
/// @param N          output features (must be a multiple of 32/gcd(bits,32) values for qzeros packing).
/// @param K          input features (divisible by the group size and by the qweight pack length).
/// @param spec       width and group size.
/// @param with_g_idx count the int32 `g_idx [K]` tensor.
/// @param with_bias  count an fp16 `bias [N]` tensor.
/// @throws lowbit::Error on a bad spec or a shape the GPTQ packing cannot represent.
inline Footprint gptq_footprint(std::size_t N, std::size_t K, const QuantSpec& spec, bool with_g_idx = true,
                                bool with_bias = false) {
  spec.validate(K);
  LOWBIT_CHECK(N > 0, "gptq_footprint: N (output features) must be positive");
  return dispatch_bits(spec.bits,
                       [&](auto B) { return detail::gptq_footprint_bits<decltype(B)::value>(N, K, spec, with_g_idx, with_bias); });
}

/// Deployment size in GiB (2^30 bytes): `(params · bits_per_weight / 8 + metadata_bytes) / 2^30`.
/// E.g. 70e9 parameters at 4 bits are 32.6 GiB of raw codes.
/// @param params          number of weights.
/// @param bits_per_weight storage bits per weight (codes only, or a Footprint's bits_per_weight).
/// @param metadata_bytes  extra bytes (scales, zeros, unquantized layers, ...).
inline double deployment_gib(double params, double bits_per_weight, double metadata_bytes = 0) {
  constexpr double kBytesPerGiB = 1073741824.0;  // 2^30
  return (params * bits_per_weight / 8.0 + metadata_bytes) / kBytesPerGiB;
}

}  // namespace lowbit
