/// @file tile.cuh
/// @brief Device-level building blocks for fusing low-bit weights into your own kernel: load a packed
///        64x64 weight tile into a lane's registers, load a group's scales/zeros, stage activations in
///        swizzled shared memory and read mma A fragments, and the warp MMA step over a whole tile.
///
/// A warp owns a 64-column slab of the weight (`slab`, in units of 64 columns). For each 64-row K tile
/// `kt` it: (1) `WeightTile::load` — `B` coalesced 16-byte loads per lane; (2) `load_group_raw` +
/// `GroupParams::prepare` — one 16-byte scale load and one 8-byte zero load per group; (3) for each of
/// the 4 k16-steps, A fragments via `ATile::load_fragment` (ldmatrix) and `warp_tile_mma`, which
/// dequantizes the B fragments in registers and issues `MI x 8` mma.m16n8k16 into fp32 accumulators
/// `acc[MI][8][4]` (rows 16*mi + lane/4 (+8), columns 8j + 2*(lane%4) (+1) of the slab).
/// examples/fused_gate_up shows a complete kernel assembled from these pieces.
#pragma once

#include <cstdint>

#include "dequant.cuh"
#include "layout.hpp"
#include "ptx.cuh"

namespace lowbit::kernels {

/// One lane's share of a 64x64 weight tile in registers.
/// @tparam B code width.
template <int B>
struct WeightTile {
  /// The lane's words (TiledLayout<B>::words_per_lane).
  std::uint32_t w[TiledLayout<B>::words_per_lane];

  /// Loads tile (kt, slab) of `qweight` (`TiledLayout<B>` words of a [K, N] matrix) for `lane`:
  /// `B` streamed 16-byte loads (no L1 allocation), coalesced across the warp.
  LOWBIT_DEVICE void load(const std::uint32_t* qweight, std::size_t K, int kt, int slab, int lane) {
    const std::uint32_t* p = qweight + TiledLayout<B>::tile_offset(K, kt, slab) + lane * TileGeometry::vec_words;
#pragma unroll
    for (int v = 0; v < TiledLayout<B>::vecs_per_lane; ++v) {
      const uint4 x = ptx::ld_global_stream_16(p + v * TileGeometry::lanes * TileGeometry::vec_words);
      w[4 * v + 0] = x.x;
      w[4 * v + 1] = x.y;
      w[4 * v + 2] = x.z;
      w[4 * v + 3] = x.w;
    }
  }
  /// Loads the lane's words of a tile whose TiledLayout bytes were copied verbatim into shared memory
  /// at `src` (16-byte aligned): `B` 16-byte shared loads.
  LOWBIT_DEVICE void load_shared(const unsigned char* src, int lane) {
#pragma unroll
    for (int v = 0; v < TiledLayout<B>::vecs_per_lane; ++v) {
      const uint4 x = *reinterpret_cast<const uint4*>(src + 16 * (v * TileGeometry::lanes + lane));
      w[4 * v + 0] = x.x;
      w[4 * v + 1] = x.y;
      w[4 * v + 2] = x.z;
      w[4 * v + 3] = x.w;
    }
  }
};

/// Raw (still packed) scales and zeros of one group for one lane: 8 fp16 scales and 8 zero codes.
struct GroupRaw {
  uint4 scales;  ///< 8 fp16 scales (columns 8j + lane/4, j = 0..7)
  uint2 zeros;   ///< 8 zero codes (same columns)
};

/// Loads group `g`'s parameters for `lane` of slab `slab` (kernel-layout scales [G, N] fp16 bits and
/// zeros [G, N] uint8, both scale_position-interleaved). Zeros are skipped when `sym`.
LOWBIT_DEVICE GroupRaw load_group_raw(const std::uint16_t* scales, const std::uint8_t* zeros, std::size_t N,
                                      int g, int slab, int lane, bool sym) {
  const std::size_t off = static_cast<std::size_t>(g) * N + static_cast<std::size_t>(slab) * 64 + 8 * (lane / 4);
  GroupRaw r;
  r.scales = ptx::ld_global_nc_16(scales + off);
  r.zeros = sym ? make_uint2(0u, 0u) : ptx::ld_global_nc_8(zeros + off);
  return r;
}

/// Loads one group's parameters for `lane` from shared memory laid out as the streaming kernels stage
/// them (`p`: 64 fp16 scales, then 64 zero codes, both scale_position-interleaved, as in global memory).
/// Zeros are skipped when `sym`.
LOWBIT_DEVICE GroupRaw load_group_shared(const unsigned char* p, int lane, bool sym) {
  GroupRaw r;
  r.scales = *reinterpret_cast<const uint4*>(p + 16 * (lane / 4));
  r.zeros = sym ? make_uint2(0u, 0u) : *reinterpret_cast<const uint2*>(p + 128 + 8 * (lane / 4));
  return r;
}

/// Activations staged in shared memory: `Rows x Cols` elements of 2 bytes, row-major with the 16-byte
/// chunks of every 128-byte row segment XOR-swizzled by (row % 8), so ldmatrix reads are conflict-free.
/// @tparam Rows rows (multiple of 16).  @tparam Cols columns (multiple of 64).
template <int Rows, int Cols>
struct ATile {
  static_assert(Rows % 16 == 0 && Cols % 64 == 0, "ATile needs 16-row and 64-column multiples");
  /// Elements in the tile.
  static constexpr int elems = Rows * Cols;
  /// 16-byte chunks per row.
  static constexpr int chunks_per_row = Cols / 8;

  /// Element offset of chunk `c` (8 elements) of row `r`.
  LOWBIT_HOST_DEVICE static constexpr int chunk_offset(int r, int c) { return r * Cols + ((c & ~7) | ((c ^ r) & 7)) * 8; }

  /// Loads the m16n8k16 A fragment of rows [r0, r0+16), columns [c0, c0+16) (c0 multiple of 16).
  LOWBIT_DEVICE static void load_fragment(std::uint32_t (&a)[4], const std::uint16_t* tile, int r0, int c0, int lane) {
    const int r = r0 + lane % 16, c = c0 / 8 + lane / 16;
    ptx::ldmatrix_x4(a, tile + chunk_offset(r, c));
  }
};

/// The warp MMA step of one k16-step over a 64-column slab: dequantizes the 8 B fragments of `ks` from
/// `wt` with `params` and accumulates `acc[mi][j] += A[mi] · B[j]`.
/// @tparam B code width.  @tparam T element type.  @tparam MI m16 tiles of the warp.
template <int B, class T, int MI>
LOWBIT_DEVICE void warp_tile_mma(float (&acc)[MI][8][4], const std::uint32_t (&a)[MI][4], const WeightTile<B>& wt,
                                 const GroupParams<T>& params, int ks) {
#pragma unroll
  for (int j = 0; j < TileGeometry::n_tiles; ++j) {
    std::uint32_t b[2];
    dequant_b_fragment<B, T>(b, wt.w, params, ks, j);
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) ElementOps<T>::mma(acc[mi][j], a[mi], b);
  }
}

}  // namespace lowbit::kernels
