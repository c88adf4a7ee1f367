// Host models of the two sm_90 hardware units that move the sm_90a kernels' operands, written from the
// documentation and NOT from lowbit's code, so that the layout tests compare the kernels' own address
// arithmetic (include/lowbit/kernels/wgmma_layout.hpp and the kernels' offsets) against an independent
// reading of what the hardware does:
//
//  - the tensor memory accelerator (TMA, `cp.async.bulk.tensor.2d`) with a tensor map encoded by
//    cuTensorMapEncodeTiled(..., CU_TENSOR_MAP_SWIZZLE_128B, ..., CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE):
//    CUDA Driver API, cuTensorMapEncodeTiled / CUtensorMapSwizzle ("CU_TENSOR_MAP_SWIZZLE_128B: swizzles
//    16-byte chunks within a 128-byte span"; the inner box extent in bytes must not exceed the span;
//    out-of-bound elements are filled with zeros; the shared-memory destination of a swizzled copy must
//    be aligned to the 1024-byte repeat of the pattern), and the CUDA C++ Programming Guide's TMA swizzle
//    section (the box is written row after row, each row `box_cols * elem` bytes, and inside every
//    1024-byte block the 16-byte chunk index of each 128-byte row is XOR-ed with the row's index mod 8,
//    i.e. address bits [4, 7) ^= bits [7, 10)). The mbarrier completes the box's full byte count,
//    zero-filled elements included (PTX ISA 9.7.9.25 cp.async.bulk.tensor, `.mbarrier::complete_tx::bytes`:
//    the copy's bytes are the box's; lowbit's kernels arm `expect_tx` with that figure);
//
//  - wgmma.mma_async reading a K-major operand from shared memory through a matrix descriptor:
//    PTX ISA 9.7.15.5.1.2.2 "Matrix Descriptor Format" (start address, leading and stride byte offsets
//    encoded as (x & 0x3FFFF) >> 4 in bits 0-13, 16-29, 32-45; base offset in bits 49-51, 0 when the
//    swizzle pattern starts on its repeat boundary, 1024 bytes for 128-byte swizzling, else
//    (pattern start addr >> 7) & 7; swizzle mode in bits 62-63: 0 none, 1 128-byte, 2 64-byte, 3 32-byte)
//    and 9.7.15.5.1.2 "Shared Memory Matrix Layout" (the operand is made of swizzle atoms; the K-major
//    128-byte-swizzle atom is 8 x 8 128-bit elements = 8 rows x 128 bytes, 1024 bytes; the stride byte
//    offset is the distance from one 8-row group (core-matrix row group) to the next along M/N; the
//    leading byte offset is not used by swizzled K-major layouts, whose K extent per instruction,
//    32 bytes, lies inside one 128-byte row). The swizzle is a function of the shared-memory address
//    (the same bits [4, 7) ^= [7, 10) as TMA's), which is why a start address advanced by 32 bytes
//    inside the atom reads the next 32 bytes of K of every row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace lowbit_test_emu {

/// The 128-byte swizzle of a shared-memory byte address: 16-byte chunk bits [4, 7) XOR row bits [7, 10).
inline std::uint32_t swizzle128(std::uint32_t addr) { return addr ^ (((addr >> 7) & 7u) << 4); }

/// Shared memory of one CTA: byte i is shared-state-space address i.
struct Smem {
  std::vector<std::uint8_t> bytes;
  std::vector<int> writes;  // how many times each byte was written (by the emulated copies or stores)
  explicit Smem(std::size_t n, std::uint8_t fill = 0xA5) : bytes(n, fill), writes(n, 0) {}
  void write(std::uint32_t addr, const void* src, std::size_t n) {
    if (addr + n > bytes.size()) throw std::out_of_range("emulated shared-memory write out of range");
    std::memcpy(bytes.data() + addr, src, n);
    for (std::size_t i = 0; i < n; ++i) ++writes[addr + i];
  }
  std::uint32_t read(std::uint32_t addr, int n) const {
    if (addr + static_cast<std::uint32_t>(n) > bytes.size()) throw std::out_of_range("emulated shared-memory read out of range");
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint32_t>(bytes[addr + i]) << (8 * i);
    return v;
  }
};

/// A row-major `[rows, cols]` global matrix of `elem`-byte elements (little-endian raw bits).
struct Global {
  std::size_t rows, cols;
  int elem;
  std::vector<std::uint8_t> bytes;
  Global(std::size_t r, std::size_t c, int e) : rows(r), cols(c), elem(e), bytes(r * c * e) {
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * 2654435761u) >> 13);
  }
  /// Element (r, c) as raw bits, 0 outside the matrix (the TMA's and cp.async's zero fill).
  std::uint32_t at(std::size_t r, std::size_t c) const {
    if (r >= rows || c >= cols) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < elem; ++i) v |= static_cast<std::uint32_t>(bytes[(r * cols + c) * elem + i]) << (8 * i);
    return v;
  }
};

