// `lowbit demo` GPU section (compiled only with nvcc; the binary still runs without a GPU and then
// prints one "GPU: none found" line). When a device is present it adds rows to the demo table:
//   GPU GPTQ        the GPU solver on the demo layer (4-bit g128): solve time vs the host solver, and
//                   how closely its weights and output error follow the host result;
//   GPU W4A16       the weight-only GEMM kernel on that 4-bit g128 weight, checked against the host
//                   reference on the demo's calibration inputs, then timed against cuBLAS fp16 at
//                   M = 1 and M = 16 on an 8192 x 8192 layer (and again with the decode launch shape
//                   tune_decode measures, where it differs from the planner's);
//   GPU LLM.int8()  the int8 pipeline (fused activation pass + int8 GEMM with the decomposition) checked
//                   against the host reference on the demo inputs, then timed the same way with 8
//                   outlier columns.
// Any GPU figure beyond its tolerance is marked MISMATCH (tests/demo's gpu test fails on it).
//
// Timing: weights rotate over enough buffers to exceed 4x the L2 (so L2 cannot serve them), calls are
// captured into a CUDA graph of kBatch launches (launch overhead off the clock) and the per-call
// median over kSamples replays is printed; cuBLAS is cublasGemmEx fp16 in/out, fp32 compute, measured
// in the same run. Limits: one device (device 0), fp16 activations only.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/error.hpp>
#include <lowbit/footprint.hpp>
#include <lowbit/gptq/solver.hpp>
#include <lowbit/int8/llm_int8.hpp>
#include <lowbit/numeric.hpp>
#include <lowbit/quant.hpp>

// The GPU APIs of the kernels, int8 and gptq modules; a part whose header is missing is skipped.
#if __has_include(<lowbit/kernels/gemm.cuh>) && __has_include(<lowbit/kernels/convert.cuh>) && \
    __has_include(<lowbit/kernels/reference.hpp>)
#include <lowbit/kernels/convert.cuh>
#include <lowbit/kernels/gemm.cuh>
#include <lowbit/kernels/layout.hpp>
#include <lowbit/kernels/reference.hpp>
#include <lowbit/kernels/tune.cuh>
#define LOWBIT_DEMO_HAVE_WO_GEMM 1
#endif
#if __has_include(<lowbit/int8/linear.cuh>)
#include <lowbit/int8/linear.cuh>
#define LOWBIT_DEMO_HAVE_INT8_GPU 1
#endif
#if __has_include(<lowbit/gptq/solver_gpu.cuh>)
#include <lowbit/gptq/solver_gpu.cuh>
#define LOWBIT_DEMO_HAVE_GPTQ_GPU 1
#endif

#include "demo.hpp"
#include "demo_gptq.hpp"
#include "demo_gpu.hpp"
#include "demo_int8.hpp"

namespace lowbit_cli {
namespace {

constexpr int kGroup = 128;             // the 4-bit g128 layer of the table
constexpr int kBits = 4;
constexpr std::size_t kBigK = 8192;     // timing layer W [kBigN, kBigK]
constexpr std::size_t kBigN = 8192;
constexpr std::size_t kTimedM[] = {1, 16};
constexpr std::size_t kMaxTimedM = 16;
constexpr int kBigOutliers = 8;          // outlier columns planted in the int8 timing activations
constexpr float kBigOutlierValue = 20.f; // their magnitude (>= threshold 6, as in the paper's figures)
constexpr int kBatch = 24;               // launches per captured graph (call i uses rotated buffer i % R)
constexpr int kSamples = 7;              // graph replays; the median is reported
constexpr int kL2Multiple = 4;           // rotated weights cover at least this many L2 sizes
constexpr int kMaxRotation = 12;
constexpr double kFp16RelTol = 2e-3;     // fp16 output: 11 significant bits, rounded once (kernels' test bound)
constexpr double kGptqErrTol = 1e-2;     // GPU vs host GPTQ output error (squared), relative

// ---- small RAII helpers (throw lowbit::Error; the provider turns it into a FAILED line) ----
void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) lowbit::detail::fail(what, ": ", cudaGetErrorString(e));
}
void ckb(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) lowbit::detail::fail(what, ": cuBLAS status ", static_cast<int>(s));
}
void ckst(const lowbit::Status& s) {
  if (!s.ok()) lowbit::detail::fail(s.message);
}

