// GPU tests of the LLM.int8() layer (lowbit/int8/linear.cuh) against the host reference
// (lowbit/int8/llm_int8.hpp): activation codes / scales / outlier list bit-exact, outputs within
// fp16/bf16 rounding of the double-precision reference, every path (small-M, tiled split-K, tiled fused,
// and with LOWBIT_INT8_WGMMA the sm_90a wgmma split-K and fused kernels),
// poisoned outputs, outlier-list overflow fallback, side copy, threshold 0, non-finite reporting.
// Tag [sanitize] marks the reduced set run under compute-sanitizer.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include <lowbit/int8/linear.cuh>

using namespace lowbit;

namespace {

#define CUDA_OK(x) REQUIRE((x) == cudaSuccess)

template <class T>
struct DevBuf {
  T* p = nullptr;
  std::size_t n = 0;
  explicit DevBuf(std::size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, std::max<std::size_t>(count, 1) * sizeof(T))); }
  DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

template <class T>
float ulp_rel();
template <>
float ulp_rel<half_t>() { return std::ldexp(1.f, -11); }
template <>
float ulp_rel<bfloat16_t>() { return std::ldexp(1.f, -8); }

struct Case {
  int M, N, K;
  int outliers = 6;       // planted outlier columns
  float threshold = 6.f;
  int max_outliers = 256;
  int force_path = -1;
  int tile_mt = 0, tile_nt = 0;
  bool side = false;
  bool pdl = true;
  bool capture = true;  // small-M path: outlier weights from the weight stream (false: gathered)
  bool tma = true;      // wgmma paths: the warp-specialized TMA kernel (false: the cp.async kernel)
  int max_blocks = 0;   // TMA kernel: LinearOptions::wgmma_max_blocks (0: one per SM; n: several tiles per block)
  int ring_splits = 0;  // ring path: LinearOptions::ring_splits (0: by shape)
  int ring_act = 0;     // ring and stream paths: LinearOptions::ring_act (0: by shape; 1, 2 separate kernels; 3 fused)
  bool expect_fused = false;  // the plan must run the activation pass inside the GEMM kernel (ring or stream)
  int expect_path = -1;       // >= 0: the plan must take this path (int8::detail::Plan::Path)
  float row_fraction = 0.3f;  // rows carrying the outlier values
};

/// Runs one forward on fresh random data and checks it against the host reference.
template <class T>
void run_case(const Case& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> ud(0.f, 1.f);
  const int M = c.M, N = c.N, K = c.K;
  std::vector<T> A(static_cast<std::size_t>(M) * K), W(static_cast<std::size_t>(N) * K);
  for (auto& a : A) {
    float v = nd(rng);
    if (std::fabs(v) >= 5.f) v *= 0.5f;  // keep the Gaussian part below the threshold
    a = T(v);
  }
  for (auto& w : W) w = T(0.02f * nd(rng));
  std::vector<int> cols;
  std::uniform_int_distribution<int> cd(0, K - 1);
  while (static_cast<int>(cols.size()) < c.outliers) {
    const int k = cd(rng);
    if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
  }
  bool planted = false;
  for (int m = 0; m < M; ++m)
    if (ud(rng) < c.row_fraction || (m == M - 1 && !planted))
      for (int k : cols) {
        A[static_cast<std::size_t>(m) * K + k] = T((rng() & 1 ? 1.f : -1.f) * (20.f + 40.f * ud(rng)));
        planted = true;
      }
  std::vector<float> bias(N);
  for (auto& b : bias) b = 0.1f * nd(rng);

  const auto wq = int8::quantize_weight(W.data(), N, K);
  int8::OutlierSideCopy side;
  if (c.side) side = int8::calibrate_side_copy(A.data(), M, W.data(), N, K, 6.f, 8);
  const auto aq = int8::quantize_activations(A.data(), M, K, c.threshold);
  const auto ref = int8::decomposed_matmul(A.data(), aq, wq, bias.data(), c.side ? &side : nullptr);

  DevBuf<T> dA(A);
  DevBuf<std::int8_t> dW(wq.codes);
  DevBuf<float> dS(wq.scales), dB(bias);
  std::vector<int> sidx = c.side ? int8::make_side_index(side, K) : std::vector<int>{};
  DevBuf<int> dSI(sidx);
  DevBuf<half_t> dSV(side.values);
  int8::DeviceWeight dw{dW.p, dS.p, N, K};
  if (c.side) {
    dw.side_index = dSI.p;
    dw.side_values = dSV.p;
  }
  int8::LinearOptions opt;
  opt.threshold = c.threshold;
  opt.max_outliers = c.max_outliers;
  opt.force_path = c.force_path;
  opt.tile_mt = c.tile_mt;
  opt.tile_nt = c.tile_nt;
  opt.pdl = c.pdl;
  opt.capture_outliers = c.capture;
  opt.wgmma_tma = c.tma;
  opt.wgmma_max_blocks = c.max_blocks;
  opt.ring_splits = c.ring_splits;
  opt.ring_act = c.ring_act;
  const auto plan = int8::detail::make_plan(M, N, K, int8::detail::sm_count(), opt.force_path, opt.tile_mt,
                                            opt.tile_nt, opt.ring_splits, opt.ring_act);
  if (c.expect_fused)
    REQUIRE(((plan.path == int8::detail::Plan::ring || plan.path == int8::detail::Plan::stream) && plan.fused_act));
  if (c.ring_act == 1 || c.ring_act == 2) REQUIRE(!plan.fused_act);
  if (c.expect_path >= 0) REQUIRE(static_cast<int>(plan.path) == c.expect_path);
  const std::size_t bytes = int8::linear_workspace_size(M, N, K, opt);
  DevBuf<std::uint8_t> ws(bytes);
  constexpr std::size_t kGuard = 512;  // poisoned elements after Y: no kernel (tensor stores included) writes past it
  DevBuf<T> dY(static_cast<std::size_t>(M) * N + kGuard);
  CUDA_OK(cudaMemset(dY.p, 0xff, dY.n * sizeof(T)));  // poison: NaN in fp16 and bf16
  CUDA_OK(cudaMemset(ws.p, 0x5a, bytes));              // garbage workspace: the call must clear what it needs
  const Status st = int8::linear_forward(dA.p, M, dw, dB.p, dY.p, ws.p, bytes, opt, nullptr);
  INFO(st.message);
  REQUIRE(st.ok());
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaGetLastError());

  int8::Int8Stats stats;
  CUDA_OK(cudaMemcpy(&stats, int8::workspace_stats(ws.p), sizeof stats, cudaMemcpyDeviceToHost));
  REQUIRE(stats.outlier_count == static_cast<int>(aq.outlier_cols.size()));
  REQUIRE(stats.overflow == (stats.outlier_count > c.max_outliers ? 1 : 0));
  REQUIRE(stats.nonfinite == 0);

  const auto Y = dY.get();
  std::size_t guard_bad = 0;
  for (std::size_t i = ref.size(); i < Y.size(); ++i) {
    std::uint16_t b;
    std::memcpy(&b, &Y[i], 2);
    guard_bad += b != 0xffffu;
  }
  REQUIRE(guard_bad == 0);
  double max_ref = 0;
  for (double r : ref) max_ref = std::max(max_ref, std::fabs(r));
  const double rel = ulp_rel<T>();
  std::size_t bad = 0, first_bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double y = static_cast<float>(Y[i]);
    // output rounding of T + fp32 accumulation of the outlier products and scales
    const double tol = rel * std::fabs(ref[i]) + 1e-5 * max_ref + 1e-6;
    if (!(std::fabs(y - ref[i]) <= tol)) {
      if (!bad) first_bad = i;
      ++bad;
    }
  }
  INFO("M=" << M << " N=" << N << " K=" << K << " path=" << c.force_path << " tma=" << c.tma << " max_blocks="
            << c.max_blocks << " ring_splits=" << c.ring_splits << " ring_act=" << c.ring_act
            << " fused=" << plan.fused_act << " first bad " << first_bad << " got "
            << (bad ? static_cast<float>(Y[first_bad]) : 0.f) << " want " << (bad ? ref[first_bad] : 0.0));
  REQUIRE(bad == 0);
}

}  // namespace

