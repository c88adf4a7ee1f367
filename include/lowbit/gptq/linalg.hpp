/// @file linalg.hpp
/// @brief Small dense kernels behind the host GPTQ solver: a cache-blocked `C -= E·P` and a row-parallel
///        loop helper. Internal (namespace lowbit::detail); written so g++ -O2 vectorizes the inner tiles.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace lowbit::detail {

/// Register tile of gemm_sub: rows of C updated together (each E value is loaded once per row).
inline constexpr std::size_t kGemmTileRows = 4;
/// Register tile width in bytes (two 16-byte SSE registers per row): 8 floats or 4 doubles.
inline constexpr std::size_t kGemmTileBytes = 32;
/// Cache tile along C's columns: one row slice of C stays in L1 while the depth loop runs.
inline constexpr std::size_t kGemmColTile = 256;
/// Cache tile along the depth: a (kGemmDepthTile x kGemmColTile) slice of P (128 KiB in float) stays in L2.
inline constexpr std::size_t kGemmDepthTile = 128;
/// Below this many multiply-adds a call runs on the calling thread only (thread start costs ~50 µs).
inline constexpr double kParallelMinWork = 4.0e6;

/// Runs `f(begin, end)` over `[0, count)` split into `threads` contiguous chunks whose sizes are
/// multiples of `align` (the last takes the rest). Runs inline for one thread or little work.
/// @tparam F callable as `f(std::size_t begin, std::size_t end)`.
template <class F>
void parallel_rows(std::size_t count, std::size_t align, unsigned threads, double work, F&& f) {
  if (threads <= 1 || count < 2 * align || work < kParallelMinWork) {
    f(std::size_t{0}, count);
    return;
  }
  const std::size_t units = (count + align - 1) / align;
  const std::size_t t = std::min<std::size_t>(threads, units);
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(t);  // exceptions must not escape a std::thread
  pool.reserve(t - 1);
  std::size_t begin = 0;
  for (std::size_t i = 0; i < t; ++i) {
    const std::size_t share = (units / t + (i < units % t ? 1 : 0)) * align;
    const std::size_t end = std::min(count, begin + share);
    auto body = [&f, &errors, i, begin, end] {
      try {
        f(begin, end);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    };
    if (i + 1 == t) {
      body();
    } else {
      pool.emplace_back(body);
    }
    begin = end;
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

/// One (kGemmTileRows x Nr) register tile: `C[r, j] -= Σ_d E[r, d] · P[d, j]` for `d` in `[0, depth)`.
template <class T, std::size_t Nr>
inline void gemm_sub_tile(std::size_t depth, const T* E, std::size_t lde, const T* P, std::size_t ldp, T* C,
                          std::size_t ldc) {
  T acc[kGemmTileRows][Nr];
  for (std::size_t a = 0; a < kGemmTileRows; ++a)
    for (std::size_t b = 0; b < Nr; ++b) acc[a][b] = C[a * ldc + b];
  for (std::size_t d = 0; d < depth; ++d) {
    const T* p = P + d * ldp;
    T e[kGemmTileRows];
    for (std::size_t a = 0; a < kGemmTileRows; ++a) e[a] = E[a * lde + d];
    for (std::size_t a = 0; a < kGemmTileRows; ++a)
      for (std::size_t b = 0; b < Nr; ++b) acc[a][b] -= e[a] * p[b];
  }
  for (std::size_t a = 0; a < kGemmTileRows; ++a)
    for (std::size_t b = 0; b < Nr; ++b) C[a * ldc + b] = acc[a][b];
}

/// Scalar edge of gemm_sub for `rows x cols` elements.
template <class T>
inline void gemm_sub_edge(std::size_t rows, std::size_t cols, std::size_t depth, const T* E, std::size_t lde,
                          const T* P, std::size_t ldp, T* C, std::size_t ldc) {
  for (std::size_t a = 0; a < rows; ++a)
    for (std::size_t d = 0; d < depth; ++d) {
      const T e = E[a * lde + d];
      const T* p = P + d * ldp;
      T* c = C + a * ldc;
      for (std::size_t b = 0; b < cols; ++b) c[b] -= e * p[b];
    }
}

/// Serial `C -= E · P` for row-major `C [M, Nc]` (ld `ldc`), `E [M, D]` (ld `lde`), `P [D, Nc]` (ld `ldp`).
/// Per element the depth is summed in increasing order, so results do not depend on the tiling.
template <class T>
void gemm_sub_serial(std::size_t M, std::size_t Nc, std::size_t D, const T* E, std::size_t lde, const T* P,
                     std::size_t ldp, T* C, std::size_t ldc) {
  constexpr std::size_t Nr = kGemmTileBytes / sizeof(T);
  constexpr std::size_t Mr = kGemmTileRows;
  // P's tile is copied to a contiguous buffer: with a power-of-two ldp its rows would collide in cache sets.
  std::vector<T> packed(std::min(kGemmDepthTile, D) * std::min(kGemmColTile, Nc));
  for (std::size_t j0 = 0; j0 < Nc; j0 += kGemmColTile) {
    const std::size_t jn = std::min(kGemmColTile, Nc - j0);
    const std::size_t jfull = jn / Nr * Nr;
    for (std::size_t d0 = 0; d0 < D; d0 += kGemmDepthTile) {
      const std::size_t dn = std::min(kGemmDepthTile, D - d0);
      for (std::size_t d = 0; d < dn; ++d)
        std::copy(P + (d0 + d) * ldp + j0, P + (d0 + d) * ldp + j0 + jn, packed.data() + d * jn);
      const T* Pd = packed.data();
      std::size_t r = 0;
      for (; r + Mr <= M; r += Mr) {
        const T* Er = E + r * lde + d0;
        T* Cr = C + r * ldc + j0;
        for (std::size_t j = 0; j < jfull; j += Nr) gemm_sub_tile<T, Nr>(dn, Er, lde, Pd + j, jn, Cr + j, ldc);
        if (jfull < jn) gemm_sub_edge(Mr, jn - jfull, dn, Er, lde, Pd + jfull, jn, Cr + jfull, ldc);
      }
      if (r < M) gemm_sub_edge(M - r, jn, dn, E + r * lde + d0, lde, Pd, jn, C + r * ldc + j0, ldc);
    }
  }
}

/// `C -= E · P` (shapes as gemm_sub_serial), rows of C split over `threads` threads.
template <class T>
void gemm_sub(std::size_t M, std::size_t Nc, std::size_t D, const T* E, std::size_t lde, const T* P, std::size_t ldp,
              T* C, std::size_t ldc, unsigned threads) {
  if (M == 0 || Nc == 0 || D == 0) return;
  const double work = static_cast<double>(M) * static_cast<double>(Nc) * static_cast<double>(D);
  parallel_rows(M, kGemmTileRows, threads, work, [&](std::size_t r0, std::size_t r1) {
    gemm_sub_serial(r1 - r0, Nc, D, E + r0 * lde, lde, P, ldp, C + r0 * ldc, ldc);
  });
}

/// Number of worker threads for `requested` (0 = all hardware threads).
inline unsigned resolve_threads(unsigned requested) {
  if (requested != 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1u : hw;
}

}  // namespace lowbit::detail
