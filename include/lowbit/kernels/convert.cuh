/// @file convert.cuh
/// @brief Load-time conversion, on the GPU, between GPTQ checkpoint tensors (qweight / qzeros / scales /
///        g_idx, gptq_v2 zero convention) and the kernels' TiledLayout, in both directions (lossless:
///        converting back reproduces the GPTQ tensors bit for bit). Also an owning device buffer and a
///        host-to-device upload of a host-tiled weight.
///
/// Act-order (`g_idx` not equal to k / group_size): the conversion computes `perm`, the stable order of
/// input columns by group, and stores kernel row k' = GPTQ row perm[k'] so groups are contiguous; the
/// GEMM gathers A's columns through `perm`. Every group must have exactly `group_size` members.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "../bits.hpp"
#include "../error.hpp"
#include "../packing.hpp"
#include "gemm.cuh"
#include "layout.hpp"

namespace lowbit::kernels {

/// GPTQ tensors of one layer on the device (read-only input of convert_from_gptq).
struct GptqDeviceTensors {
  int bits = 4;                          ///< 2, 3, 4 or 8
  std::size_t K = 0;                     ///< input features
  std::size_t N = 0;                     ///< output features
  int group_size = 128;                  ///< rows per group; <= 0 for per-channel
  const std::int32_t* qweight = nullptr; ///< [K*bits/32, N] int32
  const std::int32_t* qzeros = nullptr;  ///< [G, N*bits/32] int32, actual zeros (gptq_v2 convention)
  const std::uint16_t* scales = nullptr; ///< [G, N] fp16 bits
  const std::int32_t* g_idx = nullptr;   ///< [K] group of each input column (null: k / group_size)
};

/// Destination of convert_to_gptq (device buffers of the sizes GptqDeviceTensors describes).
struct GptqDeviceOutput {
  std::int32_t* qweight = nullptr;  ///< [K*bits/32, N]
  std::int32_t* qzeros = nullptr;   ///< [G, N*bits/32]
  std::uint16_t* scales = nullptr;  ///< [G, N] fp16 bits
  std::int32_t* g_idx = nullptr;    ///< [K]
};

/// A weight in the kernel layout, owning its device memory (move-only).
class TiledWeightBuffer {
 public:
  TiledWeightBuffer() = default;
  TiledWeightBuffer(const TiledWeightBuffer&) = delete;
  TiledWeightBuffer& operator=(const TiledWeightBuffer&) = delete;
  /// Takes over another buffer's memory.
  TiledWeightBuffer(TiledWeightBuffer&& o) noexcept { *this = std::move(o); }
  /// Takes over another buffer's memory.
  TiledWeightBuffer& operator=(TiledWeightBuffer&& o) noexcept {
    if (this != &o) {
      release();
      view_ = o.view_;
      o.view_ = {};
    }
    return *this;
  }
  ~TiledWeightBuffer() { release(); }

