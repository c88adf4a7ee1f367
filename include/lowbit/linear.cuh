/// @file linear.cuh
/// @brief Quantized linear layers for engines: `WeightOnlyLinear<T>` (GPTQ-style W{2,3,4,8}A16) and
///        `Int8Linear<T>` (LLM.int8()), each owning its device weights and picking the fastest path for
///        the call's M, with the same calling convention: `workspace_size(max_M)` once, one workspace
///        allocation (shareable across layers), `init_workspace` once, then `forward` (asynchronous,
///        no allocation, no host synchronization, returns lowbit::Status).
///
/// `Y[M, N] = A[M, K] · Wᵀ (+ bias)` with A and Y of element type T (lowbit::half_t or
/// lowbit::bfloat16_t) and W the PyTorch `[N, K]` weight the layer was built from.
///
/// @code
/// auto layer = lowbit::WeightOnlyLinear<lowbit::half_t>::from_quantized(q, bias.data(), stream);
/// std::size_t ws_bytes = layer.workspace_size(max_tokens);   // cudaMalloc once
/// layer.init_workspace(ws, ws_bytes, stream);
/// lowbit::Status st = layer.forward(A, M, Y, ws, ws_bytes, stream);
/// @endcode
///
/// Load-time factories (host, may synchronize) throw lowbit::Error on bad input; `forward` never throws.
///
/// On sm_90 the small-M kernels of both layers launch under programmatic dependent launch
/// (kernels::PdlMode, int8::LinearOptions::pdl): they stream the layer's own weights while the kernel
/// before them finishes, and wait for it before they read A or write Y or the workspace. The weights are
/// written only by the factories, which synchronize, so chaining layers needs nothing more.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "error.hpp"
#include "int8/linear.cuh"
#include "int8/llm_int8.hpp"
#include "kernels/convert.cuh"
#include "kernels/dequant_gemm.cuh"
#include "kernels/gemm.cuh"
#include "kernels/layout.hpp"
#include "kernels/tune.cuh"
#include "numeric.hpp"
#include "quant_types.hpp"

