// lowbit: command-line tool for low-bit LLM weights.
//
//   lowbit                      same as `lowbit demo`
//   lowbit demo                 RTN, GPTQ and LLM.int8() on a synthetic layer: sizes and errors
//                               (plus GPU timings vs cuBLAS fp16 when a GPU is present)
//   lowbit inspect PATH [--json]
//   lowbit dequantize IN OUT.safetensors [--dtype fp16|fp32]
//   lowbit quantize --method rtn|gptq --bits B --group G [--sym] [--format gptq|gptq_v2] [--match REGEX]
//                   [gptq: --calib FILE | --hessian FILE, --act-order, --damp, --device cpu|cuda ...] IN OUT_DIR
//   lowbit convert --format gptq|gptq_v2 IN OUT_DIR
//   lowbit compare WEIGHTS --calib CALIB [--holdout F] [--match REGEX] [--json OUT]
//
// Exit status: 0 on success, 1 on bad input (one-line reason on stderr), 2 on a usage error.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include <lowbit/error.hpp>

#include "commands.hpp"

namespace {

constexpr int kExitBadInput = 1;  // the input (file, values) is unusable
constexpr int kExitUsage = 2;     // the command line is wrong

const char* const kUsage =
    "usage: lowbit [COMMAND] [ARGS]\n"
    "\n"
    "commands:\n"
    "  demo                               quantize a synthetic layer with RTN, GPTQ and LLM.int8() and\n"
    "                                     print sizes and errors, plus GPU timings vs cuBLAS fp16 when a\n"
    "                                     GPU is present (the default with no command)\n"
    "  inspect PATH [--json]              summarize a GPTQ checkpoint (file, folder or sharded index):\n"
    "                                     layers, shapes, bits, group size, format, bytes vs fp16\n"
    "  dequantize IN OUT.safetensors [--dtype fp16|fp32]\n"
    "                                     write <layer>.weight [N, K] for every quantized layer\n"
    "  quantize --method rtn|gptq --bits B --group G [--sym] [--mse] [--format gptq|gptq_v2]\n"
    "           [--match REGEX] [gptq: (--calib C | --hessian H) --act-order ...] IN.safetensors OUT_DIR\n"
    "                                     quantize every 2-D floating-point <name>.weight [N, K];\n"
    "                                     writes OUT_DIR/model.safetensors + quantize_config.json\n"
    "  convert --format gptq|gptq_v2 IN OUT_DIR\n"
    "                                     rewrite a GPTQ checkpoint in the other zero convention\n"
    "                                     (lossless; a zero of 0 cannot be written as v1)\n"
    "  compare WEIGHTS --calib CALIB [--holdout F] [--match REGEX] [--json OUT]\n"
    "                                     the demo's table (fp16, RTN, GPTQ, LLM.int8(): bits per weight,\n"
    "                                     weight and output errors) for your layers, output errors on\n"
    "                                     held-out rows of your recorded inputs\n"
    "\n"
    "  lowbit COMMAND --help              options of one command\n";

/// One line: newlines inside a message become spaces.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lowbit_cli;
  if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help"))) {
    std::cout << kUsage;
    return 0;
  }
  const std::string cmd = argc >= 2 ? argv[1] : "demo";
  int (*fn)(int, char**) = nullptr;
  if (cmd == "demo") fn = cmd_demo;
  else if (cmd == "inspect") fn = cmd_inspect;
  else if (cmd == "dequantize") fn = cmd_dequantize;
  else if (cmd == "quantize") fn = cmd_quantize;
  else if (cmd == "convert") fn = cmd_convert;
  else if (cmd == "compare") fn = cmd_compare;
  if (!fn) {
    std::cerr << kUsage << "\nlowbit: unknown command '" << cmd << "'\n";
    return kExitUsage;
  }
  static char demo_name[] = "demo";
  char* demo_argv[] = {demo_name, nullptr};
  const int sub_argc = argc >= 2 ? argc - 1 : 1;
  char** sub_argv = argc >= 2 ? argv + 1 : demo_argv;
  try {
    return fn(sub_argc, sub_argv);
  } catch (const UsageError& e) {
    std::cerr << "lowbit " << cmd << ": " << one_line(e.what()) << " (see `lowbit " << cmd << " --help`)\n";
    return kExitUsage;
  } catch (const lowbit::Error& e) {
    std::cerr << "lowbit " << cmd << ": error: " << one_line(e.what()) << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "lowbit " << cmd << ": error: " << one_line(e.what()) << "\n";
    return kExitBadInput;
  }
}

#ifndef LOWBIT_CLI_HAVE_DEMO
// demo.cpp (core module) has not landed in this checkout: say so instead of printing a fake table.
int lowbit_cli::cmd_demo(int, char**) {
  std::cerr << "lowbit demo: not available in this build (examples/lowbit/demo.cpp is missing)\n";
  return kExitBadInput;
}
#endif
