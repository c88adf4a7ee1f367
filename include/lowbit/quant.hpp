/// @file quant.hpp
/// @brief Group-wise scale/zero search (min-max and the MSE clip grid), round-to-nearest (RTN)
///        quantization of a whole weight, dequantization, validation and error metrics.
///
/// This is the published GPTQ quantizer (the `Quantizer.find_params` / `quantize` pair of the GPTQ
/// reference) expressed for one (row, group) at a time, plus the RTN baseline every later method is
/// compared with. Conventions are those of quant_types.hpp: `W` is `[N, K]` row-major (PyTorch
/// `Linear`), codes `[K, N]`, scales and zeros `[G, N]`, zeros are actual zero codes.
///
/// One deliberate addition to the published quantizer: the chosen scale is rounded to fp16, because
/// GPTQ checkpoints store fp16 scales, and codes are then computed with that stored scale. Dequantizing
/// the checkpoint therefore reproduces exactly the values chosen here (the published packer does the
/// same: it divides by the fp16 scale when it packs).
///
/// Scalar helpers (round_half_even, quantize_code, dequantize_code, fake_quantize) are
/// `LOWBIT_HOST_DEVICE`; everything that can throw is host only.
///
/// @code
/// lowbit::QuantSpec spec;  spec.bits = 4;  spec.group_size = 128;
/// lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), N, K, spec);
/// std::vector<float> Wq = lowbit::dequantize(q);            // [N, K]
/// double err = lowbit::output_error(W.data(), Wq.data(), N, K, H.data());  // tr(dW H dW^T)
/// @endcode
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "bits.hpp"
#include "config.hpp"
#include "error.hpp"
#include "numeric.hpp"
#include "quant_types.hpp"

namespace lowbit {

// ---------------------------------------------------------------------------------------------
// Scalar helpers (host and device)
// ---------------------------------------------------------------------------------------------

/// Rounds to the nearest integer, ties to even (what `torch.round` does, and so the published
/// quantizer). Host: `std::nearbyint` under the default rounding mode; device: `rintf`.
/// @param x value to round.
LOWBIT_HOST_DEVICE float round_half_even(float x) {
#if LOWBIT_DEVICE_PASS
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}

/// The code of one weight: `clamp(round_half_even(w / scale) + zero, 0, Bits<B>::max_code)`.
///
/// Divides by the scale exactly as the published reference does (not multiply by a reciprocal), so
/// codes agree bit for bit. A NaN quotient maps to code 0; ±inf clamps to the ends of the range.
/// @tparam B code width in bits.
/// @param w     weight value.
/// @param scale group scale (positive).
/// @param zero  zero code of the group (an integer value in [0, max_code]).
template <int B>
LOWBIT_HOST_DEVICE std::uint32_t quantize_code(float w, float scale, float zero) {
  const float q = round_half_even(w / scale) + zero;
  if (!(q >= 0.f)) return 0u;  // also catches NaN
  constexpr float kMax = static_cast<float>(Bits<B>::max_code);
  if (q >= kMax) return static_cast<std::uint32_t>(Bits<B>::max_code);
  return static_cast<std::uint32_t>(q);
}

/// The value a code stands for: `scale * (code - zero)`.
/// @param code  code in [0, 2^bits - 1].
/// @param scale group scale.
/// @param zero  zero code of the group.
LOWBIT_HOST_DEVICE float dequantize_code(std::uint32_t code, float scale, float zero) {
  return scale * (static_cast<float>(code) - zero);
}

/// Quantize then dequantize one weight (what the published `quantize()` returns).
/// @tparam B code width in bits.
/// @param w     weight value.
/// @param scale group scale.
/// @param zero  zero code of the group.
template <int B>
LOWBIT_HOST_DEVICE float fake_quantize(float w, float scale, float zero) {
  return dequantize_code(quantize_code<B>(w, scale, zero), scale, zero);
}

// ---------------------------------------------------------------------------------------------
// Scale / zero search for one (row, group)
// ---------------------------------------------------------------------------------------------

/// Quantization parameters of one (row, group): `w ≈ scale * (code - zero)`.
struct ScaleZero {
  float scale;  ///< step between codes (positive; fp16-exact when returned by find_scale_zero)
  float zero;   ///< zero code, an integer value in [0, 2^bits - 1]
};

namespace detail {

/// Smallest positive fp16 value (subnormal 2^-24): stored scales that round to 0 are raised to it.
inline constexpr float kMinPositiveHalf = 5.9604644775390625e-8f;
/// Largest finite fp16 value: a larger scale cannot be stored in a checkpoint.
inline constexpr float kMaxHalf = 65504.f;

/// Σ |fake_quantize(x_i) - x_i|^norm in double (the published clip-search objective).
template <int B>
double clip_error(const float* x, std::size_t n, std::size_t stride, float scale, float zero, float norm) {
  double err = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    const float d = std::fabs(fake_quantize<B>(v, scale, zero) - v);
    err += static_cast<double>(std::pow(d, norm));
  }
  return err;
}

/// The published quantizer in fp32, before the fp16 storage step: min-max range including 0,
/// symmetric widening, the all-zero fallback to [-1, 1], then (if spec.mse) the shrink grid keeping
/// strictly better p-norm errors. Inputs must be finite (checked by the public entries).
/// @tparam B code width in bits.
template <int B>
ScaleZero search_scale_zero(const float* x, std::size_t n, std::size_t stride, const QuantSpec& spec) {
  constexpr float maxq = static_cast<float>(Bits<B>::max_code);
  constexpr float sym_zero = static_cast<float>((Bits<B>::max_code + 1) / 2);  // 2^(B-1)
  float xmin = 0.f, xmax = 0.f;  // the range always includes 0
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    xmin = v < xmin ? v : xmin;
    xmax = v > xmax ? v : xmax;
  }
  if (spec.sym) {
    xmax = std::fabs(xmin) > xmax ? std::fabs(xmin) : xmax;
    if (xmin < 0.f) xmin = -xmax;
  }
  if (xmin == 0.f && xmax == 0.f) {  // all-zero group: any grid works, use the published [-1, 1]
    xmin = -1.f;
    xmax = 1.f;
  }
  ScaleZero best{(xmax - xmin) / maxq, 0.f};
  best.zero = spec.sym ? sym_zero : round_half_even(-xmin / best.scale);
  if (!spec.mse) return best;

