/// @file commands.hpp
/// @brief The `lowbit` tool's sub-commands. Each takes the arguments after the tool name
///        (`argv[0]` is the command name, e.g. "inspect"), returns the process exit code, and reports
///        bad input by throwing (main() prints a one-line reason and exits non-zero).
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit_cli {

/// A command-line usage mistake (unknown option, missing argument); main() adds the usage hint.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `lowbit demo`: synthetic layer quantized at several widths, table of sizes and errors (demo.cpp).
int cmd_demo(int argc, char** argv);
/// `lowbit inspect PATH [--json]`: summary of a GPTQ checkpoint (inspect.cpp).
int cmd_inspect(int argc, char** argv);
/// `lowbit dequantize IN OUT.safetensors [--dtype fp16|fp32]`: `<name>.weight [N, K]` per layer (dequantize.cpp).
int cmd_dequantize(int argc, char** argv);
/// `lowbit quantize --method rtn --bits B --group G ... IN OUT_DIR` (quantize.cpp).
int cmd_quantize(int argc, char** argv);
/// `lowbit compare WEIGHTS --calib CALIB ...`: the demo's table for the user's layers, errors on
/// held-out recorded inputs (compare.cpp).
int cmd_compare(int argc, char** argv);
/// `lowbit convert --format gptq|gptq_v2 IN OUT_DIR`: lossless v1 <-> v2 zero conversion (convert.cpp).
int cmd_convert(int argc, char** argv);

}  // namespace lowbit_cli
