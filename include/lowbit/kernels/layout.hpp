/// @file layout.hpp
/// @brief The kernels' tile-interleaved weight layout (`TiledLayout<B>`), its scale/zero permutation,
///        and the host-side conversion of a QuantizedWeight into it (host and device, no nvcc needed).
///
/// ## The layout
/// Codes `[K, N]` (K already permuted so that groups are contiguous, see act-order below) are cut into
/// tiles of `tile_k x tile_n = 64 x 64`. Tile `(kt, nt)` is stored at word offset
/// `(nt * K/64 + kt) * words_per_tile`, so one warp walking K for a fixed 64-column slab streams
/// contiguous memory. Inside a tile each of the 32 lanes of a warp owns the 128 codes that are exactly
/// its `mma.m16n8k16` B fragments for 4 k16-steps x 8 n8-tiles: lane `l = 4*g + t` holds, for k16-step
/// `ks` and n8-tile `j`, the register pairs (k = 16ks + 2t + {0,1}, n = 8j + g) and
/// (k = 16ks + 2t + 8 + {0,1}, n = 8j + g). Pair index `q = 2*(8*ks + j) + h` (h: second register).
///
/// A lane's codes are `4*B` 32-bit words holding two parallel bit streams: the *low* 16-bit halves
/// (lowest bits first across words 0, 1, ...) carry the first element of each pair, the *high* halves
/// the second. Pair q therefore sits at the same bit offset `q*B` in both streams, and when B divides 16
/// a single `(word >> s) & (mask | mask << 16)` extracts both codes straight into the two halves of a
/// `half2` — the basis of the magic-number dequantization (see dequant.cuh). Widths that do not divide
/// 16 (3 bits) straddle half-words now and then; the generic extractor handles that.
///
/// Lane word `w` lives at `tile_base + (w/4)*128 + 4*l + w%4`: the lane reads its words with `B`
/// coalesced 16-byte loads (512 bytes per warp instruction).
///
/// ## Scales and zeros
/// `[G, N]` like GPTQ, but within each 64-column slab column `8j + g` is stored at position `8g + j`, so
/// a lane (row g of every n8-tile) reads its 8 scales with one 16-byte load and its 8 zeros with one
/// 8-byte load. Scales stay fp16 bits (lossless), zeros stay uint8 codes (the actual zero, v2 convention).
///
/// ## Act-order
/// With a non-monotone `g_idx`, `perm` is the stable sort of k by g_idx: kernel row `k'` holds original
/// input column `perm[k']`, so each group is a contiguous run of `group_size` rows; kernels gather
/// `A[:, perm[k']]`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../bits.hpp"
#include "../config.hpp"
#include "../error.hpp"
#include "../numeric.hpp"
#include "../packing.hpp"
#include "../quant_types.hpp"

namespace lowbit::kernels {

/// Geometry of the tile-interleaved kernel layout shared by every width.
struct TileGeometry {
  static constexpr int tile_k = 64;        ///< K extent of a warp tile (4 mma k16-steps)
  static constexpr int tile_n = 64;        ///< N extent of a warp tile (8 mma n8-tiles)
  static constexpr int mma_k = 16;         ///< k of mma.m16n8k16
  static constexpr int mma_n = 8;          ///< n of mma.m16n8k16
  static constexpr int lanes = 32;         ///< threads of a warp
  static constexpr int pairs_per_lane = tile_k * tile_n / lanes / 2;  ///< 64 register pairs per lane
  static constexpr int k_steps = tile_k / mma_k;                      ///< 4 k16-steps per tile
  static constexpr int n_tiles = tile_n / mma_n;                      ///< 8 n8-tiles per tile
  static constexpr int vec_words = 4;      ///< 32-bit words in one 16-byte vector load
};

/// Tile-interleaved layout of B-bit codes for the lowbit kernels (see the file comment).
///
/// @tparam B code width in bits (1..8).
///
/// @code
/// using L = lowbit::kernels::TiledLayout<4>;
/// std::vector<std::uint32_t> w(L::packed_size(K, N));
/// L::pack(codes.data(), K, N, w.data());        // codes [K, N] row-major
/// std::uint32_t c = L::get(w.data(), K, N, k, n);
/// @endcode
template <int B>
struct TiledLayout : TileGeometry {
  static_assert(B >= 1 && B <= 8, "TiledLayout supports 1..8-bit codes");
  /// The width traits.
  using bits = Bits<B>;
  /// Words one lane owns in a tile (two 16-bit streams of 64 codes each).
  static constexpr int words_per_lane = pairs_per_lane * B / 16;
  /// 16-byte loads per lane per tile.
  static constexpr int vecs_per_lane = words_per_lane / vec_words;
  /// Words in a 64x64 tile.
  static constexpr int words_per_tile = words_per_lane * lanes;
  static_assert(words_per_lane * 16 == pairs_per_lane * B, "lane streams must fill whole words");
  static_assert(words_per_lane % vec_words == 0, "a lane's words must be whole 16-byte vectors");

