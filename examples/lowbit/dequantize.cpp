// `lowbit dequantize IN OUT.safetensors [--dtype fp16|fp32]`: every quantized layer of a GPTQ checkpoint
// becomes `<name>.weight [N, K]` (PyTorch Linear convention); every other tensor (biases, embeddings,
// norms) is copied through unchanged. The output is written atomically and never over an input.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <lowbit/format.hpp>

#include "cli_args.hpp"
#include "commands.hpp"

namespace lowbit_cli {
namespace {

const char* const kDequantizeUsage =
    "usage: lowbit dequantize IN OUT.safetensors [--dtype fp16|fp32]\n"
    "  IN        a GPTQ checkpoint (file, folder or sharded index) with quantize_config.json beside it\n"
    "  --dtype   element type of the written weights (default fp16)\n";

}  // namespace

int cmd_dequantize(int argc, char** argv) {
  namespace gq = lowbit::gptq;
  namespace st = lowbit::safetensors;
  lowbit::DType dtype = lowbit::DType::f16;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      std::cout << kDequantizeUsage;
      return 0;
    }
    if (!std::strcmp(a, "--dtype")) {
      const std::string v = option_value(argc, argv, i);
      if (v == "fp16" || v == "float16") dtype = lowbit::DType::f16;
      else if (v == "fp32" || v == "float32") dtype = lowbit::DType::f32;
      else throw UsageError("--dtype must be fp16 or fp32 (got '" + v + "')");
    } else if (is_option(a)) {
      throw UsageError(std::string("unknown option ") + a);
    } else {
      pos.emplace_back(a);
    }
  }
  if (pos.size() != 2) throw UsageError("expected IN and OUT.safetensors, got " + std::to_string(pos.size()) + " paths");

  const gq::Checkpoint ck = gq::Checkpoint::open(pos[0]);
  st::Writer w;
  w.set_metadata("format", "pt");
  for (const std::string& name : ck.layers()) {
    const gq::PackedLayer p = ck.layer(name);
    std::vector<float> W = gq::dequantize(p);  // [N, K]
    const std::vector<std::uint64_t> shape{p.N, p.K};
    if (dtype == lowbit::DType::f32) {
      w.add(name + ".weight", shape, std::move(W));
    } else {
      std::vector<lowbit::half_t> h(W.size());
      for (std::size_t i = 0; i < W.size(); ++i) {
        h[i] = lowbit::half_t(W[i]);
        if (!std::isfinite(static_cast<float>(h[i])))
          lowbit::detail::fail("layer '", name, "': dequantized value ", W[i], " at (n ", i / p.K, ", k ", i % p.K,
                               ") overflows fp16; use --dtype fp32");
      }
      w.add(name + ".weight", shape, std::move(h));
    }
  }
  for (const std::string& tn : ck.tensors().names()) {
    if (ck.is_layer_tensor(tn)) continue;
    if (w.contains(tn)) lowbit::detail::fail("tensor '", tn, "' exists both as a quantized layer and as a plain tensor");
    w.add_view(ck.tensors().tensor(tn));  // biases and unquantized tensors, unchanged
  }
  const std::filesystem::path out = pos[1];
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  w.write(out, ck.files());
  std::cout << "wrote " << out.string() << " (" << ck.layers().size() << " dequantized layers, "
            << (dtype == lowbit::DType::f16 ? "fp16" : "fp32") << ")\n";
  return 0;
}

}  // namespace lowbit_cli
