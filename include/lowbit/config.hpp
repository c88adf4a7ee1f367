/// @file config.hpp
/// @brief Compiler portability macros shared by host and device code (no CUDA needed).
#pragma once

/// Library major version, kept in step with `project(lowbit VERSION ...)` in CMakeLists.txt
/// (CMake checks it at configure time).
#define LOWBIT_VERSION_MAJOR 0
/// Library minor version.
#define LOWBIT_VERSION_MINOR 1
/// Library patch version.
#define LOWBIT_VERSION_PATCH 0

#if defined(__CUDACC__) || defined(__HIPCC__)
/// Marks a function callable from host and device code; plain `inline` under a host compiler.
#define LOWBIT_HOST_DEVICE __host__ __device__ __forceinline__
/// Marks a device-only helper.
#define LOWBIT_DEVICE __device__ __forceinline__
#else
#define LOWBIT_HOST_DEVICE inline
#define LOWBIT_DEVICE inline
#endif

#if defined(__CUDA_ARCH__)
/// True while compiling the device pass of a CUDA translation unit.
#define LOWBIT_DEVICE_PASS 1
#else
/// 0 outside the device pass (host compiler, or nvcc's host pass).
#define LOWBIT_DEVICE_PASS 0
#endif