/// The separate activation kernels that the ring path used by shape before the fused pass (one kernel
/// while M·K <= 65536, the rule until session 21): tests that cover them force it where M <= 4 would now
/// fuse, so that both modes stay covered.
int separate_act(int M, int K) { return static_cast<long long>(M) * K <= 65536 ? 1 : 2; }

/// The ring path with about 75 outlier columns in each of two CTAs' K ranges (150 over K = 4160, split in
/// two): past a CTA's 64-entry table, so the rest are read from A when their stage comes. `ring_act` 3
/// asks for the fused activation pass (and the test asserts the plan has it).
Case past_ring_table(int M, int ring_act) {
  Case c{M, 128, 4160};
  c.outliers = 150;
  c.force_path = 5;
  c.ring_splits = 2;
  c.row_fraction = 0.5f;
  c.ring_act = ring_act;
  c.expect_fused = ring_act == 3;
  return c;
}

/// The small-M paths' edge cases, in this order: on an N x K layer the side copy, a 2-entry outlier list
/// (overflow), plain launches, threshold 0 (W8A8); then every value an outlier on a 64 x 512 layer. The
/// caller sets the path and its modes.
std::vector<Case> small_m_edge_cases(int M, int N, int K) {
  Case side{M, N, K};
  side.side = true;
  Case over{M, N, K};
  over.max_outliers = 2;
  Case nopdl{M, N, K};
  nopdl.pdl = false;
  Case w8a8{M, N, K};
  w8a8.threshold = 0.f;
  Case all{M, 64, 512};
  all.outliers = 0;
  all.threshold = 1e-30f;
  all.max_outliers = 16;
  return {side, over, nopdl, w8a8, all};
}

/// Paths to sweep: the portable ones, plus the wgmma ones where this build and device have them.
std::vector<int> test_paths() {
  std::vector<int> v{-1, 0, 1, 2};
  if (int8::wgmma_available()) {
    v.push_back(3);
    v.push_back(4);
  }
  if (int8::ring_available()) v.push_back(5);
  if (int8::stream_available()) v.push_back(6);
  return v;
}

