// Shared helpers of the kernels' GPU tests: random quantized weights, device buffers, the GEMM sweep
// against the double-accumulating host reference, with poisoned outputs.
#pragma once

#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <lowbit/kernels/convert.cuh>
#include <lowbit/kernels/gemm.cuh>
#include <lowbit/kernels/reference.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kt {

using namespace lowbit;
using namespace lowbit::kernels;

#define KT_CUDA(call)                                                              \
  do {                                                                             \
    const cudaError_t e_ = (call);                                                 \
    INFO(#call << " -> " << cudaGetErrorString(e_));                               \
    REQUIRE(e_ == cudaSuccess);                                                    \
  } while (0)

/// Device buffer of bytes (RAII).
struct DevBuf {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit DevBuf(std::size_t n = 0) : bytes(n) {
    if (n) REQUIRE(cudaMalloc(&p, n) == cudaSuccess);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p) cudaFree(p);
  }
  template <class U>
  U* as() const {
    return static_cast<U*>(p);
  }
};

inline std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

/// A random group-quantized weight (fresh each call): random codes, fp16-exact scales, zeros.
inline QuantizedWeight random_weight(int bits, std::size_t K, std::size_t N, std::size_t group, bool sym, bool act) {
  QuantizedWeight q;
  q.spec.bits = bits;
  q.spec.group_size = group == K ? -1 : static_cast<int>(group);
  q.spec.sym = sym;
  q.K = K;
  q.N = N;
  const std::size_t G = K / group;
  std::uniform_int_distribution<int> dc(0, (1 << bits) - 1);
  std::uniform_real_distribution<float> ds(0.002f, 0.03f);
  q.codes.resize(K * N);
  for (auto& v : q.codes) v = static_cast<std::uint8_t>(dc(rng()));
  q.scales.resize(G * N);
  for (auto& s : q.scales) s = round_to_half(ds(rng()));
  q.zeros.resize(G * N);
  for (auto& z : q.zeros) z = static_cast<std::uint8_t>(sym ? (1 << (bits - 1)) : dc(rng()));
  q.g_idx.resize(K);
  for (std::size_t k = 0; k < K; ++k) q.g_idx[k] = static_cast<std::int32_t>(k / group);
  if (act) std::shuffle(q.g_idx.begin(), q.g_idx.end(), rng());
  return q;
}

template <class T>
std::vector<T> random_activations(std::size_t n) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<T> a(n);
  for (auto& v : a) v = T(d(rng()));
  return a;
}

template <class T>
std::vector<float> to_float(const std::vector<T>& v) {
  std::vector<float> f(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
  return f;
}

/// One random GEMM problem on the device: the weight in the kernel layout, fresh activations for Mmax
/// rows and a bias (both uploaded), an output of `y_rows` rows, and the double-accumulating host
/// reference for Mmax rows (with the bias when `with_bias`).
template <class T>
struct GemmProblem {
  TiledWeightBuffer w;     ///< the weight, uploaded
  std::vector<T> A, bias;  ///< host activations [Mmax, K] and bias [N]
  std::vector<float> ref;  ///< host reference [Mmax, N]
  DevBuf dA, dB, dY;       ///< device activations, bias, output
  GemmProblem(const QuantizedWeight& q, std::size_t Mmax, bool with_bias, std::size_t y_rows)
      : A(random_activations<T>(Mmax * q.K)), bias(random_activations<T>(q.N)), dA(A.size() * 2), dB(q.N * 2),
        dY(y_rows * q.N * 2) {
    REQUIRE(upload(tile_weight(q), w, nullptr).ok());
    const auto Af = to_float(A), biasf = to_float(bias);
    ref = reference_gemm(q, Af.data(), Mmax, with_bias ? biasf.data() : nullptr);
    KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
    KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  }
};

/// Tolerance on ‖y − ref‖/‖ref‖: fp16 keeps 11 significant bits (weights and output rounded once
/// each), bf16 keeps 8.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, half_t> ? 2e-3 : 1.2e-2;
}

