/// @file tensor_map.cuh
/// @brief Host side of tensor-memory-access (TMA) copies: the driver's tensor-map encoder, fetched once
/// through the runtime (no libcuda link needed), and the 2-D row-major map the Hopper kernels use.
#pragma once

#include <cuda.h>  // CUtensorMap
#include <cuda_runtime.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <cstddef>
#include <cstdint>

namespace lowbit::kernels::detail {

/// The driver's `cuTensorMapEncodeTiled`, or nullptr when the driver does not offer it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

/// Encodes a 2-D map over a row-major `[rows, cols]` matrix of `elem_bytes`-byte elements of type `type` (1:
/// int8/uint8, 2: fp16/bf16 or raw 16-bit, 4: int32) at `base` (16-byte aligned, `cols * elem_bytes` a multiple
/// of 16) whose copies move `box_rows x box_cols` boxes (box_rows, box_cols <= 256; box_cols * elem_bytes <= 128
/// with `swizzle128`, which stores each 128-byte box row with its 16-byte chunks XOR-ed by the row index mod 8:
/// the canonical K-major 128-byte-swizzled wgmma operand layout). Loads zero-fill rows and columns past the
/// matrix; stores skip them. The type matters to reducing stores (tma_store_2d<true>: integer or float adds).
/// Returns cudaErrorNotSupported without an encoder, cudaErrorInvalidValue when the driver rejects the map.
inline cudaError_t encode_2d(CUtensorMap& map, CUtensorMapDataType type, int elem_bytes, const void* base,
                             std::size_t rows, std::size_t cols, std::uint32_t box_rows, std::uint32_t box_cols,
                             bool swizzle128) {
  auto enc = tensor_map_encoder();
  if (!enc) return cudaErrorNotSupported;
  if (elem_bytes != 1 && elem_bytes != 2 && elem_bytes != 4) return cudaErrorInvalidValue;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * static_cast<cuuint64_t>(elem_bytes)};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t estr[2] = {1, 1};
  if (enc(&map, type, 2, const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
          swizzle128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

/// encode_2d for raw 1- or 2-byte elements (uint8 / uint16: copies move the bits).
inline cudaError_t encode_2d(CUtensorMap& map, int elem_bytes, const void* base, std::size_t rows, std::size_t cols,
                             std::uint32_t box_rows, std::uint32_t box_cols, bool swizzle128) {
  if (elem_bytes != 1 && elem_bytes != 2) return cudaErrorInvalidValue;
  return encode_2d(map, elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_UINT16, elem_bytes,
                   base, rows, cols, box_rows, box_cols, swizzle128);
}

}  // namespace lowbit::kernels::detail
