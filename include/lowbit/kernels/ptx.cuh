/// @file ptx.cuh
/// @brief Warp-level PTX wrappers (sm_80+): mma.sync f16/bf16, ldmatrix, cp.async (+ L2 hints), fences;
///        mbarriers, bulk (TMA) copies and programmatic dependent launch (griddepcontrol) on sm_90.
///
/// Thin, documented wrappers so kernels name what they do instead of repeating inline assembly.
/// Every wrapper is `__device__ __forceinline__`; fragments are passed as 32-bit registers exactly as
/// the PTX ISA defines them for the instruction (see each comment for the fragment shapes).
///
/// The bit-manipulation wrappers (lop3, prmt) are host-callable too: on the host (and in nvcc's host
/// pass) they compute the instruction's PTX ISA semantics in plain C++, so the dequantization bit
/// tricks built on them can be tested without a GPU. A host C++ compiler sees only those two; the
/// device-only wrappers exist under nvcc (`__CUDACC__`).
#pragma once

#include <cstdint>

#include "../config.hpp"

namespace lowbit::kernels::ptx {

#if defined(__CUDACC__)  // device-only wrappers: a host compiler cannot parse their intrinsics

/// Shared-memory address (32-bit, `.shared` window) of a generic pointer into shared memory.
LOWBIT_DEVICE std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// The first `kAlign`-aligned byte of dynamic shared memory `raw` (kAlign a power of two), reached by
/// pointer arithmetic on `raw` itself: the result stays a shared-memory pointer to the compiler, so
/// accesses through it compile to LDS/STS. (Rounding the address as an integer loses that: in the int8
/// wgmma epilogue every staging access became a generic LD.E/ST.E.)
template <int kAlign>
LOWBIT_DEVICE std::uint8_t* align_shared(std::uint8_t* raw) {
  static_assert(kAlign > 0 && (kAlign & (kAlign - 1)) == 0, "power of two");
  const auto addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(raw));
  return raw + ((kAlign - (addr & (kAlign - 1))) & (kAlign - 1));
}

// ---------------------------------------------------------------------------------------------
// cp.async: global -> shared copies that bypass registers (sm_80+).
// ---------------------------------------------------------------------------------------------

/// 16-byte cp.async (L1 bypass, `.cg`). When `pred` is false the 16 shared bytes are zero-filled and
/// global memory is not read (src-size 0), so `gmem` may then be any valid address.
LOWBIT_DEVICE void cp_async_16(void* smem, const void* gmem, bool pred = true) {
  const int src_size = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_size)
               : "memory");
}

/// 16-byte cp.async with an explicit L2 cache policy (kL2PolicyEvictFirst / kL2PolicyEvictNormal, or a
/// `createpolicy` result: see l2_policy_*).
/// The policy must come from a separate asm statement (fusing createpolicy and the copy in one asm
/// block was seen to fault with nvcc 13.0).
LOWBIT_DEVICE void cp_async_16_hint(void* smem, const void* gmem, std::uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)),
               "l"(gmem), "l"(policy)
               : "memory");
}

/// 4-byte cp.async (`.ca`, cached in L1); zero-fills when `pred` is false.
LOWBIT_DEVICE void cp_async_4(void* smem, const void* gmem, bool pred = true) {
  const int src_size = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_size)
               : "memory");
}

/// Closes the current group of cp.async operations issued by this thread.
LOWBIT_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

/// Waits until at most `N` of this thread's committed cp.async groups are still pending.
/// @tparam N groups allowed in flight.
template <int N>
LOWBIT_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/// Waits for all of this thread's cp.async groups.
LOWBIT_DEVICE void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// ---------------------------------------------------------------------------------------------
// mbarrier + bulk asynchronous copies (sm_90, "TMA" without a tensor map). On older architectures
// these wrappers trap: callers must dispatch on the compute capability.
// ---------------------------------------------------------------------------------------------

