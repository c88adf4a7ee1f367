// Host tests of the sm_90a wgmma kernels' shared-memory plumbing, with their own constants and address
// functions (midm_wgmma.cuh, int8_wgmma.cuh, wgmma_layout.hpp) against the documentation-based TMA and
// wgmma models of wgmma_emu.hpp. One ring stage is filled the way the kernel fills it (the int8 core's TMA
// boxes or cp.async swz128 stores, the mid-M kernel's cp.async activation tile), then every element that
// every wgmma of the stage reads through the kernel's descriptors (k-step start advance, warpgroup row
// offset) is compared with the logical element (row, k) of the source matrices, zero-filled past M, N, K.
// The mbarrier expect_tx figures must equal the bytes the boxes deliver, and boxes, stages and buffers must
// sit on 1024-byte swizzle atoms.
// A .cu for nvcc (the policies live in .cuh headers) that never touches a device: runs in CI (label host).
#include <catch2/catch.hpp>

#include <lowbit/kernels/int8_wgmma.cuh>
#include <lowbit/kernels/large_wgmma.cuh>
#include <lowbit/kernels/midm_wgmma.cuh>

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

}  // namespace

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
  one(typename MidmWgmmaPolicies<B>::W256{});
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

// The wgmma int8 epilogue's outlier staging (wgmma_outliers_from_slabs): thread tid of the two consumer
// warpgroups reads activation row lr0 / lr0 + 8 of a chunk and, for accumulator pair (8v + k), weight
// float4 v of its lane quad's block. Every accumulator must meet the weight of its own column (wgmma D
// fragment model) and the activation of its own row; the staging stores (one column per thread) must be a
// bijection onto the quad blocks; the four quads of a quarter-warp must read distinct bank groups.
TEST_CASE("int8 wgmma epilogue: the outlier staging layout matches the accumulator fragment", "[kernels][wgmma_layout]") {
  using L = lowbit::kernels::detail::WgmmaOutlierStage;
  using lowbit::kernels::detail::outlier_quad_pos;
  constexpr int BN = lowbit::kernels::WgmmaShape::BN;
  std::vector<int> hits(L::kWRow, 0);
  for (int n = 0; n < BN; ++n) {
    const int pos = outlier_quad_pos(n);
    REQUIRE(pos >= 0);
    REQUIRE(pos < L::kWRow);
    ++hits[pos];
    REQUIRE(pos % L::kQuadStride < BN / 4);  // inside its quad's 64 entries (the padding is never written)
  }
  int written = 0;
  for (int h : hits) {
    REQUIRE(h <= 1);
    written += h;
  }
  REQUIRE(written == BN);
  for (int tid = 0; tid < 256; ++tid) {
    const int wg = tid / 128, lane = tid % 32;
    const int lr0 = (tid >> 7) * 64 + ((tid >> 5) & 3) * 16 + (lane >> 2);  // as the kernel computes it
    for (int v = 0; v < BN / 16; ++v)
      for (int k = 0; k < 8; ++k) {
        const int i = 8 * v + k;
        const auto d = lowbit_test_emu::wgmma_d_elem(tid % 128, i);
        // weight read: float4 v of quad block (lane % 4), component k % 2 + 2 (k / 4); activation: row half (k / 2) % 2
        const int wread = (lane % 4) * L::kQuadStride + 4 * v + 2 * (k / 4) + k % 2;
        REQUIRE(wread == outlier_quad_pos(d.col));
        REQUIRE(lr0 + 8 * ((k / 2) % 2) == 64 * wg + d.row);
      }
  }
  // LDS.128 phases of 8 lanes: lanes q = 0..3 (twice) read 16-byte chunks in different bank groups
  for (int v = 0; v < BN / 16; ++v)
    for (int q1 = 0; q1 < 4; ++q1)
      for (int q2 = q1 + 1; q2 < 4; ++q2) {
        const int b1 = ((q1 * L::kQuadStride + 4 * v) / 4) % 8, b2 = ((q2 * L::kQuadStride + 4 * v) / 4) % 8;
        REQUIRE(b1 != b2);
      }
}

