/// @file tuning.hpp
/// @brief Launch shapes of the decode kernel (M <= 16) as plain data: what GemmOptions::decode forces
/// and what tune_decode (`kernels/tune.cuh`) measures, per M, for one weight shape on one device.
/// Host-only (no CUDA), so tables can be stored and loaded (`kernels/tuning_file.hpp`) anywhere.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "layout.hpp"

namespace lowbit::kernels {

/// Launch shape of the decode kernel (M <= 16): CTAs of `warps` warps on `slabs` adjacent 64-column
/// slabs, the warps splitting the CTA's K range, and `splits` CTAs per slab along K (fp32 partials in
/// the workspace). With two slabs every warp streams the tiles of both over its K range and copies the
/// tile's activation rows once for the two (half the activation traffic at M > 1; at most 8 warps per
/// SM). A zero field is left to the planner (slabs by a rule, two for M > 8 on large weights of up to 4
/// bits, warps and splits by its cost model, given the others); {0, 0, 0}, the default, is the planned
/// launch. Set by tune_decode (`lowbit/kernels/tune.cuh`), which times every shape on the device, or by
/// hand.
struct DecodeChoice {
  int warps = 0;   ///< warps per CTA: 4, 8 or 16 (two slabs: 4 or 8); 0 = planned
  int splits = 0;  ///< CTAs per slab along K: 1 .. kMaxDecodeSplits; 0 = planned
  int slabs = 0;   ///< 64-column slabs per CTA: 1 or 2 (an even number of slabs); 0 = planned
  /// Persistent CTAs: 2 = on (one generation of resident CTAs, each looping over slabs, its warps' copy
  /// rings running on from one slab into the next; needs M <= 8, one slab and one split per CTA and
  /// warps that divide the weight's K/64 tiles), 1 = off, 0 = planned.
  int persist = 0;
  /// Field-wise equality.
  friend constexpr bool operator==(const DecodeChoice& a, const DecodeChoice& b) {
    return a.warps == b.warps && a.splits == b.splits && a.slabs == b.slabs && a.persist == b.persist;
  }
  /// Whether the planner chooses every field.
  [[nodiscard]] constexpr bool planned() const { return warps == 0 && splits == 0 && slabs == 0 && persist == 0; }
};

/// Most CTAs per slab along K a decode launch may have (the planner's own limit).
inline constexpr int kMaxDecodeSplits = 64;

/// Most rows the decode kernel serves (DecodeConfig<B>::max_m, the same for every width).
inline constexpr std::size_t kDecodeMaxM = 16;

/// Whether a choice's fields are in range (warps 0, 4, 8 or 16; splits 0 .. kMaxDecodeSplits; slabs 0, 1
/// or 2; persist 0, 1 or 2); whether a weight can run it is for the planner to say.
constexpr bool decode_choice_in_range(const DecodeChoice& c) {
  return (c.warps == 0 || c.warps == 4 || c.warps == 8 || c.warps == 16) && c.splits >= 0 && c.splits <= kMaxDecodeSplits &&
         c.slabs >= 0 && c.slabs <= 2 && c.persist >= 0 && c.persist <= 2;
}

/// Measured decode launch shapes of one weight shape on one device, per M (what gemm takes through
/// GemmOptions::decode; copy it to every layer of the same shape, see applies_to).
struct DecodeTuning {
  TiledMeta meta{};    ///< the weight it was measured on
  int sm_count = 0;    ///< SMs of the device it was measured on (0: not tuned)
  std::string device;  ///< the device's name (cudaDeviceProp::name)
  std::array<DecodeChoice, kDecodeMaxM + 1> by_m{};  ///< shape per M (index 1 .. 16); {0, 0} = planned
  std::array<double, kDecodeMaxM + 1> us{};          ///< measured time of by_m[M] (0 where not tuned)
  std::array<double, kDecodeMaxM + 1> planned_us{};  ///< measured time of the planner's shape

  /// Whether these shapes were measured for weights like `m` (width, K, N, group size, symmetry,
  /// act-order) on a device named `dev` with `sms` SMs: only then may a layer use them.
  [[nodiscard]] bool applies_to(const TiledMeta& m, int sms, std::string_view dev) const {
    return sm_count > 0 && sms == sm_count && dev == device && m.bits == meta.bits && m.K == meta.K && m.N == meta.N &&
           m.group_size == meta.group_size && m.sym == meta.sym && m.act_order == meta.act_order;
  }
  /// The shape for M rows ({0, 0}, planned, outside 1 .. 16 or where M was not tuned).
  [[nodiscard]] DecodeChoice for_m(std::size_t M) const { return M < by_m.size() ? by_m[M] : DecodeChoice{}; }
};

}  // namespace lowbit::kernels