  /// True when a `[K, N]` matrix fits the layout (both multiples of 64).
  static constexpr bool fits(std::size_t K, std::size_t N) { return K % tile_k == 0 && N % tile_n == 0 && K && N; }
  /// Words of the packed `[K, N]` matrix (= K*N*B/32).
  static constexpr std::size_t packed_size(std::size_t K, std::size_t N) {
    return K / tile_k * (N / tile_n) * static_cast<std::size_t>(words_per_tile);
  }
  /// Word offset of tile (kt, nt).
  LOWBIT_HOST_DEVICE static std::size_t tile_offset(std::size_t K, std::size_t kt, std::size_t nt) {
    return (nt * (K / tile_k) + kt) * static_cast<std::size_t>(words_per_tile);
  }
  /// Offset inside a tile of word `w` of lane `lane`.
  LOWBIT_HOST_DEVICE static constexpr int lane_word_offset(int lane, int w) {
    return (w / vec_words) * (lanes * vec_words) + lane * vec_words + w % vec_words;
  }

  /// Where element (k, n) of the matrix lives: lane, pair, and which half (0 low, 1 high).
  struct Position {
    std::size_t tile;  ///< word offset of its tile
    int lane;          ///< owning lane
    int pair;          ///< pair index q in [0, 64)
    int half;          ///< 0: low 16-bit stream, 1: high stream
  };
  /// Position of element (k, n).
  LOWBIT_HOST_DEVICE static Position locate(std::size_t K, std::size_t k, std::size_t n) {
    const int kk = static_cast<int>(k % tile_k), nn = static_cast<int>(n % tile_n);
    const int ks = kk / mma_k, r = kk % mma_k;
    const int h = r / 8, t = (r % 8) / 2, e = r % 2;
    const int j = nn / mma_n, g = nn % mma_n;
    return {tile_offset(K, k / tile_k, n / tile_n), g * 4 + t, 2 * (n_tiles * ks + j) + h, e};
  }

  /// Code of pair `q`, half `half` from a lane's words (`lane_words(w)` returns word w).
  template <class WordAt>
  LOWBIT_HOST_DEVICE static std::uint32_t lane_get(WordAt lane_words, int q, int half) {
    const int bit = q * B;
    const int w = bit / 16;
    std::uint32_t v = ((lane_words(w) >> (16 * half)) & 0xffffu) >> (bit % 16);
    if (bit % 16 + B > 16) v |= ((lane_words(w + 1) >> (16 * half)) & 0xffffu) << (16 - bit % 16);
    return v & bits::mask;
  }

  /// Code at (k, n) of a packed `[K, N]` matrix (host or device).
  LOWBIT_HOST_DEVICE static std::uint32_t get(const std::uint32_t* words, std::size_t K, std::size_t /*N*/,
                                              std::size_t k, std::size_t n) {
    const Position p = locate(K, k, n);
    const std::uint32_t* t = words + p.tile;
    return lane_get([&](int w) { return t[lane_word_offset(p.lane, w)]; }, p.pair, p.half);
  }

  /// Stores code `v` at (k, n) of a packed `[K, N]` matrix, leaving the other codes intact.
  LOWBIT_HOST_DEVICE static void set(std::uint32_t* words, std::size_t K, std::size_t /*N*/, std::size_t k,
                                     std::size_t n, std::uint32_t v) {
    const Position p = locate(K, k, n);
    std::uint32_t* t = words + p.tile;
    v &= bits::mask;
    const int bit = p.pair * B;
    for (int i = 0; i < B; ++i) {  // bit by bit: simple, handles half-word straddles
      const int b = bit + i;
      std::uint32_t& word = t[lane_word_offset(p.lane, b / 16)];
      const std::uint32_t m = 1u << (b % 16 + 16 * p.half);
      word = ((v >> i) & 1u) ? (word | m) : (word & ~m);
    }
  }