// The warp-specialized mid-M kernel (midm_wgmma_ws_kernel) fills the activation tile from its producer
// warpgroup: thread t copies chunk t % 8 of rows t / 8 + 16j. Its destinations must be exactly the lock-step
// kernel's (ATile::chunk_offset, anchored above), every chunk once; its mbarriers must sit past both the ring
// and the epilogue staging, 8-byte aligned, inside one CTA's shared memory.
TEST_CASE("midm wgmma ws: producer activation chunks and barrier placement", "[kernels][wgmma_layout]") {
  auto tile = [](auto nt) {
    constexpr int NT = decltype(nt)::value;
    using Tile = ATile<NT, 64>;
    std::vector<int> hits(NT * 8, 0);
    for (int t = 0; t < kMidmWsProducerThreads; ++t)
      for (int j = 0; j < NT * 8 / kMidmWsProducerThreads; ++j) {
        const int r = t / 8 + 16 * j, c = t % 8;
        INFO("NT " << NT << " producer thread " << t << " j " << j);
        const int dst = midm_ws_act_dst(t, j);
        REQUIRE(dst == 2 * Tile::chunk_offset(r, c));
        REQUIRE(dst % 16 == 0);
        ++hits[dst / 16];
      }
    for (int h : hits) REQUIRE(h == 1);
  };
  tile(std::integral_constant<int, 64>{});
  tile(std::integral_constant<int, 128>{});
  tile(std::integral_constant<int, 256>{});

  auto bars = [](auto policy, auto bits) {
    using P = decltype(policy);
    constexpr int B = decltype(bits)::value;
    for (int gpt : {1, 2}) {
      INFO("B " << B << " NT " << P::n_tile << " WG " << P::warpgroups << " gpt " << gpt);
      const std::size_t off = P::template barrier_offset<B>(gpt);
      REQUIRE(off % 8 == 0);
      REQUIRE(off >= static_cast<std::size_t>(P::stages) * P::template stage_bytes<B>(gpt));
      REQUIRE(off >= static_cast<std::size_t>(P::warpgroups) * P::n_tile * P::stage_stride * sizeof(float));
      REQUIRE(P::template smem_bytes<B>(gpt) >= off + 16 * static_cast<std::size_t>(P::stages) + 1023);
      REQUIRE(P::template smem_bytes<B>(gpt) <= kSm90SmemPerCta);
      REQUIRE(P::threads == 128 * P::warpgroups + kMidmWsProducerThreads);
    }
  };
  bars(MidmWgmmaPolicies<2>::W64{}, std::integral_constant<int, 2>{});
  bars(MidmWgmmaPolicies<3>::W64{}, std::integral_constant<int, 3>{});
  bars(MidmWgmmaPolicies<4>::W64{}, std::integral_constant<int, 4>{});
  bars(MidmWgmmaPolicies<8>::W64{}, std::integral_constant<int, 8>{});
  bars(MidmWgmmaPolicies<4>::W128{}, std::integral_constant<int, 4>{});
  bars(MidmWgmmaPolicies<8>::W128{}, std::integral_constant<int, 8>{});
}