  /// Allocates uninitialised storage for `meta` (perm only when meta.act_order).
  Status allocate(const TiledMeta& meta) {
    release();
    view_.meta = meta;
    const std::size_t words = meta.K * meta.N * static_cast<std::size_t>(meta.bits) / 32;
    const std::size_t gn = meta.groups() * meta.N;
    if (!alloc(&qw_, words * 4) || !alloc(&sc_, gn * 2) || !alloc(&ze_, gn) ||
        (meta.act_order && !alloc(&pe_, meta.K * 4))) {
      release();
      return lowbit::detail::make_status(StatusCode::cuda_error, "TiledWeightBuffer: cudaMalloc failed");
    }
    view_.qweight = static_cast<const std::uint32_t*>(qw_);
    view_.scales = static_cast<const std::uint16_t*>(sc_);
    view_.zeros = static_cast<const std::uint8_t*>(ze_);
    view_.perm = static_cast<const std::int32_t*>(pe_);
    return Status::success();
  }
  /// Frees the device memory.
  void release() noexcept {
    for (void** p : {&qw_, &sc_, &ze_, &pe_}) {
      if (*p) cudaFree(*p);
      *p = nullptr;
    }
    view_ = {};
  }
  /// The view kernels take.
  [[nodiscard]] const TiledWeightView& view() const { return view_; }
  /// Mutable device pointers (for the converters).
  std::uint32_t* qweight() { return static_cast<std::uint32_t*>(qw_); }
  /// Scales, fp16 bits.
  std::uint16_t* scales() { return static_cast<std::uint16_t*>(sc_); }
  /// Zero codes.
  std::uint8_t* zeros() { return static_cast<std::uint8_t*>(ze_); }
  /// Permutation (null unless act_order).
  std::int32_t* perm() { return static_cast<std::int32_t*>(pe_); }
  /// Updates the flags discovered by a conversion.
  void set_flags(bool sym, bool act_order) {
    view_.meta.sym = sym;
    view_.meta.act_order = act_order;
    if (!act_order) view_.perm = nullptr;
  }

 private:
  static bool alloc(void** p, std::size_t bytes) { return cudaMalloc(p, bytes ? bytes : 1) == cudaSuccess; }
  TiledWeightView view_{};
  void* qw_ = nullptr;
  void* sc_ = nullptr;
  void* ze_ = nullptr;
  void* pe_ = nullptr;
};

/// Copies a host-tiled weight (layout.hpp tile_weight) to the device.
inline Status upload(const HostTiledWeight& h, TiledWeightBuffer& out, cudaStream_t stream) {
  if (Status s = out.allocate(h.meta); !s.ok()) return s;
  cudaError_t e = cudaMemcpyAsync(out.qweight(), h.qweight.data(), h.qweight.size() * 4, cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(out.scales(), h.scales.data(), h.scales.size() * 2, cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess) e = cudaMemcpyAsync(out.zeros(), h.zeros.data(), h.zeros.size(), cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess && h.meta.act_order)
    e = cudaMemcpyAsync(out.perm(), h.perm.data(), h.perm.size() * 4, cudaMemcpyHostToDevice, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return lowbit::detail::make_status(StatusCode::cuda_error, "upload: ", cudaGetErrorString(e));
  return Status::success();
}

namespace detail {

/// Conversion error/flag bits reported by the kernels.
enum ConvertFlags : unsigned {
  kGidxRange = 1u,    ///< a g_idx value outside [0, G)
  kActOrder = 2u,     ///< g_idx differs from k / group_size
  kGroupCount = 4u,   ///< a group without exactly group_size members
  kAsym = 8u,         ///< a zero differs from 2^(bits-1)
};

template <class = void>  // a template so the header can be included by several TUs
__global__ void count_groups_kernel(const std::int32_t* g_idx, int K, int G, int group, unsigned* counts,
                                           unsigned* flags) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= K) return;
  const int g = g_idx ? g_idx[k] : k / group;
  if (g < 0 || g >= G) {
    atomicOr(flags, kGidxRange);
    return;
  }
  if (g != k / group) atomicOr(flags, kActOrder);
  atomicAdd(counts + g, 1u);
}

template <class = void>  // a template so the header can be included by several TUs
__global__ void check_counts_kernel(const unsigned* counts, int G, int group, unsigned* flags) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g < G && counts[g] != static_cast<unsigned>(group)) atomicOr(flags, kGroupCount);
}

/// perm[g*group + rank] = k, rank = members of k's group before k (stable); g_idx validated already.
template <class = void>  // a template so the header can be included by several TUs
__global__ void group_perm_kernel(const std::int32_t* g_idx, int K, int group, std::int32_t* perm) {
  __shared__ std::int32_t chunk[256];
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  const int g = k < K ? g_idx[k] : -1;
  int rank = 0;
  for (int base = 0; base < K && base < (blockIdx.x + 1) * blockDim.x; base += 256) {
    __syncthreads();
    if (base + static_cast<int>(threadIdx.x) < K) chunk[threadIdx.x] = g_idx[base + threadIdx.x];
    __syncthreads();
    for (int i = 0; i < 256 && base + i < k; ++i) rank += chunk[i] == g;
  }
  if (k < K && rank < group) perm[g * group + rank] = k;
}