  double best_err = std::numeric_limits<double>::infinity();
  const int steps = static_cast<int>(static_cast<double>(spec.mse_max_shrink) * spec.mse_grid);
  for (int i = 0; i < steps; ++i) {
    const float p = static_cast<float>(1.0 - static_cast<double>(i) / spec.mse_grid);
    const float lo = p * xmin;
    const float hi = p * xmax;
    const float scale = (hi - lo) / maxq;
    const float zero = spec.sym ? sym_zero : round_half_even(-lo / scale);
    const double err = clip_error<B>(x, n, stride, scale, zero, spec.mse_norm);
    if (err < best_err) {  // strictly better only, as published
      best_err = err;
      best = {scale, zero};
    }
  }
  return best;
}

}  // namespace detail

/// Finds the scale and zero of one (row, group) with the published GPTQ quantizer, then rounds the
/// scale to fp16 (the precision checkpoints store; see the file comment).
///
/// - range: `xmin = min(min x, 0)`, `xmax = max(max x, 0)`; symmetric: `xmax = max(|xmin|, xmax)` and
///   `xmin = -xmax` when `xmin < 0`; an all-zero group uses `[-1, 1]`;
/// - `scale = (xmax - xmin) / max_code`; `zero = 2^(B-1)` (symmetric) or `round_half_even(-xmin/scale)`;
/// - `spec.mse`: for `i` in `[0, int(max_shrink * grid))`, shrink the range by `p = 1 - i/grid`,
///   recompute scale (and zero, unless symmetric) and keep the strictly smallest
///   `Σ |dequant(quant(x)) - x|^norm` (summed in double; the reference sums in fp32, so the two can
///   pick different grid points only where their errors agree to about 1e-7 relative).
///
/// As published, a symmetric group with no negative value keeps `xmin = 0`: its scale is
/// `xmax / max_code` around the fixed zero `2^(B-1)`, so the grid covers only
/// `[-2^(B-1)·scale, (2^(B-1)-1)·scale]` and the top of such a group is clipped. This is kept for
/// bit-exact agreement with the reference; use asymmetric quantization to avoid it.
///
/// A scale that rounds to 0 in fp16 (a range below ~3e-8) is raised to the smallest positive fp16
/// value, so no later division by zero or NaN can happen.
///
/// @tparam B code width in bits (must equal spec.bits for the result to be meaningful).
/// @param x      first value of the group.
/// @param n      number of values in the group (> 0).
/// @param stride distance between consecutive values (1 for a row of a row-major `[N, K]` weight).
/// @param spec   symmetry and MSE settings (spec.group_size is not used here).
/// @throws lowbit::Error on a non-finite value (naming its index) or a scale beyond the fp16 range.
template <int B>
ScaleZero find_scale_zero(const float* x, std::size_t n, std::size_t stride, const QuantSpec& spec) {
  LOWBIT_CHECK(n > 0, "find_scale_zero: empty group");
  LOWBIT_CHECK(x != nullptr, "find_scale_zero: null input");
  for (std::size_t i = 0; i < n; ++i)
    LOWBIT_CHECK(std::isfinite(x[i * stride]), "find_scale_zero: non-finite value ", x[i * stride],
                 " at group index ", i);
  ScaleZero sz = detail::search_scale_zero<B>(x, n, stride, spec);
  LOWBIT_CHECK(std::isfinite(sz.scale) && sz.scale <= detail::kMaxHalf, "find_scale_zero: scale ", sz.scale,
               " exceeds the fp16 range (max ", detail::kMaxHalf, "); the weights are too large to store");
  sz.scale = round_to_half(sz.scale);
  if (sz.scale == 0.f) sz.scale = detail::kMinPositiveHalf;
  if (sz.zero < 0.f) sz.zero = 0.f;  // cannot happen for finite inputs; keeps the contract explicit
  if (sz.zero > static_cast<float>(Bits<B>::max_code)) sz.zero = static_cast<float>(Bits<B>::max_code);
  return sz;
}

