// Writes the inputs of the CLI test (cli_test.sh) into the folder given as argv[1]:
//   model.safetensors  a small fp model: two linear layers (F16 and BF16 weights, one with a bias),
//                      an F32 norm vector, an F32 embedding (kept in full precision unless --match
//                      selects it) and an I32 tensor that must be copied through unchanged
//   nan.safetensors    one F32 weight holding a NaN (quantize must refuse it)
//   odd.safetensors    a weight whose K (100) no group size of 128 divides
//   truncated.safetensors  model.safetensors cut in the middle of its data
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <vector>

#include <lowbit/format.hpp>

namespace st = lowbit::safetensors;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_cli_fixture OUT_DIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.f, 0.02f);
  constexpr std::uint64_t kHidden = 128, kInter = 64;

  st::Writer w;
  std::vector<lowbit::half_t> up(kInter * kHidden);
  for (auto& x : up) x = lowbit::half_t(normal(rng));
  w.add("model.layers.0.mlp.up_proj.weight", {kInter, kHidden}, up);
  std::vector<lowbit::half_t> up_bias(kInter);
  for (auto& x : up_bias) x = lowbit::half_t(normal(rng));
  w.add("model.layers.0.mlp.up_proj.bias", {kInter}, up_bias);
  std::vector<lowbit::bfloat16_t> down(kHidden * kInter);
  for (auto& x : down) x = lowbit::bfloat16_t(normal(rng));
  w.add("model.layers.0.mlp.down_proj.weight", {kHidden, kInter}, down);
  w.add("model.norm.weight", {kHidden}, std::vector<float>(kHidden, 1.f));
  w.add("model.embed_tokens.weight", {32, kHidden}, std::vector<float>(32 * kHidden, 0.125f));
  w.add("model.position_ids", {4}, std::vector<std::int32_t>{0, 1, 2, 3});
  w.write(dir / "model.safetensors");

  st::Writer nan;
  std::vector<float> bad(64 * 128, 0.5f);
  bad[77] = std::nanf("");
  nan.add("broken.weight", {64, 128}, bad);
  nan.write(dir / "nan.safetensors");

  st::Writer odd;
  odd.add("odd.weight", {64, 100}, std::vector<float>(64 * 100, 0.25f));
  odd.write(dir / "odd.safetensors");

  const auto size = std::filesystem::file_size(dir / "model.safetensors");
  std::filesystem::copy_file(dir / "model.safetensors", dir / "truncated.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(dir / "truncated.safetensors", size / 2);
  return 0;
}
