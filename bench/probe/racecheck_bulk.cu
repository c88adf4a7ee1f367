// Session 29: does compute-sanitizer racecheck order a bulk copy (cp.async.bulk ... mbarrier::complete_tx) before the
// reads of the threads that waited on its mbarrier, and the readers' release (mbarrier.arrive on an `empty` barrier)
// before the next copy into the same buffer? A minimal, correct two-stage ring (one producer thread, four consumer
// warps reading every element with ld.shared) and, as the control, the same ring whose consumers also read the
// stage the producer may be filling (a real race). The large-M kernel's racecheck placed its hazards between its
// producer's copies and its consumers' weight loads; if racecheck flags the correct ring too, those are the tool's.
// usage: racecheck_bulk [0 = correct ring | 1 = racy control]   (prints the checksum; run it under racecheck)
// build (not a CMake target: one nvcc line, sm_90a):
//   nvcc -std=c++20 -Iinclude -gencode=arch=compute_90a,code=sm_90a -O2 -o racecheck_bulk bench/probe/racecheck_bulk.cu
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <lowbit/kernels/ptx.cuh>

namespace ptx = lowbit::kernels::ptx;

constexpr int kStageWords = 1024;  // 4 KB a stage (uint32)

__global__ void ring(const std::uint32_t* g, int iters, int racy, unsigned long long* out) {
  __shared__ alignas(128) std::uint32_t buf[2][kStageWords];
  __shared__ alignas(8) std::uint64_t full[2], empty[2];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  if (tid == 0) {
    for (int s = 0; s < 2; ++s) {
      ptx::mbarrier_init(&full[s], 1u);
      ptx::mbarrier_init(&empty[s], 4u);
    }
    ptx::fence_mbarrier_init();
  }
  __syncthreads();
  if (warp == 4) {  // producer
    if (lane == 0)
      for (int it = 0; it < iters; ++it) {
        const int st = it % 2;
        if (it >= 2) ptx::mbarrier_wait_parity(&empty[st], static_cast<std::uint32_t>((it / 2 - 1) & 1));
        ptx::mbarrier_arrive_expect_tx(&full[st], kStageWords * 4);
        ptx::bulk_copy_g2s(buf[st], g + static_cast<std::size_t>(it) * kStageWords, kStageWords * 4, &full[st]);
      }
    return;
  }
  unsigned long long sum = 0;
  for (int it = 0; it < iters; ++it) {
    const int st = it % 2;
    ptx::mbarrier_wait_parity(&full[st], static_cast<std::uint32_t>((it / 2) & 1));
    for (int j = tid; j < kStageWords; j += 128) sum += buf[st][j];
    if (racy) sum += buf[st ^ 1][tid];  // the stage the producer may be filling
    __syncwarp();
    if (lane == 0) ptx::mbarrier_arrive(&empty[st]);
  }
  out[tid] = sum;
}

int main(int argc, char** argv) {
  const int racy = argc > 1 ? std::atoi(argv[1]) : 0, iters = 16;
  std::vector<std::uint32_t> h(static_cast<std::size_t>(iters) * kStageWords);
  unsigned long long want = 0;
  for (std::size_t i = 0; i < h.size(); ++i) want += h[i] = static_cast<std::uint32_t>(i * 2654435761u >> 8);
  std::uint32_t* g = nullptr;
  unsigned long long* out = nullptr;
  if (cudaMalloc(&g, h.size() * 4) != cudaSuccess || cudaMalloc(&out, 128 * 8) != cudaSuccess) return 2;
  cudaMemcpy(g, h.data(), h.size() * 4, cudaMemcpyHostToDevice);
  ring<<<1, 160>>>(g, iters, racy, out);
  std::vector<unsigned long long> o(128);
  const cudaError_t e = cudaMemcpy(o.data(), out, 128 * 8, cudaMemcpyDeviceToHost);
  unsigned long long got = 0;
  for (unsigned long long v : o) got += v;
  std::printf("racecheck_bulk %s: %s, checksum %s\n", racy ? "racy control" : "correct ring", cudaGetErrorString(e),
              racy ? "(not compared)" : got == want ? "ok" : "WRONG");
  return e == cudaSuccess && (racy || got == want) ? 0 : 1;
}