  /// Packs row-major codes `[K, N]` into `out` (packed_size words, overwritten).
  /// @throws lowbit::Error if K or N is not a multiple of 64 or a code does not fit in B bits.
  template <class Code>
  static void pack(const Code* codes, std::size_t K, std::size_t N, std::uint32_t* out) {
    LOWBIT_CHECK(fits(K, N), "TiledLayout: K (", K, ") and N (", N, ") must be positive multiples of 64");
    std::fill(out, out + packed_size(K, N), 0u);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t n = 0; n < N; ++n) {
        const auto v = codes[k * N + n];
        LOWBIT_CHECK(static_cast<long long>(v) >= 0 && static_cast<long long>(v) <= bits::max_code, "code at (", k, ", ", n,
                     ") does not fit in ", B, " bits");
        set(out, K, N, k, n, static_cast<std::uint32_t>(v));
      }
  }
  /// Unpacks into row-major codes `[K, N]`.
  template <class Code>
  static void unpack(const std::uint32_t* words, std::size_t K, std::size_t N, Code* codes) {
    LOWBIT_CHECK(fits(K, N), "TiledLayout: K (", K, ") and N (", N, ") must be positive multiples of 64");
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t n = 0; n < N; ++n) codes[k * N + n] = static_cast<Code>(get(words, K, N, k, n));
  }
};

/// Position of column n of a `[G, N]` scale/zero row in the kernel layout (8-column interleave per
/// 64-column slab: column 8j + g is stored at 8g + j). Its own inverse's partner: see scale_column.
LOWBIT_HOST_DEVICE constexpr std::size_t scale_position(std::size_t n) {
  const std::size_t nn = n % TileGeometry::tile_n, j = nn / 8, g = nn % 8;
  return n - nn + g * 8 + j;
}
/// Column whose scale is stored at position p (inverse of scale_position).
LOWBIT_HOST_DEVICE constexpr std::size_t scale_column(std::size_t p) {
  const std::size_t pp = p % TileGeometry::tile_n, g = pp / 8, j = pp % 8;
  return p - pp + j * 8 + g;
}

/// Metadata of a weight in the kernel layout (shared by host buffers and device views).
struct TiledMeta {
  int bits = 4;               ///< code width (2, 3, 4, 8)
  std::size_t K = 0;          ///< input features (multiple of 64)
  std::size_t N = 0;          ///< output features (multiple of 64)
  std::size_t group_size = 0; ///< rows per group after permutation (K for per-channel); 32 or a multiple of 64
  bool sym = false;           ///< every zero equals 2^(bits-1): kernels skip zero loads
  bool act_order = false;     ///< `perm` is not the identity: kernels gather A's columns
  /// Number of groups.
  [[nodiscard]] std::size_t groups() const { return group_size ? K / group_size : 0; }
};

/// A weight converted on the host into the kernel layout (what the GPU conversion also produces).
struct HostTiledWeight {
  TiledMeta meta;                    ///< shapes and flags
  std::vector<std::uint32_t> qweight;///< TiledLayout<bits> words of the K-permuted codes
  std::vector<std::uint16_t> scales; ///< [G, N] fp16 bits, scale_position-interleaved
  std::vector<std::uint8_t> zeros;   ///< [G, N] zero codes, scale_position-interleaved
  std::vector<std::int32_t> perm;    ///< [K] original column of kernel row k' (empty unless act_order)
};

namespace detail {
/// Stable order of input columns by group; checks that every group has exactly `group` members.
inline std::vector<std::int32_t> group_permutation(const std::vector<std::int32_t>& g_idx, std::size_t K,
                                                   std::size_t G, std::size_t group) {
  LOWBIT_CHECK(g_idx.size() == K, "g_idx has ", g_idx.size(), " entries, expected K = ", K);
  std::vector<std::int32_t> perm(K);
  std::iota(perm.begin(), perm.end(), 0);
  for (std::size_t k = 0; k < K; ++k)
    LOWBIT_CHECK(g_idx[k] >= 0 && static_cast<std::size_t>(g_idx[k]) < G, "g_idx[", k, "] = ", g_idx[k],
                 " is outside [0, ", G, ")");
  std::stable_sort(perm.begin(), perm.end(), [&](std::int32_t a, std::int32_t b) { return g_idx[a] < g_idx[b]; });
  for (std::size_t k = 0; k < K; ++k)
    LOWBIT_CHECK(static_cast<std::size_t>(g_idx[perm[k]]) == k / group, "group ", g_idx[perm[k]],
                 " does not have exactly ", group, " members (kernels need equal-size groups)");
  return perm;
}
}  // namespace detail

