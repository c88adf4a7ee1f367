// GPU GPTQ benchmark: H accumulation for 2048 x 128 calibration tokens and the whole solve (H given),
// 4-bit g128 with and without act-order, on the shapes given on the command line.
//
//   bench_gptq_gpu DUMP_DIR N:K [N:K ...] [large<act>:N:K ...]
//
// large<act>:N:K (e.g. large0:8192:53248): one solve with a synthetic SPD H built on the GPU, reporting time,
// phases and device memory (cudaMemGetInfo before, after allocation, and polled during the solve).
//
// Prints one JSON object per (shape, act-order) line to stdout. When DUMP_DIR is not "-", writes
// DUMP_DIR/W_<N>x<K>.f32 and DUMP_DIR/H_<K>.f32 (raw little-endian fp32, row-major) so
// bench/gptq/reference_gptq.py solves exactly the same problem with PyTorch (only for K <= $GPTQ_DUMP_MAX_K
// when that is set).
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/gptq/hessian_gpu.cuh"
#include "lowbit/gptq/solver_gpu.cuh"

namespace {

constexpr int kTokensPerBatch = 2048;  // one calibration sample (sequence length)
constexpr int kBatches = 128;          // calibration samples, as in the published setup
constexpr int kPool = 4;               // distinct activation buffers cycled through

#define CK(x)                                                                          \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

__device__ float hash_normal(unsigned long long i, unsigned seed) {
  unsigned long long x = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 29;
  const float u1 = ((x >> 40) + 1) * (1.0f / 16777217.0f);
  const float u2 = ((x & 0xffffff) + 0.5f) * (1.0f / 16777216.0f);
  return sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
}

// x[s, k] = (z[s,k] + 0.6 z[s,k-1]) * scale_k, scale_k spread over 1..8 (a few strong features)
__global__ void make_inputs(__half* x, std::size_t rows, std::size_t K, unsigned seed) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * K) return;
  const std::size_t k = i % K;
  float v = hash_normal(i, seed);
  if (k > 0) v += 0.6f * hash_normal(i - 1, seed);
  const float scale = 1.f + 7.f * (hash_normal(k, 777u) > 1.5f);
  x[i] = __float2half(v * scale);
}

__global__ void make_weights(float* w, std::size_t count, unsigned seed) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < count) w[i] = 0.02f * hash_normal(i, seed);
}

double elapsed(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0.f;
  CK(cudaEventElapsedTime(&ms, a, b));
  return ms / 1e3;
}

void dump(const std::string& path, const float* d, std::size_t count) {
  std::vector<float> h(count);
  CK(cudaMemcpy(h.data(), d, count * sizeof(float), cudaMemcpyDeviceToHost));
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(h.data(), sizeof(float), count, f) != count) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

// H[i][j] = s_i s_j ρ^|i-j| (Kac-Murdock-Szegő correlation, SPD for |ρ| < 1) with a few strong features
__global__ void make_kms_hessian(float* H, std::size_t K, float rho) {
  const std::size_t j = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (j >= K) return;
  const float sj = 1.f + 7.f * (hash_normal(j, 777u) > 1.5f);
  for (std::size_t i = blockIdx.y; i < K; i += gridDim.y) {
    const float si = 1.f + 7.f * (hash_normal(i, 777u) > 1.5f);
    const float d = static_cast<float>(i > j ? i - j : j - i);
    H[i * K + j] = si * sj * powf(rho, d);
  }
}

