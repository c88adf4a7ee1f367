/// @file format.hpp
/// @brief Entry header for lowbit's file formats: safetensors I/O and GPTQ checkpoints.
///
/// The only public headers that need nlohmann/json (link `lowbit::format`). Host-only; no CUDA.
#pragma once

#include "lowbit.hpp"
#include "safetensors.hpp"
#include "gptq/checkpoint.hpp"
