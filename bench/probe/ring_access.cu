// Access-pattern probe for the small-M int8 ring (int8_ring.cuh): how fast can a ring of TMA stages
// stream an int8 weight matrix [N, K] when each stage is (a) a 64-row x kSK-byte box of the row-major
// matrix (what the ring does: 64 runs of kSK bytes, K bytes apart) or (b) one contiguous block of a
// "K-chunked" layout [K / C][N][C] (a 64-row stage of one chunk is 64·C contiguous bytes)? The consumers
// read every byte of a stage from shared memory once (16 bytes per thread per 64-byte step, as the
// MMA loop does) and release it; no arithmetic. The bytes are random: only time is measured.
// Also times a plain grid-stride 16-byte read of the same bytes (the stream-read roofline).
// Usage: ring_access [out.json]   (sm_90; weights rotated past the 50 MB L2)
#include <lowbit/kernels/int8_ring.cuh>
#include <lowbit/kernels/tensor_map.cuh>

#include <cstdio>
#include <string>
#include <vector>

#include "common/bench_util.cuh"

namespace lk = lowbit::kernels;
namespace ld = lowbit::kernels::detail;

namespace {

constexpr int kRows = 64, kConsumers = 4, kThreads = 32 * (kConsumers + 1), kMaxS = 24;

/// 3-D tensor TMA copy (c0 inner, c1 rows, c2 chunks) completing on `bar`.
__device__ void tma_3d(std::uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, std::uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(ld::smem_u32(bar))
      : "memory");
#endif
}

/// The ring's barriers: `full` completes on the producer's arrival and the stage's bytes, `empty` on one
/// arrival per consumer warp; the whole block waits for the initialisation.
__device__ void init_ring(std::uint64_t* full, std::uint64_t* empty, int S) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      ld::mbar_init(full + s, 1);
      ld::mbar_init(empty + s, kConsumers);
    }
    ld::mbar_fence_init();
  }
  __syncthreads();
}

/// A consumer warp reads its 16 rows of a landed stage, rows (16 warp + g) and (+8), 16 bytes at 16t per
/// 64-byte step, as the MMA loop does (chunk 0: row-major rows of sk bytes; else the chunked layout's
/// 64 x chunk blocks), folds them into `x`, and releases the stage.
__device__ void read_and_release(const std::uint8_t* st, int sk, int chunk, std::uint64_t* empty_s, unsigned& x) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  for (int c = 0; c < sk; c += 64) {
    const int cc = chunk ? (c % chunk) + (c / chunk) * kRows * chunk : c;
    const int rs = chunk ? chunk : sk;
    const uint4 a = *reinterpret_cast<const uint4*>(st + (warp * 16 + g) * rs + cc + 16 * t);
    const uint4 b = *reinterpret_cast<const uint4*>(st + (warp * 16 + g + 8) * rs + cc + 16 * t);
    x ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
  }
  __syncwarp();
  if (lane == 0) ld::mbar_arrive(empty_s);
}