class DevMem {
 public:
  DevMem() = default;
  explicit DevMem(std::size_t bytes) { ck(cudaMalloc(&p_, bytes ? bytes : 1), "cudaMalloc"); }
  DevMem(DevMem&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  DevMem& operator=(DevMem&&) = delete;
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
  ~DevMem() {
    if (p_) cudaFree(p_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

template <class T>
DevMem to_device(const std::vector<T>& v) {
  DevMem d(v.size() * sizeof(T));
  ck(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "copy to device");
  return d;
}
template <class T>
std::vector<T> to_host(const DevMem& d, std::size_t count) {
  std::vector<T> v(count);
  ck(cudaMemcpy(v.data(), d.get(), count * sizeof(T), cudaMemcpyDeviceToHost), "copy to host");
  return v;
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { ck(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() { cudaStreamDestroy(s); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};
struct Blas {
  cublasHandle_t h = nullptr;
  explicit Blas(cudaStream_t s) {
    ckb(cublasCreate(&h), "cublasCreate");
    ckb(cublasSetStream(h, s), "cublasSetStream");
  }
  ~Blas() { cublasDestroy(h); }
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
};
struct EventPair {
  cudaEvent_t a = nullptr, b = nullptr;
  EventPair() {
    ck(cudaEventCreate(&a), "cudaEventCreate");
    ck(cudaEventCreate(&b), "cudaEventCreate");
  }
  ~EventPair() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};
struct Graph {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (g) cudaGraphDestroy(g);
  }
};

/// Fills `n` 16-bit words with hashed random bits: `(hash & and_mask) | or_mask` (timing data only).
__global__ void fill_bits16(std::uint16_t* p, std::size_t n, std::uint32_t seed, std::uint16_t and_mask,
                            std::uint16_t or_mask) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ seed * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    p[i] = static_cast<std::uint16_t>((h & and_mask) | or_mask);
  }
}
constexpr unsigned kFillBlocks = 1024, kFillThreads = 256;
void fill(void* p, std::size_t bytes, std::uint32_t seed, std::uint16_t and_mask, std::uint16_t or_mask) {
  fill_bits16<<<kFillBlocks, kFillThreads>>>(static_cast<std::uint16_t*>(p), bytes / 2, seed, and_mask, or_mask);
  ck(cudaGetLastError(), "fill kernel");
}
// fp16 bit patterns of the timing data (values do not change the time; they only must be finite).
constexpr std::uint16_t kHalfMantSign = 0x83FF;  // keep sign and mantissa
constexpr std::uint16_t kHalfSmall = 0x2000;     // exponent 2^-7: weights ~ 0.008..0.016
constexpr std::uint16_t kHalfScale = 0x2C00;     // exponent 2^-4: positive scales (sign bit masked off)
constexpr std::uint16_t kHalfMant = 0x03FF;

/// Weight buffers to rotate so that they cover kL2Multiple x the L2.
int rotation(std::size_t bytes_per_weight, int l2_bytes) {
  const std::size_t want = static_cast<std::size_t>(kL2Multiple) * static_cast<std::size_t>(std::max(l2_bytes, 1));
  const std::size_t r = (want + bytes_per_weight - 1) / bytes_per_weight;
  return static_cast<int>(std::clamp<std::size_t>(r, 2, kMaxRotation));
}

/// A per-call time and how it was taken.
struct CallTime {
  double us = 0;       ///< median per-call time
  bool graph = false;  ///< true: CUDA graph replays; false: capture refused, plain stream launches
};

/// Median per-call time in µs of `launch(i)` (i = call index, picks the rotated buffer), which
/// returns a lowbit::Status. Graph capture first; plain stream launches if capture is refused.
template <class F>
CallTime time_us(cudaStream_t s, F&& launch) {
  ckst(launch(0));  // warm-up: lazy module loading, library workspaces
  ck(cudaStreamSynchronize(s), "warm-up");
  Graph graph;
  if (cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess) {
    bool ok = true;
    for (int i = 0; i < kBatch && ok; ++i) ok = launch(i).ok();
    const cudaError_t e = cudaStreamEndCapture(s, &graph.g);
    if (!ok || e != cudaSuccess || graph.g == nullptr ||
        cudaGraphInstantiateWithFlags(&graph.exec, graph.g, 0) != cudaSuccess)
      graph.exec = nullptr;
  }
  (void)cudaGetLastError();  // a refused capture leaves its error behind; real failures show below
  EventPair ev;
  std::vector<float> ms;
  for (int r = 0; r <= kSamples; ++r) {  // replay 0 is a warm-up
    ck(cudaEventRecord(ev.a, s), "cudaEventRecord");
    if (graph.exec) {
      ck(cudaGraphLaunch(graph.exec, s), "cudaGraphLaunch");
    } else {
      for (int i = 0; i < kBatch; ++i) ckst(launch(i));
    }
    ck(cudaEventRecord(ev.b, s), "cudaEventRecord");
    ck(cudaEventSynchronize(ev.b), "timed calls");
    float t = 0.f;
    ck(cudaEventElapsedTime(&t, ev.a, ev.b), "cudaEventElapsedTime");
    if (r > 0) ms.push_back(t);
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return {static_cast<double>(ms[ms.size() / 2]) * 1e3 / kBatch, graph.exec != nullptr};
}

/// max_i |y_i − ref_i| / max_i |ref_i| and the relative Frobenius error (NaN/inf in y: +inf).
struct Agreement {
  double max_rel = 0;
  double fro_rel = 0;
};
template <class Y, class R>
Agreement agreement(const std::vector<Y>& y, const std::vector<R>& ref, std::size_t count) {
  double dmax = 0, rmax = 0, num = 0, den = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(static_cast<float>(y[i])), r = static_cast<double>(ref[i]);
    if (!std::isfinite(v)) return {INFINITY, INFINITY};
    dmax = std::max(dmax, std::fabs(v - r));
    rmax = std::max(rmax, std::fabs(r));
    num += (v - r) * (v - r);
    den += r * r;
  }
  return {rmax > 0 ? dmax / rmax : dmax, den > 0 ? std::sqrt(num / den) : std::sqrt(num)};
}

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}
std::string sci(double v) { return fmt("%.1e", v); }

/// One timed call of the extra table printed above the demo table.
struct Timing {
  std::string what;
  std::size_t M = 0;
  CallTime t;          ///< lowbit, per call
  CallTime blas;       ///< cuBLAS fp16, per call, same M, same run
};
std::string speedup_text(std::size_t M, const CallTime& t, const CallTime& blas) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "M=%zu %.2fx", M, blas.us / t.us);
  return buf;
}
void print_timings(const std::vector<Timing>& t) {
  if (t.empty()) return;
  const std::string head = "GPU layer, W [" + std::to_string(kBigN) + ", " + std::to_string(kBigK) + "]";
  std::printf("%-30s %4s %12s %16s %9s  %s\n", head.c_str(), "M", "lowbit us", "cuBLAS fp16 us", "speedup", "timed as");
  for (const Timing& x : t)
    std::printf("%-30s %4zu %12.1f %16.1f %8.2fx  %s\n", x.what.c_str(), x.M, x.t.us, x.blas.us, x.blas.us / x.t.us,
                x.t.graph && x.blas.graph ? "CUDA graph" : "stream launches (graph capture refused)");
  std::fflush(stdout);
}

/// The demo's calibration inputs (first `rows` rows) rounded to fp16.
std::vector<lowbit::half_t> inputs_fp16(const DemoLayer& L, std::size_t rows) {
  std::vector<lowbit::half_t> a(rows * L.K);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = lowbit::half_t(L.X[i]);
  return a;
}

/// Timing activations [kMaxTimedM, kBigK] fp16 in ±[0.5, 1] with kBigOutliers columns at ±kBigOutlierValue.
std::vector<lowbit::half_t> timing_activations() {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> mag(0.5f, 1.f);
  std::vector<lowbit::half_t> a(kMaxTimedM * kBigK);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = lowbit::half_t((gen() & 1u ? 1.f : -1.f) * mag(gen));
  for (std::size_t m = 0; m < kMaxTimedM; ++m)
    for (int j = 0; j < kBigOutliers; ++j) {
      const std::size_t col = (2 * static_cast<std::size_t>(j) + 1) * kBigK / (2 * kBigOutliers);
      a[m * kBigK + col] = lowbit::half_t((j % 2 ? -1.f : 1.f) * kBigOutlierValue);
    }
  return a;
}

/// cuBLAS fp16 (`Y [M, N] = A [M, K] · Wᵀ`, W [N, K] row-major) on the timing layer, per M.
std::vector<CallTime> time_cublas(cudaStream_t s, const DevMem& A, int l2) {
  Blas blas(s);
  const std::size_t bytes = kBigK * kBigN * sizeof(lowbit::half_t);
  const int R = rotation(bytes, l2);
  std::vector<DevMem> W;
  for (int r = 0; r < R; ++r) {
    W.emplace_back(bytes);
    fill(W.back().get(), bytes, 100 + r, kHalfMantSign, kHalfSmall);
  }
  DevMem Y(kMaxTimedM * kBigN * sizeof(lowbit::half_t));
  ck(cudaDeviceSynchronize(), "fill");
  std::vector<CallTime> us;
  const float alpha = 1.f, beta = 0.f;
  for (std::size_t M : kTimedM)
    us.push_back(time_us(s, [&](int i) {
      const cublasStatus_t st = cublasGemmEx(blas.h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(kBigN),
                                             static_cast<int>(M), static_cast<int>(kBigK), &alpha, W[i % R].get(),
                                             CUDA_R_16F, static_cast<int>(kBigK), A.get(), CUDA_R_16F,
                                             static_cast<int>(kBigK), &beta, Y.get(), CUDA_R_16F,
                                             static_cast<int>(kBigN), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      return st == CUBLAS_STATUS_SUCCESS ? lowbit::Status::success()
                                         : lowbit::detail::make_status(lowbit::StatusCode::cuda_error,
                                                                       "cublasGemmEx status ", static_cast<int>(st));
    }));
  return us;
}

/// Host GPTQ of the demo layer at 4-bit g128 (the weight the kernel rows use when no GPU solver exists).
lowbit::gptq::GptqResult host_gptq(const DemoLayer& L, const std::vector<double>& H, const DemoOptions& opt) {
  lowbit::QuantSpec spec;
  spec.bits = kBits;
  spec.group_size = kGroup;
  spec.sym = opt.sym;
  spec.mse = opt.mse;
  lowbit::gptq::GptqOptions g;
  g.compute_errors = false;
  g.layer = "demo";
  return lowbit::gptq::gptq_quantize<float>(L.W.data(), L.N, L.K, H.data(), spec, g);
}

#if defined(LOWBIT_DEMO_HAVE_GPTQ_GPU)
/// GPU GPTQ row; returns the GPU weight for the kernel rows.
lowbit::QuantizedWeight gptq_gpu_row(const DemoLayer& L, const std::vector<double>& H,
                                     const lowbit::gptq::GptqResult& host, std::vector<DemoRow>& rows) {
  std::vector<float> Hf(H.begin(), H.end());
  lowbit::gptq::GptqOptions g;
  g.compute_errors = false;
  g.layer = "demo";
  lowbit::gptq::GptqGpuTimes t;
  (void)lowbit::gptq::gptq_quantize_gpu(L.W.data(), L.N, L.K, Hf.data(), host.weight.spec, g, &t);  // warm-up
  lowbit::gptq::GptqResult gpu = lowbit::gptq::gptq_quantize_gpu(L.W.data(), L.N, L.K, Hf.data(), host.weight.spec, g, &t);
  const std::vector<float> Wg = lowbit::dequantize(gpu.weight), Wh = lowbit::dequantize(host.weight);
  std::size_t same = 0;
  for (std::size_t i = 0; i < Wg.size(); ++i) same += Wg[i] == Wh[i];
  const double bytes = static_cast<double>(lowbit::gptq_footprint(L.N, L.K, host.weight.spec).total);
  DemoRow r = evaluate_row(L, "GPU GPTQ", kBits, kGroup, Wg, bytes);
  const DemoRow h = evaluate_row(L, "GPTQ", kBits, kGroup, Wh, bytes);
  const double e2g = r.rel_output_error * r.rel_output_error, e2h = h.rel_output_error * h.rel_output_error;
  const double err_diff = e2h > 0 ? std::fabs(e2g - e2h) / e2h : std::fabs(e2g);
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "solve %.1f ms vs host %.0f ms on %u threads (%.1fx); weights = host %.2f%%, "
                "tr(dW H dW^T) vs host %+.3f%%",
                t.solve * 1e3, host.report.seconds * 1e3, lowbit::detail::resolve_threads(0),
                host.report.seconds / t.solve, 100.0 * static_cast<double>(same) / static_cast<double>(Wg.size()),
                e2h > 0 ? 100.0 * (e2g - e2h) / e2h : 0.0);
  r.note = buf;
  if (!(err_diff <= kGptqErrTol)) r.note += " MISMATCH";
  rows.push_back(r);
  return gpu.weight;
}
#endif

#if defined(LOWBIT_DEMO_HAVE_WO_GEMM)
/// Weight-only GEMM row: demo-layer check (M = 16 and M = all calibration rows) + timing vs cuBLAS.
void wo_gemm_row(const DemoLayer& L, const lowbit::QuantizedWeight& q, cudaStream_t s, const DevMem& A_big,
                 const std::vector<CallTime>& blas_us, int l2, std::vector<DemoRow>& rows, std::vector<Timing>& timings) {
  namespace K = lowbit::kernels;
  const K::HostTiledWeight ht = K::tile_weight(q);
  K::TiledWeightBuffer w;
  ckst(K::upload(ht, w, s));
  const std::size_t M = L.M;
  const std::vector<lowbit::half_t> A = inputs_fp16(L, M);
  std::vector<float> Af(A.size());
  for (std::size_t i = 0; i < A.size(); ++i) Af[i] = static_cast<float>(A[i]);
  const std::vector<float> ref = K::reference_gemm(q, Af.data(), M);
  const DevMem dA = to_device(A);
  DevMem dY(M * L.N * sizeof(lowbit::half_t));
  double worst = 0, worst_fro = 0;
  for (std::size_t m : {kMaxTimedM, M}) {
    if (m > M) continue;
    const std::size_t wsb = K::gemm_workspace_size(m, w.view().meta);
    DevMem ws(wsb);
    ckst(K::gemm_workspace_init(ws.get(), wsb, s));
    ckst(K::gemm_bits<kBits, lowbit::half_t>(dA.as<lowbit::half_t>(), m, w.view(), nullptr,
                                             dY.as<lowbit::half_t>(), ws.get(), wsb, s));
    ck(cudaStreamSynchronize(s), "W4A16 GEMM");
    const auto Y = to_host<lowbit::half_t>(dY, m * L.N);
    const Agreement a = agreement(Y, ref, m * L.N);
    worst = std::max(worst, a.max_rel);
    worst_fro = std::max(worst_fro, a.fro_rel);
  }

  // Timing layer: random 4-bit g128 codes/scales/zeros in the kernel layout, rotated.
  K::TiledMeta meta;
  meta.bits = kBits;
  meta.K = kBigK;
  meta.N = kBigN;
  meta.group_size = kGroup;
  const std::size_t qbytes = kBigK * kBigN * kBits / 8, gn = meta.groups() * kBigN;
  const int R = rotation(qbytes + gn * 3, l2);
  std::vector<K::TiledWeightBuffer> Wb(static_cast<std::size_t>(R));
  for (int r = 0; r < R; ++r) {
    ckst(Wb[r].allocate(meta));
    fill(Wb[r].qweight(), qbytes, 200 + r, 0xFFFF, 0);
    fill(Wb[r].scales(), gn * 2, 300 + r, kHalfMant, kHalfScale);
    fill(Wb[r].zeros(), gn, 400 + r, 0x0707, 0x0101);  // zero codes 1..8 (within 4 bits)
  }
  ck(cudaDeviceSynchronize(), "fill");
  DevMem Y(kMaxTimedM * kBigN * sizeof(lowbit::half_t));
  std::string timing;
  for (std::size_t i = 0; i < std::size(kTimedM); ++i) {
    const std::size_t m = kTimedM[i];
    // One workspace per M: its split-K layout (partials, then arrival counters) depends on the plan.
    const std::size_t wsb = K::gemm_workspace_size(m, meta);
    DevMem ws(wsb);
    ckst(K::gemm_workspace_init(ws.get(), wsb, s));
    const CallTime us = time_us(s, [&](int c) {
      return K::gemm_bits<kBits, lowbit::half_t>(A_big.as<lowbit::half_t>(), m, Wb[c % R].view(), nullptr,
                                                 Y.as<lowbit::half_t>(), ws.get(), wsb, s);
    });
    timing += (i ? ", " : "") + speedup_text(m, us, blas_us[i]);
    timings.push_back({"W4A16 g128 (GPTQ layout)", m, us, blas_us[i]});
  }
  // The decode launch shapes measured on this device (kernels/tune.cuh) instead of the planner's: timed
  // again only where the tuner chose another shape.
  K::DecodeTuning tuning;
  std::vector<std::size_t> decode_ms;
  for (std::size_t m : kTimedM)
    if (m <= K::kDecodeMaxM) decode_ms.push_back(m);
  ckst(K::tune_decode<lowbit::half_t>(Wb[0].view(), decode_ms, s, tuning));
  for (std::size_t i = 0; i < std::size(kTimedM); ++i) {
    const std::size_t m = kTimedM[i];
    if (m > K::kDecodeMaxM) continue;
    const K::DecodeChoice c = tuning.for_m(m);
    const K::detail::GemmPlan planned = K::detail::plan_gemm<kBits>(m, kBigN, kBigK, K::detail::current_sm_count());
    if (c == K::detail::decode_choice_of(planned)) {
      timing += ", M=" + std::to_string(m) + " tuner kept the planned shape";
      continue;
    }
    K::GemmOptions o;
    o.decode = c;
    const std::size_t wsb = K::gemm_workspace_size(m, meta, o);
    DevMem ws(wsb);
    ckst(K::gemm_workspace_init(ws.get(), wsb, s));
    const CallTime us = time_us(s, [&](int k) {
      return K::gemm_bits<kBits, lowbit::half_t>(A_big.as<lowbit::half_t>(), m, Wb[k % R].view(), nullptr,
                                                 Y.as<lowbit::half_t>(), ws.get(), wsb, s, o);
    });
    timing += ", tuned " + speedup_text(m, us, blas_us[i]);
    timings.push_back({"W4A16 g128, tuned " + std::to_string(c.warps) + "x" + std::to_string(c.splits) +
                           (c.slabs == 2 ? " 2 slabs" : "") + (c.persist == 2 ? " persistent" : ""),
                       m, us, blas_us[i]});
  }

  const double bytes = static_cast<double>(ht.qweight.size() * 4 + ht.scales.size() * 2 +
                                           (ht.meta.sym ? 0 : ht.zeros.size()) + ht.perm.size() * 4);
  DemoRow r = evaluate_row(L, "GPU W4A16", kBits, kGroup, lowbit::dequantize(q), bytes);
  r.note = "kernel layout; vs host ref max|err|/max|Y| " + sci(worst) + (worst_fro > kFp16RelTol ? " MISMATCH" : "") +
           "; vs cuBLAS fp16: " + timing;
  rows.push_back(r);
}
#endif

#if defined(LOWBIT_DEMO_HAVE_INT8_GPU)
/// LLM.int8() row: demo-layer check against the host reference + timing vs cuBLAS.
void int8_row(const DemoLayer& L, cudaStream_t s, const DevMem& A_big, const std::vector<CallTime>& blas_us, int l2,
              std::vector<DemoRow>& rows, std::vector<Timing>& timings) {
  namespace I = lowbit::int8;
  const int N = static_cast<int>(L.N), Kd = static_cast<int>(L.K);
  const I::Int8Weight w = I::quantize_weight(L.W.data(), N, Kd);
  const DevMem codes = to_device(w.codes), scales = to_device(w.scales);
  I::DeviceWeight dw;
  dw.codes = codes.as<std::int8_t>();
  dw.scales = scales.as<float>();
  dw.N = N;
  dw.K = Kd;
  const std::size_t S = std::min(L.M, kDemoInt8MaxSamples);
  const std::vector<lowbit::half_t> A = inputs_fp16(L, S);
  const DevMem dA = to_device(A);
  DevMem dY(S * L.N * sizeof(lowbit::half_t));
  I::LinearOptions opt;
  opt.threshold = I::kDefaultThreshold;
  const std::size_t wsb = I::linear_workspace_size(static_cast<int>(S), N, Kd, opt);
  DevMem ws(wsb);
  ckst(I::linear_forward(dA.as<lowbit::half_t>(), static_cast<int>(S), dw, nullptr, dY.as<lowbit::half_t>(), ws.get(),
                         wsb, opt, s));
  ck(cudaStreamSynchronize(s), "LLM.int8() forward");
  I::Int8Stats stats{};
  ck(cudaMemcpy(&stats, I::workspace_stats(ws.get()), sizeof stats, cudaMemcpyDeviceToHost), "stats");
  const auto Y = to_host<lowbit::half_t>(dY, S * L.N);
  const I::ActivationQuant aq = I::quantize_activations(A.data(), static_cast<int>(S), Kd, opt.threshold);
  const std::vector<double> ref = I::decomposed_matmul(A.data(), aq, w, nullptr);
  const Agreement a = agreement(Y, ref, ref.size());
  const bool same_outliers = stats.outlier_count == static_cast<int>(aq.outlier_cols.size());
  std::vector<double> Yd(Y.size());
  for (std::size_t i = 0; i < Y.size(); ++i) Yd[i] = static_cast<double>(static_cast<float>(Y[i]));
  const double out_err = I::relative_error(Yd, demo_int8_reference(L, S));  // vs the exact float product

  // Timing layer: random int8 codes, rotated; activations with kBigOutliers outlier columns.
  const std::size_t cbytes = kBigK * kBigN;
  const int R = rotation(cbytes, l2);
  std::vector<DevMem> Wc;
  for (int r = 0; r < R; ++r) {
    Wc.emplace_back(cbytes);
    fill(Wc.back().get(), cbytes, 500 + r, 0x3F3F, 0);  // codes 0..63 (values do not change the time)
  }
  const DevMem big_scales = to_device(std::vector<float>(kBigN, 0.01f));
  ck(cudaDeviceSynchronize(), "fill");
  std::size_t bwsb = 0;
  for (std::size_t m : kTimedM) bwsb = std::max(bwsb, I::linear_workspace_size(static_cast<int>(m), kBigN, kBigK, opt));
  DevMem bws(bwsb);
  DevMem bY(kMaxTimedM * kBigN * sizeof(lowbit::half_t));
  std::string timing;
  bool planted_found = true;
  for (std::size_t i = 0; i < std::size(kTimedM); ++i) {
    const std::size_t m = kTimedM[i];
    const CallTime us = time_us(s, [&](int c) {
      I::DeviceWeight bw;
      bw.codes = Wc[c % R].as<std::int8_t>();
      bw.scales = big_scales.as<float>();
      bw.N = static_cast<int>(kBigN);
      bw.K = static_cast<int>(kBigK);
      return I::linear_forward(A_big.as<lowbit::half_t>(), static_cast<int>(m), bw, nullptr,
                               bY.as<lowbit::half_t>(), bws.get(), bwsb, opt, s);
    });
    I::Int8Stats bst{};
    ck(cudaMemcpy(&bst, I::workspace_stats(bws.get()), sizeof bst, cudaMemcpyDeviceToHost), "stats");
    planted_found &= bst.outlier_count == kBigOutliers;
    timing += (i ? ", " : "") + speedup_text(m, us, blas_us[i]);
    timings.push_back({"LLM.int8() t=6, " + std::to_string(kBigOutliers) + " outlier cols", m, us, blas_us[i]});
  }

  std::vector<float> Wq(L.W.size());
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < Kd; ++k) Wq[static_cast<std::size_t>(n) * Kd + k] = w.dequant(n, k);
  DemoRow r = evaluate_row(L, "GPU LLM.int8()", 8, 0, Wq, demo_int8_bytes(L.N, L.K, nullptr));
  r.rel_output_error = out_err;
  r.note = "W8A8 t=6 vs host ref max|err|/max|Y| " + sci(a.max_rel) + ", outlier cols " +
           std::to_string(stats.outlier_count) + "/" + std::to_string(aq.outlier_cols.size()) +
           (a.fro_rel > kFp16RelTol || !same_outliers ? " MISMATCH" : "") + "; vs cuBLAS fp16: " + timing +
           (planted_found ? "" : " (MISMATCH: planted outlier columns not all found)");
  rows.push_back(r);
}
#endif

