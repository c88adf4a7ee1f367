// fused_gate_up: a decode-time fused gate/up projection with SiLU-multiply epilogue,
//   H[M, N] = silu(A · Wg) ⊙ (A · Wu),  Wg, Wu 4-bit group-128 quantized, A fp16, M <= 16,
// assembled from lowbit's device-level building blocks (lowbit/kernels/tile.cuh):
//   ATile (swizzled activations + ldmatrix), WeightTile::load (packed weights straight to registers),
//   load_group_raw + GroupParams::prepare (scales/zeros), warp_tile_mma (dequantize + mma.sync).
// One warp owns one 64-column slab of both weights and walks all of K; the two accumulators never
// leave registers, and the epilogue applies SiLU(g) * u before the only store.
//
// Limits (it is a teaching example, not a tuned kernel): M <= 16, K and N multiples of 64, no split-K
// (so small N leaves SMs idle), no act-order, no pipelining beyond what the warp scheduler overlaps.
//
// Build: configured automatically when nvcc is found (target `example_fused_gate_up`).
// Run:   ./build/examples/fused_gate_up/example_fused_gate_up [M K N]   (defaults 4 2048 1024)
// Prints the relative error against the double-accumulating host reference and the kernel time.
#include <cuda_runtime.h>

#include <lowbit/kernels/convert.cuh>
#include <lowbit/kernels/reference.hpp>
#include <lowbit/kernels/tile.cuh>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace lowbit;
using namespace lowbit::kernels;

namespace {
constexpr int kBits = 4;           // weight width
constexpr int kWarps = 4;          // warps per CTA, side by side along N
constexpr int kRows = 16;          // one m16 tile of activations (M <= 16)

__global__ void __launch_bounds__(32 * kWarps)
fused_gate_up_kernel(const half_t* A, int M, int K, int N, TiledWeightView gate, TiledWeightView up, half_t* H) {
  using Tile = ATile<kRows, TileGeometry::tile_k>;
  __shared__ __align__(16) std::uint16_t a_smem[Tile::elems];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int slab = blockIdx.x * kWarps + warp;
  const bool active = slab < N / 64;
  const auto* a16 = reinterpret_cast<const std::uint16_t*>(A);
  float acc_g[1][8][4] = {}, acc_u[1][8][4] = {};
  for (int kt = 0; kt < K / 64; ++kt) {
    __syncthreads();  // previous tile's readers are done
    for (int i = threadIdx.x; i < kRows * Tile::chunks_per_row; i += blockDim.x) {
      const int r = i / Tile::chunks_per_row, c = i % Tile::chunks_per_row;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < M) v = *reinterpret_cast<const uint4*>(a16 + static_cast<std::size_t>(r) * K + kt * 64 + 8 * c);
      *reinterpret_cast<uint4*>(a_smem + Tile::chunk_offset(r, c)) = v;
    }
    __syncthreads();
    if (!active) continue;
    WeightTile<kBits> wg, wu;
    wg.load(gate.qweight, K, kt, slab, lane);
    wu.load(up.qweight, K, kt, slab, lane);
    const int grp = kt * 64 / static_cast<int>(gate.meta.group_size);
    const GroupRaw rg = load_group_raw(gate.scales, gate.zeros, N, grp, slab, lane, gate.meta.sym);
    const GroupRaw ru = load_group_raw(up.scales, up.zeros, N, grp, slab, lane, up.meta.sym);
    GroupParams<half_t> pg, pu;
    pg.prepare<kBits>(rg.scales, rg.zeros, gate.meta.sym);
    pu.prepare<kBits>(ru.scales, ru.zeros, up.meta.sym);
#pragma unroll
    for (int ks = 0; ks < TileGeometry::k_steps; ++ks) {
      std::uint32_t a[1][4];
      Tile::load_fragment(a[0], a_smem, 0, 16 * ks, lane);
      warp_tile_mma<kBits, half_t, 1>(acc_g, a, wg, pg, ks);
      warp_tile_mma<kBits, half_t, 1>(acc_u, a, wu, pu, ks);
    }
  }
  if (!active) return;
  // epilogue: H = silu(g) * u, fragment rows lane/4 (+8), columns 8j + 2*(lane%4) (+1)
  auto* h32 = reinterpret_cast<std::uint32_t*>(H);
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int row = lane / 4 + 8 * hh, col = slab * 64 + 8 * j + 2 * (lane % 4);
      if (row >= M) continue;
      float v[2];
      for (int e = 0; e < 2; ++e) {
        const float g = acc_g[0][j][2 * hh + e], u = acc_u[0][j][2 * hh + e];
        v[e] = g / (1.f + __expf(-g)) * u;
      }
      h32[(static_cast<std::size_t>(row) * N + col) / 2] = ElementOps<half_t>::pack2(v[0], v[1]);
    }
}