/// Runtime-width form of find_scale_zero: dispatches on `spec.bits` (2, 3, 4 or 8).
/// @param x      first value of the group.
/// @param n      number of values in the group.
/// @param stride distance between consecutive values.
/// @param spec   width, symmetry and MSE settings.
inline ScaleZero find_scale_zero(const float* x, std::size_t n, std::size_t stride, const QuantSpec& spec) {
  return dispatch_bits(spec.bits, [&](auto B) { return find_scale_zero<decltype(B)::value>(x, n, stride, spec); });
}

// ---------------------------------------------------------------------------------------------
// Whole-matrix helpers shared by RTN, GPTQ and the checkpoint code
// ---------------------------------------------------------------------------------------------

/// `g_idx[k] = k / group` for the natural (no act-order) column order of a K-column weight.
/// @param K    input features.
/// @param spec group size (per-channel: every column in group 0).
inline std::vector<std::int32_t> sequential_g_idx(std::size_t K, const QuantSpec& spec) {
  const std::size_t g = spec.effective_group(K);
  std::vector<std::int32_t> idx(K);
  for (std::size_t k = 0; k < K; ++k) idx[k] = static_cast<std::int32_t>(k / g);
  return idx;
}

/// A QuantizedWeight of the right sizes for `[N, K]` (codes, scales, zeros zero-filled;
/// g_idx sequential). Validates the spec and the shape.
/// @param N    output features.
/// @param K    input features.
/// @param spec how the weight will be quantized.
/// @throws lowbit::Error on a bad spec, a zero extent or a size overflow.
inline QuantizedWeight make_quantized_weight(std::size_t N, std::size_t K, const QuantSpec& spec) {
  spec.validate(K);
  LOWBIT_CHECK(N > 0, "N (output features) must be positive");
  LOWBIT_CHECK(N <= std::numeric_limits<std::size_t>::max() / K, "weight shape [", N, ", ", K, "] overflows");
  QuantizedWeight q;
  q.spec = spec;
  q.K = K;
  q.N = N;
  const std::size_t G = spec.num_groups(K);
  q.codes.assign(K * N, 0);
  q.scales.assign(G * N, 0.f);
  q.zeros.assign(G * N, 0);
  q.g_idx = sequential_g_idx(K, spec);
  return q;
}

/// Calls `f(n, g, k_begin, k_end)` for every output row `n` in `[0, N)` and every group `g` of
/// consecutive input columns `[k_begin, k_end)` (rows outer, groups inner). The generic per-row group
/// loop of RTN; reusable by anything that walks a `[N, K]` weight group by group.
/// @tparam F callable as `f(std::size_t n, std::size_t g, std::size_t k_begin, std::size_t k_end)`.
/// @param N    output features.
/// @param K    input features.
/// @param spec group size (validated against K).
/// @param f    the visitor.
template <class F>
void for_each_row_group(std::size_t N, std::size_t K, const QuantSpec& spec, F&& f) {
  spec.validate(K);
  const std::size_t gs = spec.effective_group(K);
  const std::size_t G = K / gs;
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t g = 0; g < G; ++g) f(n, g, g * gs, (g + 1) * gs);
}

