/// @file quantize_methods.hpp
/// @brief The per-layer quantization methods behind `lowbit quantize --method ...`.
///
/// Adding a method (e.g. `gptq`) takes three small edits here, none in quantize.cpp:
/// 1. accept its options in parse_method_option() (store them in QuantizeOptions::extra or new fields),
/// 2. check them and record its settings in the checkpoint config in finish_method_options(),
/// 3. add its branch to quantize_one_layer().
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <lowbit/format.hpp>
#include <lowbit/quant.hpp>

#include "cli_args.hpp"
#include "quantize_gptq.hpp"

namespace lowbit_cli {

/// Everything `lowbit quantize` was asked to do.
struct QuantizeOptions {
  std::string method = "rtn";                ///< quantization method
  lowbit::QuantSpec spec;                    ///< bits, group size, sym, mse
  lowbit::gptq::CheckpointFormat format = lowbit::gptq::CheckpointFormat::gptq;  ///< zero convention
  bool format_given = false;                 ///< --format was passed (else chosen from sym)
  std::string match;                         ///< --match REGEX (empty: every eligible weight)
  std::map<std::string, std::string> extra;  ///< method-specific options, by flag name
};

/// Methods `--method` accepts.
inline constexpr std::string_view kMethods = "rtn, gptq";

/// Consumes a method-specific option at `argv[i]` (and its value, advancing `i`); false when the
/// option is not one of them (quantize.cpp then reports it as unknown).
inline bool parse_method_option(QuantizeOptions& o, int argc, char** argv, int& i) {
  return parse_gptq_option(o.extra, argc, argv, i);  // rtn has no options beyond the common ones
}

/// Checks the method and its options after parsing, and records method settings in the config.
/// @throws UsageError for an unknown method or options that do not belong to it.
inline void finish_method_options(const QuantizeOptions& o, lowbit::gptq::QuantizeConfig& cfg) {
  if (o.method == "gptq") {
    finish_gptq_options(o.extra, cfg);
    return;
  }
  if (o.method == "rtn") {
    reject_gptq_options(o.extra, o.method);
    cfg.desc_act = false;
    cfg.static_groups = false;
    return;
  }
  throw UsageError("unknown --method '" + o.method + "' (available: " + std::string(kMethods) + ")");
}

/// Quantizes one layer's weight with the chosen method.
/// @param o    the options (method, spec, method-specific extras)
/// @param name layer name (the tensor is `<name>.weight`), e.g. to look up per-layer calibration data
/// @param W    weight `[N, K]` row-major float
/// @param N    output features
/// @param K    input features
inline lowbit::QuantizedWeight quantize_one_layer(const QuantizeOptions& o, const std::string& name, const float* W,
                                                  std::size_t N, std::size_t K) {
  if (o.method == "rtn") return lowbit::rtn_quantize(W, N, K, o.spec);
  if (o.method == "gptq") return gptq_quantize_layer(o.extra, o.spec, name, W, N, K);
  throw UsageError("unknown --method '" + o.method + "'");
}

}  // namespace lowbit_cli