/// Whether the kernels run groups of `group` rows over K: a divisor of K that is 32 or a multiple of 64
/// (the tile is 64 deep; per-channel is group = K).
inline bool kernel_group_supported(std::size_t K, std::size_t group) {
  return group > 0 && K % group == 0 && (group == 32 || group % TileGeometry::tile_k == 0);
}

/// Validates the group size for the kernels: 32, a multiple of 64 dividing K, or K (per-channel).
inline void check_kernel_group(std::size_t K, std::size_t group) {
  LOWBIT_CHECK(group > 0 && K % group == 0, "group size ", group, " does not divide K = ", K);
  LOWBIT_CHECK(kernel_group_supported(K, group), "group size ", group,
               " unsupported by the kernels (need 32 or a multiple of 64)");
}

/// Device bytes of a weight in the kernel layout, i.e. what `TiledWeightBuffer::allocate` (convert.cuh)
/// takes: `K·N·bits/8` of codes, an fp16 scale and a uint8 zero code per group and column, and the int32
/// permutation of act-order weights. Lets a host plan GPU memory without a GPU.
/// @param m the layout's metadata (tile_weight(q).meta, or filled by hand).
inline std::size_t tiled_weight_bytes(const TiledMeta& m) {
  const std::size_t gn = m.groups() * m.N;
  return m.K * m.N * static_cast<std::size_t>(m.bits) / 8 + gn * 2 + gn + (m.act_order ? m.K * 4 : 0);
}

/// Converts a QuantizedWeight (host, unpacked) into the kernel layout on the host.
/// @throws lowbit::Error on shapes the kernels cannot run (K, N not multiples of 64, bad group, g_idx).
inline HostTiledWeight tile_weight(const QuantizedWeight& q) {
  const std::size_t K = q.K, N = q.N, G = q.groups();
  LOWBIT_CHECK(TiledLayout<4>::fits(K, N), "kernel layout needs K (", K, ") and N (", N,
               ") to be positive multiples of 64");
  LOWBIT_CHECK(G > 0 && K % G == 0, "scales imply ", G, " groups, which does not divide K = ", K);
  LOWBIT_CHECK(q.codes.size() == K * N && q.scales.size() == G * N && q.zeros.size() == G * N,
               "QuantizedWeight arrays do not match K, N, G");
  const std::size_t group = K / G;
  check_kernel_group(K, group);
  HostTiledWeight t;
  t.meta = {q.spec.bits, K, N, group, false, false};
  const std::vector<std::int32_t> perm = detail::group_permutation(q.g_idx, K, G, group);
  for (std::size_t k = 0; k < K; ++k) t.meta.act_order |= perm[k] != static_cast<std::int32_t>(k);
  std::vector<std::uint8_t> pc(K * N);
  for (std::size_t k = 0; k < K; ++k)
    std::copy_n(q.codes.begin() + static_cast<std::ptrdiff_t>(perm[k] * N), N, pc.begin() + static_cast<std::ptrdiff_t>(k * N));
  dispatch_bits(q.spec.bits, [&](auto Bc) {
    constexpr int Bv = decltype(Bc)::value;
    t.qweight.resize(TiledLayout<Bv>::packed_size(K, N));
    TiledLayout<Bv>::pack(pc.data(), K, N, t.qweight.data());
  });
  const std::uint32_t symzero = 1u << (q.spec.bits - 1);
  t.meta.sym = true;
  t.scales.resize(G * N);
  t.zeros.resize(G * N);
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t n = 0; n < N; ++n) {
      const float s = q.scales[g * N + n];
      LOWBIT_CHECK(round_to_half(s) == s, "scale (", g, ", ", n, ") = ", s, " is not exactly representable in fp16");
      t.scales[g * N + scale_position(n)] = float_to_half_bits(s);
      t.zeros[g * N + scale_position(n)] = q.zeros[g * N + n];
      t.meta.sym &= q.zeros[g * N + n] == symzero;
    }
  if (t.meta.act_order) t.perm = perm;
  return t;
}

}  // namespace lowbit::kernels