TEMPLATE_TEST_CASE("int8 GPU layer matches the host reference across M and paths", "[int8][gpu]", half_t, bfloat16_t) {
  unsigned seed = 100;
  INFO("wgmma available: " << int8::wgmma_available());
  for (int M : {1, 3, 16, 17, 32, 64, 200, 1024}) {
    // N = 320 and 2112: partial 256-column wgmma tiles; K = 576: a half 128-byte wgmma stage
    const int N = M >= 1024 ? 2112 : 320, K = M >= 1024 ? 576 : 1024;
    for (int path : test_paths()) {
      if ((path == 0 && M > 32) || (path >= 5 && M > 16)) continue;
      Case c{M, N, K};
      c.force_path = path;
      run_case<TestType>(c, ++seed);
      if (path == 3 || path == 4) {  // the wgmma paths' other kernel (the TMA one is the default)
        c.tma = false;
        run_case<TestType>(c, ++seed);
      }
    }
    if (M >= 64)  // every instantiated tile, fused and split
      for (auto [mt, nt] : {std::pair{2, 4}, std::pair{4, 4}, std::pair{2, 8}, std::pair{4, 8}})
        for (int path : {1, 2}) {
          Case c{M, N, K};
          c.force_path = path;
          c.tile_mt = mt;
          c.tile_nt = nt;
          run_case<TestType>(c, ++seed);
        }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: many outliers across K splits on the small-M path", "[int8][gpu]", half_t, bfloat16_t) {
  // 70 outlier columns spread over K (several per split, some splits with none), with and without the
  // side copy: the split blocks' own-range outlier handling and the fp32 accumulator.
  unsigned seed = 500;
  for (int M : {1, 8, 32})
    for (bool side : {false, true})
      for (bool capture : {true, false}) {
        Case c{M, 192, 4096};
        c.outliers = 70;
        c.side = side;
        c.capture = capture;
        c.force_path = 0;
        c.row_fraction = 0.5f;
        run_case<TestType>(c, ++seed);
      }
}

TEMPLATE_TEST_CASE("int8 GPU: several chunks of outlier columns in the tiled and wgmma epilogues", "[int8][gpu]",
                   half_t, bfloat16_t) {
  // 40 outlier columns within the list capacity: the epilogues stage them from the pre-gathered slabs in
  // chunks of 16 (16 + 16 + 8), with and without the side copy; 320 columns and 130 rows leave partial tiles.
  unsigned seed = 900;
  for (int path : test_paths()) {
    if (path < 1 || path > 4) continue;
    for (bool side : {false, true})
      for (bool tma : {true, false}) {
        if (!tma && path < 3) continue;
        Case c{130, 320, 1024};
        c.outliers = 40;
        c.side = side;
        c.tma = tma;
        c.force_path = path;
        c.row_fraction = 0.5f;
        run_case<TestType>(c, ++seed);
      }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: persistent wgmma TMA kernel, several tiles per block", "[int8][gpu][sanitize]", half_t,
                   bfloat16_t) {
  // Few blocks loop over many tiles (the ring's stages and phases run on across tiles; the producer
  // refills the ring while the consumers run an epilogue): fused with outlier chunks, and the int32
  // split path, with 1, 2 and 5 blocks for 3 x 2 = 6 tiles (partial tiles on both edges).
  if (!int8::wgmma_available()) return;
  unsigned seed = 1100;
  for (int blocks : {1, 2, 5})
    for (int path : {4, 3}) {
      Case c{300, 320, 640};
      c.outliers = 20;
      c.force_path = path;
      c.max_blocks = blocks;
      c.side = blocks == 2;
      c.row_fraction = 0.5f;
      run_case<TestType>(c, ++seed);
    }
}

TEMPLATE_TEST_CASE("int8 GPU: threshold 0, no outliers, all outliers, overflow fallback, side copy",
                   "[int8][gpu]", half_t, bfloat16_t) {
  unsigned seed = 300;
  for (int path : test_paths()) {
    for (int M : {5, 40, 130}) {
      if ((path == 0 && M > 32) || (path >= 5 && M > 16)) continue;
      Case w8a8{M, 128, 256};
      w8a8.threshold = 0.f;
      w8a8.force_path = path;
      run_case<TestType>(w8a8, ++seed);

      Case none{M, 128, 256};
      none.outliers = 0;
      none.force_path = path;
      run_case<TestType>(none, ++seed);

      Case over{M, 128, 256};  // 6 planted outliers, list capacity 2: the mask walk must take over
      over.max_outliers = 2;
      over.force_path = path;
      run_case<TestType>(over, ++seed);

      Case all{M, 128, 256};  // every column is an outlier (no int8 activations at all)
      all.outliers = 0;
      all.threshold = 1e-30f;
      all.max_outliers = 16;
      all.force_path = path;
      run_case<TestType>(all, ++seed);

      Case side{M, 128, 256};
      side.side = true;
      side.force_path = path;
      run_case<TestType>(side, ++seed);

      Case nopdl{M, 128, 256};  // plain launches instead of programmatic dependent launch
      nopdl.pdl = false;
      nopdl.force_path = path;
      run_case<TestType>(nopdl, ++seed);
    }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: every path once (compute-sanitizer subset)", "[int8][gpu][sanitize]", half_t,
                   bfloat16_t) {
  unsigned seed = 700;
  for (int path : test_paths()) {
    const int M = path == 0 || path >= 5 ? 5 : path < 0 ? 3 : 130;  // (-1 at M = 3: the plan's small-M path)
    Case side{M, 320, 576};  // planted outliers, fp16 side copy, partial wgmma tiles and a half K stage
    side.side = true;
    side.force_path = path;
    run_case<TestType>(side, ++seed);
    Case over{M, 128, 256};  // list capacity 2 < 6 outliers: mask walk
    over.max_outliers = 2;
    over.force_path = path;
    run_case<TestType>(over, ++seed);
    Case w8a8{M, 128, 256};
    w8a8.threshold = 0.f;
    w8a8.force_path = path;
    run_case<TestType>(w8a8, ++seed);
    if (path == 5) {  // ring: the two-kernel activation pass (M·K > 16384), a partial last stage, 70 outliers
      Case two{16, 128, 4160};
      two.outliers = 70;
      two.force_path = 5;
      run_case<TestType>(two, ++seed);
    }
    if (path == 0) {  // outlier weights gathered after the main loop instead of captured from the stream
      Case gathered{M, 192, 1024};
      gathered.capture = false;
      gathered.force_path = 0;
      run_case<TestType>(gathered, ++seed);
    }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: small-M ring path (one- and two-kernel activation pass, outlier table overflow)",
                   "[int8][gpu]", half_t, bfloat16_t) {
  if (!int8::ring_available()) {
    WARN("ring path not available in this build / on this device");
    return;
  }
  unsigned seed = 900;
  // K = 4160: a partial last stage (320- and 192-byte stages); K = 8192 at M = 16: the two-kernel pass;
  // 70 outlier columns: beyond the 64-entry per-CTA table (values read from A directly)
  for (int M : {1, 2, 9, 16})
    for (int K : {256, 4160, 8192})
      for (int outliers : {0, 8, 70}) {
        if (outliers > K / 4) continue;
        Case c{M, 320, K};
        c.outliers = outliers;
        c.force_path = 5;
        c.row_fraction = 0.5f;
        c.ring_act = separate_act(M, K);
        run_case<TestType>(c, ++seed);
      }
  for (int M : {3, 16}) {  // side copy, list overflow, no PDL, threshold 0, all outliers in the two modes
    const int K = M == 16 ? 8192 : 1024;
    for (Case c : small_m_edge_cases(M, 192, K)) {
      c.force_path = 5;
      c.ring_act = separate_act(M, c.K);
      run_case<TestType>(c, ++seed);
    }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: ring path with K split across a thread-block cluster", "[int8][gpu][sanitize]", half_t,
                   bfloat16_t) {
  if (!int8::ring_available()) {
    WARN("ring path not available in this build / on this device");
    return;
  }
  unsigned seed = 950;
  // K = 4160: 22 stages of 192 bytes, the last one partial; 8 splits run 3 stages per CTA and 1 in the
  // last; 70 outlier columns land in every CTA's range (beyond the 64-entry table, too), 8 in a few
  for (int splits : {1, 2, 3, 8})
    for (int M : {1, 16})
      for (int outliers : {8, 70}) {
        Case c{M, 192, 4160};
        c.outliers = outliers;
        c.force_path = 5;
        c.ring_splits = splits;
        c.row_fraction = 0.5f;
        c.side = splits == 3 && outliers == 8;
        c.ring_act = separate_act(M, 4160);
        run_case<TestType>(c, ++seed);
      }
  for (int M : {1, 16}) run_case<TestType>(past_ring_table(M, separate_act(M, 4160)), ++seed);
  Case w8a8{5, 128, 8192};  // threshold 0 (no decomposition), the two-kernel activation pass (M·K > 16384)
  w8a8.threshold = 0.f;
  w8a8.force_path = 5;
  w8a8.ring_splits = 7;
  run_case<TestType>(w8a8, ++seed);
  Case nopdl{3, 64, 2048};  // one slab, auto splits, plain launches
  nopdl.pdl = false;
  nopdl.force_path = 5;
  nopdl.ring_act = separate_act(3, 2048);
  run_case<TestType>(nopdl, ++seed);
}

TEMPLATE_TEST_CASE("int8 GPU: ring path with the activation pass inside the ring kernel", "[int8][gpu][sanitize]",
                   half_t, bfloat16_t) {
  if (!int8::ring_available()) {
    WARN("ring path not available in this build / on this device");
    return;
  }
  unsigned seed = 1300;
  // K = 4160: a partial last stage; 70 outlier columns: past the 64-entry table of a CTA's range; 8 CTAs
  // per slab at K = 4160 run 3 stages each and 1 in the last; K = 256: one stage, split or not
  for (int M : {1, 3, 4})
    for (int K : {256, 4160, 8192})
      for (int outliers : {0, 8, 70})
        for (int splits : {1, 2, 8}) {
          if (outliers > K / 4 || (K == 8192 && splits == 8 && M != 4)) continue;
          Case c{M, 192, K};
          c.outliers = outliers;
          c.force_path = 5;
          c.ring_splits = splits;
          c.ring_act = 3;
          c.expect_fused = true;
          c.row_fraction = 0.5f;
          run_case<TestType>(c, ++seed);
        }
  for (int M : {1, 4}) run_case<TestType>(past_ring_table(M, 3), ++seed);
  for (int M : {1, 4}) {  // side copy, list overflow (statistics only), plain launches, threshold 0, all outliers
    std::vector<Case> cases = small_m_edge_cases(M, 128, 4160);
    cases[0].ring_splits = 2;  // the side copy over a 2-CTA cluster
    for (Case& c : cases) {
      c.force_path = 5;
      c.ring_act = 3;
      c.expect_fused = true;
      run_case<TestType>(c, ++seed);
    }
  }
  // the default plan of an issue shape's small-M layer is the fused pass (N = 8192 fills the SMs)
  Case by_shape{1, 8192, 8192};
  by_shape.expect_fused = true;
  run_case<TestType>(by_shape, ++seed);
}

TEMPLATE_TEST_CASE("int8 GPU: small-M stream path across M, K, outlier counts and K splits", "[int8][gpu]", half_t,
                   bfloat16_t) {
  if (!int8::stream_available()) {
    WARN("stream path not available in this build / on this device");
    return;
  }
  unsigned seed = 1500;
  // K = 4160: 65 tiles of 64 bytes, spread unevenly over warps (and over 2, 3 or 8 CTAs of a cluster:
  // 33 + 32, 22 + 22 + 21, 9 x 7 + 2); an odd tile count puts a tile's mask words in the second half of a
  // 16-byte mask chunk at the end; 70 outlier columns: several tiles with more than four (two rounds)
  for (int M : {1, 2, 9, 16})
    for (int K : {256, 4160, 8192})
      for (int outliers : {0, 8, 70})
        for (int splits : {0, 1, 2, 3, 8}) {
          if (outliers > K / 4 || (splits > 1 && K != 4160) || (splits == 0 && K == 4160 && M == 2)) continue;
          Case c{M, 320, K};
          c.outliers = outliers;
          c.force_path = 6;
          c.ring_splits = splits;
          c.row_fraction = 0.5f;
          c.ring_act = (M + K + outliers) % 2 ? 1 : 2;  // both activation modes over the sweep
          run_case<TestType>(c, ++seed);
        }
}

TEMPLATE_TEST_CASE("int8 GPU: small-M stream path with the activation pass inside its kernel", "[int8][gpu][sanitize]",
                   half_t, bfloat16_t) {
  if (!int8::stream_available()) {
    WARN("stream path not available in this build / on this device");
    return;
  }
  unsigned seed = 1900;
  // K = 4160: 65 tiles over warps and 2 or 8 CTAs of a cluster; 70 outlier columns: tiles with more than four.
  // One split: the warps keep their ranges of A in registers (K = 256, 4160 and 8192: 1, 5 and 8 tiles a
  // warp; the 2-row kernel at M <= 2, the 4-row one at M = 3, 4)
  for (int M : {1, 2, 3, 4})
    for (int K : {256, 4160, 8192})
      for (int outliers : {0, 8, 70})
        for (int splits : {0, 1, 2, 8}) {
          if (outliers > K / 4 || (splits > 1 && K != 4160) || ((M == 2 || M == 3) && splits == 8)) continue;
          Case c{M, 192, K};
          c.outliers = outliers;
          c.force_path = 6;
          c.ring_act = 3;
          c.ring_splits = splits;
          c.row_fraction = 0.5f;
          c.expect_fused = true;
          run_case<TestType>(c, ++seed);
        }
  // every column an outlier: a warp's range (5 or 9 tiles) has more outlier columns than the list slots in
  // its code rows' padding, so the products read the rest from A (in registers at one split)
  for (int M : {1, 2, 3, 4})
    for (int splits : {1, 2}) {
      Case all{M, 192, 4160};
      all.outliers = 0;
      all.threshold = 1e-30f;
      all.max_outliers = 16;
      all.force_path = 6;
      all.ring_act = 3;
      all.ring_splits = splits;
      all.expect_fused = true;
      run_case<TestType>(all, ++seed);
    }
  for (int M : {1, 4}) {  // side copy, list overflow (statistics only), plain launches, threshold 0, all outliers
    std::vector<Case> cases = small_m_edge_cases(M, 128, 4160);
    cases[0].ring_splits = 2;  // the side copy over a 2-CTA cluster
    Case big{M, 8192, 8192};   // an issue shape: 128 slabs of up to 16 warps
    big.outliers = 8;
    cases.push_back(big);
    for (Case& c : cases) {
      c.force_path = 6;
      c.ring_act = 3;
      c.expect_fused = true;
      run_case<TestType>(c, ++seed);
    }
  }
}

TEMPLATE_TEST_CASE("int8 GPU: small-M stream path (side copy, list overflow, plain launches, W8A8, all outliers)",
                   "[int8][gpu][sanitize]", half_t, bfloat16_t) {
  if (!int8::stream_available()) {
    WARN("stream path not available in this build / on this device");
    return;
  }
  unsigned seed = 1700;
  for (int M : {3, 16}) {  // side copy, list overflow, no PDL, threshold 0, all outliers, one slab over 8 CTAs
    const int K = M == 16 ? 8192 : 1024;
    std::vector<Case> cases = small_m_edge_cases(M, 192, K);
    cases[2].ring_splits = 2;  // plain launches over a 2-CTA cluster
    cases[4].ring_splits = 8;  // all outliers, one slab over 8 CTAs
    Case side_split{M, 128, 4160};  // the side copy over a 3-CTA cluster
    side_split.side = true;
    side_split.ring_splits = 3;
    cases.insert(cases.begin() + 1, side_split);
    for (Case& c : cases) {
      c.force_path = 6;
      run_case<TestType>(c, ++seed);
    }
  }
  // by shape, on a device of 128 SMs or more, the issue shapes where the fused stream plan keeps one
  // 16-warp CTA per SM (detail::stream_fused_default) run it; 8192^2 at M = 4 keeps the ring
  if (int8::detail::sm_count() >= 128 && int8::ring_available()) {
    for (auto [M, N, K] : {std::tuple{1, 8192, 8192}, std::tuple{3, 8192, 8192}, std::tuple{1, 8192, 28672},
                           std::tuple{4, 8192, 8192}}) {
      Case d{M, N, K};
      d.outliers = 8;
      d.expect_path = M == 4 ? int8::detail::Plan::ring : int8::detail::Plan::stream;
      d.expect_fused = M < 4;
      run_case<TestType>(d, ++seed);
    }
  }
  // an issue shape (128 slabs of 16 warps, 28 tiles per warp)
  Case by_shape{4, 8192, 28672};
  by_shape.outliers = 8;
  by_shape.force_path = 6;
  run_case<TestType>(by_shape, ++seed);
}

/// Runs the layer once with `opt` on activations `A` [M, K] (weight codes all 3, scales 1), on a garbage
/// workspace, and returns the call's statistics.
template <class T>
int8::Int8Stats nonfinite_case_stats(const std::vector<T>& A, int M, int N, int K, const int8::LinearOptions& opt) {
  DevBuf<T> dA(A);
  DevBuf<std::int8_t> dW(std::vector<std::int8_t>(static_cast<std::size_t>(N) * K, 3));
  DevBuf<float> dS(std::vector<float>(N, 1.f));
  const int8::DeviceWeight dw{dW.p, dS.p, N, K};
  const std::size_t bytes = int8::linear_workspace_size(M, N, K, opt);
  DevBuf<std::uint8_t> wsb(bytes);
  CUDA_OK(cudaMemset(wsb.p, 0x5a, bytes));  // the call must clear what it needs
  DevBuf<T> dY(static_cast<std::size_t>(M) * N);
  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes, opt, nullptr).ok());
  CUDA_OK(cudaDeviceSynchronize());
  int8::Int8Stats stats;
  CUDA_OK(cudaMemcpy(&stats, int8::workspace_stats(wsb.p), sizeof stats, cudaMemcpyDeviceToHost));
  return stats;
}

TEST_CASE("int8 GPU small-M paths report non-finite activations in every activation mode", "[int8][gpu][sanitize]") {
  if (!int8::ring_available()) return;
  // (M, K, ring_act): one kernel, two kernels, inside the ring kernel (one slab; K split over a cluster)
  for (auto [M, K, act] : {std::tuple{2, 256, 1}, std::tuple{16, 8192, 0}, std::tuple{2, 256, 3}, std::tuple{4, 8192, 3}}) {
    std::vector<half_t> A(static_cast<std::size_t>(M) * K, half_t(0.5f));
    A[3] = half_t(std::nanf(""));
    A[static_cast<std::size_t>(K) + 5] = half_t(-INFINITY);
    A[static_cast<std::size_t>(K) + 7] = half_t(10.f);  // a finite outlier
    int8::LinearOptions opt;
    opt.force_path = 5;
    opt.ring_act = act;
    const auto stats = nonfinite_case_stats(A, M, 64, K, opt);
    INFO("M=" << M << " K=" << K << " ring_act=" << act);
    REQUIRE(stats.nonfinite == 2);
    REQUIRE(stats.outlier_count == 2);  // -inf and 10 reach the threshold
    REQUIRE(stats.overflow == 0);
  }
  // the stream path's activation modes (one and two kernels, inside the kernel) count them too; with one
  // CTA per slab at M <= 2 its warps read their own ranges of A into registers
  for (auto [M, K, act, splits] : {std::tuple{2, 256, 1, 0}, std::tuple{16, 8192, 2, 0}, std::tuple{2, 256, 3, 0},
                                   std::tuple{4, 8192, 3, 0}, std::tuple{2, 512, 3, 1}, std::tuple{2, 8192, 3, 1}}) {
    if (!int8::stream_available()) break;
    std::vector<half_t> A(static_cast<std::size_t>(M) * K, half_t(0.5f));
    A[3] = half_t(std::nanf(""));
    A[static_cast<std::size_t>(K) + 5] = half_t(-INFINITY);
    A[static_cast<std::size_t>(K) + 7] = half_t(10.f);
    int8::LinearOptions opt;
    opt.force_path = 6;
    opt.ring_act = act;
    opt.ring_splits = splits;
    const auto stats = nonfinite_case_stats(A, M, 64, K, opt);
    INFO("stream M=" << M << " K=" << K << " ring_act=" << act << " splits=" << splits);
    REQUIRE(stats.nonfinite == 2);
    REQUIRE(stats.outlier_count == 2);
  }
  // M > 16 is refused on the ring path with a clear status
  const int M = 17, N = 64, K = 128;
  DevBuf<half_t> dA(static_cast<std::size_t>(M) * K);
  DevBuf<std::int8_t> dW(static_cast<std::size_t>(N) * K);
  DevBuf<float> dS(N);
  DevBuf<half_t> dY(static_cast<std::size_t>(M) * N);
  DevBuf<std::uint8_t> wsb(1 << 20);
  int8::LinearOptions opt;
  opt.force_path = 5;
  int8::DeviceWeight dw{dW.p, dS.p, N, K};
  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr).code == StatusCode::unsupported);
  // the fused activation pass is refused above 4 rows, and an unknown ring_act is named
  opt.ring_act = 3;
  REQUIRE(int8::linear_forward(dA.p, 9, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr).code == StatusCode::unsupported);
  opt.ring_act = 4;
  const Status bad = int8::linear_forward(dA.p, 2, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr);
  REQUIRE(bad.code == StatusCode::invalid_argument);
  REQUIRE(bad.message.find("ring_act") != std::string::npos);
  // the stream path: M > 16 and the fused pass above 4 rows are refused, an unknown path is named
  opt = int8::LinearOptions{};
  opt.force_path = 6;
  const Status big = int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr);
  REQUIRE(big.code == StatusCode::unsupported);
  REQUIRE(big.message.find("stream") != std::string::npos);
  opt.ring_act = 3;  // the stream kernel's fused pass: M <= 4
  REQUIRE(int8::linear_forward(dA.p, 9, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr).code == StatusCode::unsupported);
  opt = int8::LinearOptions{};
  opt.force_path = 7;
  const Status unknown = int8::linear_forward(dA.p, 2, dw, nullptr, dY.p, wsb.p, wsb.n, opt, nullptr);
  REQUIRE(unknown.code == StatusCode::invalid_argument);
  REQUIRE(unknown.message.find("force_path") != std::string::npos);
}