/// Runs Y = A·W (+bias) on the GPU for each M and compares with the host reference. With
/// `BulkDecode`, M <= 16 runs the decode kernel's bulk-copy (sm_90 TMA) variant instead of the
/// cp.async one gemm uses, through the same planner and workspace. `opt`: gemm's options (e.g. a forced decode shape).
template <int B, class T, bool BulkDecode = false>
void check_gemm(const QuantizedWeight& q, const std::vector<std::size_t>& Ms, bool with_bias, const GemmOptions& opt = {}) {
  constexpr bool bulk_decode = BulkDecode;
  const std::size_t Mmax = *std::max_element(Ms.begin(), Ms.end());
  GemmProblem<T> P(q, Mmax, with_bias, Mmax);
  const TiledWeightBuffer& w = P.w;
  const auto& ref = P.ref;
  DevBuf &dA = P.dA, &dB = P.dB, &dY = P.dY;
  // one workspace for every M, zeroed once: split-K counters must stay valid across calls and shapes
  std::size_t ws = 0;
  for (std::size_t M : Ms) ws = std::max(ws, gemm_workspace_size(M, w.view().meta, opt));
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  for (std::size_t M : Ms) {
    INFO("bits " << B << " bulk decode " << bulk_decode << " K " << q.K << " N " << q.N << " group " << w.view().meta.group_size << " sym "
                 << w.view().meta.sym << " act_order " << w.view().meta.act_order << " M " << M << " bias "
                 << with_bias);
    constexpr std::size_t cb = lowbit::kernels::detail::kCounterBytes;  // the rest is scratch: fill it with garbage
    KT_CUDA(cudaMemset(static_cast<char*>(dW.p) + std::min(ws, cb), 0x5a, ws > cb ? ws - cb : 0));
    KT_CUDA(cudaMemset(dY.p, 0xff, Mmax * q.N * 2));  // poison: all-ones bits are NaN in fp16 and bf16
    for (int rep = 0; rep < 2; ++rep) {  // twice: the split-K counters must be left ready for reuse
      const T* dbias = with_bias ? dB.as<T>() : nullptr;
      Status st;
      if constexpr (BulkDecode) {
        if (M <= DecodeConfig<B>::max_m) {
          st = lowbit::kernels::detail::run_decode<B, T, true>(
              dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws,
              lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, lowbit::kernels::detail::current_sm_count(),
                                                    DecodeChoice{0, 0, 1, 1}),  // the bulk ring: one slab per CTA, not persistent
              nullptr);
        } else {
          st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws, nullptr, opt);
        }
      } else {
        st = gemm_bits<B, T>(dA.as<T>(), M, w.view(), dbias, dY.as<T>(), dW.p, ws, nullptr, opt);
      }
      INFO("status: " << st.message << " rep " << rep);
      CHECK(st.ok());
      if (!st.ok()) break;  // keep sweeping the other configurations
      KT_CUDA(cudaDeviceSynchronize());
      std::vector<T> Y(M * q.N);
      KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
      const std::vector<float> y = to_float(Y);
      const std::vector<float> r(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M * q.N));
      const double err = relative_error(y, r);
      INFO("relative error " << err);
      CHECK(err < tolerance<T>());
    }
    // rows past M must be untouched (still poisoned)
    if (M < Mmax) {
      std::uint16_t after = 0;
      KT_CUDA(cudaMemcpy(&after, dY.as<std::uint16_t>() + M * q.N, 2, cudaMemcpyDeviceToHost));
      CHECK(after == 0xffffu);
    }
  }
}