/// Initialises the shared-memory mbarrier at `bar` (8 bytes, 8-byte aligned) for `count` arrivals.
LOWBIT_DEVICE void mbarrier_init(void* bar, std::uint32_t count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
#else
  (void)bar; (void)count; __trap();
#endif
}

/// Makes mbarrier initialisations visible to the async proxy (bulk copies) and other threads.
LOWBIT_DEVICE void fence_mbarrier_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}

/// Arrives on `bar` and raises its expected transaction count by `bytes` (the bytes bulk copies
/// completing on it will deliver in this phase).
LOWBIT_DEVICE void mbarrier_arrive_expect_tx(void* bar, std::uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#else
  (void)bar; (void)bytes; __trap();
#endif
}

/// Waits until the phase of `bar` with parity `parity` has completed (acquire: the data its bulk
/// copies delivered is then visible to the calling thread).
LOWBIT_DEVICE void mbarrier_wait_parity(void* bar, std::uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  std::uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
#else
  (void)bar; (void)parity; __trap();
#endif
}

/// Invalidates an mbarrier before its shared memory is used for something else.
LOWBIT_DEVICE void mbarrier_inval(void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#else
  (void)bar; __trap();
#endif
}

/// Bulk copy of `bytes` (multiple of 16; both addresses 16-byte aligned) from global to shared memory
/// by the TMA unit; completion is signalled on the mbarrier `bar` as `bytes` transactions.
LOWBIT_DEVICE void bulk_copy_g2s(void* smem, const void* gmem, std::uint32_t bytes, void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_addr(smem)),
               "l"(gmem), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
#else
  (void)smem; (void)gmem; (void)bytes; (void)bar; __trap();
#endif
}

/// bulk_copy_g2s with an L2 cache policy (kL2PolicyEvictFirst / kL2PolicyEvictNormal, or a `createpolicy` result
/// from a separate asm statement), e.g. evict-first for a weight stream read once.
LOWBIT_DEVICE void bulk_copy_g2s_hint(void* smem, const void* gmem, std::uint32_t bytes, void* bar, std::uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n" ::"r"(
          smem_addr(smem)),
      "l"(gmem), "r"(bytes), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
#else
  (void)smem; (void)gmem; (void)bytes; (void)bar; (void)policy; __trap();
#endif
}

/// Plain arrival on `bar` (counts one of the arrivals its phase expects; release semantics).
LOWBIT_DEVICE void mbarrier_arrive(void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#else
  (void)bar; __trap();
#endif
}

/// Arrives on `bar` once every cp.async the calling thread issued before this has completed, without
/// raising the phase's expected arrival count (`.noinc`: the arrival is one of those `bar` was initialised
/// with). Lets a producer's plain cp.async copies complete a stage's mbarrier.
LOWBIT_DEVICE void cp_async_mbarrier_arrive_noinc(void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#else
  (void)bar; __trap();
#endif
}

/// 2-D tensor copy (TMA) of the box at coordinates (`c0` inner, `c1` outer) of the tensor map `map`
/// (a `__grid_constant__` kernel parameter) into shared memory at `smem` (aligned as the map's swizzle
/// requires: 1024 bytes for 128-byte swizzling); elements outside the tensor are zero-filled and the
/// whole box's bytes complete on `bar`.
LOWBIT_DEVICE void tma_load_2d(void* smem, const void* map, int c0, int c1, void* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          smem_addr(smem)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
#else
  (void)smem; (void)map; (void)c0; (void)c1; (void)bar; __trap();
#endif
}

/// tma_load_2d multicast to the CTAs of the cluster named by the bits of `mask`: the box lands at the same
/// shared-memory offset in each of them and completes its bytes on the mbarrier at `bar`'s offset in each.
LOWBIT_DEVICE void tma_load_2d_multicast(void* smem, const void* map, int c0, int c1, void* bar, std::uint16_t mask) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%2, %3}], "
      "[%4], %5;\n" ::"r"(smem_addr(smem)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "h"(mask)
      : "memory");