TEST_CASE("int8 GPU small-M layers (ring and stream) chained under programmatic dependent launch equal plain launches",
          "[int8][gpu][sanitize]") {
  // Layer 2 reads layer 1's output, both share one workspace, and layer 1's output buffer is rewritten by
  // the next pair while nothing synchronizes: every layer's first kernel (fused ring, one or two activation
  // kernels) starts under PDL during the previous layer's tail, so a read of A, Y or the workspace before
  // its griddepcontrol.wait would see the other input's values. Inputs alternate between two activations;
  // each pair's layer-2 output must equal, bit for bit, the same layers run with plain launches and a
  // synchronization between them.
  if (!int8::ring_available()) {
    WARN("ring path not available in this build / on this device");
    return;
  }
  using T = half_t;
  std::mt19937 rng(4242);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int K1 = 512, N1 = 2048, N2 = 256;  // layer 2: K = N1, its K split over a 2-CTA cluster
  auto weight = [&](int N, int K, float sd) {
    std::vector<T> W(static_cast<std::size_t>(N) * K);
    for (auto& w : W) w = T(sd * nd(rng));
    return int8::quantize_weight(W.data(), N, K);
  };
  const auto w1 = weight(N1, K1, 0.1f), w2 = weight(N2, N1, 0.05f);
  DevBuf<std::int8_t> dW1(w1.codes), dW2(w2.codes);
  DevBuf<float> dS1(w1.scales), dS2(w2.scales);
  const int8::DeviceWeight dw1{dW1.p, dS1.p, N1, K1}, dw2{dW2.p, dS2.p, N2, N1};
  cudaStream_t st;
  CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  // (M, ring_act, path): the ring with the activation pass inside its kernel, one activation kernel, two;
  // the stream kernel after one or two activation kernels
  for (auto [M, act, path] : {std::tuple{1, 3, 5}, std::tuple{4, 3, 5}, std::tuple{3, 1, 5}, std::tuple{16, 2, 5},
                              std::tuple{1, 1, 6}, std::tuple{4, 2, 6}, std::tuple{16, 2, 6}, std::tuple{1, 3, 6},
                              std::tuple{4, 3, 6}}) {
    if (path == 6 && !int8::stream_available()) continue;
    std::vector<T> in[2];
    for (auto& a : in) {
      a.resize(static_cast<std::size_t>(M) * K1);
      for (auto& v : a) v = T(nd(rng));
      for (int m = 0; m < M; ++m) a[static_cast<std::size_t>(m) * K1 + 37] = T(25.f);  // one outlier column
    }
    DevBuf<T> dA0(in[0]), dA1(in[1]);
    const T* dA[2] = {dA0.p, dA1.p};
    int8::LinearOptions o1, o2;
    o1.force_path = o2.force_path = path;
    o1.ring_act = o2.ring_act = act;
    o2.ring_splits = 2;
    const std::size_t bytes = std::max(int8::linear_workspace_size(M, N1, K1, o1),
                                       int8::linear_workspace_size(M, N2, N1, o2));
    DevBuf<std::uint8_t> ws(bytes);
    DevBuf<T> dY1(static_cast<std::size_t>(M) * N1);
    constexpr int kPairs = 6;
    DevBuf<T> dY2(static_cast<std::size_t>(kPairs) * M * N2);
    auto pair = [&](int i, bool pdl) {
      o1.pdl = o2.pdl = pdl;
      REQUIRE(int8::linear_forward(dA[i % 2], M, dw1, nullptr, dY1.p, ws.p, bytes, o1, st).ok());
      if (!pdl) CUDA_OK(cudaStreamSynchronize(st));
      REQUIRE(int8::linear_forward(dY1.p, M, dw2, nullptr, dY2.p + static_cast<std::size_t>(i) * M * N2, ws.p, bytes,
                                   o2, st).ok());
      if (!pdl) CUDA_OK(cudaStreamSynchronize(st));
    };
    // references: each input once, plain launches
    pair(0, false);
    pair(1, false);
    const auto ref = dY2.get();
    const std::vector<T> ref2[2] = {std::vector<T>(ref.begin(), ref.begin() + M * N2),
                                    std::vector<T>(ref.begin() + M * N2, ref.begin() + 2 * M * N2)};
    // the two inputs' outputs differ, so a stale read of the other input's values cannot go unnoticed
    REQUIRE(std::memcmp(ref2[0].data(), ref2[1].data(), sizeof(T) * M * N2) != 0);
    CUDA_OK(cudaMemset(dY2.p, 0xff, dY2.n * sizeof(T)));  // poison
    for (int i = 0; i < kPairs; ++i) pair(i, true);
    CUDA_OK(cudaStreamSynchronize(st));
    CUDA_OK(cudaGetLastError());
    const auto got = dY2.get();
    for (int i = 0; i < kPairs; ++i) {
      INFO("M=" << M << " ring_act=" << act << " path=" << path << " pair " << i);
      REQUIRE(std::memcmp(got.data() + static_cast<std::size_t>(i) * M * N2, ref2[i % 2].data(),
                          sizeof(T) * M * N2) == 0);
    }
    int8::Int8Stats stats;  // the last layer 2's statistics: its input (layer 1's output) is finite
    CUDA_OK(cudaMemcpy(&stats, int8::workspace_stats(ws.p), sizeof stats, cudaMemcpyDeviceToHost));
    REQUIRE(stats.nonfinite == 0);
  }
  CUDA_OK(cudaStreamDestroy(st));
}

