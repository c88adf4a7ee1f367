// `lowbit inspect PATH [--json]`: validate a GPTQ checkpoint and summarize it: layers, shapes, bits,
// group size, zero format, and the exact bytes of each layer's tensors against the same layer in fp16.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <lowbit/format.hpp>

#include "cli_args.hpp"
#include "commands.hpp"

namespace lowbit_cli {
namespace {

const char* const kInspectUsage =
    "usage: lowbit inspect PATH [--json]\n"
    "  PATH     a GPTQ checkpoint: .safetensors file, folder, or model.safetensors.index.json, with\n"
    "           quantize_config.json beside it\n"
    "  --json   machine-readable output\n"
    "Every layer is loaded and validated; bytes are those of the stored tensors (qweight, qzeros,\n"
    "scales, g_idx, bias) and fp16 bytes those of the [N, K] weight (plus the same bias) in fp16.\n";

struct LayerRow {
  std::string name;
  std::size_t N = 0, K = 0;
  std::uint64_t qweight = 0, qzeros = 0, scales = 0, g_idx = 0, bias = 0, total = 0, fp16 = 0;
};

std::uint64_t bytes_of(const lowbit::safetensors::ShardedReader& r, const std::string& name) {
  return r.contains(name) ? r.tensor(name).nbytes() : 0;
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  namespace gq = lowbit::gptq;
  bool json = false;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::cout << kInspectUsage;
      return 0;
    }
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (is_option(argv[i])) throw UsageError(std::string("unknown option ") + argv[i]);
    else pos.emplace_back(argv[i]);
  }
  if (pos.size() != 1) throw UsageError("expected one PATH, got " + std::to_string(pos.size()));

  const gq::Checkpoint ck = gq::Checkpoint::open(pos[0]);
  const auto& cfg = ck.config();
  const auto& tensors = ck.tensors();
  std::vector<LayerRow> rows;
  LayerRow total;
  for (const std::string& name : ck.layers()) {
    const gq::PackedLayer p = ck.layer(name);  // full validation, zeros decoded
    LayerRow r;
    r.name = name;
    r.N = p.N;
    r.K = p.K;
    r.qweight = bytes_of(tensors, name + ".qweight");
    r.qzeros = bytes_of(tensors, name + ".qzeros");
    r.scales = bytes_of(tensors, name + ".scales");
    r.g_idx = bytes_of(tensors, name + ".g_idx");
    r.bias = bytes_of(tensors, name + ".bias");
    r.total = r.qweight + r.qzeros + r.scales + r.g_idx + r.bias;
    // Cross-check the stored sizes against the footprint formula for this shape.
    const lowbit::Footprint f = lowbit::gptq_footprint(p.N, p.K, p.spec(), r.g_idx != 0, false);
    if (f.codes != r.qweight || f.zeros != r.qzeros || f.scales != r.scales || f.g_idx != r.g_idx)
      lowbit::detail::fail("layer '", name, "': stored tensor sizes disagree with the GPTQ footprint");
    r.fp16 = lowbit::fp16_bytes(p.N, p.K) + (p.bias.empty() ? 0 : p.N * lowbit::dtype_size(lowbit::DType::f16));
    total.qweight += r.qweight;
    total.qzeros += r.qzeros;
    total.scales += r.scales;
    total.g_idx += r.g_idx;
    total.bias += r.bias;
    total.total += r.total;
    total.fp16 += r.fp16;
    rows.push_back(r);
  }
  std::uint64_t other_count = 0, other_bytes = 0;
  for (const std::string& tn : tensors.names()) {
    bool is_bias = false;
    constexpr std::string_view kBias = ".bias";
    if (tn.size() > kBias.size() && tn.compare(tn.size() - kBias.size(), kBias.size(), kBias) == 0)
      is_bias = std::binary_search(ck.layers().begin(), ck.layers().end(), tn.substr(0, tn.size() - kBias.size()));
    if (ck.is_layer_tensor(tn) || is_bias) continue;
    ++other_count;
    other_bytes += tensors.tensor(tn).nbytes();
  }
  std::uint64_t weights = 0;
  for (const auto& r : rows) weights += static_cast<std::uint64_t>(r.N) * r.K;
  const double ratio = total.total ? static_cast<double>(total.fp16) / static_cast<double>(total.total) : 0.0;
  const double bpw = weights ? 8.0 * static_cast<double>(total.total - total.bias) / static_cast<double>(weights) : 0;

