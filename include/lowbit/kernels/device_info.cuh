/// @file device_info.cuh
/// @brief Host-side queries of the current CUDA device shared by the kernel families' availability
/// checks (which kernels a build and a device can run).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace lowbit::kernels::detail {

/// Shared memory of one sm_90 streaming multiprocessor (228 KB) and the most dynamic shared memory one
/// CTA may opt in to there (227 KB): the budgets the Hopper kernels' policies and planners size against.
inline constexpr std::size_t kSm90SmemPerSm = 228 * 1024, kSm90SmemPerCta = 227 * 1024;
/// Shared memory the runtime reserves per resident CTA (sm_80 / sm_90): what residency arithmetic adds
/// to each CTA's dynamic shared memory.
inline constexpr std::size_t kSmemReservedPerCta = 1024;

/// Compute capability of the current device as 10 * major + minor (90 for Hopper); 0 when there is no
/// usable device.
inline int current_compute_capability() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return 0;
  return 10 * major + minor;
}

/// SM count of the current device (0 when there is none).
inline int current_sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
  return sms;
}

/// Most dynamic shared memory one CTA may opt in to on the current device, in bytes (0 when there is no
/// usable device; the failed query's error is cleared).
inline int current_smem_optin() {
  int dev = 0, optin = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return optin;
}

/// Registers per thread a warp-specialized kernel must be launched with so that `setmaxnreg` can hand the
/// producer warpgroup's registers to the consumers: `producer_regs` for 128 producer threads plus
/// `consumer_regs` for `consumers` threads, averaged over all of them (rounded up).
constexpr int setmaxnreg_launch_regs(int producer_regs, int consumer_regs, int consumers) {
  const int threads = 128 + consumers;
  return (producer_regs * 128 + consumer_regs * consumers + threads - 1) / threads;
}

/// Checks, once per kernel and process (the caller keeps the result in a function-local static), that
/// ptxas gave `kernel` at least `need` registers per thread (setmaxnreg_launch_regs): with fewer, the
/// consumers' `setmaxnreg.inc` would wait forever for registers the CTA does not have. Returns
/// cudaErrorInvalidKernelImage in that case (the build, not the call, is wrong), or the query's error.
template <class Kernel>
cudaError_t check_setmaxnreg_regs(Kernel kernel, int need) {
  cudaFuncAttributes fa{};
  const cudaError_t e = cudaFuncGetAttributes(&fa, reinterpret_cast<const void*>(kernel));
  if (e != cudaSuccess) return e;
  return fa.numRegs >= need ? cudaSuccess : cudaErrorInvalidKernelImage;
}

}  // namespace lowbit::kernels::detail
