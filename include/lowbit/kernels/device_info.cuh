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

}  // namespace lowbit::kernels::detail
