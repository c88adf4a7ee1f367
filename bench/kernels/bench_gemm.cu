// Benchmark of lowbit::kernels::gemm (W{2,3,4,8}A16) against cuBLAS fp16 measured in the same run.
//
// usage: bench_gemm_kernels OUT.json [--quick | --decode | --decode-sweep[=KxN,...] [all] | --tune | --gather-sweep]
// (--decode: M <= 16 only; --decode-sweep: only every valid decode plan (1-2 slabs x warps x splits <= 16) of 4-bit
// g128 at M = 1 and 16, with and without PDL, on the three large shapes or the listed ones, next to the
// planner's choice; "all": 2/3/4/8 bits at M = 1, 4, 8, 16, with PDL only)
// Shapes (K, N) in {(8192,8192), (8192,28672), (28672,8192), (4096,4096)}, M in {1..4096}; 4-bit g128
// everywhere, other widths at M = 1 (and 16). Weights are rotated over enough buffers that the working
// set is >= 4x the L2, each timing is the median over replays of a CUDA graph of `kBatch` launches; in the
// main table cuBLAS and gemm (PDL off and on) alternate replay by replay, so clock drift falls on all alike.
// Weight bandwidth = packed weight + scale + zero bytes / time, also as a fraction of a measured
// device-to-device copy (read + write bytes / time).
// M <= 256 (decode and mid-M kernels): timed with and without programmatic dependent launch in the same run
// (lowbit_us_nopdl / lowbit_us_pdl, and each followed by a small plain elementwise kernel,
// lowbit_plus_eltwise_us_*, for the main 4-bit g128 variant); lowbit_us is gemm's default.
// --tune: tune_decode (tune.cuh) on 2/3/4/8 bits x six shapes x M = 1, 4, 8, 12, 16; then this program times the
// planner's and the measured shape with its own loop (as above) next to cuBLAS fp16, all in the same run.
// --gather-sweep: 4-bit g128 act-order on 8192^2 and 28672 x 8192 at M = 1, 16, 64 (PDL on) with the act-order
// pre-gather's CTA target (kernels::detail::gather_rows_target_ctas; 0 = the column kernel) swept, each next to the
// same weights without act-order, interleaved.
// decode_planner_ab (not with --quick): the decode planner's busiest-SM cost model against the previous
// wave model on the shapes where their plans differ, same weights, same run.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <lowbit/kernels/gemm.cuh>
#include <lowbit/kernels/tune.cuh>

#include "common/bench_util.cuh"    // time_graphs_interleaved_us, fill_fp16, utc_date
#include "common/tiled_weight.cuh"  // random_tiled_weight

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

using namespace lowbit;
using namespace lowbit::kernels;

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)
#define CKB(x)                                                               \
  do {                                                                       \
    cublasStatus_t s_ = (x);                                                 \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                       \
      std::fprintf(stderr, "%s:%d cublas error %d\n", __FILE__, __LINE__, (int)s_); \
      std::exit(1);                                                          \
    }                                                                        \
  } while (0)

namespace {
constexpr int kBatch = 20;    // launches per graph
constexpr int kReplays = 15;  // graph replays; the median per-launch time is reported

// The neighbour of a decode GEMM in a model (residual add / activation): next A from Y, plainly launched
// and without an early PDL trigger, as framework kernels are.
__global__ void eltwise_kernel(const std::uint32_t* Y, std::uint32_t* A, std::size_t pairs) {
  const std::size_t i = blockIdx.x * (std::size_t)blockDim.x + threadIdx.x;
  // sign and mantissa of y with the exponent of 0.5..1 (bounded however often it is applied)
  if (i < pairs) A[i] = (Y[i] & 0x83ff83ffu) | 0x38003800u;
}

// A neighbour that reuses data through the L2: reads `n` 16-byte words of a buffer that fits the L2 (a model's
// KV-cache block, residual stream or a large activation) and folds them into one word per thread. Between two
// GEMMs it shows what the weight stream left of the buffer in the L2 (GemmOptions::l2_evict_first).
__global__ void l2_reader_kernel(const uint4* buf, std::size_t n, unsigned* out) {
  unsigned x = 0;
  for (std::size_t i = blockIdx.x * (std::size_t)blockDim.x + threadIdx.x; i < n; i += (std::size_t)gridDim.x * blockDim.x) {
    const uint4 v = buf[i];
    x ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (x == 0x9e3779b9u) out[0] = x;  // keeps the loads; practically never taken
}
constexpr std::size_t kReaderBytes = 16u << 20;  // the reused buffer: 16 MB (a third of the H100's L2)

/// Writes a JSON record `{header..., "rows": [rows]}` (header: the record's leading fields, JSON text).
bool write_rows_json(const char* path, const std::string& header, const std::string& rows) {
  std::FILE* f = std::fopen(path, "w");
  if (!f) return false;
  std::fprintf(f, "{\n  %s,\n  \"rows\": [\n%s\n  ]\n}\n", header.c_str(), rows.c_str());
  return std::fclose(f) == 0;
}

/// cuBLAS fp16 weights [N, K] (random values), as many copies as exceed 4x the L2, at least `min_copies`.
std::vector<void*> make_fp16_weights(std::size_t K, std::size_t N, std::size_t l2, std::size_t min_copies) {
  const std::size_t bytes = K * N * 2;
  std::vector<void*> w(std::max<std::size_t>(min_copies, (4 * l2 + bytes - 1) / bytes));
  for (std::size_t r = 0; r < w.size(); ++r) {
    CK(cudaMalloc(&w[r], bytes));
    lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(w[r]), K * N, static_cast<std::uint32_t>(77 + r), 0x2000);
  }
  return w;
}

/// Median per-launch time of `launch_batch` (kBatch launches) captured in one graph, over kReplays replays
/// (the one-function case of lowbit_bench::time_graphs_interleaved_us).
template <class F>
double time_graph_us(cudaStream_t st, F&& launch_batch) {
  return lowbit_bench::time_graphs_interleaved_us(st, kBatch, kReplays, {std::function<void()>(launch_batch)})[0];
}

double copy_bandwidth_gbs(cudaStream_t st) {
  const std::size_t bytes = 1ull << 30;
  void *a, *b;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  double best = 1e30;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 10; ++i) {
    CK(cudaEventRecord(e0, st));
    CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, st));
    CK(cudaEventRecord(e1, st));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (i > 1) best = std::min(best, (double)ms);
  }
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * bytes / (best * 1e-3) / 1e9;
}

