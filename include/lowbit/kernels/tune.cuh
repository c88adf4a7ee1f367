/// @file tune.cuh
/// @brief Measured launch shapes for the decode kernel (M <= 16): every shape a weight can run is timed
/// on the device and the fastest is kept, per M, in a DecodeTuning that gemm takes through
/// GemmOptions::decode (WeightOnlyLinear::tune does all of it for a layer).
///
/// Why: make_decode_plan picks the shape from a byte-cost model fitted on an H100. On the session-9
/// sweep of every shape (2/3/4/8 bits, 12 shapes, M = 1-16, `bench/results/decode_sweep_*_s9_all.json`)
/// its choice was on average 2.6 % and at worst 34 % slower than the fastest shape, 8-14 % on the
/// 8192 x 28672 (N = 28672) layer at M = 1-8; no setting of the model's terms did better under
/// cross-validation by shape. Other devices (SM count, bandwidth, shared memory) move the optimum
/// further. Measuring costs one to a few seconds per weight shape (all 16 M) at load time.
///
/// How it measures: the weight is copied until the copies exceed the L2 several times over, and a CUDA
/// graph of back-to-back launches rotating over the copies is replayed (weights from DRAM, launches
/// overlapping as in a model's forward pass under programmatic dependent launch); the median of the
/// replays is kept, and the leaders and the planner's shape are timed a second time. The planner's own
/// shape stays unless another is faster by more than TuneOptions::keep_planned_within (timing noise
/// is ~1-2 %).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "convert.cuh"
#include "gemm.cuh"
#include "tuning.hpp"

namespace lowbit::kernels {

static_assert(DecodeConfig<2>::max_m == kDecodeMaxM && DecodeConfig<3>::max_m == kDecodeMaxM &&
                  DecodeConfig<4>::max_m == kDecodeMaxM && DecodeConfig<8>::max_m == kDecodeMaxM,
              "kDecodeMaxM must match every width's decode kernel");

/// Options of tune_decode.
struct TuneOptions {
  int batch = 8;  ///< launches per timed CUDA graph (back to back, rotating over the weight copies), 1 .. 64
  int reps = 7;   ///< timed replays of the graph per launch shape (the median is kept), 1 .. 101
  int max_splits = 16;  ///< candidates have 1 .. max_splits CTAs per slab along K (at most kMaxDecodeSplits)
  /// Keep the planner's shape unless another one is faster by more than this fraction (0 .. 1).
  double keep_planned_within = 0.03;
  /// The fastest `confirm_top` shapes of the first pass and the planner's are timed a second time and
  /// ranked by the mean of both passes (guards the choice against one lucky measurement; 0 .. 16).
  int confirm_top = 3;
  /// Weight bytes the timed launches rotate over: the weight is copied until the copies reach this, so
  /// that the L2 does not hold it between launches (0: four times the device's L2; at most 64 copies).
  /// The copies are freed before tune_decode returns.
  std::size_t rotation_bytes = 0;
  PdlMode pdl = PdlMode::automatic;  ///< how the timed launches run (as the layer's forward calls will)
};

/// One timed launch shape.
struct DecodeTiming {
  DecodeChoice choice;  ///< explicit warps and splits
  double us = 0;        ///< median time per launch, microseconds
};

/// What tune_decode measured for one M.
struct DecodeTuneResult {
  std::size_t M = 0;                  ///< rows
  DecodeChoice best;                  ///< the shape to use (explicit)
  DecodeChoice planned;               ///< make_decode_plan's shape (explicit)
  double best_us = 0;                 ///< its time
  double planned_us = 0;              ///< the planner's time
  std::vector<DecodeTiming> timings;  ///< every shape timed, fastest first
};

namespace detail {

/// Name of the current device (cudaDeviceProp::name; empty when there is none).
inline std::string current_device_name() {
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return {};
  return prop.name;
}

/// Checks TuneOptions (ok or invalid_argument naming the field).
inline Status check_tune_options(const TuneOptions& o) {
  if (o.batch < 1 || o.batch > 64)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: TuneOptions::batch = ", o.batch, " (1 .. 64)");
  if (o.reps < 1 || o.reps > 101)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: TuneOptions::reps = ", o.reps, " (1 .. 101)");
  if (o.max_splits < 1 || o.max_splits > kMaxDecodeSplits)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: TuneOptions::max_splits = ", o.max_splits,
                                       " (1 .. ", kMaxDecodeSplits, ")");
  if (o.confirm_top < 0 || o.confirm_top > 16)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: TuneOptions::confirm_top = ", o.confirm_top,
                                       " (0 .. 16)");
  if (!(o.keep_planned_within >= 0.0 && o.keep_planned_within <= 1.0))
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: TuneOptions::keep_planned_within = ",
                                       o.keep_planned_within, " (0 .. 1)");
  GemmOptions g;
  g.pdl = o.pdl;
  return check_gemm_options(g);
}

