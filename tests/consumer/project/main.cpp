// A consumer of lowbit's host API through the GPTQ entry header (no CUDA, no nlohmann/json).
#include <lowbit/gptq.hpp>

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  // The published GPTQ packing: 4-bit codes 0..7 down K (a [8, 1] code matrix) fill one int32
  // word of qweight, lowest bits first.
  using Layout = lowbit::GptqQWeightLayout<4>;
  constexpr std::size_t K = lowbit::Bits<4>::values_per_pack, N = 1;
  std::vector<std::uint8_t> codes(K * N);
  for (std::size_t k = 0; k < K; ++k) codes[k] = static_cast<std::uint8_t>(k);
  std::vector<std::uint32_t> qweight(Layout::packed_size(K, N));
  Layout::pack(codes.data(), K, N, qweight.data());
  if (qweight.size() != 1 || qweight[0] != 0x76543210u) {
    std::printf("FAIL: packed word is 0x%08x, expected 0x76543210\n", static_cast<unsigned>(qweight[0]));
    return 1;
  }
  for (std::size_t k = 0; k < K; ++k) {
    if (Layout::get(qweight.data(), K, N, k, 0) != k) {
      std::printf("FAIL: code %zu does not round-trip\n", k);
      return 1;
    }
  }
  // Bad input is reported as lowbit::Error (exceptions work across the package boundary).
  bool threw = false;
  try {
    Layout::pack(codes.data(), K - 1, N, qweight.data());  // K not a multiple of 8
  } catch (const lowbit::Error&) {
    threw = true;
  }
  if (!threw) {
    std::printf("FAIL: bad shape accepted\n");
    return 1;
  }
  std::printf("lowbit %d.%d.%d consumer OK: 0x%08x\n", LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR,
              LOWBIT_VERSION_PATCH, static_cast<unsigned>(qweight[0]));
  return 0;
}