double target_for(int bits, std::size_t M, std::size_t K, std::size_t N) {
  const bool big = !(K == 4096 && N == 4096);
  if (bits == 4) {
    if (M <= 16) return big ? 3.5 : 0;
    if (M == 64) return 2.5;
    if (M == 128) return 1.5;
    if (M >= 1024) return 0.95;
    return 0;
  }
  if (M != 1) return 0;
  return bits == 3 ? 4.5 : bits == 2 ? 6.0 : bits == 8 ? 1.85 : 0;
}
}  // namespace

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "kernels_bench.json";
  const bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  const bool decode_only = argc > 2 && std::strcmp(argv[2], "--decode") == 0;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cublasHandle_t h;
  CKB(cublasCreate(&h));
  CKB(cublasSetStream(h, st));
  const double copy_gbs = copy_bandwidth_gbs(st);
  std::printf("device %s, %d SMs, L2 %d MB, D2D copy %.0f GB/s\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, copy_gbs);

  struct Shape { std::size_t K, N; };
  const std::vector<Shape> shapes = {{8192, 8192}, {8192, 28672}, {28672, 8192}, {4096, 4096}};
  std::vector<std::size_t> Ms = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096};
  if (quick) Ms = {1, 16, 64, 1024};
  if (decode_only) Ms = {1, 2, 4, 8, 16};
  const std::size_t l2 = static_cast<std::size_t>(prop.l2CacheSize);

  if (argc > 2 && std::strncmp(argv[2], "--decode-sweep", 14) == 0) {
    namespace kd = lowbit::kernels::detail;
    std::string rows;
    std::vector<Shape> sweep_shapes = {{8192, 8192}, {8192, 28672}, {28672, 8192}};
    if (argv[2][14] == '=') {  // --decode-sweep=KxN,KxN,...
      sweep_shapes.clear();
      for (const char* q = argv[2] + 15; *q;) {
        char* e = nullptr;
        const unsigned long k = std::strtoul(q, &e, 10);
        if (!e || *e != 'x') { std::fprintf(stderr, "--decode-sweep=KxN,...: bad list\n"); return 2; }
        const unsigned long n = std::strtoul(e + 1, &e, 10);
        if (k == 0 || n == 0 || k % 128 || n % 64) { std::fprintf(stderr, "--decode-sweep: bad shape\n"); return 2; }
        sweep_shapes.push_back({k, n});
        q = *e == ',' ? e + 1 : e;
      }
    }
    // widths and rows: argv[3] = "all" sweeps 2/3/4/8 bits at M = 1, 4, 8, 16 (PDL timings only); default
    // 4-bit at M = 1 and 16 with and without PDL
    const bool all = argc > 3 && std::strcmp(argv[3], "all") == 0;
    auto sweep = [&](auto bits_c) {
      constexpr int B = decltype(bits_c)::value;
      for (Shape sh : sweep_shapes) {
        const std::size_t K = sh.K, N = sh.N, G = K / 128, wbytes = K * N * B / 8 + G * N * 3;
        const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
        std::vector<lowbit_bench::RandomTiledWeight> ws;
        for (int r = 0; r < nrot; ++r) ws.push_back(lowbit_bench::random_tiled_weight(B, K, N, 900 + r));
        void *A, *Y;
        CK(cudaMalloc(&A, 16 * K * 2));
        CK(cudaMalloc(&Y, 16 * N * 2));
        lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), 16 * K, 9, 0x3800);
        CK(cudaDeviceSynchronize());
        const std::vector<std::size_t> sweep_ms = all ? std::vector<std::size_t>{1, 4, 8, 16} : std::vector<std::size_t>{1, 16};
        for (std::size_t M : sweep_ms) {
          const kd::GemmPlan chosen = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount);
          for (int ns : {1, 2})
          for (int W : {4, 8, 16})
            for (int sp = 1; sp <= 16; ++sp) {
              const kd::GemmPlan p = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount, false, W, sp, ns);
              if (p.kt_per_warp == 0) continue;  // no valid plan with these
              void* wsp = nullptr;
              if (p.workspace_bytes) {
                CK(cudaMalloc(&wsp, p.workspace_bytes));
                if (!gemm_workspace_init(wsp, p.workspace_bytes, st).ok()) std::exit(1);
              }
              double us[2] = {-1, -1};
              for (int pdl = all ? 1 : 0; pdl < 2; ++pdl) {
                GemmOptions o;
                o.pdl = pdl ? PdlMode::on : PdlMode::off;
                int r = 0;
                us[pdl] = time_graph_us(st, [&] {
                  for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot) {
                    const Status stt = kd::run_decode<B, half_t, false>(static_cast<const half_t*>(A), M, ws[r].view,
                                                                        nullptr, static_cast<half_t*>(Y), wsp,
                                                                        p.workspace_bytes, p, st, o);
                    if (!stt.ok()) { std::fprintf(stderr, "decode sweep: %s\n", stt.message.c_str()); std::exit(1); }
                  }
                });
              }
              const bool is_chosen = p.warps_k == chosen.warps_k && p.splits == chosen.splits && p.slabs == chosen.slabs;
              std::printf("decode sweep %d-bit K %5zu N %5zu M %2zu: %d slab(s) x %2d warps x %2d splits x %3d tiles (%d CTAs/SM): "
                          "%7.2f us, PDL %7.2f us, %.0f GB/s%s\n", B, K, N, M, p.slabs, p.warps_k, p.splits, p.kt_per_warp,
                          p.ctas_per_sm, us[0], us[1], wbytes / (us[1] * 1e3), is_chosen ? "  <- planner" : "");
              char buf[384];
              std::snprintf(buf, sizeof buf,
                            "%s    {\"bits\": %d, \"K\": %zu, \"N\": %zu, \"M\": %zu, \"warps\": %d, \"splits\": %d, "
                            "\"slabs\": %d, \"tiles_per_warp\": %d, \"us_nopdl\": %.3f, \"us_pdl\": %.3f, \"planner\": %s}",
                            rows.empty() ? "" : ",\n", B, K, N, M, p.warps_k, p.splits, p.slabs, p.kt_per_warp, us[0], us[1],
                            is_chosen ? "true" : "false");
              rows += buf;
              if (wsp) CK(cudaFree(wsp));
            }
        }
        for (auto& w : ws) CK(cudaFree(w.mem));
        CK(cudaFree(A));
        CK(cudaFree(Y));
      }
    };
    if (all) {
      sweep(std::integral_constant<int, 2>{});
      sweep(std::integral_constant<int, 3>{});
    }
    sweep(std::integral_constant<int, 4>{});
    if (all) sweep(std::integral_constant<int, 8>{});
    char head[384];
    std::snprintf(head, sizeof head, "\"benchmark\": \"decode plan sweep, g128\", \"device\": \"%s\", \"date\": \"%s\", "
                  "\"d2d_copy_GBps\": %.1f", prop.name, lowbit_bench::utc_date().c_str(), copy_gbs);
    if (!write_rows_json(out, head, rows)) return 1;
    return 0;
  }

  if (argc > 2 && std::strcmp(argv[2], "--gather-sweep") == 0) {
    namespace kd = lowbit::kernels::detail;
    std::string rows;
    void *A, *Y;
    CK(cudaMalloc(&A, 64 * 28672 * 2));
    CK(cudaMalloc(&Y, 64 * 28672 * 2));
    lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), 64 * 28672, 9, 0x3800);
    const std::vector<int> targets = {0, 4, 8, 16, 32, 64, 128, 256};
    for (Shape sh : {Shape{8192, 8192}, Shape{28672, 8192}}) {
      const std::size_t K = sh.K, N = sh.N;
      const std::size_t wbytes = K * N / 2 + (K / 128) * N * 3;
      const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
      std::vector<lowbit_bench::RandomTiledWeight> wa, wp;  // act-order, plain
      for (int r = 0; r < nrot; ++r) {
        wa.push_back(lowbit_bench::random_tiled_weight(4, K, N, 3000 + 17 * r, 128, false, true));
        wp.push_back(lowbit_bench::random_tiled_weight(4, K, N, 3000 + 17 * r, 128, false, false));
      }
      for (std::size_t M : {std::size_t(1), std::size_t(16), std::size_t(64)}) {
        const std::size_t wsb = std::max(gemm_workspace_size(M, wa[0].view.meta), gemm_workspace_size(M, wp[0].view.meta));
        void* wsp = nullptr;
        CK(cudaMalloc(&wsp, std::max<std::size_t>(wsb, 16)));
        if (!gemm_workspace_init(wsp, wsb, st).ok()) return 1;
        GemmOptions on_o;
        on_o.pdl = PdlMode::on;
        int r = 0;
        auto batch = [&](std::vector<lowbit_bench::RandomTiledWeight>& w, int target) {
          return [&, target] {
            kd::gather_rows_target_ctas = target;
            for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot) {
              const Status stt = gemm<half_t>(static_cast<const half_t*>(A), M, w[r].view, nullptr, static_cast<half_t*>(Y),
                                              wsp, wsb, st, on_o);
              if (!stt.ok()) { std::fprintf(stderr, "gemm failed: %s\n", stt.message.c_str()); std::exit(1); }
            }
          };
        };
        std::vector<std::function<void()>> fs = {batch(wp, -1)};
        for (int t : targets) fs.push_back(batch(wa, t));
        const std::vector<double> us = lowbit_bench::time_graphs_interleaved_us(st, kBatch, kReplays, fs);
        kd::gather_rows_target_ctas = -1;  // back to the automatic choice
        std::printf("gather sweep K %6zu N %6zu M %3zu: plain %.2f us | act-order by target CTAs (0 = column kernel):", K, N, M, us[0]);
        std::string ts;
        for (std::size_t i = 0; i < targets.size(); ++i) {
          std::printf(" %d: %.2f", targets[i], us[i + 1]);
          char b[64];
          std::snprintf(b, sizeof b, "%s\"%d\": %.3f", i ? ", " : "", targets[i], us[i + 1]);
          ts += b;
        }
        std::printf(" us\n");
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s    {\"K\": %zu, \"N\": %zu, \"M\": %zu, \"plain_us\": %.3f, \"act_order_us_by_target\": {",
                      rows.empty() ? "" : ",\n", K, N, M, us[0]);
        rows += buf + ts + "}}";
        CK(cudaFree(wsp));
      }
      for (auto& w : wa) CK(cudaFree(w.mem));
      for (auto& w : wp) CK(cudaFree(w.mem));
    }
    CK(cudaFree(A));
    CK(cudaFree(Y));
    char head[384];
    std::snprintf(head, sizeof head, "\"benchmark\": \"act-order pre-gather CTA target sweep, 4-bit g128, PDL on\", \"device\": \"%s\", "
                  "\"date\": \"%s\", \"d2d_copy_GBps\": %.1f", prop.name, lowbit_bench::utc_date().c_str(), copy_gbs);
    return write_rows_json(out, head, rows) ? 0 : 1;
  }

  if (argc > 2 && std::strcmp(argv[2], "--tune") == 0) {
    namespace kd = lowbit::kernels::detail;
    std::string rows;
    const std::vector<Shape> tshapes = {{8192, 8192}, {8192, 28672}, {28672, 8192}, {4096, 4096}, {8192, 10240}, {3584, 18944}};
    const std::vector<std::size_t> tms = {1, 4, 8, 12, 16};  // 12: the two-slab rule covers M = 9-16
    void *A, *Y;
    CK(cudaMalloc(&A, 16 * 28672 * 2));
    CK(cudaMalloc(&Y, 16 * 28672 * 2));
    lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), 16 * 28672, 9, 0x3800);
    CK(cudaDeviceSynchronize());
    int better = 0, cases = 0;
    double sum_ratio = 0;
    for (Shape sh : tshapes) {
      const std::size_t K = sh.K, N = sh.N;
      // cuBLAS fp16 baseline, weights rotated
      const std::vector<void*> w16 = make_fp16_weights(K, N, l2, 2);
      const int nrot16 = static_cast<int>(w16.size());
      std::vector<double> cublas(tms.size());
      for (std::size_t i = 0; i < tms.size(); ++i) {
        const float alpha = 1.f, beta = 0.f;
        int r = 0;
        cublas[i] = time_graph_us(st, [&] {
          for (int b = 0; b < kBatch; ++b, r = (r + 1) % nrot16)
            CKB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)tms[i], (int)K, &alpha, w16[r], CUDA_R_16F, (int)K, A,
                             CUDA_R_16F, (int)K, &beta, Y, CUDA_R_16F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        });
      }
      for (void* p : w16) CK(cudaFree(p));
      for (int B : {2, 3, 4, 8}) {
        const std::size_t G = K / 128, wbytes = K * N * B / 8 + G * N * 3;
        const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
        std::vector<lowbit_bench::RandomTiledWeight> ws;
        for (int r = 0; r < nrot; ++r) ws.push_back(lowbit_bench::random_tiled_weight(B, K, N, 1300 + r));
        DecodeTuning tuning;
        std::vector<DecodeTuneResult> details;
        const auto t0 = std::chrono::steady_clock::now();
        const Status ts = tune_decode<half_t>(ws[0].view, tms, st, tuning, TuneOptions{}, &details);
        const double tune_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!ts.ok()) { std::fprintf(stderr, "tune_decode: %s\n", ts.message.c_str()); return 1; }
        for (std::size_t i = 0; i < tms.size(); ++i) {
          const std::size_t M = tms[i];
          const DecodeTuneResult& d = details[i];
          double us[2];
          for (int tuned = 0; tuned < 2; ++tuned) {
            GemmOptions o;
            o.decode = tuned ? d.best : DecodeChoice{};
            const std::size_t wsb = gemm_workspace_size(M, ws[0].view.meta, o);
            void* wsp = nullptr;
            if (wsb) {
              CK(cudaMalloc(&wsp, wsb));
              if (!gemm_workspace_init(wsp, wsb, st).ok()) return 1;
            }
            int r = 0;
            us[tuned] = time_graph_us(st, [&] {
              for (int b = 0; b < kBatch; ++b, r = (r + 1) % nrot) {
                const Status s2 = gemm<half_t>(static_cast<const half_t*>(A), M, ws[r].view, nullptr, static_cast<half_t*>(Y), wsp,
                                               wsb, st, o);
                if (!s2.ok()) { std::fprintf(stderr, "tune bench: %s\n", s2.message.c_str()); std::exit(1); }
              }
            });
            if (wsp) CK(cudaFree(wsp));
          }
          ++cases;
          sum_ratio += us[1] / us[0];
          better += us[1] < 0.98 * us[0];
          // the fastest two-slab and persistent shapes of the tuner's own measurement, next to the best
          // one-slab shape that is not persistent
          double best1 = 0, best2 = 0, bestp = 0;
          DecodeChoice cp{};
          for (const DecodeTiming& x : d.timings) {
            double& b = x.choice.persist == 2 ? bestp : x.choice.slabs == 2 ? best2 : best1;
            if (b == 0 || x.us < b) {
              b = x.us;
              if (x.choice.persist == 2) cp = x.choice;
            }
          }
          std::printf("tune %d-bit K %5zu N %5zu M %2zu: planned %2dx%-2d%s %7.2f us (tuner %7.2f), tuned %2dx%-2d%s%s %7.2f us "
                      "(tuner %7.2f), cuBLAS %7.2f us: %.2fx -> %.2fx  (%zu shapes timed, tuning took %.2f s for all M; "
                      "tuner's best: one slab %.2f, two %.2f, persistent %.2f us (%dx1))\n",
                      B, K, N, M, d.planned.warps, d.planned.splits, d.planned.persist == 2 ? " persistent" : "", us[0],
                      d.planned_us, d.best.warps, d.best.splits, d.best.slabs == 2 ? " 2 slabs" : "",
                      d.best.persist == 2 ? " persistent" : "", us[1], d.best_us, cublas[i], cublas[i] / us[0], cublas[i] / us[1],
                      d.timings.size(), tune_s, best1, best2, bestp, cp.warps);
          char buf[1024];
          std::snprintf(buf, sizeof buf,
                        "%s    {\"bits\": %d, \"K\": %zu, \"N\": %zu, \"M\": %zu, \"planned\": [%d, %d, %d, %d], "
                        "\"tuned\": [%d, %d, %d, %d], "
                        "\"us_planned\": %.3f, \"us_tuned\": %.3f, \"tuner_us_planned\": %.3f, \"tuner_us_tuned\": %.3f, "
                        "\"cublas_us\": %.3f, \"speedup_planned\": %.3f, \"speedup_tuned\": %.3f, \"shapes_timed\": %zu, "
                        "\"tuner_best_one_slab_us\": %.3f, \"tuner_best_two_slab_us\": %.3f, \"tuner_best_persistent_us\": %.3f, "
                        "\"tuner_best_persistent_warps\": %d}",
                        rows.empty() ? "" : ",\n", B, K, N, M, d.planned.warps, d.planned.splits, d.planned.slabs,
                        d.planned.persist, d.best.warps, d.best.splits, d.best.slabs, d.best.persist, us[0], us[1], d.planned_us,
                        d.best_us, cublas[i], cublas[i] / us[0], cublas[i] / us[1], d.timings.size(), best1, best2, bestp, cp.warps);
          rows += buf;
        }
        for (auto& w : ws) CK(cudaFree(w.mem));
      }
    }
    std::printf("tune: tuned/planned mean %.4f over %d cases, %d faster by > 2 %%\n", sum_ratio / cases, cases, better);
    CK(cudaFree(A));
    CK(cudaFree(Y));
    char head[384];
    std::snprintf(head, sizeof head, "\"benchmark\": \"decode tuner (tune_decode) vs planner, g128 asym, PDL, weights "
                  "rotated\", \"device\": \"%s\", \"date\": \"%s\", \"d2d_copy_GBps\": %.1f,\n  \"baseline\": \"cublasGemmEx fp16\"",
                  prop.name, lowbit_bench::utc_date().c_str(), copy_gbs);
    if (!write_rows_json(out, head, rows)) return 1;
    return 0;
  }

  // ---- small-M comparison: the tile kernel's decode policies (gemm_policy) vs the decode kernel (gemm) ----
  std::string sweep_json;
  {
    struct Shape2 { std::size_t K, N; };
    for (Shape2 sh : {Shape2{8192, 8192}, Shape2{28672, 8192}, Shape2{8192, 28672}}) {
      const std::size_t K = sh.K, N = sh.N, G = K / 128;
      const std::size_t wbytes = K * N / 2 + G * N * 3;
      const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
      std::vector<lowbit_bench::RandomTiledWeight> ws;
      for (int r = 0; r < nrot; ++r) ws.push_back(lowbit_bench::random_tiled_weight(4, K, N, 500 + r));
      void *A, *Y;
      CK(cudaMalloc(&A, 16 * K * 2));
      CK(cudaMalloc(&Y, 16 * N * 2));
      lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), 16 * K, 9, 0x3800);
      CK(cudaDeviceSynchronize());
      auto run = [&](auto pol, const char* name) {
        using P = decltype(pol);
        cudaFuncAttributes fa;
        CK(cudaFuncGetAttributes(&fa, lowbit::kernels::detail::wo_gemm_kernel<4, half_t, P, 1>));
        int occ = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, lowbit::kernels::detail::wo_gemm_kernel<4, half_t, P, 1>, P::threads, P::smem_bytes));
        for (std::size_t M : {std::size_t(1), std::size_t(4), std::size_t(16)}) {
          const std::size_t wsb = gemm_policy_workspace_size<P>(M, ws[0].view.meta);
          void* wsp = nullptr;
          if (wsb) { CK(cudaMalloc(&wsp, wsb)); (void)gemm_workspace_init(wsp, wsb, st); }
          int r = 0;
          const double us = time_graph_us(st, [&] {
            for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot)
              (void)gemm_policy<4, half_t, P>(static_cast<const half_t*>(A), M, ws[r].view, nullptr, static_cast<half_t*>(Y), wsp, wsb, st);
          });
          if (wsp) CK(cudaFree(wsp));
          const auto plan = lowbit::kernels::detail::make_plan<P>(lowbit::kernels::detail::PolicyKind::custom, M, N, K, prop.multiProcessorCount);
          std::printf("sweep %-28s K %6zu N %6zu M %3zu: %8.2f us  %6.0f GB/s  regs %d occ %d splits %d\n", name, K, N, M, us,
                      wbytes / (us * 1e-6) / 1e9, fa.numRegs, occ, plan.splits);
          char buf[512];
          std::snprintf(buf, sizeof buf,
                        "%s    {\"policy\": \"%s\", \"K\": %zu, \"N\": %zu, \"M\": %zu, \"us\": %.3f, \"weight_GBps\": %.1f, "
                        "\"registers\": %d, \"ctas_per_sm\": %d, \"splits\": %d}",
                        sweep_json.empty() ? "" : ",\n", name, K, N, M, us, wbytes / (us * 1e-6) / 1e9, fa.numRegs, occ, plan.splits);
          sweep_json += buf;
        }
      };
      run(DefaultPolicies<4>::Decode{}, "tile<1,1,4,4,3>");
      run(TilePolicy<1, 1, 4, 4, 3, false>{}, "tile-syncA<1,1,4,4,3>");
      // the decode kernel: the bulk-copy (TMA) ring that gemm uses on sm_90 and the cp.async ring
      auto run_decode = [&](auto bulk_c, const char* name) {
        constexpr bool bulk = decltype(bulk_c)::value;
        for (std::size_t M : {std::size_t(1), std::size_t(4), std::size_t(16)}) {
          const std::size_t wsb = gemm_workspace_size(M, ws[0].view.meta);
          void* wsp = nullptr;
          if (wsb) { CK(cudaMalloc(&wsp, wsb)); (void)gemm_workspace_init(wsp, wsb, st); }
          // one slab per CTA for both rings (the bulk ring has no two-slab variant)
          const auto plan = lowbit::kernels::detail::plan_gemm<4>(M, N, K, prop.multiProcessorCount, DecodeChoice{0, 0, 1, 1});
          int r = 0;
          const double us = time_graph_us(st, [&] {
            for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot)
              (void)lowbit::kernels::detail::run_decode<4, half_t, bulk>(static_cast<const half_t*>(A), M, ws[r].view, nullptr,
                                                                          static_cast<half_t*>(Y), wsp, wsb, plan, st);
          });
          if (wsp) CK(cudaFree(wsp));
          cudaFuncAttributes fa;
          CK(cudaFuncGetAttributes(&fa, M <= 8 ? lowbit::kernels::detail::decode_gemm_kernel<4, half_t, 1, 1, bulk>
                                               : lowbit::kernels::detail::decode_gemm_kernel<4, half_t, 2, 1, bulk>));
          const int stages = lowbit::kernels::detail::decode_stages<4>(bulk, 1, M);
          std::printf("sweep %-28s K %6zu N %6zu M %3zu: %8.2f us  %6.0f GB/s  regs %d warps %d splits %d kpw %d stages %d\n", name, K, N,
                      M, us, wbytes / (us * 1e-6) / 1e9, fa.numRegs, plan.warps_k, plan.splits, plan.kt_per_warp, stages);
          char buf[512];
          std::snprintf(buf, sizeof buf,
                        ",\n    {\"policy\": \"%s\", \"K\": %zu, \"N\": %zu, \"M\": %zu, \"us\": %.3f, \"weight_GBps\": %.1f, "
                        "\"registers\": %d, \"ctas_per_sm\": %d, \"splits\": %d, \"stages\": %d}",
                        name, K, N, M, us, wbytes / (us * 1e-6) / 1e9, fa.numRegs, plan.ctas_per_sm, plan.splits, stages);
          sweep_json += buf;
        }
      };
      run_decode(std::true_type{}, "decode-bulk(TMA)");
      run_decode(std::false_type{}, "decode-cp.async");
      for (auto& w : ws) CK(cudaFree(w.mem));
      CK(cudaFree(A));
      CK(cudaFree(Y));
    }
  }

  // ---- decode planner A/B: make_decode_plan's busiest-SM model vs the previous wave model, same run ----
  // (only shapes and M where the two plans differ; PDL off so that only the plan changes)
  std::string planner_json;
  if (!quick) {
    auto ab_case = [&](auto bits_c, std::size_t K, std::size_t N) {
      constexpr int B = decltype(bits_c)::value;
      namespace kd = lowbit::kernels::detail;
      const std::size_t G = K / 128, wbytes = K * N * B / 8 + G * N * 3;
      std::vector<lowbit_bench::RandomTiledWeight> ws;
      for (std::size_t M : {std::size_t(1), std::size_t(16)}) {
        const kd::GemmPlan pn = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount);
        const kd::GemmPlan po = kd::make_decode_plan<B>(M, N, K, prop.multiProcessorCount, /*legacy_waves=*/true);
        if (pn.warps_k == po.warps_k && pn.splits == po.splits && pn.kt_per_warp == po.kt_per_warp) {
          std::printf("planner A/B %d-bit K %6zu N %6zu M %2zu: same plan (%d warps x %d splits)\n", B, K, N, M, pn.warps_k,
                      pn.splits);
          continue;
        }
        if (ws.empty()) {
          const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
          for (int r = 0; r < nrot; ++r) ws.push_back(lowbit_bench::random_tiled_weight(B, K, N, 700 + r));
        }
        const int nrot = static_cast<int>(ws.size());
        void *A, *Y, *wsp = nullptr;
        CK(cudaMalloc(&A, M * K * 2));
        CK(cudaMalloc(&Y, M * N * 2));
        lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), M * K, 9, 0x3800);
        const std::size_t wsb = std::max(pn.workspace_bytes, po.workspace_bytes);
        if (wsb) {
          CK(cudaMalloc(&wsp, wsb));
          if (!gemm_workspace_init(wsp, wsb, st).ok()) std::exit(1);
        }
        CK(cudaDeviceSynchronize());  // weights and A are filled on the legacy stream, st does not wait for it
        GemmOptions off_o;
        off_o.pdl = PdlMode::off;
        auto t = [&](const kd::GemmPlan& p) {
          int r = 0;
          return time_graph_us(st, [&] {
            for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot) {
              const Status stt = kd::run_decode<B, half_t, false>(static_cast<const half_t*>(A), M, ws[r].view, nullptr,
                                                                  static_cast<half_t*>(Y), wsp, wsb, p, st, off_o);
              if (!stt.ok()) { std::fprintf(stderr, "planner A/B: %s\n", stt.message.c_str()); std::exit(1); }
            }
          });
        };
        double un = t(pn), uo = t(po);  // new, legacy, legacy, new: the faster of each pair
        uo = std::min(uo, t(po));
        un = std::min(un, t(pn));
        std::printf("planner A/B %d-bit K %6zu N %6zu M %2zu: new %d warps x %d splits x %d tiles %.2f us | legacy %d x %d x %d "
                    "%.2f us (%.3fx)\n", B, K, N, M, pn.warps_k, pn.splits, pn.kt_per_warp, un, po.warps_k, po.splits,
                    po.kt_per_warp, uo, uo / un);
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "%s    {\"bits\": %d, \"K\": %zu, \"N\": %zu, \"M\": %zu, \"new_plan\": [%d, %d, %d], \"legacy_plan\": [%d, %d, %d], "
                      "\"new_us\": %.3f, \"legacy_us\": %.3f}",
                      planner_json.empty() ? "" : ",\n", B, K, N, M, pn.warps_k, pn.splits, pn.kt_per_warp, po.warps_k,
                      po.splits, po.kt_per_warp, un, uo);
        planner_json += buf;
        CK(cudaFree(A));
        CK(cudaFree(Y));
        if (wsp) CK(cudaFree(wsp));
      }
      for (auto& w : ws) CK(cudaFree(w.mem));
    };
    ab_case(std::integral_constant<int, 4>{}, 8192, 28672);
    ab_case(std::integral_constant<int, 4>{}, 8192, 57344);
    ab_case(std::integral_constant<int, 4>{}, 8192, 10240);
    ab_case(std::integral_constant<int, 4>{}, 3584, 18944);
    ab_case(std::integral_constant<int, 8>{}, 8192, 28672);
    ab_case(std::integral_constant<int, 2>{}, 4096, 28672);
  }

  FILE* f = std::fopen(out, "w");
  char date[16] = "unknown";  // the run's UTC date
  {
    const std::time_t now = std::time(nullptr);
    if (const std::tm* u = std::gmtime(&now)) std::strftime(date, sizeof date, "%Y-%m-%d", u);
  }
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"date\": \"%s\",\n  \"sm_count\": %d,\n  \"l2_bytes\": %zu,\n",
               prop.name, date, prop.multiProcessorCount, l2);
  std::fprintf(f, "  \"d2d_copy_GBps\": %.1f,\n  \"baseline\": \"cublasGemmEx fp16 in/out, fp32 compute, TN (W [N,K] row-major)\",\n", copy_gbs);
  std::fprintf(f, "  \"timing\": \"median over %d replays of a CUDA graph of %d launches, weights rotated over >= 4x L2; "
                 "cuBLAS and gemm (PDL off, PDL on, and at M <= 16 PDL on with the normal L2 policy for the weights) replays interleaved for each row; l2_reuse_* (M <= 16): gemm + a reader of a 16 MB buffer, 20 times, weights evict-first (default) or normal\",\n  \"results\": [\n",
               kReplays, kBatch);
  bool first = true;
  std::printf("%-6s %-5s %-4s %6s %6s %6s %10s %10s %8s %8s %7s\n", "bits", "group", "var", "K", "N", "M", "lowbit_us",
              "cublas_us", "speedup", "w_GB/s", "target");

  for (const Shape& s : shapes) {
    const std::size_t K = s.K, N = s.N;
    const std::size_t maxM = *std::max_element(Ms.begin(), Ms.end());
    // cuBLAS fp16 weights [N, K], rotated
    const std::vector<void*> w16 = make_fp16_weights(K, N, l2, 1);
    const int nrot16 = static_cast<int>(w16.size());
    void *A, *Y;
    CK(cudaMalloc(&A, maxM * K * 2));
    CK(cudaMalloc(&Y, maxM * N * 2));
    lowbit_bench::fill_fp16(static_cast<std::uint16_t*>(A), maxM * K, 5, 0x3800);
    void* reader_buf = nullptr;  // l2_reader_kernel's buffer (its contents do not matter)
    unsigned* reader_out = nullptr;
    CK(cudaMalloc(&reader_buf, kReaderBytes));
    CK(cudaMalloc(&reader_out, sizeof(unsigned)));
    CK(cudaMemset(reader_buf, 0x5a, kReaderBytes));
    CK(cudaDeviceSynchronize());

    struct Variant { int bits; std::size_t group; bool sym, act; const char* name; std::vector<std::size_t> ms; };
    std::vector<Variant> variants = {{4, 128, false, false, "asym", Ms}};
    if (K == 8192 && N == 8192) {
      variants.push_back({4, 128, true, false, "sym", {1, 16}});
      variants.push_back({4, 128, false, true, "act", {1, 16, 64, 1024}});
      variants.push_back({4, 32, false, false, "asym", {1, 16}});
      variants.push_back({4, 0, false, false, "asym", {1, 16}});
    }
    for (int b : {2, 3, 8}) variants.push_back({b, 128, false, false, "asym", {1, 16}});

    // cuBLAS fp16 is timed with each variant and M below, interleaved with gemm (time_graphs_interleaved_us)
    for (const Variant& v : variants) {
      const std::size_t group = v.group ? v.group : K;
      const std::size_t G = K / group;
      const std::size_t wbytes = K * N * v.bits / 8 + G * N * 2 + (v.sym ? 0 : G * N);
      const int nrot = static_cast<int>(std::max<std::size_t>(2, (4 * l2 + wbytes - 1) / wbytes));
      std::vector<lowbit_bench::RandomTiledWeight> ws;
      for (int r = 0; r < nrot; ++r) ws.push_back(lowbit_bench::random_tiled_weight(v.bits, K, N, 1000 + 17 * r, group, v.sym, v.act));
      CK(cudaDeviceSynchronize());
      for (std::size_t M : v.ms) {
        if (std::find(Ms.begin(), Ms.end(), M) == Ms.end()) continue;
        const std::size_t wsb = gemm_workspace_size(M, ws[0].view.meta);
        void* wsp = nullptr;
        if (wsb) {
          CK(cudaMalloc(&wsp, wsb));
          if (!gemm_workspace_init(wsp, wsb, st).ok()) return 1;
        }
        int r = 0;
        bool ok = true;
        // gemm with options `o`; `eltwise`: a small plain-launched kernel after each call (the usual
        // neighbour of a decode GEMM in a model, which does not trigger PDL early)
        auto batch_gemm = [&](const GemmOptions& o, bool eltwise = false) {
          return [&, o, eltwise] {
            for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot) {
              const Status stt = gemm<half_t>(static_cast<const half_t*>(A), M, ws[r].view, nullptr,
                                              static_cast<half_t*>(Y), wsp, wsb, st, o);
              if (!stt.ok()) { std::fprintf(stderr, "gemm failed: %s\n", stt.message.c_str()); ok = false; }
              if (eltwise) eltwise_kernel<<<(M * K / 2 + 255) / 256, 256, 0, st>>>(static_cast<const std::uint32_t*>(Y),
                                                                                   static_cast<std::uint32_t*>(A), M * std::min(K, N) / 2);
            }
          };
        };
        auto time_gemm = [&](const GemmOptions& o, bool eltwise) { return time_graph_us(st, batch_gemm(o, eltwise)); };
        // M <= 256 (decode and wgmma mid-M kernels): with and without programmatic dependent launch, timed
        // with cuBLAS below; the "+eltwise" figures interleave (off, on, on, off; the faster of each pair).
        // lowbit_us is what gemm does by default (PdlMode::automatic: PDL where supported).
        const bool decode = M <= 256;
        GemmOptions off_o, on_o;
        off_o.pdl = PdlMode::off;
        on_o.pdl = PdlMode::on;
        bool pdl_ok = false;
        if (decode) {
          const Status probe = gemm<half_t>(static_cast<const half_t*>(A), M, ws[0].view, nullptr, static_cast<half_t*>(Y),
                                            wsp, wsb, st, on_o);
          pdl_ok = probe.ok();
          if (!pdl_ok) std::fprintf(stderr, "note: no PDL here (%s)\n", probe.message.c_str());
        }
        double us_off = -1, us_pdl = -1, el_off = -1, el_pdl = -1, us_nohint = -1;
        double reuse_first = -1, reuse_normal = -1, reader_alone = -1;  // gemm + l2_reader_kernel, and the reader alone
        double us, cb;
        // cuBLAS fp16 at this M and gemm (with and without PDL where it applies) timed against each other
        // with interleaved replays (lowbit_bench::time_graphs_interleaved_us: the order rotates each round)
        int r16 = 0;
        auto batch_cublas = [&] {
          const float alpha = 1.f, beta = 0.f;
          for (int i = 0; i < kBatch; ++i, r16 = (r16 + 1) % nrot16)
            CKB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha, w16[r16], CUDA_R_16F, (int)K, A,
                             CUDA_R_16F, (int)K, &beta, Y, CUDA_R_16F, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        };
        if (decode && pdl_ok) {
          GemmOptions nohint_o = on_o;  // PDL, weights under the normal L2 policy
          nohint_o.l2_evict_first = false;
          // the L2 policy applies to the decode kernel only (M <= 16): its A/B and the reader run there
          const bool l2ab = M <= static_cast<std::size_t>(lowbit::kernels::DecodeConfig<4>::max_m);
          std::vector<std::function<void()>> b3 = {batch_cublas, batch_gemm(off_o), batch_gemm(on_o)};
          if (l2ab) b3.push_back(batch_gemm(nohint_o));
          const std::vector<double> t3 = lowbit_bench::time_graphs_interleaved_us(st, kBatch, kReplays, b3);
          cb = t3[0];
          us_off = t3[1];
          us_pdl = t3[2];
          if (l2ab) us_nohint = t3[3];
          if (l2ab && v.bits == 4 && v.group == 128 && !v.sym && !v.act) {
            // gemm, then a kernel that reads a 16 MB buffer, 20 times: with evict-first weights the buffer should
            // still be in the L2 when the reader comes back to it
            auto batch_reuse = [&](const GemmOptions& o, bool with_gemm) {
              return [&, o, with_gemm] {
                for (int i = 0; i < kBatch; ++i, r = (r + 1) % nrot) {
                  if (with_gemm) {
                    const Status stt = gemm<half_t>(static_cast<const half_t*>(A), M, ws[r].view, nullptr,
                                                    static_cast<half_t*>(Y), wsp, wsb, st, o);
                    if (!stt.ok()) { std::fprintf(stderr, "gemm failed: %s\n", stt.message.c_str()); ok = false; }
                  }
                  l2_reader_kernel<<<2 * prop.multiProcessorCount, 512, 0, st>>>(static_cast<const uint4*>(reader_buf),
                                                                                  kReaderBytes / 16, reader_out);
                }
              };
            };
            const std::vector<double> tr = lowbit_bench::time_graphs_interleaved_us(
                st, kBatch, kReplays, {batch_reuse(on_o, true), batch_reuse(nohint_o, true), batch_reuse(on_o, false)});
            reuse_first = tr[0];
            reuse_normal = tr[1];
            reader_alone = tr[2];
          }
          if (M <= 16 && v.bits == 4 && v.group == 128 && !v.sym && !v.act) {  // the realistic neighbour, decode main variant
            el_off = time_gemm(off_o, true);
            el_pdl = time_gemm(on_o, true);
            el_pdl = std::min(el_pdl, time_gemm(on_o, true));
            el_off = std::min(el_off, time_gemm(off_o, true));
          }
          us = us_pdl;
        } else {
          const std::vector<double> t2 = lowbit_bench::time_graphs_interleaved_us(st, kBatch, kReplays, {batch_cublas, batch_gemm(GemmOptions{})});
          cb = t2[0];
          us = t2[1];
          if (decode) us_off = us;
        }
        if (!ok) return 1;
        if (wsp) CK(cudaFree(wsp));
        const double speedup = cb / us;
        const double gbs = wbytes / (us * 1e-6) / 1e9;
        // roofline: fewest bytes (packed weights + metadata + A + Y) at the measured copy bandwidth
        const double min_bytes = wbytes + M * K * 2.0 + M * N * 2.0;
        const double roof_us = min_bytes / (copy_gbs * 1e9) * 1e6;
        const double cublas_roof_us = (K * N * 2.0 + M * K * 2.0 + M * N * 2.0) / (copy_gbs * 1e9) * 1e6;
        const double target = v.bits == 4 && v.group == 128 && !v.sym && !v.act ? target_for(4, M, K, N)
                                                                                  : (v.group == 128 && !v.sym && !v.act ? target_for(v.bits, M, K, N) : 0);
        std::printf("%-6d %-5zu %-4s %6zu %6zu %6zu %10.2f %10.2f %8.2f %8.0f %7.2f%s", v.bits, v.group, v.name, K, N,
                    M, us, cb, speedup, gbs, target, target > 0 ? (speedup >= target ? " met" : " MISSED") : "");
        if (us_pdl > 0)
          std::printf("   [no PDL %.2f us %.2fx, PDL %.2f us %.2fx, gain %.2f us]", us_off, cb / us_off, us_pdl, cb / us_pdl,
                      us_off - us_pdl);
        if (el_pdl > 0) std::printf(" [+eltwise: no PDL %.2f, PDL %.2f us]", el_off, el_pdl);
        if (us_nohint > 0) std::printf(" [L2 normal policy %.2f us]", us_nohint);
        if (reuse_first > 0)
          std::printf(" [+16 MB reader: evict-first %.2f, normal %.2f, reader alone %.2f us]", reuse_first, reuse_normal,
                      reader_alone);
        std::printf("\n");
        // PDL fields (M <= 256): null where not measured
        char pdl_json[1024];
        auto num = [](double x, char* b, std::size_t n) {
          if (x > 0) std::snprintf(b, n, "%.3f", x);
          else std::snprintf(b, n, "null");
          return b;
        };
        char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32], b9[32], b10[32];
        std::snprintf(pdl_json, sizeof pdl_json,
                      ", \"lowbit_us_nopdl\": %s, \"lowbit_us_pdl\": %s, \"speedup_nopdl\": %s, \"speedup_pdl\": %s, "
                      "\"lowbit_plus_eltwise_us_nopdl\": %s, \"lowbit_plus_eltwise_us_pdl\": %s, "
                      "\"lowbit_us_pdl_l2_normal\": %s, \"l2_reuse_16MB_us_evict_first\": %s, "
                      "\"l2_reuse_16MB_us_evict_normal\": %s, \"l2_reader_16MB_alone_us\": %s",
                      num(us_off, b1, sizeof b1), num(us_pdl, b2, sizeof b2), num(us_off > 0 ? cb / us_off : -1, b3, sizeof b3),
                      num(us_pdl > 0 ? cb / us_pdl : -1, b4, sizeof b4), num(el_off, b5, sizeof b5), num(el_pdl, b6, sizeof b6),
                      num(us_nohint, b7, sizeof b7), num(reuse_first, b8, sizeof b8), num(reuse_normal, b9, sizeof b9),
                      num(reader_alone, b10, sizeof b10));
        std::fprintf(f,
                     "%s    {\"bits\": %d, \"group\": %zu, \"variant\": \"%s\", \"K\": %zu, \"N\": %zu, \"M\": %zu, "
                     "\"lowbit_us\": %.3f, \"cublas_fp16_us\": %.3f, \"speedup\": %.3f, \"weight_bytes\": %zu, "
                     "\"weight_GBps\": %.1f, \"weight_bw_frac_of_copy\": %.3f, \"memory_roofline_us\": %.3f, "
                     "\"ideal_speedup_vs_cublas_roofline\": %.3f, \"target_speedup\": %.2f, \"target_met\": %s%s}",
                     first ? "" : ",\n", v.bits, v.group, v.name, K, N, M, us, cb, speedup, wbytes, gbs, gbs / copy_gbs,
                     roof_us, cublas_roof_us / roof_us, target, target > 0 ? (speedup >= target ? "true" : "false") : "null",
                     decode ? pdl_json : "");
        first = false;
        std::fflush(f);
      }
      for (auto& w : ws) CK(cudaFree(w.mem));
    }
    for (void* p : w16) CK(cudaFree(p));
    CK(cudaFree(A));
    CK(cudaFree(Y));
    CK(cudaFree(reader_buf));
    CK(cudaFree(reader_out));
  }
  std::fprintf(f, "\n  ],\n  \"small_m_kernels_4bit_g128\": [\n%s\n  ],\n", sweep_json.c_str());
  // plans as [warps per CTA, K splits, K tiles per warp]; PDL off; the faster of two interleaved timings
  std::fprintf(f, "  \"decode_planner_ab\": [\n%s\n  ]\n}\n", planner_json.c_str());
  std::fclose(f);
  cublasDestroy(h);
  return 0;
}
