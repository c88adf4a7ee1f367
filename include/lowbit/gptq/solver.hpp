/// @file solver.hpp
/// @brief The host GPTQ solver (arXiv 2210.17323): blocked lazy-batch updates, act-order, static groups,
///        damping escalation, and a per-layer loss report against RTN.
///
/// Algorithm, as published: dead columns (`H[i,i] = 0`) get `H[i,i] = 1` and a zero weight column;
/// optional act-order permutes columns by descending `diag(H)`; `U = chol_upper((H + λI)⁻¹)`; then for
/// each block of `block` columns and each column `i` in it: quantize `w_i` with the current group
/// parameters (recomputed at each group start from the current, error-updated weights), `err =
/// (w_i − q_i)/U[i,i]`, update the rest of the block with `err ⊗ U[i, i+1:]`, and after the block apply
/// the lazy update `W[:, end:] −= Err · U[block, end:]`.
///
/// One deliberate difference from the published code: when a group starts inside a block, its
/// parameters are computed from the fully updated weights (the published code reads the weight matrix
/// before the in-block updates of that block). For the usual group = block = 128 both are identical;
/// in general this makes the blocked solver equal to the column-by-column one (`block = 1`).
///
/// @code
/// lowbit::QuantSpec spec;  spec.bits = 4;  spec.group_size = 128;
/// lowbit::gptq::GptqOptions opt;  opt.act_order = true;
/// auto res = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
/// // res.weight: codes/scales/zeros/g_idx (original column order); res.report: loss, GPTQ vs RTN error
/// @endcode
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "../bits.hpp"
#include "../error.hpp"
#include "../quant.hpp"
#include "../quant_types.hpp"
#include "cholesky.hpp"
#include "hessian.hpp"
#include "linalg.hpp"

namespace lowbit::gptq {

/// Options of the GPTQ solver (defaults are the published ones).
struct GptqOptions {
  int block = 128;             ///< columns per lazy-batch block (1 = column by column)
  double damp = 0.01;          ///< relative damping (`damp · mean(diag H)` added to the diagonal)
  double damp_factor = 10.0;   ///< damping escalation factor when H is not positive definite
  double max_damp = 10.0;      ///< cap of the escalation (relative)
  bool act_order = false;      ///< process columns by descending diag(H) (desc_act)
  bool static_groups = false;  ///< group parameters from the weights before any error feedback
  bool compute_errors = true;  ///< fill GptqReport::gptq_error / rtn_error (costs O(N·K²))
  unsigned threads = 0;        ///< worker threads (0 = all hardware threads)
  std::string layer = "layer"; ///< name used in error messages
};

/// What the solver did and what it bought (all sums over the whole layer).
struct GptqReport {
  double loss = 0.0;            ///< Σ (w − q)² / U[i,i]² / 2 (the published per-layer loss)
  double gptq_error = 0.0;      ///< tr(ΔW H ΔWᵀ) of the GPTQ result (original, undamped H)
  double rtn_error = 0.0;       ///< the same for round-to-nearest with the same spec
  double damp_used = 0.0;       ///< relative damping that factorized (>= requested)
  int damp_attempts = 0;        ///< factorizations tried (> 1 means escalation happened)
  std::size_t dead_columns = 0; ///< columns with H[i,i] = 0 (weights set to 0)
  double seconds = 0.0;         ///< wall time of the whole call
  double factor_seconds = 0.0;  ///< part spent in the damped Cholesky / inverse
  double solve_seconds = 0.0;   ///< part spent in the column loop and lazy updates
};

/// Result of gptq_quantize.
struct GptqResult {
  QuantizedWeight weight;  ///< codes [K,N], scales/zeros [G,N], g_idx [K], in original column order
  GptqReport report;       ///< loss, errors, damping
};


}  // namespace lowbit::gptq

namespace lowbit::detail {

/// Column order of the solve: identity, or stable sort by descending diagonal (act-order).
template <class HT>
std::vector<std::size_t> gptq_permutation(const HT* H, const std::vector<char>& dead, std::size_t K, bool act_order) {
  std::vector<std::size_t> perm(K);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (act_order) {
    auto diag = [&](std::size_t i) { return dead[i] ? 1.0 : static_cast<double>(H[i * K + i]); };
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return diag(a) > diag(b); });
  }
  return perm;
}

