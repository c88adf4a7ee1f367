// `lowbit convert --format gptq|gptq_v2 IN OUT_DIR`: rewrite a GPTQ checkpoint in the other zero
// convention (v1 "gptq" stores zero-1, v2 "gptq_v2" stores the zero). Codes, scales, g_idx and every
// other tensor are copied unchanged, so the conversion is lossless; a zero of 0 going to v1 is refused.
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

const char* const kConvertUsage =
    "usage: lowbit convert --format gptq|gptq_v2 IN OUT_DIR\n"
    "  IN         a GPTQ checkpoint (file, folder or sharded index) with its quantize_config.json\n"
    "  OUT_DIR    receives model.safetensors and quantize_config.json in the requested format\n";

}  // namespace

int cmd_convert(int argc, char** argv) {
  namespace gq = lowbit::gptq;
  namespace st = lowbit::safetensors;
  bool have_format = false;
  gq::CheckpointFormat to = gq::CheckpointFormat::gptq_v2;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      std::cout << kConvertUsage;
      return 0;
    }
    if (!std::strcmp(a, "--format")) {
      try {
        to = gq::parse_format(option_value(argc, argv, i));
      } catch (const lowbit::Error& e) {
        throw UsageError(e.what());
      }
      have_format = true;
    } else if (is_option(a)) {
      throw UsageError(std::string("unknown option ") + a);
    } else {
      pos.emplace_back(a);
    }
  }
  if (!have_format) throw UsageError("--format gptq|gptq_v2 is required");
  if (pos.size() != 2) throw UsageError("expected IN and OUT_DIR, got " + std::to_string(pos.size()) + " paths");

  const gq::Checkpoint ck = gq::Checkpoint::open(pos[0]);
  const std::filesystem::path out_dir = pos[1];
  const auto inputs = ck.files();
  for (const char* out_name : {"model.safetensors", "quantize_config.json"})
    for (const auto& f : inputs)
      if (st::detail::same_file(out_dir / out_name, f))
        lowbit::detail::fail((out_dir / out_name).string(), ": refusing to overwrite an input file");
  st::Writer w;
  for (const auto& [k, v] : ck.tensors().metadata()) w.set_metadata(k, v);  // kept as is
  if (!ck.tensors().metadata().count("format")) w.set_metadata("format", "pt");
  for (const std::string& name : ck.layers()) {
    gq::PackedLayer p = gq::convert(ck.layer(name), to);
    p.bias.clear();  // biases are copied through below with their original bytes
    gq::add_layer(w, p);
  }
  for (const std::string& tn : ck.tensors().names())
    if (!ck.is_layer_tensor(tn)) w.add_view(ck.tensors().tensor(tn));
  gq::QuantizeConfig cfg = ck.config();
  cfg.checkpoint_format = to;
  std::filesystem::create_directories(out_dir);
  w.write(out_dir / "model.safetensors", inputs);
  cfg.save(out_dir / "quantize_config.json", inputs);
  std::cout << "wrote " << (out_dir / "model.safetensors").string() << " (" << ck.layers().size() << " layers, "
            << gq::format_name(ck.config().checkpoint_format) << " -> " << gq::format_name(to) << ")\n";
  return 0;
}

}  // namespace lowbit_cli
