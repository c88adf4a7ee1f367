/// @file refine.hpp
/// @brief Scale refit after GPTQ: with the codes and zero points fixed, every group's scale is re-solved
///        to minimise the layer's output error `tr(ΔW H ΔWᵀ)`, a small least-squares problem per
///        output row.
///
/// GPTQ picks each group's scale and zero from the (error-updated) weights before choosing that group's
/// codes, by min-max or the MSE clip grid: a weight-space rule. Once the codes are fixed, the dequantized
/// row is linear in the group scales, `ŵ = Q a` with `Q[k, g] = code_k − zero_g` for the columns k of
/// group g, so the scales that minimise `(w − Q a)ᵀ H (w − Q a)` solve the normal equations
/// `(Qᵀ H Q) a = Qᵀ H w` (G unknowns per row: K / group size). The refit keeps a row's old scales
/// unless the new ones, rounded to fp16, give a lower error under the same H, so on the Hessian it is
/// given the error never increases; on other inputs it can (the Hessian of a small calibration set is
/// a noisy estimate: measure on held-out rows, e.g. with `lowbit compare`).
///
/// Cost: for chunks of up to 256 output rows, one pass over H as blocked products (V = W H and, per pair
/// of groups, `c_gᵀ H_gh c_h`): about 1.5·N·K² multiply-adds in all, like GPTQ itself, plus a G x G
/// Cholesky per row (N·G³/3: noticeable only for small groups on very wide layers).
///
/// @code
/// auto res = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, H.data(), spec, opt);
/// lowbit::gptq::RefineReport rep = lowbit::gptq::refine_scales(res.weight, W.data(), H.data());
/// // rep.error_after <= rep.error_before (tr(ΔW H ΔWᵀ) summed over the rows)
/// @endcode
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../numeric.hpp"
#include "../quant.hpp"
#include "../quant_types.hpp"
#include "cholesky.hpp"
#include "linalg.hpp"

namespace lowbit::gptq {

/// What refine_scales did (errors are `tr(ΔW H ΔWᵀ)` summed over the output rows, with the given H).
struct RefineReport {
  double error_before = 0.0;     ///< before the refit
  double error_after = 0.0;      ///< after it (<= error_before)
  std::size_t rows_changed = 0;  ///< output rows whose scales changed
};

/// Options of refine_scales.
struct RefineOptions {
  double ridge = 1e-6;          ///< relative ridge `λ = ridge · mean diag(QᵀHQ)` toward the old scales
  unsigned threads = 0;         ///< worker threads (0 = all hardware threads)
  std::string layer = "layer";  ///< name used in error messages
};

}  // namespace lowbit::gptq