/// The blocked column loop for a compile-time width. `Wk [N, K]` (permuted, dead columns zeroed) is
/// updated in place; `U [K, K]` upper; codes_p [N, K] (permuted order) and the parameters are written.
template <int B, class T>
void gptq_columns(T* Wk, const T* U, std::size_t N, std::size_t K, const QuantSpec& spec, const gptq::GptqOptions& opt,
                  const std::vector<std::size_t>& perm, std::vector<std::uint8_t>& codes_p, QuantizedWeight& q,
                  std::vector<double>& loss_row, unsigned threads) {
  const std::size_t gs = spec.effective_group(K);
  const bool grouped = spec.group_size > 0;
  const bool dynamic_groups = grouped && !opt.static_groups;
  const std::size_t block = static_cast<std::size_t>(opt.block);
  std::vector<T> err(N * block);  // [N, block] scaled errors of the current block
  for (std::size_t i1 = 0; i1 < K; i1 += block) {
    const std::size_t i2 = std::min(K, i1 + block);
    const std::size_t nb = i2 - i1;
    const double work = static_cast<double>(N) * static_cast<double>(nb) * static_cast<double>(nb);
    parallel_rows(N, 1, threads, work, [&](std::size_t r0, std::size_t r1) {
      std::vector<float> gbuf(dynamic_groups ? gs : 0);
      for (std::size_t r = r0; r < r1; ++r) {
        T* row = Wk + r * K;
        T* e = err.data() + r * block;
        double loss = 0.0;
        for (std::size_t i = 0; i < nb; ++i) {
          const std::size_t col = i1 + i;
          std::size_t g = 0;
          if (dynamic_groups) {
            g = col / gs;
            if (col % gs == 0) {  // group start: parameters from the current (error-updated) weights
              for (std::size_t j = col; j < col + gs; ++j) {
                T v = row[j];
                if (j >= i2)  // beyond this block: apply the block's pending lazy updates first
                  for (std::size_t c = 0; c < i; ++c) v -= e[c] * U[(i1 + c) * K + j];
                gbuf[j - col] = static_cast<float>(v);
              }
              ScaleZero sz{};
              try {
                sz = find_scale_zero<B>(gbuf.data(), gs, 1, spec);
              } catch (const Error& ex) {
                fail("layer '", opt.layer, "': row ", r, ", group ", g, ": ", ex.what());
              }
              q.scales[g * N + r] = sz.scale;
              q.zeros[g * N + r] = static_cast<std::uint8_t>(sz.zero);
            }
          } else if (grouped) {
            g = perm[col] / gs;  // static groups follow the original column
          }
          const float scale = q.scales[g * N + r];
          const float zero = static_cast<float>(q.zeros[g * N + r]);
          const T w = row[col];
          const std::uint32_t code = quantize_code<B>(static_cast<float>(w), scale, zero);
          const T qv = static_cast<T>(dequantize_code(code, scale, zero));
          codes_p[r * K + col] = static_cast<std::uint8_t>(code);
          const T d = U[col * K + col];
          const T diff = w - qv;
          loss += static_cast<double>(diff) * static_cast<double>(diff) / (static_cast<double>(d) * d);
          const T ec = diff / d;
          e[i] = ec;
          const T* u = U + col * K;
          for (std::size_t j = col + 1; j < i2; ++j) row[j] -= ec * u[j];
        }
        loss_row[r] += loss;
      }
    });
    if (i2 < K) gemm_sub(N, K - i2, nb, err.data(), block, U + i1 * K + i2, K, Wk + i2, K, threads);
  }
}

/// Group parameters computed once before the column loop: per-channel (from the original weights, as
/// published) or static groups (from the weights after the dead-column fix, original column order).
template <int B>
void gptq_static_params(const float* W, const std::vector<char>& dead, std::size_t N, std::size_t K,
                        const QuantSpec& spec, const std::string& layer, QuantizedWeight& q) {
  const std::size_t gs = spec.effective_group(K);
  const bool per_channel = spec.group_size <= 0;
  std::vector<float> buf(gs);
  for (std::size_t r = 0; r < N; ++r)
    for (std::size_t g = 0; g < K / gs; ++g) {
      for (std::size_t j = 0; j < gs; ++j) {
        const std::size_t k = g * gs + j;
        buf[j] = (!per_channel && dead[k]) ? 0.f : W[r * K + k];
      }
      ScaleZero sz{};
      try {
        sz = find_scale_zero<B>(buf.data(), gs, 1, spec);
      } catch (const Error& ex) {
        fail("layer '", layer, "': row ", r, ", group ", g, ": ", ex.what());
      }
      q.scales[g * N + r] = sz.scale;
      q.zeros[g * N + r] = static_cast<std::uint8_t>(sz.zero);
    }
}