/// Throws lowbit::Error naming the first non-finite element of a `[N, K]` weight (row, column).
/// @param W weight `[N, K]` row-major.
/// @param N output features (rows).
/// @param K input features (columns).
inline void check_finite(const float* W, std::size_t N, std::size_t K) {
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      LOWBIT_CHECK(std::isfinite(W[n * K + k]), "non-finite weight ", W[n * K + k], " at (row ", n, ", column ", k,
                   ")");
}

// ---------------------------------------------------------------------------------------------
// RTN, dequantize, validate
// ---------------------------------------------------------------------------------------------

namespace detail {
/// RTN body for a compile-time width.
template <int B>
void rtn_quantize_into(const float* W, QuantizedWeight& q) {
  const std::size_t N = q.N, K = q.K;
  for_each_row_group(N, K, q.spec, [&](std::size_t n, std::size_t g, std::size_t k0, std::size_t k1) {
    const float* row = W + n * K;
    ScaleZero sz;
    try {
      sz = find_scale_zero<B>(row + k0, k1 - k0, 1, q.spec);
    } catch (const Error& e) {
      fail("row ", n, ", group ", g, " (columns ", k0, "..", k1 - 1, "): ", e.what());
    }
    q.scales[g * N + n] = sz.scale;
    q.zeros[g * N + n] = static_cast<std::uint8_t>(sz.zero);
    for (std::size_t k = k0; k < k1; ++k)
      q.codes[k * N + n] = static_cast<std::uint8_t>(quantize_code<B>(row[k], sz.scale, sz.zero));
  });
}
}  // namespace detail

/// Round-to-nearest quantization of a whole weight: each output row `n` and each group `g` of input
/// columns gets its own find_scale_zero, every weight its nearest code. `g_idx[k] = k / group`.
///
/// @param W    weight `[N, K]` row-major (PyTorch Linear: out_features × in_features), finite.
/// @param N    output features.
/// @param K    input features.
/// @param spec width, group size, symmetry, MSE clip search.
/// @return codes `[K, N]`, fp16-exact scales and zero codes `[G, N]`, g_idx `[K]`.
/// @throws lowbit::Error for a bad spec (bits, group not dividing K), a non-finite weight (naming its
///         row and column), a zero extent, or a group whose scale does not fit fp16.
inline QuantizedWeight rtn_quantize(const float* W, std::size_t N, std::size_t K, const QuantSpec& spec) {
  QuantizedWeight q = make_quantized_weight(N, K, spec);
  LOWBIT_CHECK(W != nullptr, "rtn_quantize: null weight");
  check_finite(W, N, K);
  dispatch_bits(spec.bits, [&](auto B) { detail::rtn_quantize_into<decltype(B)::value>(W, q); });
  return q;
}

/// Checks that a QuantizedWeight is self-consistent: spec valid for K, N > 0, vector sizes
/// (codes K·N, scales and zeros G·N, g_idx K), codes and zeros within `[0, 2^bits - 1]`, every g_idx in
/// `[0, G)`, every scale finite, positive and exactly representable in fp16.
/// @param q the weight to check.
/// @throws lowbit::Error naming the first problem found (and its position).
inline void validate(const QuantizedWeight& q) {
  q.spec.validate(q.K);
  LOWBIT_CHECK(q.N > 0, "quantized weight: N (output features) must be positive");
  LOWBIT_CHECK(q.N <= std::numeric_limits<std::size_t>::max() / q.K, "quantized weight: shape overflows");
  const std::size_t K = q.K, N = q.N, G = q.spec.num_groups(K);
  const unsigned maxc = (1u << q.spec.bits) - 1u;
  LOWBIT_CHECK(q.codes.size() == K * N, "quantized weight: codes has ", q.codes.size(), " elements, expected K*N = ",
               K * N);
  LOWBIT_CHECK(q.scales.size() == G * N, "quantized weight: scales has ", q.scales.size(),
               " elements, expected G*N = ", G * N);
  LOWBIT_CHECK(q.zeros.size() == G * N, "quantized weight: zeros has ", q.zeros.size(), " elements, expected G*N = ",
               G * N);
  LOWBIT_CHECK(q.g_idx.size() == K, "quantized weight: g_idx has ", q.g_idx.size(), " elements, expected K = ", K);
  for (std::size_t i = 0; i < K * N; ++i)
    LOWBIT_CHECK(q.codes[i] <= maxc, "quantized weight: code ", unsigned(q.codes[i]), " at (k ", i / N, ", n ", i % N,
                 ") exceeds ", maxc, " for ", q.spec.bits, "-bit codes");
  for (std::size_t i = 0; i < G * N; ++i) {
    LOWBIT_CHECK(q.zeros[i] <= maxc, "quantized weight: zero ", unsigned(q.zeros[i]), " at (group ", i / N, ", n ",
                 i % N, ") exceeds ", maxc, " for ", q.spec.bits, "-bit codes");
    const float s = q.scales[i];
    LOWBIT_CHECK(std::isfinite(s) && s > 0.f, "quantized weight: scale ", s, " at (group ", i / N, ", n ", i % N,
                 ") is not finite and positive");
    LOWBIT_CHECK(round_to_half(s) == s, "quantized weight: scale ", s, " at (group ", i / N, ", n ", i % N,
                 ") is not exactly representable in fp16");
  }
  for (std::size_t k = 0; k < K; ++k)
    LOWBIT_CHECK(q.g_idx[k] >= 0 && static_cast<std::size_t>(q.g_idx[k]) < G, "quantized weight: g_idx[", k, "] = ",
                 q.g_idx[k], " is outside [0, ", G, ")");
}