QuantizedWeight random_weight(std::size_t K, std::size_t N, std::mt19937& rng) {
  QuantizedWeight q;
  q.spec.bits = kBits;
  q.spec.group_size = 128;
  q.K = K;
  q.N = N;
  const std::size_t G = K / 128;
  std::uniform_int_distribution<int> dc(0, 15);
  std::uniform_real_distribution<float> ds(0.002f, 0.02f);
  for (std::size_t i = 0; i < K * N; ++i) q.codes.push_back(static_cast<std::uint8_t>(dc(rng)));
  for (std::size_t i = 0; i < G * N; ++i) q.scales.push_back(round_to_half(ds(rng)));
  for (std::size_t i = 0; i < G * N; ++i) q.zeros.push_back(static_cast<std::uint8_t>(dc(rng)));
  for (std::size_t k = 0; k < K; ++k) q.g_idx.push_back(static_cast<std::int32_t>(k / 128));
  return q;
}

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s failed: %s\n", #x, cudaGetErrorString(e_));                     \
      return 1;                                                                                \
    }                                                                                          \
  } while (0)
}  // namespace

int main(int argc, char** argv) {
  const int M = argc > 3 ? std::atoi(argv[1]) : 4;
  const int K = argc > 3 ? std::atoi(argv[2]) : 2048;
  const int N = argc > 3 ? std::atoi(argv[3]) : 1024;
  if (M < 1 || M > kRows || K % 128 || N % 64 || K <= 0 || N <= 0) {
    std::fprintf(stderr, "need 1 <= M <= 16, K a multiple of 128, N a multiple of 64\n");
    return 2;
  }
  std::mt19937 rng(42);
  const QuantizedWeight qg = random_weight(K, N, rng), qu = random_weight(K, N, rng);
  TiledWeightBuffer wg, wu;
  if (!upload(tile_weight(qg), wg, nullptr).ok() || !upload(tile_weight(qu), wu, nullptr).ok()) return 1;
  std::normal_distribution<float> dn;
  std::vector<half_t> A(static_cast<std::size_t>(M) * K);
  std::vector<float> Af(A.size());
  for (std::size_t i = 0; i < A.size(); ++i) {
    A[i] = half_t(dn(rng));
    Af[i] = static_cast<float>(A[i]);
  }
  half_t *dA, *dH;
  CK(cudaMalloc(&dA, A.size() * 2));
  CK(cudaMalloc(&dH, static_cast<std::size_t>(M) * N * 2));
  CK(cudaMemcpy(dA, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  const dim3 grid((N / 64 + kWarps - 1) / kWarps);
  fused_gate_up_kernel<<<grid, 32 * kWarps>>>(dA, M, K, N, wg.view(), wu.view(), dH);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0));
  for (int i = 0; i < 20; ++i) fused_gate_up_kernel<<<grid, 32 * kWarps>>>(dA, M, K, N, wg.view(), wu.view(), dH);
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  std::vector<half_t> H(static_cast<std::size_t>(M) * N);
  CK(cudaMemcpy(H.data(), dH, H.size() * 2, cudaMemcpyDeviceToHost));
  const auto g = reference_gemm(qg, Af.data(), M), u = reference_gemm(qu, Af.data(), M);
  std::vector<float> ref(H.size()), got(H.size());
  for (std::size_t i = 0; i < H.size(); ++i) {
    ref[i] = static_cast<float>(g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i]);
    got[i] = static_cast<float>(H[i]);
  }
  const double err = relative_error(got, ref);
  std::printf("fused gate/up M=%d K=%d N=%d: relative error %.2e, %.2f us per call\n", M, K, N, err, ms * 1000 / 20);
  cudaFree(dA);
  cudaFree(dH);
  return err < 5e-3 ? 0 : 1;
}
