// Host tests of the sm_90a warp-specialized kernels' shared-memory plumbing, with their own constants and
// address functions (midm_ws.cuh, large_ws.cuh, int8_wgmma.cuh, wgmma_layout.hpp) against the
// documentation-based TMA and wgmma models of wgmma_emu.hpp. For every default policy, one ring stage is
// filled the way the producer fills it (TMA box at the kernel's coordinates into the kernel's stage
// offset, or the int8 cp.async kernel's swz128 stores; for the large-M kernel also the dequantizing warps'
// stores of TiledLayout code pairs), then every element that every wgmma of the stage reads through the
// kernel's descriptors (k-step start advance, warpgroup row offset) is compared with the logical element
// (row, k) of the source matrices, zero-filled past M, N, K. The mbarrier expect_tx figures must equal the
// bytes the boxes deliver, and boxes, stages and buffers must sit on 1024-byte swizzle atoms.
// A .cu for nvcc (the policies live in .cuh headers) that never touches a device: runs in CI (label host).
#include <catch2/catch.hpp>

#include <lowbit/kernels/int8_wgmma.cuh>
#include <lowbit/kernels/large_ws.cuh>

#include <cstdint>
#include <random>
#include <vector>

#include "wgmma_emu.hpp"

using namespace lowbit::kernels;
using namespace lowbit::kernels::detail;
namespace emu = lowbit_test_emu;