/// TMA: copies the `[box_rows, box_cols]` box whose first element is (row c1, column c0) of `g` into `s` at
/// `dst` (CU_TENSOR_MAP_SWIZZLE_128B; box row = box_cols * elem bytes <= 128), zero-filling elements outside
/// the matrix. Returns the bytes the copy completes on its mbarrier.
inline std::size_t tma_load_2d_sw128(Smem& s, std::uint32_t dst, const Global& g, int box_rows, int box_cols, long c0,
                                     long c1) {
  const int row_bytes = box_cols * g.elem;
  // (narrower rows are legal for the TMA but pack several box rows per 128-byte span: not modelled here)
  if (row_bytes != 128) throw std::invalid_argument("model covers SWIZZLE_128B boxes with 128-byte rows only");
  if (box_rows > 256 || box_cols > 256) throw std::invalid_argument("box dimensions are at most 256");
  if (dst % 1024 != 0) throw std::invalid_argument("SWIZZLE_128B destination must be 1024-byte aligned");
  for (int r = 0; r < box_rows; ++r)
    for (int c = 0; c < box_cols; ++c) {
      const long gr = c1 + r, gc = c0 + c;
      const std::uint32_t v = gr < 0 || gc < 0 ? 0u : g.at(static_cast<std::size_t>(gr), static_cast<std::size_t>(gc));
      const std::uint32_t dense = dst + static_cast<std::uint32_t>(r * row_bytes + c * g.elem);
      s.write(swizzle128(dense), &v, static_cast<std::size_t>(g.elem));
    }
  return static_cast<std::size_t>(box_rows) * static_cast<std::size_t>(row_bytes);
}

/// The fields of a wgmma shared-memory matrix descriptor (PTX ISA 9.7.15.5.1.2.2), decoded.
struct Desc {
  std::uint32_t start;   ///< matrix start address (bytes)
  std::uint32_t lbo;     ///< leading dimension byte offset (bytes)
  std::uint32_t sbo;     ///< stride dimension byte offset (bytes)
  int base_offset;       ///< bits 49-51
  int swizzle;           ///< bits 62-63 (1: 128-byte)
  std::uint64_t reserved;  ///< bits outside the documented fields (must be 0)
};

inline Desc decode(std::uint64_t d) {
  Desc x{};
  x.start = static_cast<std::uint32_t>(d & 0x3FFF) << 4;
  x.lbo = static_cast<std::uint32_t>((d >> 16) & 0x3FFF) << 4;
  x.sbo = static_cast<std::uint32_t>((d >> 32) & 0x3FFF) << 4;
  x.base_offset = static_cast<int>((d >> 49) & 7);
  x.swizzle = static_cast<int>((d >> 62) & 3);
  const std::uint64_t fields = 0x3FFFull | (0x3FFFull << 16) | (0x3FFFull << 32) | (7ull << 49) | (3ull << 62);
  x.reserved = d & ~fields;
  return x;
}

/// The shared-memory byte address from which wgmma reads byte `kbyte` (0..31: one k-step) of row `row` of a
/// K-major operand described by `d` with the 128-byte swizzle: 8-row groups `sbo` apart, rows 128 bytes
/// apart inside a group, K contiguous inside the row; the swizzle applied to the resulting address.
/// Throws where the descriptor leaves the documented canonical layout.
inline std::uint32_t wgmma_kmajor_sw128_addr(const Desc& d, int row, int kbyte) {
  if (d.swizzle != 1) throw std::invalid_argument("descriptor is not 128-byte swizzled");
  if (d.reserved != 0) throw std::invalid_argument("descriptor has bits set outside its fields");
  // base offset 0: the pattern starts on a 1024-byte boundary, i.e. the start lies in the first 128-byte row
  // of an atom (k-step offsets 0, 32, 64, 96 from an aligned tile). Other starts need a non-zero base
  // offset whose exact semantics this model does not claim to know: rejected.
  if (d.base_offset != 0 || d.start % 1024 >= 128) throw std::invalid_argument("start is not in an atom's first row / base offset");
  if (kbyte < 0 || kbyte >= 32 || (d.start % 128) + 32 > 128) throw std::invalid_argument("k-step leaves the 128-byte row");
  const std::uint32_t linear = d.start + static_cast<std::uint32_t>(row / 8) * d.sbo + static_cast<std::uint32_t>(row % 8) * 128u +
                               static_cast<std::uint32_t>(kbyte);
  return swizzle128(linear);
}

/// The element of the m64nNk* accumulator D that register `i` of thread `tid` (0..127 of the warpgroup)
/// holds (PTX ISA 9.7.15.5.1.1, "Matrix fragments for wgmma .m64nNk*": warp w owns rows 16w..16w+15; the
/// registers go in pairs along N, then the row group of 8, then the next 8 columns).
struct DElem {
  int row, col;
};
inline DElem wgmma_d_elem(int tid, int i) {
  const int warp = tid / 32, lane = tid % 32;
  return {16 * warp + lane / 4 + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (lane % 4) + i % 2};
}

}  // namespace lowbit_test_emu