TEST_CASE("int8 GPU activation pass is bit-exact with the host reference", "[int8][gpu][sanitize]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 2.f);
  const int M = 37, K = 640, N = 64;
  std::vector<half_t> A(M * K);
  for (auto& a : A) a = half_t(nd(rng));  // sigma 2: many natural outliers at 6
  std::vector<std::int8_t> wc(N * K, 1);
  std::vector<float> ws(N, 1.f);
  const auto aq = int8::quantize_activations(A.data(), M, K, 6.f);
  DevBuf<half_t> dA(A);
  DevBuf<std::int8_t> dW(wc);
  DevBuf<float> dS(ws);
  int8::DeviceWeight dw{dW.p, dS.p, N, K};
  int8::LinearOptions opt;
  opt.max_outliers = 1000;
  opt.force_path = 1;  // (every path but the small-M one zeroes the outlier columns' codes before its GEMM)
  const std::size_t bytes = int8::linear_workspace_size(M, N, K, opt);
  DevBuf<std::uint8_t> wsb(bytes);
  DevBuf<half_t> dY(M * N);
  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes, opt, nullptr).ok());
  CUDA_OK(cudaDeviceSynchronize());
  // layout: the codes are the last M*K bytes region, row scales and list before them (see make_layout)
  const auto plan = int8::detail::make_plan(M, N, K, int8::detail::sm_count(), 1);
  const auto lay = int8::detail::make_layout(M, N, K, opt.max_outliers, plan);
  const auto all = wsb.get();
  auto codes = aq.codes;  // the host codes with the outlier columns zeroed
  for (int m = 0; m < M; ++m)
    for (int c : aq.outlier_cols) codes[static_cast<std::size_t>(m) * K + c] = 0;
  REQUIRE(std::memcmp(all.data() + lay.aq, codes.data(), codes.size()) == 0);
  REQUIRE(std::memcmp(all.data() + lay.rows, aq.row_absmax.data(), M * sizeof(float)) == 0);
  REQUIRE(!aq.outlier_cols.empty());
  REQUIRE(std::memcmp(all.data() + lay.list, aq.outlier_cols.data(), aq.outlier_cols.size() * sizeof(int)) == 0);
}

