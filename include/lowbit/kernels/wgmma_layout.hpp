/// @file wgmma_layout.hpp
/// @brief Address and descriptor arithmetic of the sm_90a kernels' K-major, 128-byte-swizzled shared-memory
///        operands (midm_wgmma.cuh, int8_wgmma.cuh), as constexpr functions that
///        the kernels and the host layout tests (tests/kernels/test_wgmma_layout_host.cpp) both call.
///
/// The layout: a tile of R rows x 128 bytes of K is stored row after row (row r at byte 128·r); the 16-byte
/// chunk c of row r sits at chunk position c ^ (r % 8), so every 8 rows (1024 bytes) form one swizzle atom
/// ("128B swizzle", PTX ISA 9.7.15.5.1.2 "Shared Memory Matrix Layout", K-major 8x8 atom of 128-bit
/// elements). It is what a TMA copy with `CU_TENSOR_MAP_SWIZZLE_128B` and a 128-byte box row stores and what
/// wgmma reads through a descriptor with the 128-byte swizzle mode; both need the tile on a 1024-byte
/// boundary (descriptor base offset 0, PTX ISA 9.7.15.5.1.2.2 "Matrix Descriptor Format").
///
/// Host-compilable without CUDA (plain `inline constexpr` under a host compiler).
#pragma once

#include <cstdint>

#include "../config.hpp"

namespace lowbit::kernels::detail {

/// Bytes per row of a 128-byte-swizzled K-major tile (one swizzle span).
inline constexpr int kSw128RowBytes = 128;
/// Bytes of one swizzle atom (8 rows); tiles, TMA boxes and descriptor patterns start on this boundary.
inline constexpr int kSw128AtomBytes = 1024;
/// Bytes of K one wgmma k-step reads from each row: k16 of fp16/bf16 or k32 of int8.
inline constexpr int kWgmmaKStepBytes = 32;

/// Byte offset, from the tile's 1024-byte-aligned base, of 16-byte chunk `c` (0..7) of row `r`.
LOWBIT_HOST_DEVICE constexpr int swz128(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

/// One element of a K-major tile: its row (the wgmma operand's M or N index) and column (K index).
struct Sw128Coord {
  int row;  ///< row of the tile (128 bytes each)
  int col;  ///< element of the row (K index)
};

/// Address of element `e` of the tile at `base` (1024-byte aligned), for elements of `ElemBytes` bytes
/// (128 / ElemBytes per row): `base` + 128·row + 16·(chunk ^ (row % 8)) + the element's bytes inside its
/// 16-byte chunk.
/// @tparam ElemBytes element size: 1 (int8) or 2 (fp16/bf16).
/// @tparam Byte      `unsigned char` or `const unsigned char` (any byte type).
/// @param base the tile's first byte.
/// @param e    the element.
template <int ElemBytes, class Byte>
LOWBIT_HOST_DEVICE constexpr Byte* sw128_at(Byte* base, const Sw128Coord& e) {
  static_assert(ElemBytes == 1 || ElemBytes == 2, "128-byte swizzle addresses of 1- or 2-byte elements");
  static_assert(sizeof(Byte) == 1, "byte pointers only");
  constexpr int shift = ElemBytes == 1 ? 4 : 3;  // log2(elements per 16-byte chunk)
  constexpr int mask = (1 << shift) - 1;
  return base + e.row * 128 + (((e.col >> shift) ^ (e.row & 7)) << 4) + (e.col & mask) * ElemBytes;
}

/// Shared-memory matrix descriptor (PTX ISA 9.7.15.5.1.2.2) of a K-major, 128-byte-swizzled operand whose
/// first row starts at shared-state-space address `smem_addr`: start address encoded as (addr & 0x3FFFF)
/// >> 4 in bits 0-13, leading byte offset 1 (unused by swizzled K-major layouts) in bits 16-29, stride byte
/// offset 1024 >> 4 (from one 8-row group to the next) in bits 32-45, base offset 0 (bits 49-51: the
/// pattern starts on a 1024-byte boundary), swizzle mode 1 = 128-byte in bits 62-63.
LOWBIT_HOST_DEVICE constexpr std::uint64_t sw128_desc(std::uint32_t smem_addr) {
  constexpr std::uint64_t kLbo = 1;                     // leading byte offset (16-byte units): unused
  constexpr std::uint64_t kSbo = kSw128AtomBytes >> 4;  // stride byte offset (16-byte units)
  constexpr std::uint64_t kSwizzle128 = 1;              // bits 62-63
  return static_cast<std::uint64_t>((smem_addr >> 4) & 0x3FFF) | (kLbo << 16) | (kSbo << 32) | (kSwizzle128 << 62);
}

/// Descriptor start address with which a wgmma reads rows `row0`.. (a multiple of 8: whole atoms) of the
/// 128-byte-swizzled tile at `tile` at k-step `ks` (kWgmmaKStepBytes = 32 bytes of K per step): the
/// swizzle is a function of the address bits, so a start 32·ks bytes into the atom selects the k-step's
/// chunks of every row (the descriptor's base offset stays 0).
/// @tparam Byte `unsigned char` or `const unsigned char` (any byte type).
/// @param tile the tile's first byte (1024-byte aligned).  @param row0 first row.  @param ks k-step.
template <class Byte>
LOWBIT_HOST_DEVICE constexpr Byte* sw128_kstep_at(Byte* tile, int row0, int ks) {
  static_assert(sizeof(Byte) == 1, "byte pointers only");
  return tile + row0 * kSw128RowBytes + kWgmmaKStepBytes * ks;
}

}  // namespace lowbit::kernels::detail