/// The explicit choice a plan is (persist 1 = off, 2 = on).
inline DecodeChoice decode_choice_of(const GemmPlan& p) { return DecodeChoice{p.warps_k, p.splits, p.slabs, p.persist ? 2 : 1}; }

/// The launch shapes width B can run for M rows of an N x K weight on `sms` SMs: every valid
/// (slabs, warps, splits <= max_splits, persistent or not), then the planner's own if it splits further.
/// `planned` receives the planner's shape.
template <int B>
std::vector<DecodeChoice> decode_candidates(std::size_t M, std::size_t N, std::size_t K, int sms, int max_splits,
                                            DecodeChoice& planned) {
  planned = decode_choice_of(make_decode_plan<B>(M, N, K, sms));
  std::vector<DecodeChoice> c;
  for (int ns : {1, 2})
    for (int W : {16, 8, 4})
      for (int s = 1; s <= max_splits; ++s)
        for (int pe : {1, 2})
          if (make_decode_plan<B>(M, N, K, sms, false, W, s, ns, pe).kt_per_warp > 0) c.push_back({W, s, ns, pe});
  if (std::find(c.begin(), c.end(), planned) == c.end()) c.push_back(planned);
  return c;
}

/// Picks the result's best shape: the fastest, unless the planner's is within `keep` of it.
inline void pick_decode_best(DecodeTuneResult& r, double keep) {
  std::stable_sort(r.timings.begin(), r.timings.end(), [](const DecodeTiming& a, const DecodeTiming& b) { return a.us < b.us; });
  r.best = r.timings.front().choice;
  r.best_us = r.timings.front().us;
  for (const DecodeTiming& t : r.timings)
    if (t.choice == r.planned) {
      r.planned_us = t.us;
      if (t.us <= r.best_us * (1.0 + keep)) {
        r.best = t.choice;
        r.best_us = t.us;
      }
    }
}

/// Device resources of one tuning run: the weight's rotation copies, activations, output, workspace, a
/// private stream and two events; everything is released by the destructor.
template <class T>
class DecodeTuner {
 public:
  DecodeTuner(const DecodeTuner&) = delete;
  DecodeTuner& operator=(const DecodeTuner&) = delete;
  DecodeTuner() = default;
  ~DecodeTuner() {
    if (ev_[0]) cudaEventDestroy(ev_[0]);
    if (ev_[1]) cudaEventDestroy(ev_[1]);
    if (st_) cudaStreamDestroy(st_);
    for (void* p : {a_, y_, ws_})
      if (p) cudaFree(p);
  }