#else
  (void)smem; (void)map; (void)c0; (void)c1; (void)bar; (void)mask; __trap();
#endif
}

/// This CTA's rank in its thread-block cluster.
LOWBIT_DEVICE std::uint32_t cluster_ctarank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  std::uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#else
  __trap();
  return 0;
#endif
}

/// Arrives on the mbarrier at `bar`'s offset in cluster CTA `rank` (this CTA included), with the default (CTA-scope
/// release) semantics: enough where the arrival only says that reads by the async proxy, already waited for, are
/// done. (Session 30, H100: `.release.cluster` compiled to a blocking error barrier (ERRBAR) before every
/// arrival and halved the large-M kernel's speed.)
LOWBIT_DEVICE void mbarrier_arrive_cluster(void* bar, std::uint32_t rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n .reg .b32 ra;\n mapa.shared::cluster.u32 ra, %0, %1;\n mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(
          smem_addr(bar)),
      "r"(rank)
      : "memory");
#else
  (void)bar; (void)rank; __trap();
#endif
}

/// Barrier of every thread of every CTA in the cluster (release / acquire); warps must be converged.
LOWBIT_DEVICE void cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// 2-D tensor store (TMA) of the box at coordinates (`c0` inner, `c1` outer) of `map` from shared memory at
/// `smem` (laid out as the map's swizzle says); the parts of the box past the tensor are not written. With
/// `Add` the box is added to global memory element-wise instead (`cp.reduce.async.bulk.tensor ... .add`,
/// the map's element type: exact for integers). The copy joins the calling thread's current bulk async-group
/// (bulk_commit_group); the shared memory must have been written before a `fence.proxy.async`.
template <bool Add = false>
LOWBIT_DEVICE void tma_store_2d(const void* map, const void* smem, int c0, int c1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (Add)
    asm volatile("cp.reduce.async.bulk.tensor.2d.global.shared::cta.add.tile.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                     reinterpret_cast<std::uint64_t>(map)),
                 "r"(c0), "r"(c1), "r"(smem_addr(smem))
                 : "memory");
  else
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                     reinterpret_cast<std::uint64_t>(map)),
                 "r"(c0), "r"(c1), "r"(smem_addr(smem))
                 : "memory");
#else
  (void)map; (void)smem; (void)c0; (void)c1; __trap();
#endif
}

/// Closes the calling thread's current bulk async-group (the tensor stores issued since the last commit).
LOWBIT_DEVICE void bulk_commit_group() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}

/// Waits until at most `N` of the calling thread's bulk async-groups are pending: with `Read` only until
/// their shared-memory sources have been read (the buffers may be rewritten), else until the writes are done.
template <int N, bool Read>
LOWBIT_DEVICE void bulk_wait_group() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (Read)
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
  else
    asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}

/// Raises (Inc) or lowers the per-thread register budget of the calling warpgroup to `Regs` (a multiple of 8,
/// 24..256); every thread of the warpgroup must execute it (`setmaxnreg`, sm_90a only: warp-specialized
/// kernels hand the producer's registers to the consumers).
template <bool Inc, int Regs>
LOWBIT_DEVICE void setmaxnreg() {
  static_assert(Regs % 8 == 0 && Regs >= 24 && Regs <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (Inc)
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Regs));
  else
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Regs));
#else
  __trap();
#endif
}

/// Stores four 8x8 matrices of 16-bit elements to shared memory (`stmatrix.sync.aligned.m8n8.x4.shared.b16`,
/// sm_90+): register `ri` of lane l holds row l / 4, elements 2(l % 4) and 2(l % 4) + 1, of matrix i, and lane
/// 8i + r gives the shared-window address of row r of matrix i (16 bytes). The inverse of ldmatrix.x4: the
/// m16n8k16 A fragment {a0, a1, a2, a3} stores as rows 0-7 / 8-15 of k 0-7, then of k 8-15.
LOWBIT_DEVICE void stmatrix_x4(std::uint32_t row_addr, std::uint32_t r0, std::uint32_t r1, std::uint32_t r2, std::uint32_t r3) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(row_addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
#else
  (void)row_addr; (void)r0; (void)r1; (void)r2; (void)r3; __trap();
#endif
}

/// Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads (a multiple of 32): lets a
/// subset of a CTA's warps (e.g. the consumers of a warp-specialized kernel) synchronise alone.
LOWBIT_DEVICE void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---------------------------------------------------------------------------------------------
// L2 cache policies and hinted global loads.
// ---------------------------------------------------------------------------------------------

/// An L2 policy that marks lines evict-first (streamed data read once, e.g. quantized weights).
LOWBIT_DEVICE std::uint64_t l2_policy_evict_first() {
  std::uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}

/// The 64-bit L2 cache-policy values sm_90 copies take for "evict first" and "evict normal" (the encodings
/// CUTLASS passes to its TMA copies, cute/arch/copy_sm90_desc.hpp CacheHintSm90): constants, so a kernel needs no
/// `createpolicy`. Test hinted copies on the device: with nvcc 13.0 on the H100, hinted weight copies beside the
/// zero-filling activation copies of the mid-M kernels (mma.sync, lock-step wgmma, and the 3-bit warp-specialized
/// wgmma one) raised "illegal instruction" with either source of the policy (their SASS moves the copies' memory
/// descriptors through uniform registers; bench/kernels/NOTES.md, session 27), while the decode kernel, whose
/// activation copies do not zero-fill, runs them at every width.
inline constexpr std::uint64_t kL2PolicyEvictFirst = 0x12F0000000000000ull;   ///< evict first (a stream read once)
inline constexpr std::uint64_t kL2PolicyEvictNormal = 0x1000000000000000ull;  ///< the normal eviction priority

/// The policy of a weight stream: evict-first when `evict_first` (GemmOptions::l2_evict_first: the packed
/// weights, read once per call, then give way before the data other kernels reuse), else evict-normal. The
/// constants are sm_90 encodings; below sm_90 the policy comes from `createpolicy` (the value is opaque in PTX).
LOWBIT_DEVICE std::uint64_t l2_policy_weights(bool evict_first) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if (evict_first) return l2_policy_evict_first();
  std::uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
#else
  return evict_first ? kL2PolicyEvictFirst : kL2PolicyEvictNormal;
#endif
}

/// An L2 policy that marks lines evict-last (data reused across CTAs, e.g. activations).
LOWBIT_DEVICE std::uint64_t l2_policy_evict_last() {
  std::uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}

/// 16-byte global load that does not allocate in L1 (`ld.global.nc.L1::no_allocate`): for data
/// streamed once per CTA, such as packed weights.
LOWBIT_DEVICE uint4 ld_global_stream_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

/// 16-byte read-only global load through L1 (`ld.global.nc`).
LOWBIT_DEVICE uint4 ld_global_nc_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

/// 8-byte read-only global load through L1.
LOWBIT_DEVICE uint2 ld_global_nc_8(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

// ---------------------------------------------------------------------------------------------
// ldmatrix: warp-cooperative 8x8 b16 matrix loads from shared memory.
// ---------------------------------------------------------------------------------------------

/// `ldmatrix.x4`: lanes 8i..8i+7 give the row addresses of matrix i (16 bytes each); register i
/// receives this lane's two b16 elements of matrix i (row lane/4, columns 2*(lane%4) + {0,1}).
/// Loading a row-major 16x16 A tile with lane l addressing row (l%16), column 8*(l/16) yields the
/// m16n8k16 A fragment {a0a1, a2a3, a4a5, a6a7} in r[0..3].
LOWBIT_DEVICE void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}

