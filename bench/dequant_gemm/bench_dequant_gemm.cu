// Large-M weight-only GEMM on the device: the dequantize + cuBLAS path (kernels/dequant_gemm.cuh, one
// pass and in 32 MB slabs) against the fused mma.sync kernels (kernels/gemm.cuh) and cuBLAS fp16 on
// dense weights, all in the same run; 4-bit g128 asymmetric weights, fp16 activations; weights rotated
// over > 200 MB so the 50 MB L2 never holds them; median of 7 samples of 10 back-to-back calls;
// cuBLAS and the lowbit paths of each M timed with interleaved samples (clock drift at large M).
// Also the dequantization alone, as achieved bandwidth vs the measured device-to-device copy.
//
//   bench_dequant_gemm OUT.json [--quick]
#include <cuda_fp16.h>

#include <lowbit/kernels/dequant_gemm.cuh>
#include <lowbit/kernels/gemm.cuh>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/bench_util.cuh"

using namespace lowbit;
using namespace lowbit::kernels;
using namespace lowbit_bench;

namespace {

constexpr int kBits = 4;
constexpr std::size_t kGroup = 128;
constexpr std::size_t kSlabWorkspace = 32ull << 20;  // the bounded-memory variant: 32 MB of dense slab
constexpr int kCalls = 10, kSamples = 7;

struct Packed {
  TiledWeightView view;
  void* mem = nullptr;
};

/// Random 4-bit g128 weight in the kernel layout (codes, fp16 scales ~2^-9, zeros 0..15; optional
/// pseudo-random act-order permutation).
Packed make_packed(std::size_t K, std::size_t N, bool act, std::uint32_t seed) {
  Packed p;
  const std::size_t words = K * N * kBits / 32, G = K / kGroup;
  const std::size_t off_sc = words * 4, off_ze = off_sc + G * N * 2, off_pe = (off_ze + G * N + 15) / 16 * 16;
  LB_CUDA(cudaMalloc(&p.mem, off_pe + K * 4));
  auto* base = static_cast<unsigned char*>(p.mem);
  fill_words(base, words, seed);
  fill_fp16(base + off_sc, G * N, seed + 1, 0x1800);
  fill_words(base + off_ze, G * N / 4, seed + 2, 0x0f0f0f0fu);
  p.view.meta = {kBits, K, N, kGroup, false, act};
  p.view.qweight = reinterpret_cast<const std::uint32_t*>(base);
  p.view.scales = reinterpret_cast<const std::uint16_t*>(base + off_sc);
  p.view.zeros = base + off_ze;
  if (act) {
    std::vector<std::int32_t> perm(K);
    for (std::size_t k = 0; k < K; ++k) perm[k] = static_cast<std::int32_t>((k * 2654435761ull + seed) % K);
    // make it a permutation: sort indices by the hash
    std::vector<std::int32_t> idx(K);
    for (std::size_t k = 0; k < K; ++k) idx[k] = static_cast<std::int32_t>(k);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return perm[a] != perm[b] ? perm[a] < perm[b] : a < b; });
    LB_CUDA(cudaMemcpy(base + off_pe, idx.data(), K * 4, cudaMemcpyHostToDevice));
    p.view.perm = reinterpret_cast<const std::int32_t*>(base + off_pe);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_dequant_gemm OUT.json [--quick]\n");
    return 2;
  }
  const bool quick = argc > 2 && !std::strcmp(argv[2], "--quick");
  cudaDeviceProp prop{};
  LB_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t st;
  LB_CUDA(cudaStreamCreate(&st));
  cublasHandle_t blas;
  LB_CUBLAS(cublasCreate(&blas));
  LB_CUBLAS(cublasSetStream(blas, st));
  const double copy_gbs = copy_bandwidth_gbs(st);
  std::printf("device %s, %d SMs, D2D copy %.0f GB/s\n", prop.name, prop.multiProcessorCount, copy_gbs);

  struct Shape { std::size_t K, N; };
  std::vector<Shape> shapes = {{8192, 8192}, {8192, 28672}, {28672, 8192}, {4096, 4096}};
  std::vector<std::size_t> Ms = {16, 64, 128, 256, 512, 1024, 2048, 4096};
  if (quick) {
    shapes.resize(1);
    Ms = {128, 1024, 4096};
  }
  const std::size_t Mmax = Ms.back();

  FILE* js = std::fopen(argv[1], "w");
  if (!js) { std::perror(argv[1]); return 1; }
  std::fprintf(js, "{\n  \"benchmark\": \"weight-only GEMM, large M: dequantize + cuBLAS vs fused kernels vs cuBLAS fp16\",\n");
  std::fprintf(js, "  \"device\": \"%s\", \"sms\": %d, \"date\": \"%s\", \"copy_gbs\": %.1f,\n", prop.name,
               prop.multiProcessorCount, utc_date().c_str(), copy_gbs);
  std::fprintf(js, "  \"weights\": \"4-bit g128 asym, fp16 activations and outputs\", \"slab_workspace_bytes\": %zu,\n",
               kSlabWorkspace);
  std::fprintf(js, "  \"timing\": \"median of %d samples x %d back-to-back calls, weights rotated over > 200 MB\",\n",
               kSamples, kCalls);
  std::fprintf(js, "  \"points\": [\n");
  std::string dq_json;
  bool first = true;
  std::printf("%6s %6s %5s | %9s %9s %9s %9s | %7s %7s %7s\n", "K", "N", "M", "cuBLAS", "fused", "deq+BLAS",
              "deq slab", "fused x", "deq x", "slab x");
  for (const Shape& sh : shapes) {
    const std::size_t K = sh.K, N = sh.N;
    const std::size_t dense_bytes = K * N * 2;
    const std::size_t packed_bytes = K * N * kBits / 8 + K / kGroup * N * 3;
    const int Rd = rotation_count(dense_bytes), Rq = rotation_count(packed_bytes);
    std::vector<void*> dense(Rd);
    for (int r = 0; r < Rd; ++r) {
      LB_CUDA(cudaMalloc(&dense[r], dense_bytes));
      fill_fp16(dense[r], K * N, 100 + r, 0x2000);
    }
    std::vector<Packed> packed;
    for (int r = 0; r < Rq; ++r) packed.push_back(make_packed(K, N, false, 200 + 7 * r));
    Packed act = make_packed(K, N, true, 999);
    void *A = nullptr, *Y = nullptr, *wsd = nullptr, *wsf = nullptr;
    LB_CUDA(cudaMalloc(&A, Mmax * K * 2));
    LB_CUDA(cudaMalloc(&Y, Mmax * N * 2));
    fill_fp16(A, Mmax * K, 7, 0x3800);
    const std::size_t ws_full = gemm_dequant_workspace_size<half_t>(packed[0].view.meta);
    LB_CUDA(cudaMalloc(&wsd, ws_full));
    std::size_t wsf_bytes = 0;
    for (std::size_t M : Ms) wsf_bytes = std::max(wsf_bytes, gemm_workspace_size(M, packed[0].view.meta));
    LB_CUDA(cudaMalloc(&wsf, std::max<std::size_t>(wsf_bytes, 16)));
    LB_CUDA(cudaMemset(wsf, 0, std::max<std::size_t>(wsf_bytes, 16)));
    LB_CUDA(cudaDeviceSynchronize());
    const float one = 1.f, zero = 0.f;
    auto* Ah = static_cast<const half_t*>(A);
    auto* Yh = static_cast<half_t*>(Y);
    auto ok = [](const Status& s) {
      if (!s.ok()) { std::fprintf(stderr, "lowbit: %s\n", s.message.c_str()); std::exit(1); }
    };

    // The dequantization alone (one pass over the whole weight).
    const double dq_us = time_stream_us(st, kCalls, kSamples, [&](int i) {
      ok(dequantize_tiled<kBits, half_t>(packed[i % Rq].view, 0, N, static_cast<half_t*>(wsd), N, st));
    });
    const double dq_bytes = static_cast<double>(packed_bytes + dense_bytes);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s    {\"K\": %zu, \"N\": %zu, \"us\": %.2f, \"bytes\": %.0f, \"gbs\": %.1f, \"roofline_us\": %.2f, "
                  "\"fraction_of_copy\": %.3f}",
                  dq_json.empty() ? "" : ",\n", K, N, dq_us, dq_bytes, dq_bytes / (dq_us * 1e3),
                  dq_bytes / (copy_gbs * 1e3), dq_bytes / (dq_us * 1e3) / copy_gbs);
    dq_json += buf;

    for (std::size_t M : Ms) {
      // cuBLAS and the three lowbit paths timed against each other, samples interleaved: at large M all are
      // power-bound and the clocks follow what ran just before (session 16: sequential timings of one int8
      // kernel differed by 20 % within a run)
      const std::vector<double> tt = time_stream_interleaved_us(
          st, kCalls, kSamples,
          {[&](int i) {
             LB_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                                    static_cast<int>(K), &one, dense[i % Rd], CUDA_R_16F, static_cast<int>(N), A,
                                    CUDA_R_16F, static_cast<int>(K), &zero, Y, CUDA_R_16F, static_cast<int>(N),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
           },
           [&](int i) { ok(gemm_bits<kBits, half_t>(Ah, M, packed[i % Rq].view, nullptr, Yh, wsf, wsf_bytes, st)); },
           [&](int i) {
             ok(gemm_dequant_bits<kBits, half_t>(blas, Ah, M, packed[i % Rq].view, nullptr, Yh, wsd, ws_full, st));
           },
           [&](int i) {
             ok(gemm_dequant_bits<kBits, half_t>(blas, Ah, M, packed[i % Rq].view, nullptr, Yh, wsd,
                                                 std::min(ws_full, kSlabWorkspace), st));
           }});
      const double blas_us = tt[0], fused_us = tt[1], deq_us = tt[2], slab_us = tt[3];
      const double act_us = M == 1024 ? time_stream_us(st, kCalls, kSamples, [&](int) {
        ok(gemm_dequant_bits<kBits, half_t>(blas, Ah, M, act.view, nullptr, Yh, wsd, ws_full, st));
      }) : 0.0;
      const double tflops = 2.0 * M * N * K / (blas_us * 1e6);
      std::printf("%6zu %6zu %5zu | %9.1f %9.1f %9.1f %9.1f | %6.2fx %6.2fx %6.2fx%s\n", K, N, M, blas_us, fused_us,
                  deq_us, slab_us, blas_us / fused_us, blas_us / deq_us, blas_us / slab_us,
                  act_us > 0 ? (" (act-order deq+BLAS " + std::to_string(act_us) + " us)").c_str() : "");
      std::fprintf(js,
                   "%s    {\"K\": %zu, \"N\": %zu, \"M\": %zu, \"cublas_fp16_us\": %.2f, \"cublas_tflops\": %.1f, "
                   "\"fused_us\": %.2f, \"dequant_cublas_us\": %.2f, \"dequant_cublas_slab_us\": %.2f, "
                   "\"speedup_fused\": %.3f, \"speedup_dequant_cublas\": %.3f, \"speedup_dequant_cublas_slab\": %.3f, "
                   "\"dequant_share\": %.3f%s}",
                   first ? "" : ",\n", K, N, M, blas_us, tflops, fused_us, deq_us, slab_us, blas_us / fused_us,
                   blas_us / deq_us, blas_us / slab_us, dq_us / deq_us,
                   act_us > 0 ? (", \"act_order_dequant_cublas_us\": " + std::to_string(act_us)).c_str() : "");
      first = false;
    }
    for (void* p : dense) LB_CUDA(cudaFree(p));
    for (Packed& p : packed) LB_CUDA(cudaFree(p.mem));
    LB_CUDA(cudaFree(act.mem));
    for (void* p : {A, Y, wsd, wsf}) LB_CUDA(cudaFree(p));
  }
  std::fprintf(js, "\n  ],\n  \"dequantize_only\": [\n%s\n  ]\n}\n", dq_json.c_str());
  std::fclose(js);
  std::printf("dequantize alone:\n%s\n", dq_json.c_str());
  LB_CUBLAS(cublasDestroy(blas));
  return 0;
}