/// Dequantizes a weight to `[N, K]` row-major float (`w[n,k] = scale[g,n] * (code[k,n] - zero[g,n])`,
/// `g = g_idx[k]`), after validate().
/// @param q the quantized weight.
/// @throws lowbit::Error if validate(q) fails.
inline std::vector<float> dequantize(const QuantizedWeight& q) {
  validate(q);
  const std::size_t N = q.N, K = q.K;
  std::vector<float> W(N * K);
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t g = static_cast<std::size_t>(q.g_idx[k]);
    for (std::size_t n = 0; n < N; ++n)
      W[n * K + k] = dequantize_code(q.codes[k * N + n], q.scales[g * N + n], static_cast<float>(q.zeros[g * N + n]));
  }
  return W;
}

// ---------------------------------------------------------------------------------------------
// Error metrics
// ---------------------------------------------------------------------------------------------

/// Layer output error `tr(ΔW H ΔWᵀ)` with `ΔW = W − Wq` (`Σ_n Δw_n H Δw_nᵀ`). With `H = XᵀX` for
/// calibration inputs `X [M, K]` this equals `‖ΔW Xᵀ‖_F²` (GPTQ's layer objective up to H's scaling).
/// Accumulates in double; O(N·K²).
/// @param W  reference weight `[N, K]`.
/// @param Wq quantized (dequantized) weight `[N, K]`.
/// @param N  output features.
/// @param K  input features.
/// @param H  symmetric `[K, K]` row-major matrix (e.g. a GPTQ Hessian `XᵀX`).
inline double output_error(const float* W, const float* Wq, std::size_t N, std::size_t K, const double* H) {
  LOWBIT_CHECK(W && Wq && H, "output_error: null input");
  // Σ_n Σ_i d_i (Σ_j H_ij d_j) = Σ_n Σ_j (Σ_i d_i H_ij) d_j: accumulate v = d·H row by row (contiguous
  // axpy updates, which compilers vectorize), for kRows weight rows at a time so each row of H is
  // read once per block. Valid for any H, symmetric or not.
  constexpr std::size_t kRows = 8;
  std::vector<double> d(kRows * K), v(kRows * K);
  double total = 0.0;
  for (std::size_t n0 = 0; n0 < N; n0 += kRows) {
    const std::size_t rows = N - n0 < kRows ? N - n0 : kRows;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < K; ++k)
        d[r * K + k] = static_cast<double>(W[(n0 + r) * K + k]) - static_cast<double>(Wq[(n0 + r) * K + k]);
    for (double& x : v) x = 0.0;
    for (std::size_t i = 0; i < K; ++i) {
      const double* h = H + i * K;
      for (std::size_t r = 0; r < rows; ++r) {
        const double di = d[r * K + i];
        if (di == 0.0) continue;
        double* vr = v.data() + r * K;
        for (std::size_t j = 0; j < K; ++j) vr[j] += di * h[j];
      }
    }
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < K; ++j) total += v[r * K + j] * d[r * K + j];
  }
  return total;
}

/// Relative weight error `‖W − Wq‖_F / ‖W‖_F` (0 when both are zero; +inf when only W is zero).
/// @param W     reference values.
/// @param Wq    quantized values.
/// @param count number of elements.
inline double relative_weight_error(const float* W, const float* Wq, std::size_t count) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    const double w = W[i];
    const double d = w - static_cast<double>(Wq[i]);
    num += d * d;
    den += w * w;
  }
  if (den == 0.0) return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

}  // namespace lowbit