  if (json) {
    nlohmann::json j;
    j["path"] = pos[0];
    j["files"] = nlohmann::json::array();
    for (const auto& f : ck.files()) j["files"].push_back(f.string());
    j["config"] = cfg.to_json();
    j["layers"] = nlohmann::json::array();
    for (const auto& r : rows)
      j["layers"].push_back({{"name", r.name},
                             {"N", r.N},
                             {"K", r.K},
                             {"bits", cfg.bits},
                             {"group_size", cfg.group_size},
                             {"format", gq::format_name(cfg.checkpoint_format)},
                             {"bytes",
                              {{"qweight", r.qweight},
                               {"qzeros", r.qzeros},
                               {"scales", r.scales},
                               {"g_idx", r.g_idx},
                               {"bias", r.bias},
                               {"total", r.total}}},
                             {"fp16_bytes", r.fp16}});
    j["total"] = {{"layers", rows.size()},   {"weights", weights},        {"bytes", total.total},
                  {"fp16_bytes", total.fp16}, {"ratio_vs_fp16", ratio},   {"bits_per_weight", bpw}};
    j["other_tensors"] = {{"count", other_count}, {"bytes", other_bytes}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("checkpoint %s (%zu file%s)\n", pos[0].c_str(), ck.files().size(), ck.files().size() == 1 ? "" : "s");
  std::printf("format %s (%s), %d-bit, group %d%s, sym %s, desc_act %s\n", gq::format_name(cfg.checkpoint_format),
              cfg.checkpoint_format == gq::CheckpointFormat::gptq ? "v1, qzeros hold zero-1" : "v2, qzeros hold the zero", cfg.bits,
              cfg.group_size, cfg.group_size == -1 ? " (per-channel)" : "", cfg.sym ? "true" : "false",
              cfg.desc_act ? "true" : "false");
  std::printf("%-40s %8s %8s %14s %14s %7s %8s\n", "layer", "N", "K", "bytes", "fp16 bytes", "x fp16", "bits/w");
  for (const auto& r : rows) {
    const double rw = 8.0 * static_cast<double>(r.total - r.bias) / (static_cast<double>(r.N) * static_cast<double>(r.K));
    std::printf("%-40s %8zu %8zu %14llu %14llu %6.2fx %8.3f\n", r.name.c_str(), r.N, r.K,
                static_cast<unsigned long long>(r.total), static_cast<unsigned long long>(r.fp16),
                static_cast<double>(r.fp16) / static_cast<double>(r.total), rw);
  }
  std::printf("%-40s %8s %8s %14llu %14llu %6.2fx %8.3f\n", "total", "", "", static_cast<unsigned long long>(total.total),
              static_cast<unsigned long long>(total.fp16), ratio, bpw);
  std::printf("  (qweight %llu, qzeros %llu, scales %llu, g_idx %llu, bias %llu bytes)\n",
              static_cast<unsigned long long>(total.qweight), static_cast<unsigned long long>(total.qzeros),
              static_cast<unsigned long long>(total.scales), static_cast<unsigned long long>(total.g_idx),
              static_cast<unsigned long long>(total.bias));
  std::printf("other tensors: %llu (%llu bytes, not quantized)\n", static_cast<unsigned long long>(other_count),
              static_cast<unsigned long long>(other_bytes));
  return 0;
}

}  // namespace lowbit_cli
