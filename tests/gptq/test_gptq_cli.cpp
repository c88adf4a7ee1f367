// `lowbit quantize --method gptq` end to end (host solver): the checkpoint it writes holds exactly the
// codes of a direct gptq_quantize call on the same Hessian, desc_act is recorded, g_idx is permuted,
// and the GPTQ output error is below RTN's. Usage mistakes exit non-zero.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <lowbit/format.hpp>
#include <lowbit/gptq/refine.hpp>
#include <lowbit/gptq/solver.hpp>

#include "gptq_test_util.hpp"

#ifndef LOWBIT_CLI_PATH
#error "LOWBIT_CLI_PATH must name the lowbit binary"
#endif

namespace fs = std::filesystem;

namespace {
int run(const std::string& args) {
  const std::string cmd = std::string(LOWBIT_CLI_PATH) + " " + args + " > /dev/null 2>&1";
  return std::system(cmd.c_str());
}
}  // namespace

TEST_CASE("lowbit quantize --method gptq writes the solver's result", "[gptq][cli]") {
  const fs::path dir = fs::temp_directory_path() / ("lowbit_gptq_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::size_t N = 64, K = 96, n = 200;  // 3-bit qzeros pack 32 zeros along N
  const auto W = gptq_test::random_weights(N, K, 301);
  const auto X = gptq_test::correlated_inputs(n, K, 302, 16.0);
  {
    lowbit::safetensors::Writer w;
    w.add_copy("blk.0.proj.weight", lowbit::DType::f32, {N, K}, W.data(), W.size() * sizeof(float));
    w.write(dir / "in.safetensors");
    lowbit::safetensors::Writer c;
    c.add_copy("blk.0.proj.inputs", lowbit::DType::f32, {n, K}, X.data(), X.size() * sizeof(float));
    c.write(dir / "calib.safetensors");
  }
  const std::string in = (dir / "in.safetensors").string(), calib = (dir / "calib.safetensors").string();
  const std::string out = (dir / "out").string();
  REQUIRE(run("quantize --method gptq --bits 3 --group 32 --act-order --device cpu --calib " + calib + " " + in +
              " " + out) == 0);

  const auto ck = lowbit::gptq::Checkpoint::open(out);
  CHECK(ck.config().desc_act);
  CHECK(ck.config().bits == 3);
  const lowbit::QuantizedWeight got = lowbit::gptq::unpack(ck.layer("blk.0.proj"));

  lowbit::gptq::Hessian<double> h(K);
  h.add_batch(X.data(), n);
  const std::vector<float> Hf(h.matrix().begin(), h.matrix().end());
  lowbit::QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 32;
  lowbit::gptq::GptqOptions opt;
  opt.act_order = true;
  const auto ref = lowbit::gptq::gptq_quantize<float>(W.data(), N, K, Hf.data(), spec, opt);
  CHECK(got.codes == ref.weight.codes);
  CHECK(got.g_idx == ref.weight.g_idx);
  CHECK(got.scales == ref.weight.scales);
  const auto Wq = lowbit::dequantize(got);
  const auto Wr = lowbit::dequantize(lowbit::rtn_quantize(W.data(), N, K, spec));
  CHECK(lowbit::output_error(W.data(), Wq.data(), N, K, h.matrix().data()) <
        lowbit::output_error(W.data(), Wr.data(), N, K, h.matrix().data()));

  // --refit: the same solve, then refine_scales on the same (float) Hessian
  REQUIRE(run("quantize --method gptq --bits 3 --group 32 --act-order --refit --device cpu --calib " + calib + " " +
              in + " " + out + "_refit") == 0);
  const lowbit::QuantizedWeight got_refit =
      lowbit::gptq::unpack(lowbit::gptq::Checkpoint::open(out + "_refit").layer("blk.0.proj"));
  lowbit::QuantizedWeight want_refit = ref.weight;
  const auto rr = lowbit::gptq::refine_scales(want_refit, W.data(), Hf.data());
  CHECK(rr.rows_changed > 0);
  CHECK(got_refit.codes == ref.weight.codes);
  CHECK(got_refit.scales == want_refit.scales);
  CHECK(got_refit.scales != ref.weight.scales);

  // usage mistakes: no calibration, both sources, gptq option with rtn, missing layer inputs
  CHECK(run("quantize --method gptq " + in + " " + out + "2") != 0);
  CHECK(run("quantize --method gptq --calib " + calib + " --hessian " + calib + " " + in + " " + out + "2") != 0);
  CHECK(run("quantize --method rtn --act-order " + in + " " + out + "2") != 0);
  CHECK(run("quantize --method gptq --damp 2 --calib " + calib + " " + in + " " + out + "2") != 0);
  CHECK(run("quantize --method gptq --hessian " + calib + " " + in + " " + out + "2") != 0);  // no .hessian
  CHECK_FALSE(fs::exists(fs::path(out + "2") / "model.safetensors"));
  fs::remove_all(dir);
}
