// Host tests of the 128-byte-swizzle address and descriptor arithmetic of the sm_90a kernels
// (include/lowbit/kernels/wgmma_layout.hpp), against the documentation-based models of TMA and wgmma in
// wgmma_emu.hpp: the functions the kernels call must store every element where the TMA unit stores it and
// where wgmma, given the kernels' descriptors, reads it. Built by the host compiler (no CUDA needed), so CI
// and its ASan/UBSan build run it. The kernels' own tile geometry is checked in
// test_wgmma_kernels_host.cu (nvcc: the policies live in .cuh headers).
#include <catch2/catch.hpp>

#include <lowbit/kernels/wgmma_layout.hpp>

#include <cstdint>
#include <vector>

#include "wgmma_emu.hpp"

using namespace lowbit::kernels::detail;
namespace emu = lowbit_test_emu;

namespace {

/// Shared-state-space address of a pointer into the emulated shared memory.
std::uint32_t addr_of(const emu::Smem& s, const std::uint8_t* p) { return static_cast<std::uint32_t>(p - s.bytes.data()); }

}  // namespace

TEST_CASE("TMA SWIZZLE_128B box placement is sw128_at / swz128, zero fill included", "[kernels][wgmma_layout]") {
  for (int elem : {1, 2}) {
    const int box_cols = 128 / elem;
    for (int box_rows : {8, 64, 128, 256}) {
      // a matrix the box overhangs at the bottom and the right (rows past M, columns past K)
      const emu::Global g(static_cast<std::size_t>(box_rows) + 37, static_cast<std::size_t>(box_cols) * 2 + 24, elem);
      for (long c1 : {0L, 37L + box_rows / 2})
        for (long c0 : {0L, static_cast<long>(box_cols) * 2 - 40 + (elem == 1 ? 0 : 16)}) {
          INFO("elem " << elem << " box_rows " << box_rows << " c1 " << c1 << " c0 " << c0);
          emu::Smem s(2048 + static_cast<std::size_t>(box_rows) * 128 + 1024);
          const std::uint32_t dst = 2048;
          const std::size_t bytes = emu::tma_load_2d_sw128(s, dst, g, box_rows, box_cols, c0, c1);
          REQUIRE(bytes == static_cast<std::size_t>(box_rows) * 128);
          std::uint8_t* base = s.bytes.data() + dst;
          for (int r = 0; r < box_rows; ++r) {
            for (int c = 0; c < box_cols; ++c) {
              const std::uint32_t a = addr_of(s, elem == 1 ? sw128_at<1>(base, {r, c}) : sw128_at<2>(base, {r, c}));
              const std::uint32_t expect = g.at(static_cast<std::size_t>(c1 + r), static_cast<std::size_t>(c0 + c));
              REQUIRE(s.read(a, elem) == expect);  // zero where (c1 + r, c0 + c) is past the matrix
            }
            // swz128 (the int8 cp.async writer): chunk c of row r, 16 bytes of the row
            for (int ch = 0; ch < 8; ++ch)
              for (int b = 0; b < 16; ++b) {
                const int col = (16 * ch + b) / elem;
                if ((16 * ch + b) % elem != 0) continue;
                REQUIRE(s.read(dst + static_cast<std::uint32_t>(swz128(r, ch) + b), elem) ==
                        g.at(static_cast<std::size_t>(c1 + r), static_cast<std::size_t>(c0 + col)));
              }
          }
          // the box fills [dst, dst + bytes) exactly once and nothing else
          for (std::size_t i = 0; i < s.writes.size(); ++i)
            REQUIRE(s.writes[i] == (i >= dst && i < dst + bytes ? 1 : 0));
        }
    }
  }
}

