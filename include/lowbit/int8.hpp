/// @file int8.hpp
/// @brief Entry header for LLM.int8(): the core (lowbit.hpp) plus vector-wise int8 quantization,
/// outlier detection and mixed-precision decomposition (host reference).
///
/// Host-only; compiles without CUDA. The int8 GPU kernels live in `.cuh` headers.
#pragma once

#include "lowbit.hpp"
#include "int8/llm_int8.hpp"