// The large-M kernel (large_wgmma.cuh), both CTA shapes (128 x 256 and 256 x 128): (1) the consumers' stmatrix stores
// of the dequantized fragments (large_stage_dst: lane 8i + r gives the address of row r of matrix i, whose 8 elements
// come from lanes 4r..4r+3's register i, 2 each) fill every 16-byte chunk of the block_n x 64 staging tile once, and
// the B descriptors of the four k16-steps read logical element (output column n, k) back; the warpgroups' (slab,
// k16-step) shares cover each pair once; (2) the activation box (TMA, BM rows) read as each warpgroup's A operand
// (rows 64·wg..); (3) the epilogue's accumulator mapping (register 4j + e: row g + 8(e / 2), column 8j + 2t + e % 2)
// is wgmma's m64nN D fragment; (4) the stage layout, the expect_tx byte count and the shared-memory budget.
TEST_CASE("large-M wgmma: stmatrix staging, A boxes, accumulator mapping and stage layout", "[kernels][wgmma_layout]") {
  auto shape = [](auto bm) {
    constexpr int BM = decltype(bm)::value;
    using C = LargeWgmmaConfig<4, 1, BM>;
    INFO("BM " << BM);
    {  // the warpgroups' shares: wg_pairs consecutive (slab, k16-step) pairs each, slab-major
      std::vector<int> covered(static_cast<std::size_t>(C::slabs * TileGeometry::k_steps), 0);
      for (int wg = 0; wg < C::consumer_wgs; ++wg)
        for (int p = wg * C::wg_pairs; p < (wg + 1) * C::wg_pairs; ++p) ++covered[static_cast<std::size_t>(p)];
      for (int c : covered) REQUIRE(c == 1);
      REQUIRE(C::consumer_wgs * 64 == C::block_m);
      REQUIRE(C::block_m * C::block_n == 128 * 256);
    }
    // (1) staging: the fragment element of warp wq, slab sb, k16-step ks, register i, lane l: row (l / 4) + 8(i % 2)
    // of the warp's 16 output columns, k 2(l % 4) + 8(i / 2) (+0, +1) of the step (the m16n8k16 A fragment)
    emu::Smem smem(static_cast<std::size_t>(C::staging_bytes));
    auto logical = [](int n, int k) { return static_cast<std::uint32_t>((n * 64 + k) * 7 + 3) & 0xffffu; };
    for (int wq = 0; wq < 4; ++wq)
      for (int sb = 0; sb < C::slabs; ++sb)
        for (int ks = 0; ks < 4; ++ks)
          for (int l = 0; l < 32; ++l) {  // the row lane l addresses: matrix i = l / 8, row r = l % 8
            const int i = l / 8, r = l % 8;
            std::uint8_t row[16];
            for (int src = 4 * r; src < 4 * r + 4; ++src)  // lanes holding row r of matrix i
              for (int h = 0; h < 2; ++h) {
                const int n = 64 * sb + 16 * wq + src / 4 + 8 * (i % 2);
                const int k = 16 * ks + 2 * (src % 4) + 8 * (i / 2) + h;
                const std::uint32_t v = logical(n, k);
                const int e = 2 * (src % 4) + h;  // element e of the 16-byte row
                row[2 * e] = static_cast<std::uint8_t>(v);
                row[2 * e + 1] = static_cast<std::uint8_t>(v >> 8);
              }
            const int dst = large_stage_dst(l, wq, sb, ks);
            INFO("wq " << wq << " sb " << sb << " ks " << ks << " lane " << l);
            REQUIRE(dst % 16 == 0);
            smem.write(static_cast<std::uint32_t>(dst), row, 16);
          }
    for (int w : smem.writes) REQUIRE(w == 1);
    check_operand(smem, smem.bytes.data(), 0, C::block_n, TileGeometry::k_steps, 2, [&](int n, int k) { return logical(n, k); });

    // (2) the activation box of a stage (rows past M zero-filled) as the two warpgroups' A operands
    const int rows_valid = 100;
    const emu::Global A(static_cast<std::size_t>(rows_valid), 64 * 3, 2);
    emu::Smem ring(2 * static_cast<std::size_t>(C::stage_bytes));
    const std::uint32_t st1 = static_cast<std::uint32_t>(C::stage_bytes);  // stage 1
    REQUIRE(emu::tma_load_2d_sw128(ring, st1, A, C::block_m, 64, 64 * 2, 0) == static_cast<std::size_t>(C::act_bytes));
    for (int wg = 0; wg < C::consumer_wgs; ++wg)
      check_operand(ring, ring.bytes.data() + st1, 64 * wg, 64, TileGeometry::k_steps, 2, [&](int m, int k) {
        return A.at(static_cast<std::size_t>(m), static_cast<std::size_t>(128 + k));
      });

    // (3) accumulators
    for (int tid = 0; tid < 128; ++tid)
      for (int j = 0; j < C::block_n / 8; ++j)
        for (int e = 0; e < 4; ++e) {
          const emu::DElem d = emu::wgmma_d_elem(tid, 4 * j + e);
          const int warp = tid / 32, lane = tid % 32;
          REQUIRE(d.row == 16 * warp + lane / 4 + 8 * (e / 2));
          REQUIRE(d.col == 8 * j + 2 * (lane % 4) + e % 2);
        }

    // (4) layout and budget per width and groups per k-tile
    auto layout = [](auto bits, auto gpt) {
      constexpr int B = decltype(bits)::value, GPT = decltype(gpt)::value;
      using L = LargeWgmmaConfig<B, GPT, BM>;
      INFO("B " << B << " GPT " << GPT << " stages " << L::stages);
      REQUIRE(L::stages >= 2);
      REQUIRE(L::stage_bytes % kSw128AtomBytes == 0);
      REQUIRE(L::staging_off % kSw128AtomBytes == 0);
      REQUIRE(L::staging_bytes % kSw128AtomBytes == 0);
      REQUIRE(L::w_off == L::act_bytes);
      REQUIRE(L::tile_bytes % 16 == 0);
      REQUIRE((L::p_off + L::slabs * GPT * kMidmParamBytes) <= L::stage_bytes);
      REQUIRE(L::barrier_off % 8 == 0);
      REQUIRE(L::smem_bytes >= static_cast<std::size_t>(L::barrier_off) + 16 * L::stages + 1023);
      REQUIRE(L::smem_bytes <= kSm90SmemPerCta);
      // expect_tx of a full CTA: the box, the slabs' weight tiles, GPT x (128 bytes of scales + 64 of zeros) per slab
      const std::size_t tx = static_cast<std::size_t>(L::act_bytes) + L::slabs * (L::tile_bytes + GPT * (128 + 64));
      REQUIRE(tx == static_cast<std::size_t>(L::p_off) + L::slabs * GPT * kMidmParamBytes);
    };
    layout(std::integral_constant<int, 2>{}, std::integral_constant<int, 1>{});
    layout(std::integral_constant<int, 3>{}, std::integral_constant<int, 2>{});
    layout(std::integral_constant<int, 4>{}, std::integral_constant<int, 1>{});
    layout(std::integral_constant<int, 4>{}, std::integral_constant<int, 2>{});
    layout(std::integral_constant<int, 8>{}, std::integral_constant<int, 1>{});
    layout(std::integral_constant<int, 8>{}, std::integral_constant<int, 2>{});
  };
  shape(std::integral_constant<int, 128>{});
  shape(std::integral_constant<int, 256>{});
}
