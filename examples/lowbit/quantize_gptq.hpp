/// @file quantize_gptq.hpp
/// @brief `lowbit quantize --method gptq`: option parsing, calibration / Hessian loading, the per-layer
///        GPTQ call (host solver, or the GPU solver when built with CUDA and a device is present), and
///        the per-layer GPTQ-vs-RTN table.
///
/// Calibration: `--calib CALIB.safetensors` holds `<layer>.inputs [n, K]` (fp32/fp16/bf16) per layer;
/// `--hessian H.safetensors` holds `<layer>.hessian [K, K]` (any float dtype) per layer.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <lowbit/format.hpp>
#include <lowbit/gptq/refine.hpp>
#include <lowbit/gptq/solver.hpp>

#include "cli_args.hpp"
#include "commands.hpp"

namespace lowbit_cli {

/// True when the binary was built with CUDA and a GPU is present (quantize_gptq_gpu.cu / _none.cpp).
bool gptq_gpu_available();
/// Runs the GPU solver for one layer (host arrays); throws lowbit::Error when built without CUDA.
lowbit::gptq::GptqResult gptq_layer_gpu(const float* W, std::size_t N, std::size_t K, const float* H,
                                        const lowbit::QuantSpec& spec, const lowbit::gptq::GptqOptions& opt);

/// Largest --block the GPU solver takes (lowbit::gptq::kMaxGpuBlock); larger blocks run on the host.
inline constexpr int kGptqGpuMaxBlock = 128;

/// Options only `--method gptq` takes (stored in QuantizeOptions::extra under their flag names).
inline constexpr const char* kGptqValueOptions[] = {"--calib", "--hessian", "--damp", "--block", "--device"};
/// Flags only `--method gptq` takes.
inline constexpr const char* kGptqFlagOptions[] = {"--act-order", "--static-groups", "--refit"};

/// Consumes a gptq option at argv[i] into `extra` (validating numbers); false when it is not one.
inline bool parse_gptq_option(std::map<std::string, std::string>& extra, int argc, char** argv, int& i) {
  const char* a = argv[i];
  for (const char* f : kGptqFlagOptions)
    if (!std::strcmp(a, f)) {
      extra[f] = "1";
      return true;
    }
  for (const char* f : kGptqValueOptions)
    if (!std::strcmp(a, f)) {
      const std::string v = option_value(argc, argv, i);
      if (!std::strcmp(f, "--damp")) {
        const double d = parse_double(f, v.c_str());
        if (!(d >= 0.0 && d <= 1.0)) throw UsageError("--damp must be in [0, 1] (got " + v + ")");
      } else if (!std::strcmp(f, "--block")) {
        const int b = parse_int(f, v.c_str());
        if (b < 1 || b > 4096) throw UsageError("--block must be in [1, 4096] (got " + v + ")");
      } else if (!std::strcmp(f, "--device") && v != "cpu" && v != "cuda" && v != "auto") {
        throw UsageError("--device must be cpu, cuda or auto (got '" + v + "')");
      }
      extra[f] = v;
      return true;
    }
  return false;
}

/// Checks the gptq options after parsing and records them in the checkpoint config.
inline void finish_gptq_options(const std::map<std::string, std::string>& extra, lowbit::gptq::QuantizeConfig& cfg) {
  const bool calib = extra.count("--calib") != 0, hess = extra.count("--hessian") != 0;
  if (calib == hess) throw UsageError("--method gptq needs exactly one of --calib CALIB.safetensors or --hessian H.safetensors");
  cfg.desc_act = extra.count("--act-order") != 0;
  cfg.static_groups = extra.count("--static-groups") != 0;
  cfg.true_sequential = false;  // layers are solved independently from the given calibration data
  if (auto it = extra.find("--damp"); it != extra.end()) cfg.damp_percent = std::stod(it->second);
  if (extra.count("--device") && extra.at("--device") == "cuda" && !gptq_gpu_available())
    throw UsageError("--device cuda: no usable GPU (or built without CUDA)");
}

/// Refuses gptq-only options with another method.
inline void reject_gptq_options(const std::map<std::string, std::string>& extra, const std::string& method) {
  if (!extra.empty())
    throw UsageError("option " + extra.begin()->first + " belongs to --method gptq, not --method " + method);
}

namespace detail {

/// Opened calibration / Hessian files, by path (opened once per run).
inline lowbit::safetensors::ShardedReader& open_cached(const std::string& path) {
  static std::map<std::string, std::unique_ptr<lowbit::safetensors::ShardedReader>> cache;
  auto it = cache.find(path);
  if (it == cache.end())
    it = cache.emplace(path, std::make_unique<lowbit::safetensors::ShardedReader>(
                                 lowbit::safetensors::ShardedReader::open(path)))
             .first;
  return *it->second;
}

}  // namespace detail

/// GPTQ for one layer `<name>.weight [N, K]`: builds or loads its Hessian, solves on the chosen device,
/// prints one table row (time, GPTQ and RTN output error, damping), returns the quantized weight.
inline lowbit::QuantizedWeight gptq_quantize_layer(const std::map<std::string, std::string>& extra,
                                                   const lowbit::QuantSpec& spec, const std::string& name,
                                                   const float* W, std::size_t N, std::size_t K) {
  namespace st = lowbit::safetensors;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  // Hessian [K, K]
  std::vector<float> Hf;
  if (auto it = extra.find("--calib"); it != extra.end()) {
    const st::ShardedReader& r = detail::open_cached(it->second);
    const std::string tn = name + ".inputs";
    LOWBIT_CHECK(r.contains(tn), it->second, ": no calibration tensor '", tn, "' for layer '", name, "'");
    const st::TensorView t = r.tensor(tn);
    LOWBIT_CHECK(t.shape().size() == 2 && t.shape()[1] == K && t.shape()[0] > 0, "calibration tensor '", tn,
                 "' must be [n, ", K, "] with n > 0");
    LOWBIT_CHECK(st::is_floating(t.dtype()), "calibration tensor '", tn, "' is not floating point");
    const std::vector<float> X = t.to_float_vector();
    lowbit::gptq::Hessian<double> h(K, 0);
    h.add_batch(X.data(), static_cast<std::size_t>(t.shape()[0]));
    Hf.assign(h.matrix().begin(), h.matrix().end());
  } else {
    const std::string& path = extra.at("--hessian");
    const st::ShardedReader& r = detail::open_cached(path);
    const std::string tn = name + ".hessian";
    LOWBIT_CHECK(r.contains(tn), path, ": no Hessian tensor '", tn, "' for layer '", name, "'");
    const st::TensorView t = r.tensor(tn);
    LOWBIT_CHECK(t.shape().size() == 2 && t.shape()[0] == K && t.shape()[1] == K, "Hessian tensor '", tn,
                 "' must be [", K, ", ", K, "]");
    LOWBIT_CHECK(st::is_floating(t.dtype()), "Hessian tensor '", tn, "' is not floating point");
    Hf = t.to_float_vector();
  }
  const double t_hessian = std::chrono::duration<double>(clock::now() - t0).count();

  lowbit::gptq::GptqOptions opt;
  opt.layer = name;
  opt.act_order = extra.count("--act-order") != 0;
  opt.static_groups = extra.count("--static-groups") != 0;
  if (auto it = extra.find("--damp"); it != extra.end()) opt.damp = std::stod(it->second);
  if (auto it = extra.find("--block"); it != extra.end()) opt.block = std::stoi(it->second);
  const std::string dev_opt = extra.count("--device") ? extra.at("--device") : "auto";
  const bool gpu = dev_opt == "cuda" || (dev_opt == "auto" && gptq_gpu_available() &&
                                          opt.block <= kGptqGpuMaxBlock);
  lowbit::gptq::GptqResult res = gpu ? gptq_layer_gpu(W, N, K, Hf.data(), spec, opt)
                                     : lowbit::gptq::gptq_quantize<float>(W, N, K, Hf.data(), spec, opt);
  std::string refit_note;
  if (extra.count("--refit")) {  // group scales re-solved for the output error (host, codes fixed)
    lowbit::gptq::RefineOptions ro;
    ro.layer = name;
    const lowbit::gptq::RefineReport rr = lowbit::gptq::refine_scales(res.weight, W, Hf.data(), ro);
    char buf[96];
    std::snprintf(buf, sizeof buf, " refit: err %.5g -> %.5g (%zu/%zu rows)", rr.error_before, rr.error_after,
                  rr.rows_changed, N);
    refit_note = buf;
  }
  const double t_total = std::chrono::duration<double>(clock::now() - t0).count();

  static bool header = false;
  if (!header) {
    std::printf("%-40s %7s %7s %-4s %9s %9s %12s %12s %9s %7s\n", "layer (GPTQ)", "N", "K", "dev", "H s", "solve s",
                "gptq err", "rtn err", "gptq/rtn", "damp");
    header = true;
  }
  const double ratio = res.report.rtn_error > 0 ? res.report.gptq_error / res.report.rtn_error : 0.0;
  std::printf("%-40s %7zu %7zu %-4s %9.3f %9.3f %12.5g %12.5g %9.4f %7.3g%s\n", name.c_str(), N, K,
              gpu ? "cuda" : "cpu", t_hessian, t_total - t_hessian, res.report.gptq_error, res.report.rtn_error, ratio,
              res.report.damp_used, (std::string(res.report.damp_attempts > 1 ? " (escalated)" : "") + refit_note).c_str());
  std::fflush(stdout);
  return res.weight;
}

}  // namespace lowbit_cli