namespace lowbit::detail {

/// Output rows refit together at most (one pass over H per chunk of rows).
inline constexpr std::size_t kRefineRows = 256;
/// Bytes the chunk's `QᵀHQ` matrices may take (R·G² doubles); fewer rows per chunk for many groups.
inline constexpr std::size_t kRefineBudget = std::size_t{256} << 20;
/// Columns of H converted to double and multiplied at a time.
inline constexpr std::size_t kRefinePanel = 128;

/// Solves the SPD system `A x = b` (n x n, row-major, overwritten) with the GPTQ module's Cholesky
/// (`A = L̃ᵀ L̃`, reverse_cholesky_lower) and two triangular solves; false if A is not numerically
/// positive definite.
inline bool refine_spd_solve(std::vector<double>& A, std::vector<double>& b, std::size_t n) {
  if (reverse_cholesky_lower(A.data(), n, 1) != n) return false;
  for (std::size_t i = n; i-- > 0;) {  // L̃ᵀ y = b (upper triangular: column i of L̃)
    double s = b[i];
    for (std::size_t p = i + 1; p < n; ++p) s -= A[p * n + i] * b[p];
    b[i] = s / A[i * n + i];
  }
  for (std::size_t i = 0; i < n; ++i) {  // L̃ x = y
    double s = b[i];
    for (std::size_t p = 0; p < i; ++p) s -= A[i * n + p] * b[p];
    b[i] = s / A[i * n + i];
  }
  return true;
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Re-solves every group scale of `q` (codes, zeros and g_idx unchanged) to minimise the output error
/// `(w − ŵ)ᵀ H (w − ŵ)` of each output row, and keeps the result (rounded to fp16) only for rows where
/// it lowers that error. Works for any width, group size, sym/asym and act-order `g_idx`.
///
/// @tparam HT element type of the Hessian (float or double).
/// @param q   quantized weight of `W` (validated; scales are replaced in place).
/// @param W   the original weight `[N, K]` (row-major, finite), N and K as in `q`.
/// @param H   Hessian `[K, K]` (symmetric, finite), e.g. the one GPTQ was solved with.
/// @param opt ridge, threads, layer name.
/// @return the error before and after, and how many rows changed.
/// @throws lowbit::Error (naming the layer) for an invalid `q`, non-finite W or H, or a negative ridge.
template <class HT>
RefineReport refine_scales(QuantizedWeight& q, const float* W, const HT* H, const RefineOptions& opt = {}) {
  const std::string& layer = opt.layer;
  try {
    validate(q);
  } catch (const Error& e) {
    ::lowbit::detail::fail("layer '", layer, "': refine_scales: ", e.what());
  }
  LOWBIT_CHECK(W != nullptr && H != nullptr, "layer '", layer, "': refine_scales: null weight or Hessian");
  LOWBIT_CHECK(opt.ridge >= 0.0 && std::isfinite(opt.ridge), "layer '", layer,
               "': refine_scales: ridge must be finite and >= 0 (got ", opt.ridge, ")");
  const std::size_t N = q.N, K = q.K, G = q.groups();
  for (std::size_t i = 0; i < N * K; ++i)
    LOWBIT_CHECK(std::isfinite(W[i]), "layer '", layer, "': refine_scales: non-finite weight at (row ", i / K,
                 ", column ", i % K, ")");
  for (std::size_t i = 0; i < K * K; ++i)
    LOWBIT_CHECK(std::isfinite(static_cast<double>(H[i])), "layer '", layer,
                 "': refine_scales: non-finite Hessian entry at (", i / K, ", ", i % K, ")");

  // the input columns of every group (act-order groups are not contiguous)
  std::vector<std::vector<std::size_t>> members(G);
  for (std::size_t k = 0; k < K; ++k) members[static_cast<std::size_t>(q.g_idx[k])].push_back(k);
  const unsigned threads = ::lowbit::detail::resolve_threads(opt.threads);
  using ::lowbit::detail::gemm_sub;
  constexpr std::size_t kPanel = ::lowbit::detail::kRefinePanel;
  // rows per chunk: every chunk reads H once; A takes R·G² doubles
  const std::size_t R = std::clamp<std::size_t>(::lowbit::detail::kRefineBudget / (8 * G * G + 1), 16,
                                                ::lowbit::detail::kRefineRows);
  std::vector<double> before(N, 0.0), after(N, 0.0);
  std::vector<char> changed(N, 0);
  std::vector<double> Cn, Wn, V, A, Hp, Cg, T;
  for (std::size_t n0 = 0; n0 < N; n0 += R) {
    const std::size_t rows = std::min(R, N - n0);
    // negated codes - zeros and weights of the chunk's rows (gemm_sub subtracts: -(-x)·H = x·H)
    Cn.assign(rows * K, 0.0);
    Wn.assign(rows * K, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < K; ++k) {
        const std::size_t n = n0 + r, g = static_cast<std::size_t>(q.g_idx[k]);
        Cn[r * K + k] = -(static_cast<double>(q.codes[k * N + n]) - static_cast<double>(q.zeros[g * N + n]));
        Wn[r * K + k] = -static_cast<double>(W[n * K + k]);
      }
    // V = W H, by column panels of H (converted to double a panel at a time)
    V.assign(rows * K, 0.0);
    for (std::size_t p0 = 0; p0 < K; p0 += kPanel) {
      const std::size_t pw = std::min(kPanel, K - p0);
      Hp.resize(K * pw);
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = 0; j < pw; ++j) Hp[k * pw + j] = static_cast<double>(H[k * K + p0 + j]);
      gemm_sub(rows, pw, K, Wn.data(), K, Hp.data(), pw, V.data() + p0, K, threads);
    }
    // A[r][g][h] = c_g^T H_gh c_h: T = C_g · H[g, h-panel], then row-wise dot products with c_h
    A.assign(rows * G * G, 0.0);
    for (std::size_t g = 0; g < G; ++g) {
      const std::vector<std::size_t>& ig = members[g];
      const std::size_t gs = ig.size();
      Cg.resize(rows * gs);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < gs; ++i) Cg[r * gs + i] = Cn[r * K + ig[i]];
      for (std::size_t h = g; h < G; ++h) {
        const std::vector<std::size_t>& ih = members[h];
        for (std::size_t p0 = 0; p0 < ih.size(); p0 += kPanel) {
          const std::size_t pw = std::min(kPanel, ih.size() - p0);
          Hp.resize(gs * pw);
          for (std::size_t i = 0; i < gs; ++i)
            for (std::size_t j = 0; j < pw; ++j) Hp[i * pw + j] = static_cast<double>(H[ig[i] * K + ih[p0 + j]]);
          T.assign(rows * pw, 0.0);
          gemm_sub(rows, pw, gs, Cg.data(), gs, Hp.data(), pw, T.data(), pw, threads);  // T = c_g · H_gh
          for (std::size_t r = 0; r < rows; ++r) {
            double s = 0.0;
            for (std::size_t j = 0; j < pw; ++j) s -= T[r * pw + j] * Cn[r * K + ih[p0 + j]];  // Cn = -c
            A[(r * G + g) * G + h] += s;
          }
        }
        if (h != g)
          for (std::size_t r = 0; r < rows; ++r) A[(r * G + h) * G + g] = A[(r * G + g) * G + h];
      }
    }
    ::lowbit::detail::parallel_rows(rows, 1, threads, static_cast<double>(rows) * double(G) * double(G) * double(G),
                                    [&](std::size_t r_begin, std::size_t r_end) {
      std::vector<double> Ar, br, b(G), a0(G), a1(G);
      std::vector<std::size_t> free_g;
      for (std::size_t r = r_begin; r < r_end; ++r) {
        const std::size_t n = n0 + r;
        double wHw = 0.0;
        std::fill(b.begin(), b.end(), 0.0);
        for (std::size_t k = 0; k < K; ++k) {
          wHw += Wn[r * K + k] * V[r * K + k];
          b[static_cast<std::size_t>(q.g_idx[k])] += Cn[r * K + k] * V[r * K + k];
        }
        // V = W H while Wn = -w and Cn = -c: wᵀHw = -Wn·V and (Qᵀ H w)_g = -Σ_{k∈g} Cn_k V_k
        wHw = -wHw;
        for (double& x : b) x = -x;
        const double* Arow = A.data() + r * G * G;
        for (std::size_t g = 0; g < G; ++g) a0[g] = static_cast<double>(q.scales[g * N + n]);
        auto error_of = [&](const std::vector<double>& a) {  // (w − Qa)ᵀ H (w − Qa)
          double e = wHw;
          for (std::size_t g = 0; g < G; ++g) {
            double Aa = 0.0;
            for (std::size_t h = 0; h < G; ++h) Aa += Arow[g * G + h] * a[h];
            e += a[g] * (Aa - 2.0 * b[g]);
          }
          return e;
        };
        const double e0 = error_of(a0);
        before[n] = e0;
        after[n] = e0;
        // free groups: those the error depends on (a group whose codes all equal its zero keeps its scale)
        free_g.clear();
        double mean_diag = 0.0;
        for (std::size_t g = 0; g < G; ++g)
          if (Arow[g * G + g] > 0.0) {
            free_g.push_back(g);
            mean_diag += Arow[g * G + g];
          }
        if (free_g.empty()) continue;
        const std::size_t F = free_g.size();
        const double lambda = opt.ridge * mean_diag / static_cast<double>(F);
        Ar.assign(F * F, 0.0);
        br.assign(F, 0.0);
        for (std::size_t i = 0; i < F; ++i) {
          const std::size_t g = free_g[i];
          double rhs = b[g] + lambda * a0[g];
          for (std::size_t h = 0; h < G; ++h)
            if (Arow[h * G + h] <= 0.0) rhs -= Arow[g * G + h] * a0[h];  // fixed groups stay at a0
          br[i] = rhs;
          for (std::size_t j = 0; j < F; ++j) Ar[i * F + j] = Arow[g * G + free_g[j]];
          Ar[i * F + i] += lambda;
        }
        if (!::lowbit::detail::refine_spd_solve(Ar, br, F)) continue;
        a1 = a0;
        for (std::size_t i = 0; i < F; ++i) {
          const float sc = round_to_half(static_cast<float>(br[i]));
          if (std::isfinite(sc) && sc > 0.f) a1[free_g[i]] = static_cast<double>(sc);  // else: the old scale
        }
        const double e1 = error_of(a1);
        if (e1 < e0) {
          for (std::size_t g = 0; g < G; ++g) q.scales[g * N + n] = static_cast<float>(a1[g]);
          after[n] = e1;
          changed[n] = 1;
        }
      }
    });
  }
  RefineReport rep;
  for (std::size_t n = 0; n < N; ++n) {
    rep.error_before += before[n];
    rep.error_after += after[n];
    rep.rows_changed += static_cast<std::size_t>(changed[n]);
  }
  return rep;
}

}  // namespace lowbit::gptq
