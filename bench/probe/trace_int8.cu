// Timeline of one small-M LLM.int8() layer call on the ring path (compiled with LOWBIT_INT8_TRACE: the
// kernels record %globaltimer at fixed points, earliest and latest over their CTAs, see
// lowbit/kernels/int8_ring.cuh, namespace trace). For each shape and M: `reps` isolated calls (stream
// synchronized before each, weights rotated past the L2), the mean time of every point relative to the
// first activation block's start; then the same for the ring GEMM alone (activation results already in the
// workspace). Question it answers: where the 3-7 us between the layer and its GEMM go (NOTES, session 9).
//
// usage: trace_int8 [reps]   (prints a table; not a benchmark of throughput)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include <lowbit/int8/linear.cuh>

#include "common/bench_util.cuh"

#if !defined(LOWBIT_INT8_TRACE)
#error "build with -DLOWBIT_INT8_TRACE=1"
#endif

using namespace lowbit;
namespace tr = lowbit::kernels::trace;

#define CK(x) LB_CUDA(x)

namespace {

/// Eight outlier columns (|a| 20-55) in every row.
__global__ void plant(__half* A, int M, int K) {
  const int m = blockIdx.x, j = threadIdx.x;
  if (j < 8) A[static_cast<std::size_t>(m) * K + (K / 8) * j + 3 * j] = __float2half(((m + j) & 1) ? 20.f + 5.f * j : -30.f);
}

struct Trace {
  double lo[tr::kEvents], hi[tr::kEvents];
  int seen[tr::kEvents];
};

void reset() {
  unsigned long long h[2 * tr::kEvents];
  for (int e = 0; e < tr::kEvents; ++e) {
    h[2 * e] = std::numeric_limits<unsigned long long>::max();
    h[2 * e + 1] = 0;
  }
  CK(cudaMemcpyToSymbol(tr::g_times, h, sizeof h));
}

/// Adds one call's times relative to its first event into `t`.
void collect(Trace& t) {
  unsigned long long h[2 * tr::kEvents];
  CK(cudaMemcpyFromSymbol(h, tr::g_times, sizeof h));
  unsigned long long t0 = std::numeric_limits<unsigned long long>::max();
  for (int e = 0; e < tr::kEvents; ++e)
    if (h[2 * e + 1]) t0 = std::min(t0, h[2 * e]);
  for (int e = 0; e < tr::kEvents; ++e) {
    if (!h[2 * e + 1]) continue;
    t.lo[e] += static_cast<double>(h[2 * e] - t0) * 1e-3;
    t.hi[e] += static_cast<double>(h[2 * e + 1] - t0) * 1e-3;
    ++t.seen[e];
  }
}

void print(const char* what, const Trace& t) {
  static const char* names[tr::kEvents] = {"act1 start",        "act1 end",         "act2 start", "act2 end",
                                           "ring start",        "producer waited",  "consumers ready",
                                           "first stage landed", "consumer loop done", "ring end"};
  std::printf("  %s (us after the first event, mean over calls: earliest / latest CTA)\n", what);
  for (int e = 0; e < tr::kEvents; ++e)
    if (t.seen[e])
      std::printf("    %-20s %7.2f / %7.2f\n", names[e], t.lo[e] / t.seen[e], t.hi[e] / t.seen[e]);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s; %d calls per row; globaltimer resolution as the device provides it\n", prop.name, reps);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  struct Shape { int K, N; };
  for (Shape sh : {Shape{8192, 8192}, Shape{28672, 8192}, Shape{8192, 28672}}) {
    const int K = sh.K, N = sh.N;
    const std::size_t wbytes = static_cast<std::size_t>(N) * K;
    const int rot = lowbit_bench::rotation_count(wbytes);
    std::vector<std::int8_t*> W(rot);
    for (int r = 0; r < rot; ++r) {
      CK(cudaMalloc(&W[r], wbytes));
      lowbit_bench::fill_words(W[r], wbytes / 4, 11u + static_cast<unsigned>(r));  // random codes
    }
    float* wscale;
    CK(cudaMalloc(&wscale, N * 4));
    std::vector<float> hs(N, 0.5f);
    CK(cudaMemcpy(wscale, hs.data(), N * 4, cudaMemcpyHostToDevice));
    __half *A, *Y;
    CK(cudaMalloc(&A, 16ull * K * 2));
    CK(cudaMalloc(&Y, 16ull * N * 2));
    for (int M : {1, 4, 16}) {
      lowbit_bench::fill_fp16(A, static_cast<std::size_t>(M) * K, 5u + static_cast<unsigned>(M), 0x3c00);  // |a| in [1, 2)
      plant<<<M, 32>>>(A, M, K);
      CK(cudaDeviceSynchronize());  // the fills ran on the default stream
      int8::LinearOptions opt;
      const std::size_t wsb = int8::linear_workspace_size(M, N, K, opt);
      void* ws;
      CK(cudaMalloc(&ws, wsb));
      const auto plan = int8::detail::make_plan(M, N, K, prop.multiProcessorCount, -1);
      if (plan.path != int8::detail::Plan::ring) {
        std::printf("K %d N %d M %d: not the ring path, skipped\n", K, N, M);
        CK(cudaFree(ws));
        continue;
      }
      // the GEMM alone runs the separate-pass plan (the fused plan has no GEMM without its pass)
      int8::LinearOptions osep = opt;
      osep.ring_act = static_cast<long long>(M) * K <= 65536 ? 1 : 2;
      const auto gplan = int8::detail::make_plan(M, N, K, prop.multiProcessorCount, -1, 0, 0, 0, osep.ring_act);
      const auto lay = int8::detail::make_layout(M, N, K, opt.max_outliers, gplan);
      std::printf("K %d N %d M %d: layer's activation pass %s\n", K, N, M, plan.fused_act ? "fused" : "separate");
      int8::DeviceWeight dw{W[0], wscale, N, K};
      Trace layer{}, gemm{};
      for (int i = 0; i < reps + 3; ++i) {  // the first 3: warm-up
        dw.codes = W[i % rot];
        CK(cudaStreamSynchronize(s));
        reset();
        const Status st = int8::linear_forward(reinterpret_cast<const half_t*>(A), M, dw, wscale,
                                               reinterpret_cast<half_t*>(Y), ws, wsb, opt, s);
        if (!st.ok()) {
          std::fprintf(stderr, "layer: %s\n", st.message.c_str());
          return 1;
        }
        CK(cudaStreamSynchronize(s));
        if (i >= 3) collect(layer);
      }
      if (!int8::linear_forward(reinterpret_cast<const half_t*>(A), M, dw, wscale, reinterpret_cast<half_t*>(Y), ws,
                                wsb, osep, s).ok())
        return 1;
      for (int i = 0; i < reps + 3; ++i) {  // the GEMM alone, on a separate pass's activation results
        dw.codes = W[i % rot];
        CK(cudaStreamSynchronize(s));
        reset();
        CK(int8::detail::launch_ring<__half>(A, M, dw, wscale, Y, static_cast<std::uint8_t*>(ws), lay, gplan, osep, s,
                                             true));
        CK(cudaStreamSynchronize(s));
        if (i >= 3) collect(gemm);
      }
      std::printf("K %d N %d M %d: ring, %d CTA(s) per slab, %d stages (GEMM alone: %d)\n", K, N, M, plan.splits,
                  plan.stages, gplan.stages);
      print("layer", layer);
      print("GEMM alone", gemm);
      CK(cudaFree(ws));
    }
    for (auto* w : W) CK(cudaFree(w));
    CK(cudaFree(wscale));
    CK(cudaFree(A));
    CK(cudaFree(Y));
  }
  return 0;
}