/// The full sweep for one width and element type: group × sym × act-order × M on odd shapes, plus a
/// long-K case that exercises split-K across CTAs with an uneven last split.
template <int B, class T>
void run_sweep() {
  // 1..16: decode kernel (8 | 9: one or two 8-row MMA blocks); 17+: tile kernels
  const std::vector<std::size_t> Ms = {1, 3, 8, 9, 16, 17, 64, 200, 1024};
  for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), std::size_t(0)})
    for (bool sym : {false, true})
      for (bool act : {false, true}) {
        const std::size_t K = group == 128 ? 384 : 448, N = 320;  // 448 = 7*64, 320 = 5*64
        const std::size_t g = group == 0 ? K : group;
        if (group == 0 && act) continue;  // per-channel has a single group: act-order is the identity
        check_gemm<B, T>(random_weight(B, K, N, g, sym, act), Ms, !sym);
      }
  check_gemm<B, T>(random_weight(B, 3200, 192, 128, false, true), {1, 5, 16, 17, 32, 33, 64, 200}, true);
  check_gemm<B, T>(random_weight(B, 3200, 192, 32, true, false), {1, 16, 40}, false);
  // the weights under the normal L2 policy instead of evict-first (the decode kernel's two row blocks, mid-M)
  GemmOptions normal_l2;
  normal_l2.l2_evict_first = false;
  check_gemm<B, T>(random_weight(B, 3200, 192, 128, false, false), {1, 9, 16, 64, 200}, true, normal_l2);
  // act-order through the column-wise pre-gather (gemm takes it where the row-wise one's shared memory does not
  // fit, K above ~34000), and the row-wise one split into 8 parts of K at every M, and into 7 (K / 8 = 136
  // chunks: parts of 19 and 20), with the automatic choice's uneven splits at M = 19 (7 parts) and 48 (3)
  struct Restore {  // the knob's default back, even when a REQUIRE throws
    int saved = lowbit::kernels::detail::gather_rows_target_ctas;
    ~Restore() { lowbit::kernels::detail::gather_rows_target_ctas = saved; }
  } restore;
  for (int t : {0, 1 << 20, 7, -1}) {
    lowbit::kernels::detail::gather_rows_target_ctas = t;
    INFO("pre-gather CTA target " << t);
    check_gemm<B, T>(random_weight(B, 1088, 128, 64, false, true), {1, 5, 16, 19, 33, 48, 200}, true);
  }
}

// ---- programmatic dependent launch (PDL) of the decode kernel: chained and back-to-back calls ----

/// Next activations of a chained test from the previous output (K = N, so Y [M, N] is the next A
/// [M, K]): A[i] = sin(3 Y[i] + phase + 0.01 (i mod N)), bounded and far from the previous A. Records the Y it
/// read and the A it wrote in the histories. It lets the next kernel launch first and then lingers
/// `spin` clocks, so that a GEMM launched with PDL after it really starts early: a GEMM that read A
/// or wrote Y/workspace before griddepcontrol.wait would see stale activations or clobber the Y read
/// here, and the per-step comparison below fails.
template <class T>
__global__ void chain_next_kernel(const std::uint32_t* Y, std::uint32_t* A, std::uint32_t* y_hist, std::uint32_t* a_hist,
                                  int pairs, int n_pairs, float phase, long long spin) {
  using Ops = lowbit::kernels::ElementOps<T>;
  lowbit::kernels::ptx::pdl_launch_dependents();
  const long long t0 = clock64();
  while (clock64() - t0 < spin) {
  }
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < pairs; i += gridDim.x * blockDim.x) {
    const std::uint32_t y = Y[i];
    y_hist[i] = y;
    const float c = 0.02f * static_cast<float>(i % n_pairs) + phase;
    const float lo = __sinf(3.f * Ops::to_float(static_cast<std::uint16_t>(y & 0xffffu)) + c);
    const float hi = __sinf(3.f * Ops::to_float(static_cast<std::uint16_t>(y >> 16)) + c + 0.01f);
    const std::uint32_t a = Ops::pack2(lo, hi);
    A[i] = a;
    a_hist[i] = a;
  }
}

/// Checks `outputs` consecutive [M, N] blocks of `Y` (`MN` elements each) against `ref_of(o)` (a
/// std::vector<float>): every block within tolerance<T>(), NaN counting as off. `what` and `label_of(o)`
/// name a block in the messages ("step" 3, "launch" 7).
template <class T, class RefOf, class LabelOf>
void check_outputs(const std::vector<T>& Y, std::size_t MN, std::size_t outputs, const char* what, RefOf&& ref_of,
                   LabelOf&& label_of) {
  int bad = 0;
  double worst = 0;
  for (std::size_t o = 0; o < outputs; ++o) {
    const std::vector<T> y(Y.begin() + static_cast<std::ptrdiff_t>(o * MN), Y.begin() + static_cast<std::ptrdiff_t>((o + 1) * MN));
    const double err = relative_error(to_float(y), ref_of(o));
    if (!(err < tolerance<T>())) {
      if (bad < 3) UNSCOPED_INFO(what << " " << label_of(o) << " relative error " << err);
      ++bad;
    }
    worst = std::max(worst, err == err ? err : 1e30);
  }
  INFO(what << "s off the reference: " << bad << " of " << outputs << ", worst relative error " << worst);
  CHECK(bad == 0);
}