/// `ldmatrix.x2` (lanes 0..15 give the row addresses of two 8x8 matrices).
LOWBIT_DEVICE void ldmatrix_x2(std::uint32_t (&r)[2], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(smem_row)));
}

/// `ldmatrix.x4.trans`: as ldmatrix_x4 with each 8x8 matrix transposed (for B tiles stored k-major).
LOWBIT_DEVICE void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}

// ---------------------------------------------------------------------------------------------
// mma.sync m16n8k16 with fp32 accumulation.
// Fragment layout (g = lane/4, t = lane%4):
//   A (16x16, row-major): a[0]=(g, 2t..2t+1) a[1]=(g+8, 2t..) a[2]=(g, 2t+8..) a[3]=(g+8, 2t+8..)
//   B (16x8, "col"):      b[0]=(k 2t..2t+1, n g)  b[1]=(k 2t+8..2t+9, n g)
//   C/D (16x8, fp32):     c[0..1]=(g, 2t..2t+1)   c[2..3]=(g+8, 2t..2t+1)
// ---------------------------------------------------------------------------------------------

/// D = A·B + D with fp16 A/B (each register holds two halves, lower k first) and fp32 D.
LOWBIT_DEVICE void mma_m16n8k16_f16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/// D = A·B + D with bf16 A/B and fp32 D (same fragment layout as the fp16 form).
LOWBIT_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/// D = A·B + D with s8 A/B and s32 D, m16n8k32 (A: 4 regs of 4 int8, B: 2 regs, D: 4 int32).
LOWBIT_DEVICE void mma_m16n8k32_s8(int (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
  asm(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif  // __CUDACC__

// ---------------------------------------------------------------------------------------------
// Bit manipulation (host and device: the host branch computes the PTX ISA definition).
// ---------------------------------------------------------------------------------------------

/// `lop3.b32`: any three-input bitwise function given by its 8-bit truth table `Lut`
/// (compute Lut as f(0xF0, 0xCC, 0xAA)). On the host, bit i of the result is bit
/// `(a_i << 2) | (b_i << 1) | c_i` of `Lut`, which is what that rule encodes (0xF0, 0xCC, 0xAA are the
/// columns a, b, c of the truth table's rows 0..7).
/// @tparam Lut the truth table.
template <int Lut>
LOWBIT_HOST_DEVICE std::uint32_t lop3(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
#ifdef __CUDA_ARCH__
  std::uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, %4;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c), "n"(Lut));
  return d;
#else
  // OR of the minterms whose truth-table bit is set, 32 bit positions at once
  std::uint32_t d = 0;
  for (int row = 0; row < 8; ++row)
    if ((Lut >> row) & 1)
      d |= ((row & 4) ? a : ~a) & ((row & 2) ? b : ~b) & ((row & 1) ? c : ~c);
  return d;
#endif
}

/// Truth table of `(a & b) | c` for lop3.
inline constexpr int kLutAndOr = (0xF0 & 0xCC) | 0xAA;

namespace detail {
/// Host model of `prmt.b32` in its default mode (PTX ISA): byte i of the result is byte `n & 7` of
/// {b, a}, n = selector nibble i; when bit 3 of n is set, that byte's sign bit fills the whole byte.
constexpr std::uint32_t prmt_host(std::uint32_t a, std::uint32_t b, std::uint32_t sel) {
  const std::uint64_t src = (static_cast<std::uint64_t>(b) << 32) | a;
  std::uint32_t d = 0;
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t n = (sel >> (4 * i)) & 0xfu;
    std::uint32_t byte = static_cast<std::uint32_t>(src >> (8 * (n & 7u))) & 0xffu;
    if (n & 8u) byte = (byte & 0x80u) ? 0xffu : 0u;
    d |= byte << (8 * i);
  }
  return d;
}
}  // namespace detail