template <class = void>  // a template so the header can be included by several TUs
__global__ void invert_perm_kernel(const std::int32_t* perm, int K, std::int32_t* inv) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < K) inv[perm[k]] = k;
}

/// One TiledLayout word per thread, assembled bit by bit from GPTQ qweight (generic for any width).
template <int B>
__global__ void gptq_to_tiled_kernel(const std::uint32_t* gq, const std::int32_t* perm, int K, int N,
                                     std::uint32_t* out) {
  using L = TiledLayout<B>;
  const std::size_t total = static_cast<std::size_t>(K) * N * B / 32;
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const std::size_t tile = idx / L::words_per_tile;
  const int within = static_cast<int>(idx % L::words_per_tile);
  const int lane = (within % (32 * 4)) / 4, wl = (within / (32 * 4)) * 4 + within % 4;
  const int KT = K / 64, kt = static_cast<int>(tile % KT), nt = static_cast<int>(tile / KT);
  std::uint32_t word = 0;
  for (int b = 0; b < 32; ++b) {
    const int half = b / 16, sbit = wl * 16 + b % 16, q = sbit / B, ib = sbit % B;
    const int ks = q / 16, j = (q / 2) % 8, h = q % 2, g = lane / 4, t = lane % 4;
    const int kp = kt * 64 + 16 * ks + 2 * t + 8 * h + half, n = nt * 64 + 8 * j + g;
    const int k = perm ? perm[kp] : kp;
    const std::uint32_t code = GptqQWeightLayout<B>::get(gq, K, N, k, n);
    word |= ((code >> ib) & 1u) << b;
  }
  out[idx] = word;
}

template <int B>
__global__ void gptq_groups_to_tiled_kernel(const std::uint32_t* qzeros, const std::uint16_t* scales, int G, int N,
                                            std::uint16_t* sc_out, std::uint8_t* z_out, unsigned* flags) {
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<std::size_t>(G) * N) return;
  const std::size_t g = idx / N, n = idx % N;
  const std::uint32_t z = GptqQZerosLayout<B>::get(qzeros, G, N, g, n);
  if (z != (1u << (B - 1))) atomicOr(flags, kAsym);
  sc_out[g * N + scale_position(n)] = scales[idx];
  z_out[g * N + scale_position(n)] = static_cast<std::uint8_t>(z);
}

/// One GPTQ qweight word per thread, assembled bit by bit from the TiledLayout.
template <int B>
__global__ void tiled_to_gptq_kernel(const std::uint32_t* tq, const std::int32_t* inv, int K, int N, std::uint32_t* out) {
  const std::size_t total = static_cast<std::size_t>(K) * N * B / 32;
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const std::size_t r = idx / N, n = idx % N;
  std::uint32_t word = 0;
  for (int b = 0; b < 32; ++b) {
    const std::size_t kbit = r * 32 + b, k = kbit / B;
    const int ib = static_cast<int>(kbit % B);
    const std::size_t kp = inv ? static_cast<std::size_t>(inv[k]) : k;
    word |= ((TiledLayout<B>::get(tq, K, N, kp, n) >> ib) & 1u) << b;
  }
  out[idx] = word;
}