TEST_CASE("int8 GPU reports non-finite activations and bad arguments", "[int8][gpu][sanitize]") {
  const int M = 4, N = 64, K = 128;
  std::vector<bfloat16_t> A(M * K, bfloat16_t(0.5f));
  A[3] = bfloat16_t(std::nanf(""));
  A[K + 5] = bfloat16_t(-INFINITY);
  std::vector<std::int8_t> wc(N * K, 3);
  std::vector<float> ws(N, 1.f);
  DevBuf<bfloat16_t> dA(A);
  DevBuf<std::int8_t> dW(wc);
  DevBuf<float> dS(ws);
  int8::DeviceWeight dw{dW.p, dS.p, N, K};
  const std::size_t bytes = int8::linear_workspace_size(M, N, K);
  DevBuf<std::uint8_t> wsb(bytes);
  DevBuf<bfloat16_t> dY(M * N);
  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes, {}, nullptr).ok());
  CUDA_OK(cudaDeviceSynchronize());
  int8::Int8Stats stats;
  CUDA_OK(cudaMemcpy(&stats, int8::workspace_stats(wsb.p), sizeof stats, cudaMemcpyDeviceToHost));
  REQUIRE(stats.nonfinite == 2);
  REQUIRE(stats.outlier_count == 1);  // -inf reaches the threshold

  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes - 1, {}, nullptr).code ==
          StatusCode::workspace_too_small);
  int8::DeviceWeight bad = dw;
  bad.K = 100;
  REQUIRE(int8::linear_forward(dA.p, M, bad, nullptr, dY.p, wsb.p, bytes, {}, nullptr).code ==
          StatusCode::invalid_argument);
  REQUIRE(int8::linear_forward(dA.p + 1, M, dw, nullptr, dY.p, wsb.p, bytes, {}, nullptr).code ==
          StatusCode::misaligned);
  REQUIRE(int8::linear_forward(dA.p, 0, dw, nullptr, dY.p, wsb.p, bytes, {}, nullptr).code ==
          StatusCode::invalid_argument);
  int8::LinearOptions bad_blocks;
  bad_blocks.wgmma_max_blocks = -2;  // neither -1 (one per tile), 0 (one per SM) nor a cap
  REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes, bad_blocks, nullptr).code ==
          StatusCode::invalid_argument);
  for (int splits : {-1, 9}) {  // ring_splits: 0 (by shape) or a cluster size 1..8
    int8::LinearOptions bad_splits;
    bad_splits.ring_splits = splits;
    REQUIRE(int8::linear_forward(dA.p, M, dw, nullptr, dY.p, wsb.p, bytes, bad_splits, nullptr).code ==
            StatusCode::invalid_argument);
  }
}