  /// Allocates for up to `max_m` rows and the workspace of every candidate of `Ms`; copies the weight.
  Status init(const TiledWeightView& w, const std::vector<std::size_t>& Ms, const TuneOptions& opt) {
    w_ = w;
    opt_ = opt;
    sms_ = current_sm_count();
    if (sms_ <= 0) return lowbit::detail::make_status(StatusCode::cuda_error, "tune_decode: no CUDA device");
    const TiledMeta& m = w.meta;
    std::size_t max_m = 0, ws = 0;
    for (std::size_t M : Ms) {
      max_m = std::max(max_m, M);
      dispatch_bits(m.bits, [&](auto Bc) {
        constexpr int B = decltype(Bc)::value;
        DecodeChoice planned;
        for (const DecodeChoice& c : decode_candidates<B>(M, m.N, m.K, sms_, opt.max_splits, planned))
          ws = std::max(ws, workspace_total(plan_gemm<B>(M, m.N, m.K, sms_, c), M, m));
      });
    }
    if (Status s = make(st_, ev_); !s.ok()) return s;
    ws_bytes_ = std::max<std::size_t>(ws, 256);
    if (cudaMalloc(&a_, max_m * m.K * sizeof(T)) != cudaSuccess || cudaMalloc(&y_, max_m * m.N * sizeof(T)) != cudaSuccess ||
        cudaMalloc(&ws_, ws_bytes_) != cudaSuccess)
      return cuda_fail("cannot allocate the activations, output and workspace");
    // activations: a constant of ordinary magnitude in both types (0x3c3c: 1.06 in fp16, 0.0115 in bf16)
    if (cudaMemsetAsync(a_, 0x3c, max_m * m.K * sizeof(T), st_) != cudaSuccess ||
        cudaMemsetAsync(ws_, 0, ws_bytes_, st_) != cudaSuccess)
      return cuda_fail("cannot initialize the buffers");
    // rotation copies: enough that the timed launches read the weight from DRAM
    int l2 = 0, dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess)
      return cuda_fail("cannot query the L2 size");
    const std::size_t want = opt.rotation_bytes ? opt.rotation_bytes : 4 * static_cast<std::size_t>(l2);
    const std::size_t wb = tiled_weight_bytes(m);
    const std::size_t n = std::clamp<std::size_t>((want + wb - 1) / wb, 1, 64);
    views_.push_back(w);
    copies_.resize(n - 1);
    const std::size_t words = m.K * m.N * static_cast<std::size_t>(m.bits) / 32, gn = m.groups() * m.N;
    for (TiledWeightBuffer& c : copies_) {
      if (Status s = c.allocate(m); !s.ok())
        return lowbit::detail::make_status(StatusCode::cuda_error, "tune_decode: cannot allocate ", n - 1, " copies of the ",
                                           wb, "-byte weight (lower TuneOptions::rotation_bytes)");
      if (cudaMemcpyAsync(c.qweight(), w.qweight, words * 4, cudaMemcpyDeviceToDevice, st_) != cudaSuccess ||
          cudaMemcpyAsync(c.scales(), w.scales, gn * 2, cudaMemcpyDeviceToDevice, st_) != cudaSuccess ||
          (w.zeros && cudaMemcpyAsync(c.zeros(), w.zeros, gn, cudaMemcpyDeviceToDevice, st_) != cudaSuccess) ||
          (m.act_order && cudaMemcpyAsync(c.perm(), w.perm, m.K * 4, cudaMemcpyDeviceToDevice, st_) != cudaSuccess))
        return cuda_fail("cannot copy the weight");
      TiledWeightView v = c.view();
      if (!w.zeros) v.zeros = nullptr;  // symmetric weights may come without zeros: keep the view as given
      views_.push_back(v);
    }
    return cudaStreamSynchronize(st_) == cudaSuccess ? Status::success() : cuda_fail("buffer set-up failed");
  }

  /// Times every candidate shape for M rows.
  Status tune(std::size_t M, DecodeTuneResult& r) {
    r = DecodeTuneResult{};
    r.M = M;
    const TiledMeta& m = w_.meta;
    std::vector<DecodeChoice> cands;
    dispatch_bits(m.bits, [&](auto Bc) {
      cands = decode_candidates<decltype(Bc)::value>(M, m.N, m.K, sms_, opt_.max_splits, r.planned);
    });
    for (const DecodeChoice& c : cands) {
      double us = 0;
      if (Status s = time(M, c, us); !s.ok()) return s;
      r.timings.push_back({c, us});
    }
    // second pass over the leaders and the planner's shape: each keeps the mean of its two times
    pick_decode_best(r, 0.0);  // sorts
    for (std::size_t i = 0; i < r.timings.size(); ++i) {
      DecodeTiming& t = r.timings[i];
      if (static_cast<int>(i) >= opt_.confirm_top && !(t.choice == r.planned)) continue;
      double again = 0;
      if (Status s = time(M, t.choice, again); !s.ok()) return s;
      t.us = 0.5 * (t.us + again);
    }
    pick_decode_best(r, opt_.keep_planned_within);
    return Status::success();
  }

 private:
  static Status make(cudaStream_t& st, cudaEvent_t (&ev)[2]) {
    if (cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess || cudaEventCreate(&ev[0]) != cudaSuccess ||
        cudaEventCreate(&ev[1]) != cudaSuccess)
      return lowbit::detail::make_status(StatusCode::cuda_error, "tune_decode: cannot create a stream and events: ",
                                         cudaGetErrorString(cudaGetLastError()));
    return Status::success();
  }
  static Status cuda_fail(const char* what) {
    const cudaError_t e = cudaGetLastError();
    return lowbit::detail::make_status(StatusCode::cuda_error, "tune_decode: ", what, ": ", cudaGetErrorString(e));
  }

  /// `batch` back-to-back launches of shape c, rotating over the weight copies.
  Status launch_batch(std::size_t M, const DecodeChoice& c) {
    GemmOptions g;
    g.pdl = opt_.pdl;
    g.decode = c;
    return dispatch_bits(w_.meta.bits, [&](auto Bc) {
      constexpr int B = decltype(Bc)::value;
      // what gemm_bits runs for M <= 16 with these options (only the decode kernels are instantiated)
      const GemmPlan plan = plan_gemm<B>(M, w_.meta.N, w_.meta.K, sms_, c);
      for (int i = 0; i < opt_.batch; ++i, rot_ = (rot_ + 1) % views_.size()) {
        const Status s = run_decode<B, T, false>(static_cast<const T*>(a_), M, views_[rot_], nullptr, static_cast<T*>(y_),
                                                 ws_, ws_bytes_, plan, st_, g);
        if (!s.ok()) return s;
      }
      return Status::success();
    });
  }

  /// Median time per launch of shape c: warm-up, then a graph of one batch replayed `reps` times
  /// (plain launches if the stream cannot be captured).
  Status time(std::size_t M, const DecodeChoice& c, double& us) {
    if (Status s = launch_batch(M, c); !s.ok()) return s;  // warm-up: module load, attributes, clocks
    if (cudaStreamSynchronize(st_) != cudaSuccess) return cuda_fail("warm-up launch failed");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    bool use_graph = cudaStreamBeginCapture(st_, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    if (use_graph) {
      const Status s = launch_batch(M, c);
      use_graph = cudaStreamEndCapture(st_, &graph) == cudaSuccess && s.ok() &&
                  cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
      if (!s.ok()) {
        if (graph) cudaGraphDestroy(graph);
        return s;
      }
    }
    if (!use_graph) (void)cudaGetLastError();  // time plain launches instead
    std::vector<double> t;
    Status status = Status::success();
    for (int r = 0; r < opt_.reps && status.ok(); ++r) {
      if (cudaEventRecord(ev_[0], st_) != cudaSuccess) status = cuda_fail("event record failed");
      if (status.ok()) {
        if (use_graph) {
          if (cudaGraphLaunch(exec, st_) != cudaSuccess) status = cuda_fail("graph launch failed");
        } else {
          status = launch_batch(M, c);
        }
      }
      float ms = 0;
      if (status.ok() && (cudaEventRecord(ev_[1], st_) != cudaSuccess || cudaEventSynchronize(ev_[1]) != cudaSuccess ||
                          cudaEventElapsedTime(&ms, ev_[0], ev_[1]) != cudaSuccess))
        status = cuda_fail("timing failed");
      t.push_back(ms * 1000.0 / opt_.batch);
    }
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    if (!status.ok()) return status;
    std::sort(t.begin(), t.end());
    us = t[t.size() / 2];
    return Status::success();
  }

  TiledWeightView w_{};
  TuneOptions opt_{};
  int sms_ = 0;
  std::vector<TiledWeightBuffer> copies_;
  std::vector<TiledWeightView> views_;
  std::size_t rot_ = 0;
  void *a_ = nullptr, *y_ = nullptr, *ws_ = nullptr;
  std::size_t ws_bytes_ = 0;
  cudaStream_t st_ = nullptr;
  cudaEvent_t ev_[2] = {nullptr, nullptr};
};

