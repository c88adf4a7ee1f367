// lowbit demo: a synthetic linear layer, its calibration inputs, and the comparison table that
// `lowbit demo` prints. Shared with the other modules so they can append rows (GPTQ, LLM.int8(),
// GPU timings) without editing demo.cpp:
//
//   // examples/lowbit/demo_gptq.cpp (for example)
//   #include "demo.hpp"
//   static lowbit_cli::DemoRowRegistrar reg(/*order=*/200, [](const lowbit_cli::DemoLayer& L,
//                                                               const lowbit_cli::DemoOptions& opt,
//                                                               std::vector<lowbit_cli::DemoRow>& rows) {
//     std::vector<float> Wq = ...;                           // [N, K] dequantized result
//     rows.push_back(lowbit_cli::evaluate_row(L, "GPTQ", 4, 128, Wq, bytes));
//   });
//
// Providers run in increasing `order` after the built-in fp16 (order 0) and RTN (order 100) rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <lowbit/quant_types.hpp>

namespace lowbit_cli {

/// Command-line options of `lowbit demo`.
struct DemoOptions {
  std::uint64_t seed = 1;  ///< generator seed (weights and calibration inputs)
  std::size_t n = 1024;    ///< output features N (multiple of 32, for the 3-bit qzeros packing)
  std::size_t k = 1024;    ///< input features K (multiple of 128, for g128)
  std::size_t m = 512;     ///< calibration samples M
  bool sym = false;        ///< symmetric RTN grids
  bool mse = false;        ///< RTN with the MSE clip search
  bool gpu = true;         ///< run the GPU section (`lowbit compare` measures accuracy only)
  int group = 128;         ///< group size of the grouped RTN and GPTQ rows (must divide K)
};

/// A layer and its calibration data: the demo's synthetic one (make_demo_layer), or a user's weight
/// with recorded inputs (make_data_layer, `lowbit compare`), whose output errors are then measured on
/// held-out input rows that GPTQ and the int8 side copy never see.
struct DemoLayer {
  std::size_t N = 0, K = 0, M = 0;
  std::vector<float> W;    ///< [N, K] weight (PyTorch Linear layout)
  std::vector<float> X;    ///< [M, K] calibration inputs
  std::vector<double> H;   ///< [K, K] X^T X (double), the GPTQ Hessian up to a factor
  std::size_t M_eval = 0;      ///< held-out evaluation rows (0: errors are measured on X itself)
  std::vector<float> X_eval;   ///< [M_eval, K] held-out inputs
  /// The denominator of the output error: ||W X^T||_F^2 = tr(W H W^T), or ||W X_eval^T||_F^2 when
  /// rows are held out.
  double output_energy = 0;
  std::vector<std::size_t> strong_features;  ///< indices of the few strong input feature columns
  std::string description;  ///< one line: how the layer was built
};

/// One row of the demo table.
struct DemoRow {
  double stored_bytes = 0;     ///< bytes the method stores for the weight (codes and metadata)
  double device_bytes = 0;     ///< GPU bytes of the weight in lowbit's kernels (0: their layout cannot hold it)
  std::string method;          ///< "fp16", "RTN", "GPTQ", "LLM.int8()", ...
  std::string bits;            ///< code width as printed ("4", "8+fp16", ...)
  std::string group;           ///< "-" for per-channel, else the group size
  double bits_per_weight = 0;  ///< storage bits per weight including metadata
  double ratio_vs_fp16 = 0;    ///< fp16 bytes / stored bytes
  double rel_weight_error = 0; ///< ||W - Wq||_F / ||W||_F
  double rel_output_error = 0; ///< ||(W - Wq) X^T||_F / ||W X^T||_F on the evaluation inputs
  std::string note;            ///< free text: timings, options ("mse", "sym", "GPU 12 us")
  std::string config;          ///< the row's settings in a few words, the same for every layer ("asym, act-order")
};

/// Builds the synthetic layer: Student-t (nu = 5) weights with log-normal row scales and a few
/// heavy rows (x4) and columns (x2); inputs from a 16-factor latent model (correlated features) with
/// log-normal feature scales and a few strong feature columns (~20x), deterministic in `seed`.
DemoLayer make_demo_layer(std::size_t N, std::size_t K, std::size_t M, std::uint64_t seed);

/// A layer from data: weight `W [N, K]` and `n` recorded input rows `X [n, K]`; the last `eval_rows`
/// rows are held out for the output errors (0: every row calibrates and evaluates, as in the demo), of
/// which at most `max_eval` evenly spaced ones are used (0: all).
/// @throws lowbit::Error on empty shapes, sizes that do not match, non-finite values, or fewer than one
///         calibration row.
DemoLayer make_data_layer(std::vector<float> W, std::size_t N, std::size_t K, std::vector<float> X, std::size_t n,
                          std::size_t eval_rows, std::size_t max_eval, std::string description);

/// ||(W - Wq) X^T||_F^2 over the rows of X [M, K], in double (blocked, threaded products).
double output_error_on_inputs(const std::vector<float>& W, const std::vector<float>& Wq, std::size_t N,
                              std::size_t K, const float* X, std::size_t M);

/// GPU bytes of `q` in the weight-only kernels' layout (kernels::tiled_weight_bytes; act-order weights
/// carry their permutation), or 0 when that layout cannot hold it (N or K not a multiple of 64, a group
/// size other than 32 or a multiple of 64).
double kernel_device_bytes(const lowbit::QuantizedWeight& q);

/// Fills a row from a dequantized weight `Wq [N, K]` and its stored size in bytes.
DemoRow evaluate_row(const DemoLayer& layer, std::string method, std::string bits, std::string group,
                     const std::vector<float>& Wq, double stored_bytes, std::string note = "");
/// Convenience overload: numeric bits and group (group <= 0 prints as per-channel "-").
DemoRow evaluate_row(const DemoLayer& layer, const std::string& method, int bits, int group,
                     const std::vector<float>& Wq, double stored_bytes, std::string note = "");

/// Prints the rows as an aligned table.
void print_table(std::ostream& os, const std::vector<DemoRow>& rows);

/// Appends rows to the table for a layer; registered providers run in increasing order.
using DemoRowProvider = std::function<void(const DemoLayer&, const DemoOptions&, std::vector<DemoRow>&)>;

/// Registers a provider at static-initialization time (define one `static` object per provider).
struct DemoRowRegistrar {
  DemoRowRegistrar(int order, DemoRowProvider provider);
};

/// Runs every registered provider (built-in fp16 and RTN rows included) and returns the rows.
std::vector<DemoRow> run_demo_rows(const DemoLayer& layer, const DemoOptions& options);

}  // namespace lowbit_cli