/// `prmt.b32` with a compile-time selector (an immediate of the instruction): byte i of the result is
/// byte `(Sel >> 4i) & 7` of the 8-byte value {b, a} (a = bytes 0-3, b = bytes 4-7); a nibble with
/// bit 3 set replicates that byte's sign bit instead.
/// @tparam Sel the selector.
template <unsigned Sel>
LOWBIT_HOST_DEVICE std::uint32_t prmt(std::uint32_t a, std::uint32_t b) {
#ifdef __CUDA_ARCH__
  std::uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "n"(Sel));
  return d;
#else
  return detail::prmt_host(a, b, Sel);
#endif
}

/// `prmt.b32` with a run-time selector (same byte semantics as the template form).
LOWBIT_HOST_DEVICE std::uint32_t prmt(std::uint32_t a, std::uint32_t b, std::uint32_t sel) {
#ifdef __CUDA_ARCH__
  std::uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
#else
  return detail::prmt_host(a, b, sel);
#endif
}

#if defined(__CUDACC__)  // device-only wrappers

// ---------------------------------------------------------------------------------------------
// Shared-window (32-bit) addressed loads and copies: a kernel that keeps its shared addresses as
// 32-bit values saves the generic-to-shared conversion on every access.
// ---------------------------------------------------------------------------------------------

/// 16-byte cp.async (`.cg`) to shared-window address `smem` (from smem_addr).
LOWBIT_DEVICE void cp_async_16_s(std::uint32_t smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
}

/// cp_async_16_s with an L2 cache policy (kL2PolicyEvictFirst / kL2PolicyEvictNormal, or a `createpolicy` result).
LOWBIT_DEVICE void cp_async_16_s_hint(std::uint32_t smem, const void* gmem, std::uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "l"(policy) : "memory");
}

/// 16-byte cp.async (`.cg`) to shared-window address `smem` that asks L2 to fetch the aligned `Bytes`
/// (128 or 256) around the source from memory (`.L2::128B` / `.L2::256B` prefetch size): a stream that
/// reads 64 bytes of each row now and the next 64 later gets whole DRAM bursts.
template <int Bytes>
LOWBIT_DEVICE void cp_async_16_s_prefetch(std::uint32_t smem, const void* gmem) {
  static_assert(Bytes == 0 || Bytes == 128 || Bytes == 256, "prefetch size: 0 (none), 128 or 256 bytes");
  if constexpr (Bytes == 256)
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
  else if constexpr (Bytes == 128)
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
}

/// 16-byte shared load at shared-window address `a` (volatile: stays after earlier waits/barriers).
LOWBIT_DEVICE uint4 ld_shared_16(std::uint32_t a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}

/// 8-byte shared load at shared-window address `a` (volatile, as ld_shared_16).
LOWBIT_DEVICE uint2 ld_shared_8(std::uint32_t a) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(a));
  return v;
}

/// `ldmatrix.x4` with a shared-window row address (see ldmatrix_x4).
LOWBIT_DEVICE void ldmatrix_x4_s(std::uint32_t (&r)[4], std::uint32_t smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_row));
}

// ---------------------------------------------------------------------------------------------
// Programmatic dependent launch (sm_90+): kernels launched with the programmatic-stream-
// serialization attribute may start while the preceding kernel in the stream is still running.
// Both instructions are no-ops when the kernel was launched without the attribute and compile to
// nothing before sm_90 (the host must then never request PDL: gemm.cuh checks the kernel's PTX arch).
// ---------------------------------------------------------------------------------------------

/// Waits until the preceding kernel in the stream (the PDL prerequisite grid) has completed and its
/// memory operations are visible to this thread. Every thread that reads what that kernel may write,
/// or writes what it may read, must execute it first.
LOWBIT_DEVICE void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/// Lets the next kernel in the stream start launching once every CTA of this grid has executed this
/// (or exited); it still waits in pdl_wait() for this grid's completion. The first execution in a CTA
/// counts; repeats are free of further effect.
LOWBIT_DEVICE void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

#endif  // __CUDACC__

}  // namespace lowbit::kernels::ptx
