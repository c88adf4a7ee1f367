/// @file lowbit.hpp
/// @brief Entry header for lowbit's host-only core: numeric types, `Bits<N>`, packing layouts,
/// quantization types and errors. Compiles with a plain C++20 compiler (no CUDA, no nlohmann/json).
///
/// Host-only headers that need neither CUDA nor nlohmann/json are added here, one line each.
/// CUDA headers (`.cuh`) are never included from here; file formats come from `lowbit/format.hpp`.
#pragma once

#include "config.hpp"
#include "error.hpp"
#include "numeric.hpp"
#include "bits.hpp"
#include "packing.hpp"
#include "quant_types.hpp"
#include "quant.hpp"
#include "footprint.hpp"
#include "kernels/layout.hpp"