template <int B>
__global__ void tiled_groups_to_gptq_kernel(const std::uint16_t* sc, const std::uint8_t* z, int G, int N,
                                            std::uint16_t* sc_out, std::uint32_t* qz_out) {
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t zwords = static_cast<std::size_t>(N) * B / 32;
  if (idx < static_cast<std::size_t>(G) * N) {
    const std::size_t g = idx / N, n = idx % N;
    sc_out[idx] = sc[g * N + scale_position(n)];
  }
  if (idx < static_cast<std::size_t>(G) * zwords) {
    const std::size_t g = idx / zwords, c = idx % zwords;
    std::uint32_t word = 0;
    for (int b = 0; b < 32; ++b) {
      const std::size_t nbit = c * 32 + b, n = nbit / B;
      word |= ((static_cast<std::uint32_t>(z[g * N + scale_position(n)]) >> (nbit % B)) & 1u) << b;
    }
    qz_out[idx] = word;
  }
}

template <class = void>  // a template so the header can be included by several TUs
__global__ void write_gidx_kernel(const std::int32_t* perm, int K, int group, std::int32_t* g_idx) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < K) g_idx[perm ? perm[k] : k] = k / group;
}

inline unsigned blocks_for(std::size_t n, unsigned threads = 256) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

/// RAII scratch allocation for the converters.
struct Scratch {
  void* p = nullptr;
  ~Scratch() {
    if (p) cudaFree(p);
  }
};

inline Status check_gptq_shapes(int bits, std::size_t K, std::size_t N, std::size_t group) {
  if (!is_supported_bits(bits))
    return lowbit::detail::make_status(StatusCode::unsupported, "convert: bit width ", bits, " (supported: 2, 3, 4, 8)");
  if (K == 0 || N == 0 || K % 64 || N % 64)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert: K (", K, ") and N (", N,
                                       ") must be positive multiples of 64");
  if (K >= (1u << 30) || N >= (1u << 30))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert: K, N must be < 2^30");
  if (group == 0 || K % group || (group != 32 && group % 64))
    return lowbit::detail::make_status(StatusCode::unsupported, "convert: group size ", group,
                                       " (need 32 or a multiple of 64 dividing K, or per-channel)");
  return Status::success();
}

}  // namespace detail

/// Converts a GPTQ layer into the kernel layout on the GPU (allocates `out`; synchronizes `stream` to
/// read back validation flags). Detects act-order (stores `perm`) and symmetric zeros (meta.sym).
/// @return ok, or invalid_argument for a bad g_idx (out of range, unequal groups), unsupported shapes.
inline Status convert_from_gptq(const GptqDeviceTensors& in, TiledWeightBuffer& out, cudaStream_t stream) {
  const std::size_t group = in.group_size <= 0 ? in.K : static_cast<std::size_t>(in.group_size);
  if (Status s = detail::check_gptq_shapes(in.bits, in.K, in.N, group); !s.ok()) return s;
  if (!in.qweight || !in.qzeros || !in.scales)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert: null GPTQ tensor");
  const int K = static_cast<int>(in.K), N = static_cast<int>(in.N), grp = static_cast<int>(group);
  const int G = K / grp;
  TiledMeta meta{in.bits, in.K, in.N, group, false, true};  // allocate perm; trimmed below
  if (Status s = out.allocate(meta); !s.ok()) return s;
  detail::Scratch scratch;  // [flags, counts[G]]
  if (cudaMalloc(&scratch.p, (G + 1) * sizeof(unsigned)) != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "convert: cudaMalloc failed");
  unsigned* flags = static_cast<unsigned*>(scratch.p);
  unsigned* counts = flags + 1;
  cudaMemsetAsync(scratch.p, 0, (G + 1) * sizeof(unsigned), stream);
  detail::count_groups_kernel<><<<detail::blocks_for(K), 256, 0, stream>>>(in.g_idx, K, G, grp, counts, flags);
  detail::check_counts_kernel<><<<detail::blocks_for(G), 256, 0, stream>>>(counts, G, grp, flags);
  unsigned h_flags = 0;
  cudaMemcpyAsync(&h_flags, flags, sizeof(unsigned), cudaMemcpyDeviceToHost, stream);
  if (cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "convert: ", cudaGetErrorString(e));
  if (h_flags & detail::kGidxRange)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert: g_idx has values outside [0, ", G, ")");
  if (h_flags & detail::kGroupCount)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert: g_idx groups do not all have exactly ",
                                       grp, " members (kernels need equal-size groups)");
  const bool act = (h_flags & detail::kActOrder) != 0;
  if (act) detail::group_perm_kernel<><<<detail::blocks_for(K), 256, 0, stream>>>(in.g_idx, K, grp, out.perm());
  dispatch_bits(in.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    const std::size_t words = in.K * in.N * B / 32;
    detail::gptq_to_tiled_kernel<B><<<detail::blocks_for(words), 256, 0, stream>>>(
        reinterpret_cast<const std::uint32_t*>(in.qweight), act ? out.perm() : nullptr, K, N, out.qweight());
    detail::gptq_groups_to_tiled_kernel<B><<<detail::blocks_for(static_cast<std::size_t>(G) * N), 256, 0, stream>>>(
        reinterpret_cast<const std::uint32_t*>(in.qzeros), in.scales, G, N, out.scales(), out.zeros(), flags);
  });
  cudaMemcpyAsync(&h_flags, flags, sizeof(unsigned), cudaMemcpyDeviceToHost, stream);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return lowbit::detail::make_status(StatusCode::cuda_error, "convert: ", cudaGetErrorString(e));
  out.set_flags((h_flags & detail::kAsym) == 0, act);
  return Status::success();
}