/// kChunked = false: stage = 2-D box {sk, 64} of row-major W at (k0, n0). true: stage = 3-D box
/// {C, 64, sk / C} of the chunked layout at (0, n0, k0 / C). Activation box {sk, 16} of a [16, K] buffer
/// per stage when `act` (the ring's second operand: L2-resident).
template <bool kChunked>
__global__ void __launch_bounds__(kThreads) stream_kernel(const __grid_constant__ CUtensorMap tmW,
                                                          const __grid_constant__ CUtensorMap tmA, int K, int sk,
                                                          int chunk, int S, bool act, unsigned* sink) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) std::uint8_t raw[];
  std::uint8_t* smem = raw + ((128u - (ld::smem_u32(raw) & 127u)) & 127u);
  const int wbytes = kRows * sk, stage = wbytes + (act ? 16 * sk : 0);
  __shared__ std::uint64_t full[kMaxS], empty[kMaxS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = blockIdx.x * kRows, splits = gridDim.y, rank = blockIdx.y;
  const int nst_all = K / sk, per = (nst_all + splits - 1) / splits;
  const int it0 = min(nst_all, rank * per), nst = min(nst_all, it0 + per) - it0;
  init_ring(full, empty, S);
  if (warp == kConsumers) {
    if (lane == 0) {
      const std::uint32_t base = ld::smem_u32(smem);
      for (int li = 0; li < nst; ++li) {
        const int s = li % S;
        if (li >= S) ld::mbar_wait(empty + s, static_cast<unsigned>((li / S - 1) & 1));
        ld::mbar_arrive_expect_tx(full + s, static_cast<unsigned>(stage));
        const int k0 = (it0 + li) * sk;
        if constexpr (kChunked)
          tma_3d(base + s * stage, &tmW, 0, n0, k0 / chunk, full + s);
        else
          ld::tma_2d_g2s(base + s * stage, &tmW, k0, n0, full + s);
        if (act) ld::tma_2d_g2s(base + s * stage + wbytes, &tmA, k0, 0, full + s);
      }
    }
  } else {
    unsigned x = 0;
    for (int li = 0; li < nst; ++li) {
      const int s = li % S;
      ld::mbar_wait(full + s, static_cast<unsigned>((li / S) & 1));
      read_and_release(smem + s * stage, sk, kChunked ? chunk : 0, empty + s, x);
    }
    if (x == 0x12345678u) sink[blockIdx.x] = x;  // keeps the reads
  }
#endif
}

/// Dynamic variant (row-major W, 64 x sk boxes, no activation box): a persistent grid whose producers
/// take work units of `U` consecutive stages of one slab from a global counter (unit u: slab u % slabs,
/// stages U·(u / slabs) ...), so that CTAs on faster SMs stream more units. Each stage carries its unit
/// in a header word (-1 ends the consumers' loop). ctr[0] hands out units, ctr[1] counts finished
/// producers; the last one resets both for the next launch.
__global__ void __launch_bounds__(kThreads) stream_dynamic_kernel(const __grid_constant__ CUtensorMap tmW, int K,
                                                                  int slabs, int sk, int U, int S, unsigned* ctr,
                                                                  unsigned* sink) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) std::uint8_t raw[];
  std::uint8_t* smem = raw + ((128u - (ld::smem_u32(raw) & 127u)) & 127u);
  const int stage = kRows * sk;
  __shared__ std::uint64_t full[kMaxS], empty[kMaxS];
  __shared__ int hdr[kMaxS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int nst_all = K / sk, per_slab = (nst_all + U - 1) / U, units = per_slab * slabs;
  init_ring(full, empty, S);
  if (warp == kConsumers) {
    if (lane == 0) {
      const std::uint32_t base = ld::smem_u32(smem);
      int li = 0;
      for (;;) {
        const int u = static_cast<int>(atomicAdd(ctr, 1u));
        const bool done = u >= units;
        const int slab = u % slabs, st0 = (u / slabs) * U, n = done ? 1 : min(U, nst_all - st0);
        for (int j = 0; j < n; ++j, ++li) {
          const int s = li % S;
          if (li >= S) ld::mbar_wait(empty + s, static_cast<unsigned>((li / S - 1) & 1));
          hdr[s] = done ? -1 : u;
          if (done) {
            ld::mbar_arrive(full + s);
          } else {
            ld::mbar_arrive_expect_tx(full + s, static_cast<unsigned>(stage));
            ld::tma_2d_g2s(base + s * stage, &tmW, (st0 + j) * sk, slab * kRows, full + s);
          }
        }
        if (done) break;
      }
      if (atomicAdd(ctr + 1, 1u) == gridDim.x - 1) {  // every producer is past the counter: reset it
        atomicExch(ctr, 0u);
        atomicExch(ctr + 1, 0u);
      }
    }
  } else {
    unsigned x = 0;
    for (int li = 0;; ++li) {
      const int s = li % S;
      ld::mbar_wait(full + s, static_cast<unsigned>((li / S) & 1));
      if (hdr[s] < 0) break;
      read_and_release(smem + s * stage, sk, 0, empty + s, x);
    }
    if (x == 0x12345678u) sink[blockIdx.x] = x;  // keeps the reads
  }
#endif
}