namespace lowbit {

namespace detail {

/// Owned device bytes (move-only).
class DeviceBytes {
 public:
  DeviceBytes() = default;
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  /// Takes over another buffer.
  DeviceBytes(DeviceBytes&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  /// Takes over another buffer.
  DeviceBytes& operator=(DeviceBytes&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~DeviceBytes() { reset(); }
  /// Copies `n` host bytes to a new device allocation (stream-ordered; the caller synchronizes).
  /// @throws lowbit::Error naming `what` when allocation or copy fails.
  void upload(const void* host, std::size_t n, cudaStream_t stream, const char* what) {
    reset();
    if (n == 0) return;
    cudaError_t e = cudaMalloc(&p_, n);
    if (e == cudaSuccess) e = cudaMemcpyAsync(p_, host, n, cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) {
      reset();
      fail(what, ": device upload of ", n, " bytes failed: ", cudaGetErrorString(e));
    }
    n_ = n;
  }
  /// Frees the memory.
  void reset() noexcept {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  /// Device pointer (null when empty).
  template <class U>
  [[nodiscard]] U* as() const {
    return static_cast<U*>(p_);
  }
  /// Bytes held.
  [[nodiscard]] std::size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

/// Throws unless the stream's work so far succeeded (load time only).
inline void sync_or_throw(cudaStream_t stream, const char* what) {
  const cudaError_t e = cudaStreamSynchronize(stream);
  LOWBIT_CHECK(e == cudaSuccess, what, ": ", cudaGetErrorString(e));
}

}  // namespace detail

/// A weight-only quantized linear layer (2/3/4/8-bit group-quantized weights, T activations): the fused
/// kernels of kernels/gemm.cuh for small M, dequantize + cuBLAS (kernels/dequant_gemm.cuh) from
/// kernels::kDequantGemmMinM rows when the workspace has room for it, except below
/// kernels::kDequantGemmOverLargeM rows where gemm runs its sm_90a large-M kernel (kernels::dequant_gemm_preferred).
/// @tparam T lowbit::half_t or lowbit::bfloat16_t.
template <class T>
class WeightOnlyLinear {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");

 public:
  WeightOnlyLinear(const WeightOnlyLinear&) = delete;
  WeightOnlyLinear& operator=(const WeightOnlyLinear&) = delete;
  /// Takes over another layer.
  WeightOnlyLinear(WeightOnlyLinear&& o) noexcept
      : w_(std::move(o.w_)), bias_(std::move(o.bias_)), blas_(std::exchange(o.blas_, nullptr)),
        tuning_(std::move(o.tuning_)) {}
  /// Takes over another layer.
  WeightOnlyLinear& operator=(WeightOnlyLinear&& o) noexcept {
    if (this != &o) {
      destroy_blas();
      w_ = std::move(o.w_);
      bias_ = std::move(o.bias_);
      blas_ = std::exchange(o.blas_, nullptr);
      tuning_ = std::move(o.tuning_);
    }
    return *this;
  }
  ~WeightOnlyLinear() { destroy_blas(); }

  /// Builds the layer from a host QuantizedWeight (any g_idx; act-order is permuted at load).
  /// @param q      the quantized weight (codes [K, N], scales/zeros [G, N], g_idx [K]).
  /// @param bias   host [N] bias or nullptr (rounded to T).
  /// @param stream stream for the uploads (synchronized before returning).
  /// @throws lowbit::Error on shapes or groups the kernels cannot run, or a failed upload.
  static WeightOnlyLinear from_quantized(const QuantizedWeight& q, const float* bias, cudaStream_t stream) {
    WeightOnlyLinear l;
    const kernels::HostTiledWeight ht = kernels::tile_weight(q);
    const Status s = kernels::upload(ht, l.w_, stream);
    LOWBIT_CHECK(s.ok(), "WeightOnlyLinear: ", s.message);
    l.set_bias(bias, stream);
    return l;
  }

  /// Builds the layer from GPTQ checkpoint tensors already on the device (converted on the GPU).
  /// @param t      qweight / qzeros (gptq_v2 zeros) / scales / g_idx device pointers and shapes.
  /// @param bias   host [N] bias or nullptr (rounded to T).
  /// @param stream conversion stream (synchronized before returning).
  /// @throws lowbit::Error when the tensors are inconsistent (the conversion's message) or a copy fails.
  static WeightOnlyLinear from_gptq(const kernels::GptqDeviceTensors& t, const float* bias, cudaStream_t stream) {
    WeightOnlyLinear l;
    const Status s = kernels::convert_from_gptq(t, l.w_, stream);
    LOWBIT_CHECK(s.ok(), "WeightOnlyLinear: ", s.message);
    l.set_bias(bias, stream);
    return l;
  }

  /// Workspace bytes for every call with M <= max_M (the fused kernels' split-K region and act-order
  /// gather, and, where some M <= max_M takes the dense path (from kDequantGemmMinM rows, except where gemm's large-M
  /// kernel serves them: kernels::dequant_gemm_preferred), one dense weight slab of at most `dense_limit` bytes;
  /// 0 = the whole weight, i.e. one cuBLAS call).
  [[nodiscard]] std::size_t workspace_size(std::size_t max_M, std::size_t dense_limit = 0) const {
    const kernels::TiledMeta& m = w_.view().meta;
    const bool dequant = blas_ && max_M >= kernels::kDequantGemmMinM;
    const int sms = kernels::detail::current_sm_count();
    std::size_t fused = 0;
    bool dense_used = false;  // some M <= max_M takes the dense path (not where gemm's large-M kernel serves them all)
    for (std::size_t M = 1; M <= max_M; ++M) {  // every M that gemm serves (with a cuBLAS handle, not the dense path's)
      if (dequant && M >= kernels::kDequantGemmOverLargeM) {  // dense from here on
        dense_used = true;
        break;
      }
      if (dequant && kernels::dequant_gemm_preferred(M, m.N, sms)) {
        dense_used = true;
        continue;
      }
      fused = std::max(fused, kernels::gemm_workspace_size(M, m, gemm_options(M)));
    }
    if (!dense_used) return fused;
    std::size_t dense = kernels::gemm_dequant_workspace_size<T>(m);
    if (dense_limit) dense = std::max(std::min(dense, dense_limit), kernels::gemm_dequant_min_workspace_size<T>(m));
    return std::max(fused, kernels::detail::kCounterBytes + dense);
  }

  /// Zeroes a new workspace once (the fused kernels' split-K counters; every call leaves them zero).
  Status init_workspace(void* workspace, std::size_t bytes, cudaStream_t stream) const {
    return kernels::gemm_workspace_init(workspace, std::min(bytes, kernels::detail::kCounterBytes), stream);
  }

  /// Whether forward(M) with a workspace of `bytes` takes the dequantize + cuBLAS path.
  [[nodiscard]] bool uses_dequant_gemm(std::size_t M, std::size_t bytes) const {
    return blas_ && kernels::dequant_gemm_preferred(M, w_.view().meta.N, kernels::detail::current_sm_count()) &&
           bytes >= kernels::detail::kCounterBytes + kernels::gemm_dequant_min_workspace_size<T>(w_.view().meta);
  }

  /// Y = A · Wᵀ + bias, asynchronous on `stream`.
  /// @param A      device [M, K], 16-byte aligned.
  /// @param M      rows (0 is a no-op).
  /// @param Y      device [M, N], 4-byte aligned; overwritten.
  /// @param workspace at least workspace_size(M) bytes, 16-byte aligned, initialized once (init_workspace).
  /// @param bytes  its size.
  /// @param stream CUDA stream.
  /// @return ok, or the kernels' invalid_argument / misaligned / workspace_too_small / cuda_error.
  Status forward(const T* A, std::size_t M, T* Y, void* workspace, std::size_t bytes, cudaStream_t stream) const {
    const T* bias = bias_.as<const T>();
    if (uses_dequant_gemm(M, bytes)) {
      // The dense slab goes after the split-K counters, which must stay zero for the fused path.
      constexpr std::size_t kSkip = kernels::detail::kCounterBytes;
      return kernels::gemm_dequant<T>(blas_, A, M, w_.view(), bias, Y, static_cast<char*>(workspace) + kSkip,
                                      bytes - kSkip, stream);
    }
    return kernels::gemm<T>(A, M, w_.view(), bias, Y, workspace, bytes, stream, gemm_options(M));
  }

  /// Times every launch shape of the decode kernel for this weight on the current device, for each M of
  /// `Ms` (1 .. 16), and runs the fastest from then on (kernels::tune_decode; 0.05-0.3 s per M, by the layer's size).
  /// Call it at load time, before workspace_size: a measured shape may split K further than the
  /// planner's and need more workspace. Layers of the same weight shape can share the result
  /// (decode_tuning, set_decode_tuning) instead of measuring again.
  /// @return ok, or tune_decode's error (the layer then keeps its previous shapes).
  Status tune(cudaStream_t stream, const std::vector<std::size_t>& Ms = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
              const kernels::TuneOptions& opt = {}) {
    kernels::DecodeTuning t;
    const Status s = kernels::tune_decode<T>(w_.view(), Ms, stream, t, opt);
    if (s.ok()) tuning_ = std::move(t);
    return s;
  }
  /// Runs the launch shapes measured on another layer (or loaded from a file) from now on.
  /// @return ok, or invalid_argument when they were measured for another weight shape or device
  ///         (kernels::DecodeTuning::applies_to: width, K, N, group, symmetry, act-order, device name and
  ///         SM count); the layer then keeps its previous shapes.
  Status set_decode_tuning(const kernels::DecodeTuning& t) {
    const int sms = kernels::detail::current_sm_count();
    const std::string dev = kernels::detail::current_device_name();
    const kernels::TiledMeta& m = w_.view().meta;
    if (!t.applies_to(m, sms, dev))
      return lowbit::detail::make_status(
          StatusCode::invalid_argument, "WeightOnlyLinear: the decode tuning was measured for ", t.meta.bits, "-bit K = ",
          t.meta.K, " N = ", t.meta.N, " group ", t.meta.group_size, t.meta.sym ? " sym" : " asym",
          t.meta.act_order ? " act-order" : "", " on '", t.device, "' (", t.sm_count, " SMs), not for this ", m.bits,
          "-bit K = ", m.K, " N = ", m.N, " group ", m.group_size, m.sym ? " sym" : " asym", m.act_order ? " act-order" : "",
          " layer on '", dev, "' (", sms, " SMs)");
    tuning_ = t;
    return Status::success();
  }
  /// The decode launch shapes in use (sm_count == 0: none measured, the planner's).
  [[nodiscard]] const kernels::DecodeTuning& decode_tuning() const { return tuning_; }

  /// The device weight in the kernel layout.
  [[nodiscard]] const kernels::TiledWeightView& weight() const { return w_.view(); }
  /// Input features K.
  [[nodiscard]] std::size_t in_features() const { return w_.view().meta.K; }
  /// Output features N.
  [[nodiscard]] std::size_t out_features() const { return w_.view().meta.N; }
  /// Device bytes of the weight (codes, scales, zeros, permutation) and bias.
  [[nodiscard]] std::size_t weight_bytes() const { return kernels::tiled_weight_bytes(w_.view().meta) + bias_.size(); }

 private:
  WeightOnlyLinear() = default;
  void set_bias(const float* bias, cudaStream_t stream) {
    if (bias) {
      const std::size_t N = w_.view().meta.N;
      std::vector<T> b(N);
      for (std::size_t n = 0; n < N; ++n) {
        LOWBIT_CHECK(std::isfinite(bias[n]), "WeightOnlyLinear: bias[", n, "] = ", bias[n], " is not finite");
        b[n] = T(bias[n]);
      }
      bias_.upload(b.data(), N * sizeof(T), stream, "WeightOnlyLinear bias");
    }
    detail::sync_or_throw(stream, "WeightOnlyLinear: load");
    // Without a handle (no cuBLAS resources) large M stays on the fused kernels: still correct.
    if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) blas_ = nullptr;
  }
  void destroy_blas() noexcept {
    if (blas_) cublasDestroy(blas_);
    blas_ = nullptr;
  }

  /// The gemm options of a call with M rows: the measured decode shape, if any.
  [[nodiscard]] kernels::GemmOptions gemm_options(std::size_t M) const {
    kernels::GemmOptions o;
    o.decode = tuning_.for_m(M);
    return o;
  }

  kernels::TiledWeightBuffer w_;
  detail::DeviceBytes bias_;
  cublasHandle_t blas_ = nullptr;
  kernels::DecodeTuning tuning_;  // measured decode shapes (empty: the planner's)
};

/// An LLM.int8() linear layer: per-row absmax int8 weights (+ optional calibrated fp16 side copy of
/// outlier dimensions), run by int8::linear_forward (outlier decomposition at `options().threshold`).
/// @tparam T lowbit::half_t or lowbit::bfloat16_t.
template <class T>
class Int8Linear {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");

 public:
  /// Quantizes a host weight `W [N, K]` (PyTorch layout) and uploads it.
  /// @tparam W_t float, half_t or bfloat16_t.
  /// @param W      host [N, K] weight.
  /// @param N      output features (multiple of 64).
  /// @param K      input features (multiple of 64).
  /// @param bias   host [N] fp32 bias or nullptr.
  /// @param side   optional calibrated fp16 side copy (int8::calibrate_side_copy) or nullptr.
  /// @param stream upload stream (synchronized before returning).
  /// @throws lowbit::Error on bad shapes, non-finite weights, or a failed upload.
  template <class W_t>
  static Int8Linear from_weights(const W_t* W, int N, int K, const float* bias, const int8::OutlierSideCopy* side,
                                 cudaStream_t stream) {
    return from_quantized(int8::quantize_weight(W, N, K), bias, side, stream);
  }

  /// Uploads an already quantized weight.
  /// @param w      host int8 weight (codes [N, K], fp32 scales [N]).
  /// @param bias   host [N] fp32 bias or nullptr.
  /// @param side   optional fp16 side copy or nullptr.
  /// @param stream upload stream (synchronized before returning).
  /// @throws lowbit::Error on bad shapes or a failed upload.
  static Int8Linear from_quantized(const int8::Int8Weight& w, const float* bias, const int8::OutlierSideCopy* side,
                                   cudaStream_t stream) {
    LOWBIT_CHECK(w.N > 0 && w.K > 0 && w.N % 64 == 0 && w.K % 64 == 0, "Int8Linear: N (", w.N, ") and K (", w.K,
                 ") must be positive multiples of 64");
    LOWBIT_CHECK(w.codes.size() == static_cast<std::size_t>(w.N) * w.K && w.scales.size() == static_cast<std::size_t>(w.N),
                 "Int8Linear: weight arrays do not match N = ", w.N, ", K = ", w.K);
    Int8Linear l;
    l.codes_.upload(w.codes.data(), w.codes.size(), stream, "Int8Linear codes");
    l.scales_.upload(w.scales.data(), w.scales.size() * 4, stream, "Int8Linear scales");
    if (bias) l.bias_.upload(bias, static_cast<std::size_t>(w.N) * 4, stream, "Int8Linear bias");
    l.dw_.N = w.N;
    l.dw_.K = w.K;
    if (side && !side->dims.empty()) {
      LOWBIT_CHECK(side->values.size() == side->dims.size() * static_cast<std::size_t>(w.N),
                   "Int8Linear: side copy holds ", side->values.size(), " values, expected dims x N");
      const std::vector<int> index = int8::make_side_index(*side, w.K);
      l.side_values_.upload(side->values.data(), side->values.size() * 2, stream, "Int8Linear side copy");
      l.side_index_.upload(index.data(), index.size() * 4, stream, "Int8Linear side index");
    }
    detail::sync_or_throw(stream, "Int8Linear: load");
    l.dw_.codes = l.codes_.as<const std::int8_t>();
    l.dw_.scales = l.scales_.as<const float>();
    l.dw_.side_values = l.side_values_.as<const half_t>();
    l.dw_.side_index = l.side_index_.as<const int>();
    return l;
  }

  /// Workspace bytes for every call with M <= max_M (for the current options()).
  [[nodiscard]] std::size_t workspace_size(std::size_t max_M) const {
    std::size_t b = 0;
    for (std::size_t M = 1; M <= max_M; ++M)
      b = std::max(b, int8::linear_workspace_size(static_cast<int>(M), dw_.N, dw_.K, opt_));
    return b;
  }
  /// Nothing to initialize (every call clears what it uses); kept for the common calling convention.
  Status init_workspace(void*, std::size_t, cudaStream_t) const { return Status::success(); }

  /// Y = A · Wᵀ + bias with outlier decomposition, asynchronous on `stream`.
  /// @param A      device [M, K], 16-byte aligned.
  /// @param M      rows (1 .. 2^31 - 1).
  /// @param Y      device [M, N], 4-byte aligned.
  /// @param workspace at least workspace_size(M) bytes, 256-byte aligned.
  /// @param bytes  its size.
  /// @param stream CUDA stream.
  /// @return ok, or int8::linear_forward's invalid_argument / misaligned / workspace_too_small / cuda_error.
  Status forward(const T* A, std::size_t M, T* Y, void* workspace, std::size_t bytes, cudaStream_t stream) const {
    if (M == 0) return Status::success();
    if (M > static_cast<std::size_t>(INT32_MAX))
      return lowbit::detail::make_status(StatusCode::invalid_argument, "Int8Linear: M = ", M, " is too large");
    return int8::linear_forward<T>(A, static_cast<int>(M), dw_, bias_.as<const float>(), Y, workspace, bytes, opt_,
                                   stream);
  }

  /// Run-time options (threshold, outlier-list capacity); change before querying workspace_size.
  int8::LinearOptions& options() { return opt_; }
  /// Device views of the weight.
  [[nodiscard]] const int8::DeviceWeight& weight() const { return dw_; }
  /// Input features K.
  [[nodiscard]] std::size_t in_features() const { return static_cast<std::size_t>(dw_.K); }
  /// Output features N.
  [[nodiscard]] std::size_t out_features() const { return static_cast<std::size_t>(dw_.N); }
  /// Device bytes of codes, scales, side copy and bias.
  [[nodiscard]] std::size_t weight_bytes() const {
    return codes_.size() + scales_.size() + side_values_.size() + side_index_.size() + bias_.size();
  }

 private:
  Int8Linear() = default;
  detail::DeviceBytes codes_, scales_, bias_, side_values_, side_index_;
  int8::DeviceWeight dw_{};
  int8::LinearOptions opt_{};
};

}  // namespace lowbit