/// tr(ΔW H ΔWᵀ) for a possibly-float H (converted to double once).
template <class HT>
double output_error_any(const float* W, const float* Wq, std::size_t N, std::size_t K, const HT* H) {
  if constexpr (std::is_same_v<HT, double>) {
    return output_error(W, Wq, N, K, H);
  } else {
    std::vector<double> Hd(H, H + K * K);
    return output_error(W, Wq, N, K, Hd.data());
  }
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Quantizes one linear layer with GPTQ on the host.
///
/// @tparam T  precision of the solve: float (the published precision) or double (reference).
/// @tparam HT element type of the Hessian: float or double.
/// @param W    weight `[N, K]` row-major (PyTorch Linear), finite.
/// @param N    output features.
/// @param K    input features.
/// @param H    Hessian `[K, K]` row-major, symmetric (e.g. Hessian::matrix()), finite.
/// @param spec bits (2/3/4/8), group size (divisor of K or <= 0 per-channel), sym, MSE clip search.
/// @param opt  block size, damping, act-order, static groups, threads, layer name.
/// @return codes/scales/zeros/g_idx in original column order, and the loss report.
/// @throws lowbit::Error (naming the layer) on a bad spec or option, a non-finite W or H, a Hessian that
///         stays indefinite up to `opt.max_damp`, or a group whose scale does not fit fp16.
template <class T = float, class HT>
GptqResult gptq_quantize(const float* W, std::size_t N, std::size_t K, const HT* H, const QuantSpec& spec,
                         const GptqOptions& opt = {}) {
  static_assert(std::is_floating_point_v<T> && std::is_floating_point_v<HT>, "gptq_quantize: T, HT float/double");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const std::string& layer = opt.layer;
  try {
    spec.validate(K);
  } catch (const Error& e) {
    ::lowbit::detail::fail("layer '", layer, "': ", e.what());
  }
  LOWBIT_CHECK(N > 0, "layer '", layer, "': N (output features) must be positive");
  LOWBIT_CHECK(W != nullptr && H != nullptr, "layer '", layer, "': null weight or Hessian");
  LOWBIT_CHECK(opt.block >= 1, "layer '", layer, "': block size must be >= 1 (got ", opt.block, ")");
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      LOWBIT_CHECK(std::isfinite(W[n * K + k]), "layer '", layer, "': non-finite weight ", W[n * K + k], " at (row ",
                   n, ", column ", k, ")");
  for (std::size_t i = 0; i < K * K; ++i)
    LOWBIT_CHECK(std::isfinite(H[i]), "layer '", layer, "': non-finite Hessian entry ", H[i], " at (", i / K, ", ",
                 i % K, ")");
  const unsigned threads = ::lowbit::detail::resolve_threads(opt.threads);

  GptqResult res;
  QuantizedWeight& q = res.weight;
  q = make_quantized_weight(N, K, spec);
  const std::size_t gs = spec.effective_group(K);
  const bool grouped = spec.group_size > 0;

  // Dead columns and the column order.
  std::vector<char> dead(K, 0);
  for (std::size_t i = 0; i < K; ++i)
    if (H[i * K + i] == HT(0)) {
      dead[i] = 1;
      ++res.report.dead_columns;
    }
  const std::vector<std::size_t> perm = ::lowbit::detail::gptq_permutation(H, dead, K, opt.act_order);

  // Permuted working copies.
  std::vector<T> Wk(N * K);
  for (std::size_t r = 0; r < N; ++r)
    for (std::size_t i = 0; i < K; ++i)
      Wk[r * K + i] = dead[perm[i]] ? T(0) : static_cast<T>(W[r * K + perm[i]]);
  std::vector<T> U(K * K);
  for (std::size_t i = 0; i < K; ++i)
    for (std::size_t j = 0; j < K; ++j) U[i * K + j] = static_cast<T>(H[perm[i] * K + perm[j]]);
  for (std::size_t i = 0; i < K; ++i)
    if (dead[perm[i]]) U[i * K + i] = T(1);

  if (!grouped || opt.static_groups)
    dispatch_bits(spec.bits, [&](auto Bc) { ::lowbit::detail::gptq_static_params<decltype(Bc)::value>(W, dead, N, K, spec, layer, q); });

  DampOptions dopt;
  dopt.damp = opt.damp;
  dopt.factor = opt.damp_factor;
  dopt.max_damp = opt.max_damp;
  dopt.threads = threads;
  const auto t1 = clock::now();
  const DampReport drep = damped_inverse_upper(U, K, dopt, layer);
  const auto t2 = clock::now();
  res.report.damp_used = drep.damp_used;
  res.report.damp_attempts = drep.attempts;

  std::vector<std::uint8_t> codes_p(N * K);
  std::vector<double> loss_row(N, 0.0);
  dispatch_bits(spec.bits, [&](auto Bc) {
    ::lowbit::detail::gptq_columns<decltype(Bc)::value, T>(Wk.data(), U.data(), N, K, spec, opt, perm, codes_p, q, loss_row,
                                                 threads);
  });
  const auto t3 = clock::now();
  for (double l : loss_row) res.report.loss += l;
  res.report.loss /= 2.0;

  // Back to the original column order.
  for (std::size_t i = 0; i < K; ++i) {
    const std::size_t k = perm[i];
    for (std::size_t r = 0; r < N; ++r) q.codes[k * N + r] = codes_p[r * K + i];
    if (grouped && !opt.static_groups) q.g_idx[k] = static_cast<std::int32_t>(i / gs);
  }

  if (opt.compute_errors) {
    const std::vector<float> Wq = dequantize(q);
    res.report.gptq_error = ::lowbit::detail::output_error_any(W, Wq.data(), N, K, H);
    const QuantizedWeight rq = rtn_quantize(W, N, K, spec);
    const std::vector<float> Wr = dequantize(rq);
    res.report.rtn_error = ::lowbit::detail::output_error_any(W, Wr.data(), N, K, H);
  }
  const auto t4 = clock::now();
  res.report.factor_seconds = std::chrono::duration<double>(t2 - t1).count();
  res.report.solve_seconds = std::chrono::duration<double>(t3 - t2).count();
  res.report.seconds = std::chrono::duration<double>(t4 - t0).count();
  return res;
}

}  // namespace lowbit::gptq