/// Converts a kernel-layout weight back to GPTQ tensors (gptq_v2 zeros) on the GPU; with the weight
/// from convert_from_gptq this reproduces the original tensors exactly. `out` buffers are caller-owned.
inline Status convert_to_gptq(const TiledWeightView& w, const GptqDeviceOutput& out, cudaStream_t stream) {
  const TiledMeta& m = w.meta;
  if (Status s = detail::check_gptq_shapes(m.bits, m.K, m.N, m.group_size); !s.ok()) return s;
  if (!out.qweight || !out.qzeros || !out.scales || !out.g_idx || !w.qweight || !w.scales || !w.zeros ||
      (m.act_order && !w.perm))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "convert_to_gptq: null tensor");
  const int K = static_cast<int>(m.K), N = static_cast<int>(m.N), grp = static_cast<int>(m.group_size), G = K / grp;
  detail::Scratch inv;
  if (m.act_order) {
    if (cudaMalloc(&inv.p, m.K * sizeof(std::int32_t)) != cudaSuccess)
      return lowbit::detail::make_status(StatusCode::cuda_error, "convert_to_gptq: cudaMalloc failed");
    detail::invert_perm_kernel<><<<detail::blocks_for(K), 256, 0, stream>>>(w.perm, K, static_cast<std::int32_t*>(inv.p));
  }
  dispatch_bits(m.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    const std::size_t words = m.K * m.N * B / 32;
    detail::tiled_to_gptq_kernel<B><<<detail::blocks_for(words), 256, 0, stream>>>(
        w.qweight, static_cast<const std::int32_t*>(inv.p), K, N, reinterpret_cast<std::uint32_t*>(out.qweight));
    detail::tiled_groups_to_gptq_kernel<B><<<detail::blocks_for(static_cast<std::size_t>(G) * N), 256, 0, stream>>>(
        w.scales, w.zeros, G, N, out.scales, reinterpret_cast<std::uint32_t*>(out.qzeros));
  });
  detail::write_gidx_kernel<><<<detail::blocks_for(K), 256, 0, stream>>>(m.act_order ? w.perm : nullptr, K, grp, out.g_idx);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return lowbit::detail::make_status(StatusCode::cuda_error, "convert_to_gptq: ", cudaGetErrorString(e));
  return Status::success();
}

}  // namespace lowbit::kernels