namespace {

/// Shared-state-space address of a pointer into the emulated shared memory (byte 0 = address 0, 1024-aligned
/// like the kernels' `smem` after their round-up).
std::uint32_t addr_of(const emu::Smem& s, const std::uint8_t* p) { return static_cast<std::uint32_t>(p - s.bytes.data()); }

/// Checks one K-major operand read by wgmma: `rows` rows starting at row `row0` of the swizzled tile at `tile`,
/// k-steps 0..ksteps-1 through the kernel's descriptor (sw128_desc of sw128_kstep_at), element `elem` bytes;
/// `expect(r, k)` is the logical element (row r of the tile, k of its 128-byte row).
template <class Expect>
void check_operand(const emu::Smem& s, const std::uint8_t* tile, int row0, int rows, int ksteps, int elem, Expect expect) {
  for (int ks = 0; ks < ksteps; ++ks) {
    const emu::Desc d = emu::decode(sw128_desc(addr_of(s, sw128_kstep_at(tile, row0, ks))));
    for (int r = 0; r < rows; ++r)
      for (int kb = 0; kb < kWgmmaKStepBytes; kb += elem) {
        const int k = (ks * kWgmmaKStepBytes + kb) / elem;
        INFO("row0 " << row0 << " ks " << ks << " row " << r << " k " << k);
        REQUIRE(s.read(emu::wgmma_kmajor_sw128_addr(d, r, kb), elem) == expect(row0 + r, k));
      }
  }
}

/// Stage and shared-memory budget facts every mid-M/large-M warp-specialized policy must satisfy.
template <int B, class P, int GPT>
void check_ws_stage_geometry() {
  using L = TiledLayout<B>;
  const std::size_t stage = P::template stage_bytes<B>(GPT);
  INFO("B " << B << " GPT " << GPT << " stage " << stage);
  // the activation box: one 128-byte swizzle row of k per activation row, the box rows = the CTA's rows
  REQUIRE(P::a_box_cols * 2 == kSw128RowBytes);
  REQUIRE(P::a_box_cols == TileGeometry::tile_k);  // the producer's TMA steps k by tile_k
  REQUIRE(P::a_box_rows == P::n_tile);
  REQUIRE(P::a_box_rows <= 256);                    // cuTensorMapEncodeTiled: box dimensions <= 256
  REQUIRE(P::a_box_bytes == P::a_box_rows * P::a_box_cols * 2);
  // stages on swizzle atoms (box first), cp.async destinations 16-byte aligned, mbarriers 8-byte aligned
  REQUIRE(stage % kSw128AtomBytes == 0);
  REQUIRE(stage >= static_cast<std::size_t>(P::a_box_bytes) + P::warpgroups * (L::words_per_tile * 4 + GPT * kMidmParamBytes));
  REQUIRE(P::a_box_bytes % 16 == 0);
  REQUIRE((L::words_per_tile * 4) % 16 == 0);
  REQUIRE(kMidmParamBytes % 16 == 0);
  REQUIRE(P::template body_bytes<B>(GPT) % 8 == 0);
  REQUIRE(P::template body_bytes<B>(GPT) >= P::stages * stage);
  REQUIRE(P::template smem_bytes<B>(GPT) >= P::template body_bytes<B>(GPT) + 2 * P::stages * 8 + (kSw128AtomBytes - 1));
  REQUIRE(P::template smem_bytes<B>(GPT) <= kSm90SmemPerCta);
}

/// One ring stage of a warp-specialized mid-M or large-M kernel: the producer's TMA box of A at (k-tile kt,
/// rows m0..) lands in stage `s`; returns the bytes it delivered.
template <class P, int B, int GPT>
std::size_t fill_activation_box(emu::Smem& smem, const emu::Global& A, int s, int kt, int m0) {
  const std::size_t stage = P::template stage_bytes<B>(GPT);
  // midm_ws_producer: tma_load_2d(stage, tmA, kt * tile_k, m0) with the map of launch_midm (gemm.cuh):
  // encode_2d(tmA, 2, A, M, K, P::a_box_rows, P::a_box_cols, swizzle128 = true)
  return emu::tma_load_2d_sw128(smem, static_cast<std::uint32_t>(s * stage), A, P::a_box_rows, P::a_box_cols,
                                static_cast<long>(kt) * TileGeometry::tile_k, m0);
}

template <int B, class P, int GPT>
void check_midm_ws_policy() {
  check_ws_stage_geometry<B, P, GPT>();
  constexpr int NT = P::n_tile;
  const std::size_t stage = P::template stage_bytes<B>(GPT);
  const int K = 3 * 64, m0 = NT;            // row block 1 of an M that ends inside it
  const emu::Global A(static_cast<std::size_t>(m0 + NT - 5), static_cast<std::size_t>(K), 2);
  for (int s : {0, P::stages - 1}) {
    emu::Smem smem(P::stages * stage);
    const int kt = 2;
    const std::size_t bytes = fill_activation_box<P, B, GPT>(smem, A, s, kt, m0);
    REQUIRE(bytes == static_cast<std::size_t>(P::a_box_bytes));  // = the producer's expect_tx (kABytes)
    const std::uint8_t* st = smem.bytes.data() + s * stage;
    // wgmma m64nNTk16, B = the box (K-major): row n of B = activation row m0 + n, k of k-step ks
    check_operand(smem, st, 0, NT, TileGeometry::k_steps, 2,
                  [&](int n, int k) { return A.at(static_cast<std::size_t>(m0 + n), static_cast<std::size_t>(kt * 64 + k)); });
  }
}

/// Codes of a 64 x 64 tile ([k, n] row-major) packed by the library's TiledLayout packer.
template <int B>
struct CodeTile {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint32_t> words;
  explicit CodeTile(std::mt19937& rng) : codes(64 * 64), words(TiledLayout<B>::packed_size(64, 64)) {
    std::uniform_int_distribution<int> d(0, (1 << B) - 1);
    for (auto& c : codes) c = static_cast<std::uint8_t>(d(rng));
    TiledLayout<B>::pack(codes.data(), 64, 64, words.data());
  }
};

template <int B, class P, int GPT>
void check_large_policy() {
  check_ws_stage_geometry<B, P, GPT>();
  using L = TiledLayout<B>;
  const std::size_t stage = P::template stage_bytes<B>(GPT);
  REQUIRE(P::dq_bytes == P::block_n * kSw128RowBytes);  // 256 columns x 64 k of 2 bytes
  REQUIRE(P::dq_bytes % kSw128AtomBytes == 0);
  REQUIRE(P::block_n == 64 * P::warps_n);
  REQUIRE(P::consumers / 32 == 2 * P::warps_n);          // two dequantizing warps per slab
  REQUIRE(P::block_m == P::a_box_rows);
  REQUIRE(P::block_m == 64 * (P::consumers / 128));      // one m64 wgmma row block per consumer warpgroup

  const int K = 2 * 64, m0 = 0;
  const emu::Global A(static_cast<std::size_t>(P::block_m - 9), static_cast<std::size_t>(K), 2);
  emu::Smem smem(P::template body_bytes<B>(GPT));
  const int s = P::stages - 1, kt = 1, buf = 2;
  REQUIRE(fill_activation_box<P, B, GPT>(smem, A, s, kt, m0) == static_cast<std::size_t>(P::a_box_bytes));
  const std::uint8_t* st = smem.bytes.data() + s * stage;
  // A of consumer warpgroup wg: rows wg·64.. of the box
  for (int wg = 0; wg < P::consumers / 128; ++wg)
    check_operand(smem, st, 64 * wg, 64, TileGeometry::k_steps, 2,
                  [&](int r, int k) { return A.at(static_cast<std::size_t>(m0 + r), static_cast<std::size_t>(kt * 64 + k)); });

  // B: the dequantized buffer `buf` (after the ring), written as large_dequant_half writes it, with the code
  // pairs in place of the dequantized pairs (dequant_pair keeps a pair's order: test_dequant_host.cpp)
  std::mt19937 rng(1234 + B);
  std::vector<CodeTile<B>> tiles;
  for (int slab = 0; slab < P::warps_n; ++slab) tiles.emplace_back(rng);
  const std::size_t dq_off = P::stages * stage + static_cast<std::size_t>(buf) * P::dq_bytes;
  REQUIRE(dq_off % kSw128AtomBytes == 0);
  std::uint8_t* dq = smem.bytes.data() + dq_off;
  for (int warp = 0; warp < P::consumers / 32; ++warp) {
    const int slab = warp >> 1, kh = warp & 1;  // midm_large_kernel: dslab = warp >> 1, KH = warp & 1
    for (int lane = 0; lane < 32; ++lane) {
      // WeightTile::load_shared: word 4v + i of the lane from bytes 16·(32v + lane) + 4i of the staged tile
      std::uint32_t w[L::words_per_lane];
      for (int i = 0; i < L::words_per_lane; ++i) {
        const int word = (16 * ((i / 4) * TileGeometry::lanes + lane) + 4 * (i % 4)) / 4;
        REQUIRE(word == L::lane_word_offset(lane, i));
        w[i] = tiles[slab].words[word];
      }
      for (int kk = 0; kk < 2; ++kk)
        for (int j = 0; j < TileGeometry::n_tiles; ++j)
          for (int h = 0; h < 2; ++h) {
            const int ks = 2 * kh + kk;
            const int q = 2 * (TileGeometry::n_tiles * ks + j) + h;  // large_dequant_half's pair index
            const std::uint32_t pair = extract_pair<B>(w, q);
            const Sw128Coord p = large_dq_pair(slab, ks, j, h, lane / 4, lane % 4);
            smem.write(addr_of(smem, sw128_at<2>(dq, p)), &pair, 4);
          }
    }
  }
  for (std::size_t i = 0; i < P::dq_bytes; ++i) REQUIRE(smem.writes[dq_off + i] == 1);  // every byte once
  // wgmma m64n256k16, B = the buffer: row n = CTA column n, k of k-step ks = code (k, n % 64) of slab n / 64
  check_operand(smem, dq, 0, P::block_n, TileGeometry::k_steps, 2, [&](int n, int k) {
    return static_cast<std::uint32_t>(tiles[n / 64].codes[k * 64 + n % 64]);
  });
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("midm_ws: TMA activation box, expect_tx and the wgmma B descriptors agree", "[kernels][wgmma_layout]",
                       ((int B), B), 2, 3, 4, 8) {
  check_midm_ws_policy<B, typename MidmWsPolicies<B>::W64, 1>();
  check_midm_ws_policy<B, typename MidmWsPolicies<B>::W64, 2>();
  check_midm_ws_policy<B, typename MidmWsPolicies<B>::W128, 1>();
  check_midm_ws_policy<B, typename MidmWsPolicies<B>::W128, 2>();
}

TEMPLATE_TEST_CASE_SIG("large_ws: activation box, dequantized B tile and the SS wgmma descriptors agree", "[kernels][wgmma_layout]",
                       ((int B), B), 2, 3, 4, 8) {
  check_large_policy<B, typename LargeWsPolicies<B>::L128, 1>();
  check_large_policy<B, typename LargeWsPolicies<B>::L128, 2>();
}

// The model of wgmma's descriptor reads is the premise of every check above. Anchor it on the one 2-byte
// configuration a GPU has already run correctly (bench/kernels/NOTES.md, H200 2026-12-05: all midm/gemm GPU
// tests pass with the lock-step wgmma mid-M kernel): midm_wgmma_kernel's cp.async writer
// (ATile<block_m, 64>::chunk_offset, k-tile kk at stage + kk·NT·128) and its B descriptors. The int8 case
// below anchors the 1-byte, SS, m64 A configuration the same way (gemm_s8_wgmma_kernel, GPU-measured).
TEST_CASE("wgmma model: reproduces the GPU-verified midm_wgmma ATile layout", "[kernels][wgmma_layout]") {
  constexpr int B = 4;  // the code width only sizes the stage
  auto one = [](auto policy) {
    using P = decltype(policy);
    using Tile = ATile<P::block_m, 64>;
    constexpr int NT = P::n_tile, KS = P::k_tiles;
    const std::size_t stage = P::template stage_bytes<B>(2);
    REQUIRE(stage % kSw128AtomBytes == 0);
    const int rows_valid = NT - 3;
    const emu::Global A(static_cast<std::size_t>(rows_valid), static_cast<std::size_t>(KS * 64), 2);
    emu::Smem smem(2 * stage);
    std::uint8_t* st = smem.bytes.data() + stage;  // stage 1
    for (int kk = 0; kk < KS; ++kk)
      for (int r = 0; r < P::block_m; ++r)
        for (int c = 0; c < Tile::chunks_per_row; ++c) {  // issue(): cp_async_16(a_dst + kk·elems + chunk_offset(r, c))
          std::uint8_t chunk[16] = {};
          if (r < rows_valid)
            for (int e = 0; e < 8; ++e) {
              const std::uint32_t v = A.at(static_cast<std::size_t>(r), static_cast<std::size_t>(kk * 64 + 8 * c + e));
              chunk[2 * e] = static_cast<std::uint8_t>(v);
              chunk[2 * e + 1] = static_cast<std::uint8_t>(v >> 8);
            }
          smem.write(addr_of(smem, st + 2 * (kk * Tile::elems + Tile::chunk_offset(r, c))), chunk, 16);
        }
    for (int kk = 0; kk < KS; ++kk)  // at = stage + kk·NT·128; B descriptors of the four k16-steps
      check_operand(smem, st + kk * NT * 128, 0, NT, TileGeometry::k_steps, 2, [&](int n, int k) {
        return A.at(static_cast<std::size_t>(n), static_cast<std::size_t>(kk * 64 + k));
      });
  };
  one(typename MidmWgmmaPolicies<B>::W64{});
  one(typename MidmWgmmaPolicies<B>::W128{});
}

TEST_CASE("int8 wgmma: TMA boxes, cp.async swz128 stores, expect_tx and the s8 k32 descriptors agree", "[kernels][wgmma_layout]") {
  using S = WgmmaWsShape;
  // boxes of linear.cuh: A [BM rows, BK k] and W [BN rows, BK k] of int8, one 128-byte swizzle row of k
  REQUIRE(S::BK * 1 == kSw128RowBytes);
  REQUIRE(S::BM <= 256);
  REQUIRE(S::BN <= 256);
  REQUIRE(S::kStageA == S::BM * S::BK);
  REQUIRE(S::kStageA % kSw128AtomBytes == 0);  // the W box starts on an atom
  REQUIRE(S::kStageBytes % kSw128AtomBytes == 0);
  REQUIRE(S::kAlign == kSw128AtomBytes);
  REQUIRE(S::kSmemBytes >= S::kStages * S::kStageBytes + 2 * S::kStages * 8 + (S::kAlign - 1));
  REQUIRE(WgmmaShape::kSmemBytes >= WgmmaShape::kStages * WgmmaShape::kStageBytes + (WgmmaShape::kAlign - 1));
  REQUIRE(S::kSmemBytes <= static_cast<int>(kSm90SmemPerCta));
  REQUIRE(S::kConsumers == 2 * 128);
  REQUIRE(S::BM == 64 * (S::kConsumers / 128));

  const int M = 128 + 100, N = 256 + 200, K = 3 * 128 + 64;  // partial row, column and k tiles
  const emu::Global A(M, K, 1), W(N, K, 1);
  for (int bm : {0, 128})
    for (int bn : {0, 256})
      for (int k0 : {128, 3 * 128}) {  // a whole k-tile and the half one past K
        INFO("bm " << bm << " bn " << bn << " k0 " << k0);
        auto expect_a = [&](int r, int k) { return A.at(static_cast<std::size_t>(bm + r), static_cast<std::size_t>(k0 + k)); };
        auto expect_w = [&](int n, int k) { return W.at(static_cast<std::size_t>(bn + n), static_cast<std::size_t>(k0 + k)); };
        for (int path = 0; path < 2; ++path) {
          const int s = 1;
          emu::Smem smem(S::kStages * S::kStageBytes);
          std::uint8_t* st = smem.bytes.data() + s * S::kStageBytes;
          if (path == 0) {  // gemm_s8_wgmma_ws_kernel: two TMA boxes, expect_tx = kStageBytes
            std::size_t bytes = emu::tma_load_2d_sw128(smem, addr_of(smem, st), A, S::BM, S::BK, k0, bm);
            bytes += emu::tma_load_2d_sw128(smem, addr_of(smem, st + S::kStageA), W, S::BN, S::BK, k0, bn);
            REQUIRE(bytes == static_cast<std::size_t>(S::kStageBytes));
          } else {  // gemm_s8_wgmma_kernel's load_stage: 16-byte cp.async at swz128(r, c), src-size 0 past the ends
            const int k_end = K;
            for (int i = 0; i < WgmmaShape::BM * WgmmaShape::kChunksPerRow; ++i) {
              const int r = i / WgmmaShape::kChunksPerRow, c = i % WgmmaShape::kChunksPerRow;
              std::uint8_t chunk[16] = {};
              if (bm + r < M && k0 + c * 16 < k_end)
                for (int b = 0; b < 16; ++b) chunk[b] = static_cast<std::uint8_t>(A.at(bm + r, k0 + 16 * c + b));
              smem.write(addr_of(smem, st + swz128(r, c)), chunk, 16);
            }
            for (int i = 0; i < WgmmaShape::BN * WgmmaShape::kChunksPerRow; ++i) {
              const int r = i / WgmmaShape::kChunksPerRow, c = i % WgmmaShape::kChunksPerRow;
              std::uint8_t chunk[16] = {};
              if (bn + r < N && k0 + c * 16 < k_end)
                for (int b = 0; b < 16; ++b) chunk[b] = static_cast<std::uint8_t>(W.at(bn + r, k0 + 16 * c + b));
              smem.write(addr_of(smem, st + WgmmaShape::kStageA + swz128(r, c)), chunk, 16);
            }
          }
          for (int i = 0; i < S::kStageBytes; ++i) REQUIRE(smem.writes[s * S::kStageBytes + i] == 1);
          // consumer warpgroup wg: A rows wg·64.., all 256 W rows; k32 steps of 32 bytes
          for (int wg = 0; wg < S::kConsumers / 128; ++wg)
            check_operand(smem, st, 64 * wg, 64, S::BK / kWgmmaKStepBytes, 1, expect_a);
          check_operand(smem, st + S::kStageA, 0, S::BN, S::BK / kWgmmaKStepBytes, 1, expect_w);
        }
      }
}