TEST_CASE("int8 GPU reports non-finite activations on the tiled paths", "[int8][gpu][sanitize]") {
  // 40 rows, K = 640: NaN and -inf in different rows, counted once each by the one-block-per-row pass
  const int M = 40, K = 640;
  std::vector<half_t> A(static_cast<std::size_t>(M) * K, half_t(0.25f));
  A[17 * K + 3] = half_t(std::nanf(""));
  A[39 * K + 600] = half_t(-INFINITY);
  for (int path : {1, 2}) {
    INFO("path " << path);
    int8::LinearOptions opt;
    opt.force_path = path;
    const auto stats = nonfinite_case_stats(A, M, 64, K, opt);
    REQUIRE(stats.nonfinite == 2);
    REQUIRE(stats.outlier_count == 1);  // -inf reaches the threshold
    REQUIRE(stats.overflow == 0);
  }
}

TEST_CASE("int8 GEMM core (int32 out) is exact", "[int8][gpu][sanitize]") {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> d(-127, 127);
  // (M = 300: split wgmma where available; 1024 x 4352: 136 wgmma tiles, no split, on at most one block per SM,
  // so on 132 SMs four blocks take a second tile; K = 576: a half 128-byte k-tile at the end of the last split,
  // zero-filled by the TMA kernel's boxes)
  for (auto [M, N, K] : {std::tuple{3, 192, 1024}, std::tuple{32, 192, 1024}, std::tuple{64, 192, 1024},
                         std::tuple{300, 192, 1024}, std::tuple{1024, 4352, 128}, std::tuple{200, 320, 576}}) {
    std::vector<std::int8_t> A(M * K), W(N * K);
    for (auto& a : A) a = static_cast<std::int8_t>(d(rng));
    for (auto& w : W) w = static_cast<std::int8_t>(d(rng));
    DevBuf<std::int8_t> dA(A), dW(W);
    DevBuf<std::int32_t> dC(M * N);
    CUDA_OK(cudaMemset(dC.p, 0x7f, dC.n * 4));
    REQUIRE(int8::gemm_s8_s32(dA.p, dW.p, dC.p, M, N, K, nullptr).ok());
    CUDA_OK(cudaDeviceSynchronize());
    const auto C = dC.get();
    std::size_t bad = 0;
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        std::int32_t r = 0;
        for (int k = 0; k < K; ++k) r += int(A[m * K + k]) * int(W[n * K + k]);
        bad += C[m * N + n] != r;
      }
    INFO("M=" << M);
    REQUIRE(bad == 0);
    if (M >= 64) {  // C 8- but not 16-byte aligned: the tensor stores' map needs 16, so the other wgmma kernel runs
      DevBuf<std::int32_t> dC2(M * N + 2);
      CUDA_OK(cudaMemset(dC2.p, 0x7f, dC2.n * 4));
      REQUIRE(int8::gemm_s8_s32(dA.p, dW.p, dC2.p + 2, M, N, K, nullptr).ok());
      CUDA_OK(cudaDeviceSynchronize());
      const auto C2 = dC2.get();
      for (int i = 0; i < M * N; ++i) bad += C2[i + 2] != C[i];
      REQUIRE(bad == 0);
      REQUIRE(C2[0] == 0x7f7f7f7f);  // nothing before the output
      REQUIRE(C2[1] == 0x7f7f7f7f);
    }
  }
}