TEST_CASE("sw128_desc encodes the PTX matrix descriptor of a 128B-swizzled K-major operand", "[kernels][wgmma_layout]") {
  for (std::uint32_t atom = 0; atom < 227; ++atom)
    for (int row0 : {0, 8, 64, 128})
      for (int ks = 0; ks < 4; ++ks) {
        const std::uint32_t addr = atom * 1024 + static_cast<std::uint32_t>(row0 * 128 + 32 * ks);
        if (addr >= 227 * 1024) continue;
        const emu::Desc d = emu::decode(sw128_desc(addr));
        INFO("addr " << addr);
        REQUIRE(d.start == addr);
        REQUIRE(d.sbo == 1024);         // 8-row groups one atom apart
        REQUIRE(d.lbo == 16);           // unused for swizzled K-major (PTX: "assumed to be 1")
        REQUIRE(d.base_offset == 0);    // pattern on a 1024-byte boundary
        REQUIRE(d.swizzle == 1);        // 128-byte swizzle
        REQUIRE(d.reserved == 0);
      }
}

TEST_CASE("a wgmma through sw128_desc(sw128_kstep_at) reads element (row, k) of the swizzled tile", "[kernels][wgmma_layout]") {
  // tile of 256 rows x 128 bytes at a 1024-aligned offset, each byte a function of its logical place
  for (int elem : {1, 2}) {
    emu::Smem s(4096 + 256 * 128);
    std::uint8_t* tile = s.bytes.data() + 4096;
    const int per_row = 128 / elem;
    auto value = [&](int r, int c) { return static_cast<std::uint32_t>((r * 131 + c * 7 + 3) & (elem == 1 ? 0xFF : 0xFFFF)); };
    for (int r = 0; r < 256; ++r)
      for (int c = 0; c < per_row; ++c) {
        const std::uint32_t v = value(r, c);
        s.write(addr_of(s, elem == 1 ? sw128_at<1>(tile, {r, c}) : sw128_at<2>(tile, {r, c})), &v, static_cast<std::size_t>(elem));
      }
    for (int row0 : {0, 64, 128, 192})      // warpgroup row offsets of the kernels
      for (int rows : {64, 128, 256}) {      // m64 (A), n64 / n128 / n256 (B)
        if (row0 + rows > 256) continue;
        for (int ks = 0; ks < 128 / kWgmmaKStepBytes; ++ks) {
          const emu::Desc d = emu::decode(sw128_desc(addr_of(s, sw128_kstep_at(tile, row0, ks))));
          for (int r = 0; r < rows; ++r)
            for (int kb = 0; kb < kWgmmaKStepBytes; kb += elem) {
              const int k = ks * (kWgmmaKStepBytes / elem) + kb / elem;  // k of the 128-byte row
              INFO("elem " << elem << " row0 " << row0 << " ks " << ks << " r " << r << " k " << k);
              REQUIRE(s.read(emu::wgmma_kmajor_sw128_addr(d, r, kb), elem) == value(row0 + r, k));
            }
        }
      }
  }
}

TEST_CASE("the wgmma model rejects descriptors outside the canonical layout", "[kernels][wgmma_layout]") {
  // guards the model itself: a start that is not in an atom's first row, a non-128B mode, stray bits
  REQUIRE_THROWS(emu::wgmma_kmajor_sw128_addr(emu::decode(sw128_desc(1024 + 128)), 0, 0));
  REQUIRE_THROWS(emu::wgmma_kmajor_sw128_addr(emu::decode(sw128_desc(1024) & ~(3ull << 62)), 0, 0));
  REQUIRE_THROWS(emu::wgmma_kmajor_sw128_addr(emu::decode(sw128_desc(1024) | (1ull << 14)), 0, 0));
  REQUIRE_THROWS(emu::wgmma_kmajor_sw128_addr(emu::decode(sw128_desc(1024 + 112)), 0, 0));  // k-step crosses the row
  REQUIRE_NOTHROW(emu::wgmma_kmajor_sw128_addr(emu::decode(sw128_desc(1024 + 96)), 7, 31));
}