void gpu_rows(const DemoLayer& L, const DemoOptions& opt, std::vector<DemoRow>& rows) {
  if (!opt.gpu) return;  // `lowbit compare`: accuracy only
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    std::cout << kDemoNoGpuLine << " (" << (e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device") << ")\n\n";
    return;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::cout << kDemoNoGpuLine << " (cudaGetDeviceProperties failed)\n\n";
    return;
  }
  std::cout << "GPU: " << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.multiProcessorCount
            << " SMs, L2 " << (prop.l2CacheSize >> 20) << " MiB). The GPU rows are checked against the host "
            << "references on the demo layer;\ntimings: fp16 activations, vs cuBLAS fp16 in the same run, weights "
            << "rotated over >= " << kL2Multiple << "x L2, CUDA graph of " << kBatch << " calls, median of "
            << kSamples << ".\n";
  auto failed = [](const char* part, const std::exception& ex) {
    std::cout << "GPU " << part << ": FAILED: " << ex.what() << "\n";
  };
  if (L.N % 64 || L.K % 64) {
    std::cout << "GPU rows skipped: the kernels need N and K multiples of 64 (got N=" << L.N << ", K=" << L.K << ")\n\n";
    return;
  }
  const std::vector<double> H = demo_gptq_hessian(L);  // 2/n XᵀX, as the GPTQ rows
  try {
    Stream stream;
    const int l2 = prop.l2CacheSize;
    const DevMem A_big = to_device(timing_activations());
    std::vector<Timing> timings;
    std::vector<CallTime> blas_us;
    try {
      blas_us = time_cublas(stream.s, A_big, l2);
    } catch (const std::exception& ex) {
      failed("cuBLAS fp16 baseline", ex);
      blas_us.assign(std::size(kTimedM), CallTime{NAN, false});
    }
    lowbit::QuantizedWeight q;
    try {
      const lowbit::gptq::GptqResult host = host_gptq(L, H, opt);
      q = host.weight;
#if defined(LOWBIT_DEMO_HAVE_GPTQ_GPU)
      q = gptq_gpu_row(L, H, host, rows);
#else
      std::cout << "GPU GPTQ: skipped (lowbit/gptq/solver_gpu.cuh not in this build)\n";
#endif
    } catch (const std::exception& ex) {
      failed("GPTQ", ex);
    }
#if defined(LOWBIT_DEMO_HAVE_WO_GEMM)
    if (!q.codes.empty()) {
      try {
        wo_gemm_row(L, q, stream.s, A_big, blas_us, l2, rows, timings);
      } catch (const std::exception& ex) {
        failed("W4A16", ex);
      }
    }
#else
    std::cout << "GPU W4A16: skipped (lowbit/kernels/gemm.cuh not in this build)\n";
#endif
#if defined(LOWBIT_DEMO_HAVE_INT8_GPU)
    try {
      int8_row(L, stream.s, A_big, blas_us, l2, rows, timings);
    } catch (const std::exception& ex) {
      failed("LLM.int8()", ex);
    }
#else
    std::cout << "GPU LLM.int8(): skipped (lowbit/int8/linear.cuh not in this build)\n";
#endif
    print_timings(timings);
  } catch (const std::exception& ex) {
    failed("setup", ex);
  }
  std::cout << "\n";
}

const DemoRowRegistrar gpu_registrar(kDemoGpuOrder, gpu_rows);

}  // namespace
}  // namespace lowbit_cli