/// Calls `run()` (a Status-returning launch of M rows into prob.dY, which holds the all-ones poison in at least
/// M + 1 rows) twice; after each call the first M rows must match prob.ref and row M must still hold the poison.
template <class T, class Run>
void check_twice_against_reference(const GemmProblem<T>& prob, std::size_t M, std::size_t N, Run&& run) {
  for (int rep = 0; rep < 2; ++rep) {
    const Status st = run();
    INFO("status: " << st.message << " rep " << rep);
    REQUIRE(st.ok());
    KT_CUDA(cudaDeviceSynchronize());
    std::vector<T> Y((M + 1) * N);
    KT_CUDA(cudaMemcpy(Y.data(), prob.dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
    const std::vector<float> y = to_float(std::vector<T>(Y.begin(), Y.begin() + static_cast<std::ptrdiff_t>(M * N)));
    const std::vector<float> r(prob.ref.begin(), prob.ref.begin() + static_cast<std::ptrdiff_t>(M * N));
    const double err = relative_error(y, r);
    INFO("relative error " << err);
    CHECK(err < tolerance<T>());
    std::uint16_t after = 0;
    std::memcpy(&after, &Y[M * N], 2);
    CHECK(after == 0xffffu);  // the row past M is untouched
  }
}

/// The split-K counters at the start of workspace `ws` are back to zero for the next call (a plan
/// without splits has none).
inline void check_counters_zero(const void* ws, const lowbit::kernels::detail::GemmPlan& plan) {
  if (plan.splits <= 1) return;
  std::vector<unsigned> cnt(plan.grid.y);
  KT_CUDA(cudaMemcpy(cnt.data(), ws, cnt.size() * sizeof(unsigned), cudaMemcpyDeviceToHost));
  CHECK(std::all_of(cnt.begin(), cnt.end(), [](unsigned c) { return c == 0u; }));
}

/// Chained decode GEMMs on one stream: `steps` times Y = A·W + bias (gemm_bits with `opt`, the same A,
/// Y and workspace buffers every step), then A = chain_next(Y) by a kernel launched plainly. With PDL
/// each GEMM may start while chain_next still runs; every step's output is compared with the host
/// reference of the activations that step must have read (recorded on the device). `graph`: the
/// chain is captured into a CUDA graph (PDL becomes programmatic edges) and replayed twice.
/// `hand_splits` > 0: run_decode with a hand-made plan of 4-warp CTAs and that many K splits instead of
/// gemm_bits (the planner gives these square shapes one split; this puts the split-K partials and
/// counters in the chain).
template <int B, class T>
void check_pdl_chain(const QuantizedWeight& q, std::size_t M, const GemmOptions& opt, int steps, bool graph,
                     int hand_splits = 0) {
  REQUIRE(q.K == q.N);
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  const std::size_t MN = M * q.N;
  const auto A0 = random_activations<T>(MN);
  const auto bias = random_activations<T>(q.N);
  const auto biasf = to_float(bias);
  DevBuf dA(MN * 2), dB(q.N * 2), dY(MN * 2), dAh((steps + 1) * MN * 2), dYh(steps * MN * 2);
  KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  auto plan = lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, lowbit::kernels::detail::current_sm_count());
  if (hand_splits > 0) {
    const int KT = static_cast<int>(q.K / 64);
    plan.warps_k = 4;
    plan.kt_per_warp = (KT + 4 * hand_splits - 1) / (4 * hand_splits);
    plan.kt_per_split = 4 * plan.kt_per_warp;
    plan.splits = (KT + plan.kt_per_split - 1) / plan.kt_per_split;
    REQUIRE(plan.splits == hand_splits);
    plan.grid = dim3(1u, static_cast<unsigned>(q.N / 64), static_cast<unsigned>(plan.splits));
    plan.workspace_bytes = lowbit::kernels::detail::kCounterBytes + plan.splits * M * q.N * 4;
  }
  const std::size_t ws = std::max(gemm_workspace_size(M, w.view().meta),
                                  lowbit::kernels::detail::workspace_total(plan, M, w.view().meta));
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  KT_CUDA(cudaDeviceSynchronize());  // the upload and the zeroed counters: st below does not wait for the legacy stream
  cudaStream_t st;
  KT_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  INFO("PDL chain: bits " << B << " K = N " << q.K << " group " << w.view().meta.group_size << " sym " << w.view().meta.sym
                          << " act " << w.view().meta.act_order << " M " << M << " pdl mode " << static_cast<int>(opt.pdl)
                          << " steps " << steps << " graph " << graph << " plan: warps " << plan.warps_k << " splits "
                          << plan.splits);
  const int pairs = static_cast<int>(MN / 2), n_pairs = static_cast<int>(q.N / 2);
  auto* ah = dAh.as<std::uint32_t>();
  auto* yh = dYh.as<std::uint32_t>();
  bool launched = true;
  auto chain = [&] {
    for (int i = 0; i < steps; ++i) {
      const Status s = hand_splits > 0 ? lowbit::kernels::detail::run_decode<B, T, false>(
                                             dA.as<T>(), M, w.view(), dB.as<T>(), dY.as<T>(), dW.p, ws, plan, st, opt)
                                       : gemm_bits<B, T>(dA.as<T>(), M, w.view(), dB.as<T>(), dY.as<T>(), dW.p, ws, st, opt);
      if (!s.ok()) {
        UNSCOPED_INFO("step " << i << ": " << s.message);
        launched = false;
        return;
      }
      chain_next_kernel<T><<<8, 128, 0, st>>>(dY.as<std::uint32_t>(), dA.as<std::uint32_t>(), yh + i * pairs,
                                              ah + (i + 1) * pairs, pairs, n_pairs, 0.7f * static_cast<float>(i + 1),
                                              20000);
    }
  };
  const int runs = graph ? 2 : 1;
  cudaGraphExec_t ge = nullptr;
  if (graph) {
    cudaGraph_t g;
    KT_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    chain();
    KT_CUDA(cudaStreamEndCapture(st, &g));
    REQUIRE(launched);
    KT_CUDA(cudaGraphInstantiate(&ge, g, 0));
    KT_CUDA(cudaGraphDestroy(g));
  }
  for (int run = 0; run < runs; ++run) {
    INFO("run " << run);
    KT_CUDA(cudaMemcpyAsync(dA.p, A0.data(), MN * 2, cudaMemcpyHostToDevice, st));
    KT_CUDA(cudaMemcpyAsync(ah, A0.data(), MN * 2, cudaMemcpyHostToDevice, st));
    KT_CUDA(cudaMemsetAsync(dYh.p, 0xff, steps * MN * 2, st));  // poison: a step that never ran is NaN
    if (graph) {
      KT_CUDA(cudaGraphLaunch(ge, st));
    } else {
      chain();
      REQUIRE(launched);
    }
    KT_CUDA(cudaStreamSynchronize(st));
    KT_CUDA(cudaGetLastError());
    std::vector<T> Ah((steps + 1) * MN), Yh(steps * MN);
    KT_CUDA(cudaMemcpy(Ah.data(), dAh.p, Ah.size() * 2, cudaMemcpyDeviceToHost));
    KT_CUDA(cudaMemcpy(Yh.data(), dYh.p, Yh.size() * 2, cudaMemcpyDeviceToHost));
    // one reference call for all steps (row block i = the activations step i read): K = N, so the
    // history [steps + 1, M, K] is also [steps * M, K] rows followed by the last step's output
    const std::vector<float> a_all = to_float(Ah);
    const auto ref_all = reference_gemm(q, a_all.data(), static_cast<std::size_t>(steps) * M, biasf.data());
    check_outputs(Yh, MN, static_cast<std::size_t>(steps), "step",
                  [&](std::size_t i) {
                    return std::vector<float>(ref_all.begin() + static_cast<std::ptrdiff_t>(i * MN),
                                              ref_all.begin() + static_cast<std::ptrdiff_t>((i + 1) * MN));
                  },
                  [](std::size_t i) { return i; });
    check_counters_zero(dW.p, plan);
  }
  if (ge) KT_CUDA(cudaGraphExecDestroy(ge));
  KT_CUDA(cudaStreamDestroy(st));
}

/// `launches` back-to-back decode GEMMs on one stream with the same Y and workspace, alternating two
/// activation buffers (nothing in between: with PDL each one may start during the previous one's tail,
/// and its split-K partials and counters must not mix with it). The last output must match the host
/// reference of its activations and the counters must be zero afterwards; then once more in a graph.
/// `every_output`: each launch writes its own Y, and every one is checked. For act-order weights that
/// is the test of the pre-gather's wait on the overwrite side: the gather before launch i + 1 rewrites
/// the workspace's gathered activations that launch i reads.
template <int B, class T>
void check_pdl_back_to_back(const QuantizedWeight& q, std::size_t M, const GemmOptions& opt, int launches,
                            bool every_output = false) {
  const HostTiledWeight ht = tile_weight(q);
  TiledWeightBuffer w;
  REQUIRE(upload(ht, w, nullptr).ok());
  const auto A = random_activations<T>(2 * M * q.K);
  const auto bias = random_activations<T>(q.N);
  const auto Af = to_float(A), biasf = to_float(bias);
  const std::size_t MN = M * q.N, outs = every_output ? static_cast<std::size_t>(launches) : 1;
  DevBuf dA(A.size() * 2), dB(q.N * 2), dY(outs * MN * 2);
  KT_CUDA(cudaMemcpy(dA.p, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
  KT_CUDA(cudaMemcpy(dB.p, bias.data(), q.N * 2, cudaMemcpyHostToDevice));
  const std::size_t ws = gemm_workspace_size(M, w.view().meta);
  DevBuf dW(ws);
  REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
  KT_CUDA(cudaDeviceSynchronize());  // the upload and the zeroed counters: st below does not wait for the legacy stream
  const auto plan = lowbit::kernels::detail::plan_gemm<B>(M, q.N, q.K, lowbit::kernels::detail::current_sm_count());
  INFO("PDL back-to-back: bits " << B << " K " << q.K << " N " << q.N << " M " << M << " act " << w.view().meta.act_order
                                 << " pdl mode " << static_cast<int>(opt.pdl) << " launches " << launches << " splits "
                                 << plan.splits << " every output " << every_output);
  // the host references of the two activation buffers
  const std::vector<float> ref[2] = {reference_gemm(q, Af.data(), M, biasf.data()),
                                     reference_gemm(q, Af.data() + M * q.K, M, biasf.data())};
  cudaStream_t st;
  KT_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (bool graph : {false, true}) {
    INFO("graph " << graph);
    KT_CUDA(cudaMemsetAsync(dY.p, 0xff, outs * MN * 2, st));
    bool ok = true;
    auto loop = [&] {
      for (int i = 0; i < launches && ok; ++i) {
        const T* a = dA.as<T>() + (i % 2) * M * q.K;
        T* y = dY.as<T>() + (every_output ? i : 0) * MN;
        const Status s = gemm_bits<B, T>(a, M, w.view(), dB.as<T>(), y, dW.p, ws, st, opt);
        if (!s.ok()) {
          UNSCOPED_INFO("launch " << i << ": " << s.message);
          ok = false;
        }
      }
    };
    if (graph) {
      cudaGraph_t g;
      cudaGraphExec_t ge;
      KT_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
      loop();
      KT_CUDA(cudaStreamEndCapture(st, &g));
      REQUIRE(ok);
      KT_CUDA(cudaGraphInstantiate(&ge, g, 0));
      KT_CUDA(cudaGraphLaunch(ge, st));
      KT_CUDA(cudaStreamSynchronize(st));
      KT_CUDA(cudaGraphExecDestroy(ge));
      KT_CUDA(cudaGraphDestroy(g));
    } else {
      loop();
      REQUIRE(ok);
    }
    KT_CUDA(cudaStreamSynchronize(st));
    std::vector<T> Y(outs * MN);
    KT_CUDA(cudaMemcpy(Y.data(), dY.p, Y.size() * 2, cudaMemcpyDeviceToHost));
    const auto launch_of = [&](std::size_t o) { return every_output ? o : static_cast<std::size_t>(launches - 1); };
    check_outputs(Y, MN, outs, "launch", [&](std::size_t o) { return ref[launch_of(o) % 2]; }, launch_of);
    check_counters_zero(dW.p, plan);
  }
  KT_CUDA(cudaStreamDestroy(st));
}

/// The PDL checks for one width and element type: chains of 20-50 decode GEMMs (M = 1, 3, 9, 16: both
/// MMA row-block counts; and mid-M M = 40, 48, 128; g128 asym, act-order with its pre-gather kernel in the chain, group 32 sym,
/// hand-made 2 and 4 K splits) eager and in a graph, PDL automatic / on / off; back-to-back launches on
/// a split-K shape, and on act-order weights with every output checked; PdlMode::on reports
/// `unsupported` exactly where PDL is unavailable.
template <int B, class T>
void run_pdl_checks() {
  const bool sm90 = lowbit::kernels::detail::current_compute_capability() >= 90;
  GemmOptions automatic, on, off;
  on.pdl = PdlMode::on;
  off.pdl = PdlMode::off;
  const QuantizedWeight q = random_weight(B, 1024, 1024, 128, false, false);
  check_pdl_chain<B, T>(q, 1, automatic, 50, false);
  check_pdl_chain<B, T>(q, 16, automatic, 50, false);
  check_pdl_chain<B, T>(q, 1, automatic, 50, true);
  check_pdl_chain<B, T>(q, 9, off, 20, false);
  const QuantizedWeight act = random_weight(B, 512, 512, 64, false, true);  // act-order: pre-gather kernel in the chain
  check_pdl_chain<B, T>(act, 3, automatic, 50, false);
  check_pdl_chain<B, T>(act, 3, automatic, 30, true);
  check_pdl_chain<B, T>(act, 16, automatic, 30, false);  // the row-wise pre-gather (M > 8) reading A written just before
  check_pdl_chain<B, T>(random_weight(B, 768, 768, 32, true, false), 9, automatic, 30, false);
  check_pdl_chain<B, T>(q, 1, automatic, 50, false, /*hand_splits=*/2);  // split-K partials + counters in the chain
  check_pdl_chain<B, T>(q, 16, automatic, 30, true, /*hand_splits=*/4);
  if (sm90) check_pdl_chain<B, T>(q, 16, on, 20, true);
  // mid-M (the sm_90a wgmma kernel launches with PDL in LOWBIT_MIDM_WGMMA builds): both row blocks, and
  // act-order with its pre-gather kernel in the chain
  check_pdl_chain<B, T>(q, 48, automatic, 30, false);
  check_pdl_chain<B, T>(q, 128, automatic, 20, true);
  check_pdl_chain<B, T>(act, 40, automatic, 20, false);
  // N = 64 is one slab: the planner must split K across CTAs to use the GPU, so the workspace is in play
  // (K = 16384: at K = 4096 the planner keeps 2- and 3-bit unsplit, the split tail costing more there)
  const QuantizedWeight tall = random_weight(B, 16384, 64, 128, false, false);
  REQUIRE(lowbit::kernels::detail::plan_gemm<B>(1, 64, 16384, lowbit::kernels::detail::current_sm_count()).splits > 1);
  REQUIRE(lowbit::kernels::detail::plan_gemm<B>(16, 64, 16384, lowbit::kernels::detail::current_sm_count()).splits > 1);
  check_pdl_back_to_back<B, T>(tall, 1, automatic, 50);
  check_pdl_back_to_back<B, T>(tall, 16, automatic, 50);
  // act-order: GEMM, pre-gather, GEMM, ... on one workspace, every output checked (decode and mid-M)
  const QuantizedWeight act_wide = random_weight(B, 2048, 1024, 128, false, true);
  check_pdl_back_to_back<B, T>(act_wide, 16, automatic, 40, true);
  check_pdl_back_to_back<B, T>(act_wide, 64, automatic, 20, true);
  // PdlMode::on: launches where PDL is available, else a clear `unsupported` (never a silent plain launch)
  {
    TiledWeightBuffer w;
    REQUIRE(upload(tile_weight(q), w, nullptr).ok());
    DevBuf dA(q.K * 2), dY(q.N * 2);
    KT_CUDA(cudaMemset(dA.p, 0, q.K * 2));
    const std::size_t ws = gemm_workspace_size(1, w.view().meta);
    DevBuf dW(ws);
    REQUIRE(gemm_workspace_init(dW.p, ws, nullptr).ok());
    const Status s = gemm_bits<B, T>(dA.as<T>(), 1, w.view(), nullptr, dY.as<T>(), dW.p, ws, nullptr, on);
    INFO(s.message);
    if (sm90) CHECK(s.ok());
    else CHECK(s.code == StatusCode::unsupported);
    GemmOptions bad;
    bad.pdl = static_cast<PdlMode>(7);
    CHECK(gemm_bits<B, T>(dA.as<T>(), 1, w.view(), nullptr, dY.as<T>(), dW.p, ws, nullptr, bad).code ==
          StatusCode::invalid_argument);
    KT_CUDA(cudaDeviceSynchronize());
  }
}

}  // namespace kt
