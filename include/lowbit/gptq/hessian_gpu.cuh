/// @file hessian_gpu.cuh
/// @brief GPU accumulation of the GPTQ Hessian `H = 2/n · Σ x xᵀ` (running mean) with cuBLAS.
///
/// Each batch costs one `cublasGemmEx`: `H ← (2/(n+m)) · XᵀX + (n/(n+m)) · H` in fp32 accumulation;
/// fp16/bf16 activations run on tensor cores with fp32 accumulation, fp32 activations in plain fp32
/// (the published reference converts to fp32 and multiplies in fp32). A non-finite input is recorded
/// in a device flag (no synchronization on the hot path); `HessianGpu::check` reads it.
///
/// @code
/// lowbit::gptq::HessianGpu h(K, d_H, d_flag);              // d_H: [K, K] fp32, d_flag: one int
/// for (auto& batch : batches) h.add_batch(cublas, batch.d_x, batch.rows, stream).throw_if_error();
/// h.check(stream).throw_if_error();                       // synchronizes once
/// @endcode
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../error.hpp"
#include "../numeric.hpp"

namespace lowbit::detail {

/// Threads per block of the input scan.
inline constexpr int kHessianScanThreads = 256;

/// Sets `*flag = 1` when any of the `count` inputs is not finite.
template <class In>
__global__ void hessian_scan_nonfinite(const In* __restrict__ x, std::size_t count, int* __restrict__ flag) {
  bool bad = false;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    float v;
    if constexpr (std::is_same_v<In, float>) {
      v = x[i];
    } else if constexpr (std::is_same_v<In, half_t>) {
      v = __half2float(reinterpret_cast<const __half*>(x)[i]);
    } else {
      v = __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(x)[i]);
    }
    bad |= !isfinite(v);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(flag, 1);
}

/// cuBLAS data type of an activation element type.
template <class In>
constexpr cudaDataType_t cuda_dtype() {
  if constexpr (std::is_same_v<In, float>) return CUDA_R_32F;
  if constexpr (std::is_same_v<In, half_t>) return CUDA_R_16F;
  return CUDA_R_16BF;
}

}  // namespace lowbit::detail

namespace lowbit::gptq {

/// Running-mean Hessian in caller-owned device memory.
class HessianGpu {
 public:
  /// @param K    input features.
  /// @param H    device `[K, K]` fp32 buffer (zeroed by the constructor's reset()).
  /// @param flag device int used to record non-finite inputs.
  /// @param stream stream of the initial reset.
  HessianGpu(std::size_t K, float* H, int* flag, cudaStream_t stream = nullptr) : K_(K), H_(H), flag_(flag) {
    reset(stream);
  }

  /// Zeroes H, the flag and the sample count (asynchronous on `stream`).
  Status reset(cudaStream_t stream) {
    n_ = 0;
    if (K_ == 0 || !H_ || !flag_) return ::lowbit::detail::make_status(StatusCode::invalid_argument, "HessianGpu: bad arguments");
    if (cudaMemsetAsync(H_, 0, K_ * K_ * sizeof(float), stream) != cudaSuccess ||
        cudaMemsetAsync(flag_, 0, sizeof(int), stream) != cudaSuccess)
      return ::lowbit::detail::make_status(StatusCode::cuda_error, "HessianGpu: memset failed");
    return Status::success();
  }

  /// Adds a batch of activations.
  /// @tparam In float, half_t or bfloat16_t (device layout of float, __half, __nv_bfloat16).
  /// @param handle cuBLAS handle (its stream is set to `stream`).
  /// @param x      device activations `[rows, K]` row-major.
  /// @param rows   samples in the batch.
  /// @param stream the stream.
  template <class In>
  Status add_batch(cublasHandle_t handle, const In* x, std::size_t rows, cudaStream_t stream) {
    static_assert(std::is_same_v<In, float> || std::is_same_v<In, half_t> || std::is_same_v<In, bfloat16_t>,
                  "HessianGpu: inputs must be float, half_t or bfloat16_t");
    if (rows == 0) return Status::success();
    if (!x) return ::lowbit::detail::make_status(StatusCode::invalid_argument, "HessianGpu::add_batch: null input");
    const std::size_t count = rows * K_;
    const int blocks = static_cast<int>(std::min<std::size_t>((count + ::lowbit::detail::kHessianScanThreads - 1) /
                                                                  ::lowbit::detail::kHessianScanThreads,
                                                              4096));
    ::lowbit::detail::hessian_scan_nonfinite<In><<<blocks, ::lowbit::detail::kHessianScanThreads, 0, stream>>>(x, count, flag_);
    if (cudaGetLastError() != cudaSuccess)
      return ::lowbit::detail::make_status(StatusCode::cuda_error, "HessianGpu: scan launch failed");
    const double total = static_cast<double>(n_) + static_cast<double>(rows);
    const float beta = static_cast<float>(static_cast<double>(n_) / total);
    const float alpha = static_cast<float>(2.0 / total);
    n_ += rows;
    cublasSetStream(handle, stream);
    // column-major view: X is [K, rows] (ld K); H = alpha · X Xᵀ + beta · H
    const cublasStatus_t st = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(K_),
                                           static_cast<int>(K_), static_cast<int>(rows), &alpha, x,
                                           ::lowbit::detail::cuda_dtype<In>(), static_cast<int>(K_), x, ::lowbit::detail::cuda_dtype<In>(),
                                           static_cast<int>(K_), &beta, H_, CUDA_R_32F, static_cast<int>(K_),
                                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
      return ::lowbit::detail::make_status(StatusCode::cuda_error, "HessianGpu: cublasGemmEx failed (", static_cast<int>(st), ")");
    return Status::success();
  }

  /// Synchronizes `stream` and reports a non-finite input seen so far.
  Status check(cudaStream_t stream) const {
    int bad = 0;
    if (cudaMemcpyAsync(&bad, flag_, sizeof(int), cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
        cudaStreamSynchronize(stream) != cudaSuccess)
      return ::lowbit::detail::make_status(StatusCode::cuda_error, "HessianGpu: reading the flag failed");
    if (bad) return ::lowbit::detail::make_status(StatusCode::non_finite, "HessianGpu: non-finite calibration input");
    return Status::success();
  }

  /// Samples accumulated.
  [[nodiscard]] std::size_t samples() const { return n_; }
  /// Input features.
  [[nodiscard]] std::size_t K() const { return K_; }

 private:
  std::size_t K_;
  float* H_;
  int* flag_;
  std::size_t n_ = 0;
};

}  // namespace lowbit::gptq
