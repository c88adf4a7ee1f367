/// @file int8_mma.cuh
/// @brief PTX wrappers for the int8 tensor-core path: `mma.sync m16n8k32 s8·s8→s32`, `ldmatrix`,
/// `cp.async` with zero fill, and streaming 16-byte global loads (sm_80+; used on sm_90).
///
/// Fragment layout of `mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32` (PTX ISA), with
/// `g = lane / 4`, `t = lane % 4` and four int8 values per 32-bit register:
/// - A (16×32, row-major): a0 = row g, k 4t..4t+3; a1 = row g+8, same k; a2 = row g, k 16+4t..;
///   a3 = row g+8, k 16+4t..
/// - B (32×8, "col" = rows of Wᵀ, i.e. rows of W [N,K]): b0 = n g, k 4t..4t+3; b1 = n g, k 16+4t..
/// - C (16×8 int32): c0,c1 = row g, cols 2t, 2t+1; c2,c3 = row g+8, same cols.
/// Because a dot product does not care about the order of k, any permutation of k applied to A and B
/// alike is allowed; the small-M kernel uses that to load 16 contiguous bytes per thread.
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "ptx.cuh"

namespace lowbit::kernels::detail {

/// D += A·B for one m16n8k32 int8 tile (int32 accumulators, exact).
/// @param d four int32 accumulators (C/D fragment)
/// @param a four registers of the A fragment
/// @param b two registers of the B fragment
LOWBIT_DEVICE void mma_s8_m16n8k32(int (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // int8 mma.sync needs sm_80 or newer
#endif
}

/// Four 8×8 b16 matrices from shared memory (each lane supplies one row address).
LOWBIT_DEVICE void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
  const auto addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// 16-byte asynchronous global→shared copy; `src_bytes` < 16 zero-fills the rest (0: all zeros).
LOWBIT_DEVICE void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  const auto addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem), "r"(src_bytes));
}

/// Closes the current group of cp.async copies.
LOWBIT_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/// Waits until at most `N` groups of cp.async copies are still in flight.
/// @tparam N groups allowed to remain pending
template <int N>
LOWBIT_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// Streaming 16-byte load through the non-coherent path without L1 allocation (weights read once).
LOWBIT_DEVICE uint4 ld_stream_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

/// Fire-and-forget prefetch of the line holding `p` into L2.
LOWBIT_DEVICE void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }

/// 16-byte read-only load (activation codes: small, reused by many warps, kept in cache).
LOWBIT_DEVICE uint4 ld_cached_16(const void* p) { return __ldg(static_cast<const uint4*>(p)); }

// Programmatic dependent launch: the wrappers live in ptx.cuh (shared with the decode GEMM); the int8
// kernels keep calling them as detail::pdl_wait / detail::pdl_launch_dependents.
using ptx::pdl_launch_dependents;
using ptx::pdl_wait;

}  // namespace lowbit::kernels::detail
