// `lowbit quantize`: quantize every 2-D floating-point `<name>.weight [N, K]` of a safetensors file
// (or those matching --match) into a GPTQ checkpoint OUT_DIR/model.safetensors + quantize_config.json.
// Other tensors are copied through unchanged. Methods live in quantize_methods.hpp.
#include <cstring>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include <lowbit/format.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "quantize_methods.hpp"

namespace lowbit_cli {
namespace {

const char* const kQuantizeUsage =
    "usage: lowbit quantize [--method rtn|gptq] [--bits B] [--group G] [--sym] [--mse]\n"
    "                       [--format gptq|gptq_v2] [--match REGEX] IN OUT_DIR\n"
    "       gptq: (--calib CALIB.safetensors | --hessian H.safetensors) [--act-order] [--static-groups]\n"
    "             [--damp 0.01] [--block 128] [--device cpu|cuda|auto] [--refit]\n"
    "  IN         a .safetensors file (or a folder / sharded index)\n"
    "  OUT_DIR    receives model.safetensors and quantize_config.json (written atomically)\n"
    "  --bits     2, 3, 4 or 8 (default 4)\n"
    "  --group    group size dividing K, or -1 per-channel (default 128)\n"
    "  --sym      symmetric grid (default asymmetric)\n"
    "  --mse      search a shrunk clipping range (p-norm 2.4, 100-point grid)\n"
    "  --format   zero convention: gptq (v1, zero-1; default with --sym) or gptq_v2 (default otherwise,\n"
    "             since v1 cannot store an asymmetric zero of 0)\n"
    "  --refit    gptq: afterwards re-solve each group's scale for the output error with the codes fixed\n"
    "             (least squares on the same Hessian; never raises that error; lowbit compare measures it\n"
    "             on held-out inputs)\n"
    "  --match    quantize only <name>.weight tensors whose name matches REGEX (regex search);\n"
    "             without it every 2-D floating-point <name>.weight except embeddings (names\n"
    "             containing 'embed') and the output head ('lm_head') is quantized\n";

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  namespace st = lowbit::safetensors;
  namespace gq = lowbit::gptq;
  QuantizeOptions o;
  o.spec.bits = 4;
  o.spec.group_size = 128;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!is_option(a)) {
      pos.emplace_back(a);
      continue;
    }
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      std::cout << kQuantizeUsage;
      return 0;
    }
    if (!std::strcmp(a, "--method")) o.method = option_value(argc, argv, i);
    else if (!std::strcmp(a, "--bits")) o.spec.bits = parse_int("--bits", option_value(argc, argv, i));
    else if (!std::strcmp(a, "--group")) o.spec.group_size = parse_int("--group", option_value(argc, argv, i));
    else if (!std::strcmp(a, "--sym")) o.spec.sym = true;
    else if (!std::strcmp(a, "--mse")) o.spec.mse = true;
    else if (!std::strcmp(a, "--match")) o.match = option_value(argc, argv, i);
    else if (!std::strcmp(a, "--format")) {
      try {
        o.format = gq::parse_format(option_value(argc, argv, i));
      } catch (const lowbit::Error& e) {
        throw UsageError(e.what());
      }
      o.format_given = true;
    } else if (!parse_method_option(o, argc, argv, i)) {
      throw UsageError(std::string("unknown option ") + a);
    }
  }
  if (pos.size() != 2) throw UsageError("expected IN and OUT_DIR, got " + std::to_string(pos.size()) + " paths");
  if (!lowbit::is_supported_bits(o.spec.bits))
    throw UsageError("--bits must be 2, 3, 4 or 8 (got " + std::to_string(o.spec.bits) + ")");
  if (o.spec.group_size == 0 || o.spec.group_size < -1)
    throw UsageError("--group must be positive or -1 (got " + std::to_string(o.spec.group_size) + ")");
  if (!o.format_given) o.format = o.spec.sym ? gq::CheckpointFormat::gptq : gq::CheckpointFormat::gptq_v2;

  gq::QuantizeConfig cfg;
  cfg.bits = o.spec.bits;
  cfg.group_size = o.spec.group_size > 0 ? o.spec.group_size : -1;
  cfg.sym = o.spec.sym;
  cfg.checkpoint_format = o.format;
  finish_method_options(o, cfg);

  std::regex re;
  if (!o.match.empty()) {
    try {
      re = std::regex(o.match, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw UsageError("--match: invalid regular expression '" + o.match + "': " + e.what());
    }
  }

  const auto in = st::ShardedReader::open(pos[0]);
  const std::filesystem::path out_dir = pos[1];
  std::error_code ec;
  if (std::filesystem::exists(out_dir, ec) && !std::filesystem::is_directory(out_dir, ec))
    lowbit::detail::fail(out_dir.string(), ": exists and is not a folder");
  const std::vector<std::filesystem::path> inputs = in.files();
  for (const char* out_name : {"model.safetensors", "quantize_config.json"})
    for (const auto& f : inputs)
      if (st::detail::same_file(out_dir / out_name, f))
        lowbit::detail::fail((out_dir / out_name).string(), ": refusing to overwrite an input file");

  st::Writer w;
  w.set_metadata("format", "pt");
  w.set_metadata("quantized_by", "lowbit");
  std::size_t quantized = 0, candidates = 0;
  for (const std::string& tn : in.names()) {
    const st::TensorView t = in.tensor(tn);
    const bool eligible = ends_with(tn, ".weight") && t.shape().size() == 2 && st::is_floating(t.dtype());
    candidates += eligible;
    // Without --match, embeddings (lookups, not Linear layers) and the output head stay in full
    // precision, as GPTQ tools do by default; --match can still select them.
    const bool default_skip = o.match.empty() && eligible && (tn.find("embed") != std::string::npos ||
                                                              tn.find("lm_head") != std::string::npos);
    if (default_skip) std::cerr << "kept " << tn << " in full precision (embedding / output head; use --match to quantize it)\n";
    if (!eligible || default_skip || (!o.match.empty() && !std::regex_search(tn, re))) {
      w.add_view(t);  // copied through unchanged
      continue;
    }
    const std::string layer = tn.substr(0, tn.size() - std::strlen(".weight"));
    const std::size_t N = static_cast<std::size_t>(t.shape()[0]), K = static_cast<std::size_t>(t.shape()[1]);
    try {
      const std::vector<float> W = t.to_float_vector();
      const lowbit::QuantizedWeight q = quantize_one_layer(o, layer, W.data(), N, K);
      gq::PackedLayer p = gq::pack(q, o.format, layer);
      gq::add_layer(w, p);
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      lowbit::detail::fail("tensor '", tn, "' [", N, ", ", K, "]: ", e.what());
    }
    ++quantized;
    std::cerr << "quantized " << tn << " [" << N << ", " << K << "]\n";
  }
  if (quantized == 0) {
    if (candidates == 0) lowbit::detail::fail(pos[0], ": no 2-D floating-point '<name>.weight' tensor to quantize");
    lowbit::detail::fail("--match '", o.match, "' matched none of the ", candidates, " eligible weights");
  }
  std::filesystem::create_directories(out_dir);
  w.write(out_dir / "model.safetensors", inputs);
  cfg.save(out_dir / "quantize_config.json", inputs);
  std::cout << "wrote " << (out_dir / "model.safetensors").string() << " (" << quantized << " layers, " << cfg.bits
            << "-bit, group " << cfg.group_size << ", " << gq::format_name(cfg.checkpoint_format) << ") and "
            << (out_dir / "quantize_config.json").string() << "\n";
  return 0;
}

}  // namespace lowbit_cli