cudaError_t encode_3d(CUtensorMap& map, const void* base, std::size_t N, std::size_t K, int chunk, int box_chunks) {
  auto enc = ld::tensor_map_encoder();
  if (!enc) return cudaErrorNotSupported;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(chunk), N, K / chunk};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(chunk), static_cast<cuuint64_t>(chunk) * N};
  const cuuint32_t box[3] = {static_cast<cuuint32_t>(chunk), 64, static_cast<cuuint32_t>(box_chunks)};
  const cuuint32_t estr[3] = {1, 1, 1};
  return enc(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, const_cast<void*>(base), dims, strides, box, estr,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS
             ? cudaSuccess
             : cudaErrorInvalidValue;
}

}  // namespace

int main(int argc, char** argv) {
  namespace lb = lowbit_bench;
  const std::string out = argc > 1 ? argv[1] : "ring_access.json";
  cudaDeviceProp prop{};
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t st;
  LB_CUDA(cudaStreamCreate(&st));
  const double copy = lb::copy_bandwidth_gbs(st);
  std::printf("device %s, %d SMs, D2D copy %.0f GB/s\n", prop.name, prop.multiProcessorCount, copy);
  unsigned* sink;
  LB_CUDA(cudaMalloc(&sink, 1 << 20));
  std::uint8_t* act;
  LB_CUDA(cudaMalloc(&act, 16 * 65536));
  LB_CUDA(cudaMemset(act, 1, 16 * 65536));
  struct Cfg {
    const char* name;
    bool chunked;
    int sk, chunk, S;
  };
  const Cfg cfgs[] = {{"rowmajor box 64x192 (main)", false, 192, 0, 6}, {"rowmajor box 64x256", false, 256, 0, 5},
                      {"rowmajor box 64x128", false, 128, 0, 9},        {"chunk128 x1 (8 KB stage)", true, 128, 128, 9},
                      {"chunk128 x2 (16 KB)", true, 256, 128, 5},       {"chunk64 x2 (8 KB)", true, 128, 64, 9},
                      {"chunk64 x3 (12 KB)", true, 192, 64, 6},         {"chunk256 x1 (16 KB)", true, 256, 256, 5}};
  std::string json = "{\n  \"benchmark\": \"ring_access\",\n  \"device\": \"" + std::string(prop.name) +
                     "\",\n  \"date\": \"" + lb::utc_date() + "\",\n  \"d2d_copy_GBps\": " + std::to_string(copy) +
                     ",\n  \"rows\": [\n";
  bool first = true;
  for (auto [K, N] : {std::pair<int, int>{8192, 8192}, {28672, 8192}, {8192, 28672}}) {
    const std::size_t bytes = static_cast<std::size_t>(K) * N;
    const int R = lb::rotation_count(bytes);
    std::vector<std::uint8_t*> W(R);
    for (auto& w : W) {
      LB_CUDA(cudaMalloc(&w, bytes));
      lb::fill_words(w, bytes / 4, 7u);
    }
    const double read_us = lb::time_stream_us(st, 20, 15, [&](int i) {
      lb::stream_read_kernel<<<prop.multiProcessorCount * 8, 512, 0, st>>>(reinterpret_cast<const uint4*>(W[i % R]),
                                                                         bytes / 16, sink);
    });
    std::printf("K %5d N %5d (%.1f MB): plain read %.2f us (%.0f GB/s)\n", K, N, bytes / 1e6, read_us, bytes / read_us / 1e3);
    const int slabs = N / 64;
    const int splits = slabs * 2 <= 2 * prop.multiProcessorCount ? 2 : 1;  // the ring's rule: 2 CTAs per SM
    for (const Cfg& c : cfgs) {
      for (int with_act = 0; with_act < 2; ++with_act) {
        std::vector<CUtensorMap> mw(R);
        CUtensorMap ma;
        for (int r = 0; r < R; ++r) {
          const cudaError_t e = c.chunked ? encode_3d(mw[r], W[r], N, K, c.chunk, c.sk / c.chunk)
                                          : ld::encode_2d(mw[r], 1, W[r], N, K, 64, c.sk, false);
          LB_CUDA(e);
        }
        LB_CUDA(ld::encode_2d(ma, 1, act, 16, K, 16, c.sk, false));
        const int stage = 64 * c.sk + (with_act ? 16 * c.sk : 0);
        const int smem = c.S * stage + 128;
        auto kern = c.chunked ? stream_kernel<true> : stream_kernel<false>;
        LB_CUDA(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        const dim3 grid(slabs, splits);
        const double us = lb::time_stream_us(st, 20, 15, [&](int i) {
          kern<<<grid, kThreads, smem, st>>>(mw[i % R], ma, K, c.sk, c.chunk, c.S, with_act != 0, sink);
        });
        LB_CUDA(cudaGetLastError());
        std::printf("  %-28s act %d  S %2d  grid %3d x %d: %7.2f us (%.0f GB/s, %.2fx the plain read)\n", c.name, with_act,
                    c.S, slabs, splits, us, bytes / us / 1e3, us / read_us);
        json += std::string(first ? "" : ",\n") + "    {\"K\": " + std::to_string(K) + ", \"N\": " + std::to_string(N) +
                ", \"config\": \"" + c.name + "\", \"act\": " + std::to_string(with_act) + ", \"stages\": " +
                std::to_string(c.S) + ", \"splits\": " + std::to_string(splits) + ", \"us\": " + std::to_string(us) +
                ", \"plain_read_us\": " + std::to_string(read_us) + "}";
        first = false;
      }
    }
    // the dynamic variant: 2 persistent CTAs per SM, units of U stages of 192 bytes (S = 6, as main)
    unsigned* ctr;
    LB_CUDA(cudaMalloc(&ctr, 8));
    LB_CUDA(cudaMemset(ctr, 0, 8));
    for (int U : {1, 2, 4, 8}) {
      for (int per_sm : {2, 3}) {
        const int sk = 192, S = per_sm == 2 ? 6 : 4;
        std::vector<CUtensorMap> mw(R);
        for (int r = 0; r < R; ++r) LB_CUDA(ld::encode_2d(mw[r], 1, W[r], N, K, 64, sk, false));
        const int smem = S * 64 * sk + 128;
        LB_CUDA(cudaFuncSetAttribute(stream_dynamic_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        const int grid = per_sm * prop.multiProcessorCount;
        const double us = lb::time_stream_us(st, 20, 15, [&](int i) {
          stream_dynamic_kernel<<<grid, kThreads, smem, st>>>(mw[i % R], K, slabs, sk, U, S, ctr, sink);
        });
        LB_CUDA(cudaGetLastError());
        char name[64];
        std::snprintf(name, sizeof name, "dynamic units of %d stages", U);
        std::printf("  %-28s act 0  S %2d  grid %3d    : %7.2f us (%.0f GB/s, %.2fx the plain read)\n", name, S, grid,
                    us, bytes / us / 1e3, us / read_us);
        json += std::string(",\n") + "    {\"K\": " + std::to_string(K) + ", \"N\": " + std::to_string(N) +
                ", \"config\": \"" + name + "\", \"act\": 0, \"stages\": " + std::to_string(S) +
                ", \"persistent_ctas\": " + std::to_string(grid) + ", \"us\": " + std::to_string(us) +
                ", \"plain_read_us\": " + std::to_string(read_us) + "}";
      }
    }
    LB_CUDA(cudaFree(ctr));
    for (auto w : W) LB_CUDA(cudaFree(w));
  }
  json += "\n  ]\n}\n";
  if (FILE* f = std::fopen(out.c_str(), "w")) {
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}