/// Checks a tuning request (ok or the first problem).
template <class T>
Status check_tune_args(const TiledWeightView& w, const std::vector<std::size_t>& Ms, const TuneOptions& opt) {
  if (Status s = check_tune_options(opt); !s.ok()) return s;
  // the weight checks gemm makes (A and Y are the tuner's own)
  if (Status s = check_gemm_args<T>(nullptr, 0, w, nullptr, nullptr); !s.ok()) return s;
  if (Ms.empty()) return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: no M to tune");
  for (std::size_t M : Ms)
    if (M == 0 || M > kDecodeMaxM)
      return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: M = ", M,
                                         " (the decode kernel serves 1 .. ", kDecodeMaxM, " rows)");
  return Status::success();
}

}  // namespace detail

/// Times every decode launch shape of weight `w` for each M of `Ms` (1 .. 16) and records the fastest
/// in `out` (M not listed keep the planned shape). Synchronizes `stream` first (the weight may still
/// be uploading there), then measures on a private stream and returns when done; allocates the
/// buffers it needs, including copies of the weight (TuneOptions::rotation_bytes), and frees them.
/// Not for use while a stream is being captured.
/// @tparam T element type the layer runs with: lowbit::half_t or lowbit::bfloat16_t.
/// @param w       the weight in the kernel layout (device).
/// @param Ms      the row counts to measure, each 1 .. 16.
/// @param stream  the stream the weight was written on (synchronized, not used for the measurement).
/// @param out     receives the measured shapes (unchanged on failure).
/// @param opt     repetitions, candidates, tolerance, rotation bytes, PDL mode.
/// @param details optional: what was measured for each M, in the order of `Ms`.
/// @return ok; invalid_argument / unsupported for the weight or options (as gemm reports them), an M
///         outside 1 .. 16; cuda_error when an allocation, copy or launch fails (`out` unchanged).
template <class T>
Status tune_decode(const TiledWeightView& w, const std::vector<std::size_t>& Ms, cudaStream_t stream, DecodeTuning& out,
                   const TuneOptions& opt = {}, std::vector<DecodeTuneResult>* details = nullptr) {
  static_assert(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>, "T must be half_t or bfloat16_t");
  if (Status s = detail::check_tune_args<T>(w, Ms, opt); !s.ok()) return s;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &cap) != cudaSuccess || cap != cudaStreamCaptureStatusNone)
    return lowbit::detail::make_status(StatusCode::invalid_argument, "tune_decode: the stream is being captured (tune at load time)");
  if (const cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess)
    return lowbit::detail::make_status(StatusCode::cuda_error, "tune_decode: the stream's earlier work failed: ", cudaGetErrorString(e));
  DecodeTuning t;
  t.meta = w.meta;
  std::vector<DecodeTuneResult> all;
  {
    detail::DecodeTuner<T> tuner;
    if (Status s = tuner.init(w, Ms, opt); !s.ok()) return s;
    for (std::size_t M : Ms) {
      DecodeTuneResult r;
      if (Status s = tuner.tune(M, r); !s.ok()) return s;
      t.by_m[M] = r.best;
      t.us[M] = r.best_us;
      t.planned_us[M] = r.planned_us;
      all.push_back(std::move(r));
    }
  }
  t.sm_count = detail::current_sm_count();
  t.device = detail::current_device_name();
  out = t;
  if (details) *details = std::move(all);
  return Status::success();
}

/// tune_decode for every M from 1 to 16 (parameters as above).
/// @tparam T element type: lowbit::half_t or lowbit::bfloat16_t.
/// @param w the weight.  @param stream its stream.  @param out the measured shapes.  @param opt options.
template <class T>
Status tune_decode(const TiledWeightView& w, cudaStream_t stream, DecodeTuning& out, const TuneOptions& opt = {}) {
  std::vector<std::size_t> Ms(kDecodeMaxM);
  for (std::size_t i = 0; i < kDecodeMaxM; ++i) Ms[i] = i + 1;
  return tune_decode<T>(w, Ms, stream, out, opt);
}

}  // namespace lowbit::kernels