std::size_t used_bytes() {
  std::size_t free_b = 0, total_b = 0;
  CK(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

// One solve at a large K (H synthetic, built on the GPU): time, phases and device memory. A host thread
// polls cudaMemGetInfo every millisecond during the solve for the peak (cuBLAS/cuSOLVER internals included).
void run_large(std::size_t N, std::size_t K, int act, cublasHandle_t blas, cusolverDnHandle_t solver,
               cudaStream_t stream, const cudaDeviceProp& prop) {
  CK(cudaDeviceSynchronize());
  std::size_t free0 = 0, total = 0;
  CK(cudaMemGetInfo(&free0, &total));
  const std::size_t used0 = total - free0;
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 128;
  lowbit::gptq::GptqGpuOptions opt;
  opt.act_order = act != 0;
  opt.profile = true;
  std::size_t ws_bytes = 0;
  if (!lowbit::gptq::gptq_gpu_workspace_size(N, K, spec, opt, solver, &ws_bytes).ok()) std::exit(1);
  double t = 0, err_gptq = 0, err_rtn = 0;
  std::size_t used_alloc = 0, peak = 0;
  lowbit::gptq::GptqGpuReport rep;
  {
    lowbit::gptq::DeviceBuffer H(K * K * sizeof(float)), W(N * K * sizeof(float));
    const lowbit::gptq::GptqGpuOutputs out(N, K, spec);
    make_kms_hessian<<<dim3(static_cast<unsigned>((K + 255) / 256), 65535), 256, 0, stream>>>(H.as<float>(), K, 0.9f);
    make_weights<<<static_cast<unsigned>((N * K + 255) / 256), 256, 0, stream>>>(W.as<float>(), N * K, 9u);
    CK(cudaStreamSynchronize(stream));
    const lowbit::gptq::GptqGpuProblem p = out.problem(W.as<float>(), H.as<float>());
    {
      lowbit::gptq::DeviceBuffer ws(ws_bytes);
      used_alloc = used_bytes();
      std::atomic<bool> done{false};
      std::atomic<std::size_t> peak_seen{used_alloc};
      std::thread poll([&] {
        while (!done.load()) {
          std::size_t f = 0, tt = 0;
          if (cudaMemGetInfo(&f, &tt) == cudaSuccess && tt - f > peak_seen.load()) peak_seen.store(tt - f);
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
      cudaEvent_t a, b;
      CK(cudaEventCreate(&a));
      CK(cudaEventCreate(&b));
      CK(cudaEventRecord(a, stream));
      const lowbit::Status s = lowbit::gptq::gptq_solve_gpu(p, spec, opt, ws.ptr, ws_bytes, blas, solver, stream, &rep);
      CK(cudaEventRecord(b, stream));
      CK(cudaEventSynchronize(b));
      done.store(true);
      poll.join();
      peak = std::max(peak_seen.load(), used_bytes());
      t = elapsed(a, b);
      if (!s.ok()) {
        std::fprintf(stderr, "large solve failed: %s\n", s.message.c_str());
        std::exit(1);
      }
    }
    lowbit::gptq::DeviceBuffer Wq(N * K * sizeof(float)), scratch(lowbit::gptq::output_error_gpu_scratch(K)),
        f2(sizeof(int));
    CK(cudaMemset(f2.ptr, 0, sizeof(int)));
    lowbit::gptq::dequantize_gpu(p, Wq.as<float>(), stream);
    lowbit::gptq::output_error_gpu(blas, p.W, Wq.as<float>(), p.H, N, K, scratch.ptr, stream, &err_gptq);
    lowbit::gptq::rtn_fake_quantize_gpu(p.W, N, K, spec, Wq.as<float>(), f2.as<int>(), stream);
    lowbit::gptq::output_error_gpu(blas, p.W, Wq.as<float>(), p.H, N, K, scratch.ptr, stream, &err_rtn);
  }
  const double h_bytes = static_cast<double>(K) * K * sizeof(float), w_bytes = static_cast<double>(N) * K * sizeof(float);
  std::printf(
      "{\"mode\": \"large_k\", \"N\": %zu, \"K\": %zu, \"bits\": 4, \"group\": 128, \"act_order\": %d, "
      "\"device\": \"%s\", \"hessian\": \"synthetic KMS rho=0.9 with strong features, built on the GPU\", "
      "\"solve_s\": %.6f, \"phases_s\": {\"factorize\": %.6f, \"inverse\": %.6f, \"setup\": %.6f, "
      "\"column_kernels\": %.6f, \"near_updates\": %.6f, \"far_updates\": %.6f, \"reflect\": %.6f}, "
      "\"damp_used\": %g, \"err_gptq\": %.6e, \"err_rtn\": %.6e, \"mem_total_bytes\": %zu, "
      "\"mem_used_before_bytes\": %zu, \"mem_used_after_alloc_bytes\": %zu, \"mem_peak_used_bytes\": %zu, "
      "\"workspace_bytes\": %zu, \"H_bytes\": %.0f, \"W_bytes\": %.0f, \"peak_minus_before_over_2H_plus_W\": %.4f, "
      "\"peak_minus_before_over_2H_plus_2W\": %.4f}\n",
      N, K, act, prop.name, t, rep.phase_seconds[0], rep.phase_seconds[1], rep.phase_seconds[2], rep.phase_seconds[3],
      rep.phase_seconds[4], rep.phase_seconds[5], rep.phase_seconds[6], rep.damp_used, err_gptq, err_rtn, total, used0,
      used_alloc, peak, ws_bytes, h_bytes, w_bytes, static_cast<double>(peak - used0) / (2 * h_bytes + w_bytes),
      static_cast<double>(peak - used0) / (2 * h_bytes + 2 * w_bytes));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DUMP_DIR N:K [N:K ...]\n", argv[0]);
    return 2;
  }
  const std::string dump_dir = argv[1];
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  cublasHandle_t blas;
  cusolverDnHandle_t solver;
  cublasCreate(&blas);
  cusolverDnCreate(&solver);
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 128;

  for (int a = 2; a < argc; ++a) {
    std::size_t N = 0, K = 0;
    int large_act = 0;
    if (std::sscanf(argv[a], "large%d:%zu:%zu", &large_act, &N, &K) == 3) {  // large<act>:N:K
      run_large(N, K, large_act, blas, solver, stream, prop);
      continue;
    }
    if (std::sscanf(argv[a], "%zu:%zu", &N, &K) != 2) return 2;
    // ---- H accumulation: 128 batches of 2048 fp16 tokens ----
    lowbit::gptq::DeviceBuffer X(static_cast<std::size_t>(kPool) * kTokensPerBatch * K * sizeof(__half)),
        H(K * K * sizeof(float)), flag(sizeof(int)), W(N * K * sizeof(float));
    const std::size_t batch_elems = static_cast<std::size_t>(kTokensPerBatch) * K;
    for (int p = 0; p < kPool; ++p)
      make_inputs<<<static_cast<unsigned>((batch_elems + 255) / 256), 256, 0, stream>>>(
          X.as<__half>() + p * batch_elems, kTokensPerBatch, K, 100u + p);
    make_weights<<<static_cast<unsigned>((N * K + 255) / 256), 256, 0, stream>>>(W.as<float>(), N * K, 7u);
    CK(cudaStreamSynchronize(stream));
    lowbit::gptq::HessianGpu hess(K, H.as<float>(), flag.as<int>(), stream);
    // warm-up GEMM (not timed), then reset
    if (!hess.add_batch(blas, X.as<lowbit::half_t>(), kTokensPerBatch, stream).ok()) return 1;
    hess.reset(stream);
    CK(cudaEventRecord(e0, stream));
    for (int b = 0; b < kBatches; ++b)
      if (!hess.add_batch(blas, X.as<lowbit::half_t>() + (b % kPool) * batch_elems, kTokensPerBatch, stream).ok())
        return 1;
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    const double t_hessian = elapsed(e0, e1);
    if (!hess.check(stream).ok()) return 1;
    const char* max_k = std::getenv("GPTQ_DUMP_MAX_K");  // optional: dump only shapes up to this K
    if (dump_dir != "-" && (!max_k || !*max_k || K <= static_cast<std::size_t>(std::atoll(max_k)))) {
      dump(dump_dir + "/H_" + std::to_string(K) + ".f32", H.as<float>(), K * K);
      dump(dump_dir + "/W_" + std::to_string(N) + "x" + std::to_string(K) + ".f32", W.as<float>(), N * K);
    }
    // ---- solve ----
    const lowbit::gptq::GptqGpuOutputs out(N, K, spec);
    for (int act = 0; act < 2; ++act) {
      lowbit::gptq::GptqGpuOptions opt;
      opt.act_order = act != 0;
      std::size_t ws_bytes = 0, ws_cus = 0;
      lowbit::gptq::GptqGpuOptions cus_q = opt;
      cus_q.inverse = lowbit::gptq::TriInverse::cusolver;
      if (!lowbit::gptq::gptq_gpu_workspace_size(N, K, spec, opt, solver, &ws_bytes).ok() ||
          !lowbit::gptq::gptq_gpu_workspace_size(N, K, spec, cus_q, solver, &ws_cus).ok())
        return 1;
      const std::size_t ws_alloc = std::max(ws_bytes, ws_cus);  // one buffer for every variant
      lowbit::gptq::DeviceBuffer ws(ws_alloc);
      const lowbit::gptq::GptqGpuProblem p = out.problem(W.as<float>(), H.as<float>());
      const int reps = K <= 8192 ? 3 : 2;  // the first run of each configuration is the warm-up
      lowbit::gptq::GptqGpuReport rep;
      auto timed = [&](const lowbit::gptq::GptqGpuOptions& o, int runs, lowbit::gptq::GptqGpuReport* out) {
        std::vector<double> t;
        for (int r = 0; r < runs; ++r) {
          CK(cudaEventRecord(e0, stream));
          const lowbit::Status s = lowbit::gptq::gptq_solve_gpu(p, spec, o, ws.ptr, ws_alloc, blas, solver, stream, out);
          CK(cudaEventRecord(e1, stream));
          CK(cudaEventSynchronize(e1));
          if (!s.ok()) {
            std::fprintf(stderr, "solve failed: %s\n", s.message.c_str());
            std::exit(1);
          }
          if (r > 0 || runs == 1) t.push_back(elapsed(e0, e1));
        }
        std::sort(t.begin(), t.end());
        return t.front();
      };
      auto error_of_current = [&]() {
        double err = 0;
        lowbit::gptq::DeviceBuffer Wq(N * K * sizeof(float)), scratch(lowbit::gptq::output_error_gpu_scratch(K));
        lowbit::gptq::dequantize_gpu(p, Wq.as<float>(), stream);
        lowbit::gptq::output_error_gpu(blas, p.W, Wq.as<float>(), p.H, N, K, scratch.ptr, stream, &err);
        return err;
      };
      // variants first (their results are overwritten by the default run below)
      lowbit::gptq::GptqGpuOptions tf32 = opt, prof = opt, invf = opt, invf_prof = opt, cus = opt, cus_prof = opt,
                                   gemm = opt, gemm_prof = opt;
      invf.inverse_free = true;
      invf_prof.inverse_free = true;
      invf_prof.profile = true;
      tf32.tf32_update = true;
      prof.profile = true;
      cus.inverse = cus_prof.inverse = lowbit::gptq::TriInverse::cusolver;
      gemm.inverse = gemm_prof.inverse = lowbit::gptq::TriInverse::recursive_trsm;  // the non-default one
      cus_prof.profile = gemm_prof.profile = true;
      lowbit::gptq::GptqGpuReport tmp, prep, prep_inv, prep_cus, prep_gemm;
      const double t_invf = timed(invf, reps - 1, &tmp);
      const double err_invf = error_of_current();
      timed(invf_prof, 1, &prep_inv);
      const double t_cus = timed(cus, reps - 1, &tmp);
      const double err_cus = error_of_current();
      timed(cus_prof, 1, &prep_cus);
      const double t_gemm = timed(gemm, reps - 1, &tmp);
      const double err_gemm = error_of_current();
      timed(gemm_prof, 1, &prep_gemm);
      const double t_tf32 = timed(tf32, reps - 1, &tmp);
      const double err_tf32 = error_of_current();
      timed(prof, 1, &prep);
      std::vector<double> times{timed(opt, reps, &rep)};
      std::sort(times.begin(), times.end());
      // errors (not timed): GPTQ and RTN, tr(ΔW H ΔWᵀ)
      double err_gptq = 0, err_rtn = 0;
      {
        lowbit::gptq::DeviceBuffer Wq(N * K * sizeof(float)), scratch(lowbit::gptq::output_error_gpu_scratch(K)),
            f2(sizeof(int));
        CK(cudaMemset(f2.ptr, 0, sizeof(int)));
        lowbit::gptq::dequantize_gpu(p, Wq.as<float>(), stream);
        lowbit::gptq::output_error_gpu(blas, p.W, Wq.as<float>(), p.H, N, K, scratch.ptr, stream, &err_gptq);
        lowbit::gptq::rtn_fake_quantize_gpu(p.W, N, K, spec, Wq.as<float>(), f2.as<int>(), stream);
        lowbit::gptq::output_error_gpu(blas, p.W, Wq.as<float>(), p.H, N, K, scratch.ptr, stream, &err_rtn);
      }
      std::printf(
          "{\"N\": %zu, \"K\": %zu, \"bits\": 4, \"group\": 128, \"act_order\": %d, \"device\": \"%s\", "
          "\"hessian_tokens\": %d, \"hessian_s\": %.6f, \"solve_s\": %.6f, \"solve_runs\": %d, "
          "\"workspace_bytes\": %zu, \"workspace_bytes_cusolver_trtri\": %zu, \"loss\": %.6e, \"err_gptq\": %.6e, \"err_rtn\": %.6e, \"damp_used\": %g, "
          "\"super_block\": %d, \"inverse\": \"recursive_gemm\", \"solve_s_tf32_update\": %.6f, "
          "\"err_gptq_tf32_update\": %.6e, \"phases_s\": {\"factorize\": %.6f, \"inverse\": %.6f, \"setup\": %.6f, "
          "\"column_kernels\": %.6f, \"near_updates\": %.6f, \"far_updates\": %.6f, \"reflect\": %.6f}, "
          "\"solve_s_inverse_free\": %.6f, \"err_gptq_inverse_free\": %.6e, \"phases_s_inverse_free\": "
          "{\"factorize\": %.6f, \"setup\": %.6f, \"column_kernels\": %.6f, \"near_updates\": %.6f, "
          "\"far_updates\": %.6f, \"reflect\": %.6f}, \"solve_s_cusolver_trtri\": %.6f, "
          "\"err_gptq_cusolver_trtri\": %.6e, \"inverse_s_cusolver_trtri\": %.6f, \"solve_s_recursive_trsm\": %.6f, "
          "\"err_gptq_recursive_trsm\": %.6e, \"inverse_s_recursive_trsm\": %.6f}\n",
          N, K, act, prop.name, kTokensPerBatch * kBatches, t_hessian, times.front(), reps - 1, ws_bytes, ws_cus,
          rep.loss, err_gptq, err_rtn, rep.damp_used, opt.super_block, t_tf32, err_tf32,
          prep.phase_seconds[0], prep.phase_seconds[1], prep.phase_seconds[2], prep.phase_seconds[3],
          prep.phase_seconds[4], prep.phase_seconds[5], prep.phase_seconds[6], t_invf, err_invf,
          prep_inv.phase_seconds[0], prep_inv.phase_seconds[2], prep_inv.phase_seconds[3], prep_inv.phase_seconds[4],
          prep_inv.phase_seconds[5], prep_inv.phase_seconds[6], t_cus, err_cus, prep_cus.phase_seconds[1], t_gemm,
          err_gemm, prep_gemm.phase_seconds[1]);
      std::fflush(stdout);
    }
  }
  cublasDestroy(blas);
  cusolverDnDestroy(solver);
  return 0;
}
