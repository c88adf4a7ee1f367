/// @file gptq.hpp
/// @brief Entry header for GPTQ: the core (lowbit.hpp) plus quantizers and the host GPTQ solver.
///
/// Host-only; compiles without CUDA and without nlohmann/json. GPU solver parts live in `.cuh`
/// headers under `lowbit/gptq/` and checkpoint I/O in `lowbit/format.hpp`.
#pragma once

#include "lowbit.hpp"
#include "gptq/solver.hpp"
#include "gptq/refine.hpp"
