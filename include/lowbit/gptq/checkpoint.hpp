/// @file checkpoint.hpp
/// @brief GPTQ checkpoints: packed per-layer tensors, `quantize_config.json`, v1/v2 zero conventions.
///
/// A quantized linear layer `<name>` with weight `[N, K]`, `b` bits and group size `g` (`G = K/g`
/// groups, or 1 per-channel) is stored as
/// - `<name>.qweight` int32 `[K·b/32, N]`: codes packed along K (GptqQWeightLayout),
/// - `<name>.qzeros`  int32 `[G, N·b/32]`: zero codes packed along N (GptqQZerosLayout),
/// - `<name>.scales`  fp16  `[G, N]`,
/// - `<name>.g_idx`   int32 `[K]`: group of each input column (act-order permutes it),
/// - `<name>.bias`    `[N]` (optional, usually fp16).
///
/// Two zero conventions exist. `gptq` (v1, the original AutoGPTQ layout) stores `zero − 1` in the
/// b-bit field and readers add 1 back; `gptq_v2` stores the zero itself. A zero code of 0 (common with
/// asymmetric quantization) has no v1 encoding — writing it is refused with an error, never wrapped
/// silently; a stored v1 field of `2^b − 1` would decode to `2^b`, outside the code range, and is
/// refused on load for the same reason. lowbit::QuantizedWeight always holds actual zeros (v2).
///
/// @code
/// auto ckpt = lowbit::gptq::Checkpoint::open("out_dir");        // file, folder or sharded index
/// for (const auto& name : ckpt.layers()) {
///   lowbit::gptq::PackedLayer p = ckpt.layer(name);             // validated
///   std::vector<float> W = lowbit::gptq::dequantize(p);          // [N, K]
/// }
/// @endcode
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../bits.hpp"
#include "../error.hpp"
#include "../footprint.hpp"
#include "../numeric.hpp"
#include "../packing.hpp"
#include "../quant.hpp"
#include "../quant_types.hpp"
#include "../safetensors.hpp"

namespace lowbit {
namespace gptq {

/// How zero points are stored in `qzeros`.
enum class CheckpointFormat {
  gptq,     ///< v1: stored = zero − 1 (read back + 1)
  gptq_v2,  ///< v2: stored = zero
};

/// "gptq" or "gptq_v2".
inline const char* format_name(CheckpointFormat f) { return f == CheckpointFormat::gptq ? "gptq" : "gptq_v2"; }

/// Parses "gptq" / "gptq_v2".
/// @throws lowbit::Error for anything else.
inline CheckpointFormat parse_format(std::string_view s) {
  if (s == "gptq") return CheckpointFormat::gptq;
  if (s == "gptq_v2") return CheckpointFormat::gptq_v2;
  lowbit::detail::fail("unknown checkpoint_format \"", s, "\" (expected \"gptq\" or \"gptq_v2\")");
}

/// Contents of `quantize_config.json`.
struct QuantizeConfig {
  int bits = 4;                 ///< code width: 2, 3, 4 or 8
  int group_size = 128;         ///< input columns per group, or -1 for per-channel
  bool desc_act = false;        ///< act-order: columns quantized by decreasing Hessian diagonal
  bool sym = true;              ///< symmetric grid
  bool static_groups = false;   ///< groups fixed before act-order permutation
  bool true_sequential = true;  ///< sub-layers quantized one after another
  double damp_percent = 0.01;   ///< Hessian dampening as a fraction of its mean diagonal
  CheckpointFormat checkpoint_format = CheckpointFormat::gptq;  ///< zero convention of qzeros

  /// The QuantSpec of these settings (group_size -1 becomes per-channel).
  [[nodiscard]] QuantSpec spec() const {
    QuantSpec s;
    s.bits = bits;
    s.group_size = group_size;
    s.sym = sym;
    return s;
  }
  /// Throws lowbit::Error unless the fields are in range.
  void validate() const {
    LOWBIT_CHECK(is_supported_bits(bits), "quantize_config: bits must be 2, 3, 4 or 8 (got ", bits, ")");
    LOWBIT_CHECK(group_size == -1 || group_size > 0, "quantize_config: group_size must be -1 or positive (got ",
                 group_size, ")");
    LOWBIT_CHECK(std::isfinite(damp_percent) && damp_percent >= 0.0 && damp_percent <= 1.0,
                 "quantize_config: damp_percent must be in [0, 1] (got ", damp_percent, ")");
  }
  /// The JSON object written to `quantize_config.json`.
  [[nodiscard]] nlohmann::json to_json() const {
    validate();
    return {{"bits", bits},
            {"group_size", group_size},
            {"desc_act", desc_act},
            {"sym", sym},
            {"static_groups", static_groups},
            {"true_sequential", true_sequential},
            {"damp_percent", damp_percent},
            {"checkpoint_format", format_name(checkpoint_format)},
            {"quant_method", "gptq"}};
  }
  /// Reads a config object; `bits` and `group_size` are required, the rest default as above
  /// (`checkpoint_format` absent means v1 "gptq", as in the original tools). Unknown keys are ignored.
  /// @param j     the JSON object
  /// @param where name used in messages (the file)
  /// @throws lowbit::Error naming the field on a missing or mistyped value.
  static QuantizeConfig from_json(const nlohmann::json& j, std::string_view where = "quantize_config.json") {
    QuantizeConfig c;
    auto bad = [&](auto&&... a) { lowbit::detail::fail(where, ": ", a...); };
    if (!j.is_object()) bad("not a JSON object");
    auto get_int = [&](const char* key, int& out, bool required) {
      auto it = j.find(key);
      if (it == j.end()) {
        if (required) bad("missing \"", key, "\"");
        return;
      }
      if (!it->is_number_integer()) bad("\"", key, "\" must be an integer");
      const auto v = it->get<std::int64_t>();
      if (v < -(1 << 30) || v > (1 << 30)) bad("\"", key, "\" = ", v, " is out of range");
      out = static_cast<int>(v);
    };
    auto get_bool = [&](const char* key, bool& out) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return;
      if (!it->is_boolean()) bad("\"", key, "\" must be true or false");
      out = it->get<bool>();
    };
    get_int("bits", c.bits, true);
    get_int("group_size", c.group_size, true);
    get_bool("desc_act", c.desc_act);
    get_bool("sym", c.sym);
    get_bool("static_groups", c.static_groups);
    get_bool("true_sequential", c.true_sequential);
    if (auto it = j.find("damp_percent"); it != j.end() && !it->is_null()) {
      if (!it->is_number()) bad("\"damp_percent\" must be a number");
      c.damp_percent = it->get<double>();
    }
    if (auto it = j.find("quant_method"); it != j.end() && !it->is_null()) {
      if (!it->is_string() || (it->get<std::string>() != "gptq" && it->get<std::string>() != "GPTQ"))
        bad("\"quant_method\" is ", it->dump(), ", not \"gptq\"");
    }
    for (const char* key : {"checkpoint_format", "format"}) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_string()) bad("\"", key, "\" must be a string");
      try {
        c.checkpoint_format = parse_format(it->get<std::string>());
      } catch (const Error& e) {
        bad(e.what());
      }
      break;
    }
    try {
      c.validate();
    } catch (const Error& e) {
      bad(e.what());
    }
    return c;
  }
  /// Reads `quantize_config.json`.
  /// @throws lowbit::Error on I/O, JSON or field errors.
  static QuantizeConfig load(const std::filesystem::path& path) {
    return from_json(safetensors::read_json_file(path), path.string());
  }
  /// Writes `quantize_config.json` atomically.
  /// @param path   destination
  /// @param inputs files that must not be overwritten
  void save(const std::filesystem::path& path, std::span<const std::filesystem::path> inputs = {}) const {
    safetensors::write_text_file_atomic(path, to_json().dump(2) + "\n", inputs);
  }
};

/// One quantized layer exactly as a checkpoint stores it (packed words, fp16 scales).
struct PackedLayer {
  std::string name;      ///< layer name (tensor names are `<name>.qweight` etc.)
  std::size_t K = 0;     ///< input features
  std::size_t N = 0;     ///< output features
  int bits = 4;          ///< code width
  int group_size = 128;  ///< group size, or -1 per-channel
  CheckpointFormat format = CheckpointFormat::gptq;  ///< zero convention of qzeros
  std::vector<std::int32_t> qweight;  ///< [K·b/32, N]
  std::vector<std::int32_t> qzeros;   ///< [G, N·b/32]
  std::vector<half_t> scales;         ///< [G, N]
  std::vector<std::int32_t> g_idx;    ///< [K]
  std::vector<float> bias;            ///< [N] or empty (values exactly as stored)
  DType bias_dtype = DType::f16;      ///< dtype the bias is stored in

  /// Groups along K.
  [[nodiscard]] std::size_t groups() const { return group_size > 0 ? K / static_cast<std::size_t>(group_size) : 1; }
  /// The QuantSpec (bits, group) of this layer; `sym` is not recorded per layer.
  [[nodiscard]] QuantSpec spec() const {
    QuantSpec s;
    s.bits = bits;
    s.group_size = group_size;
    return s;
  }
};

namespace detail {

using lowbit::detail::fail;

/// Packed-tensor geometry of a layer for a compile-time width.
template <int B>
struct Geometry {
  using QW = GptqQWeightLayout<B>;
  using QZ = GptqQZerosLayout<B>;
  std::size_t K, N, G;
  [[nodiscard]] std::size_t qweight_rows() const { return QW::packed_rows(K, N); }
  [[nodiscard]] std::size_t qzeros_cols() const { return QZ::packed_cols(G, N); }
};

/// Throws unless a [K, N] layer with G groups can be packed at width B (names the layer).
template <int B>
void check_packable(const std::string& name, std::size_t K, std::size_t N) {
  constexpr std::size_t vpp = Bits<B>::values_per_pack;
  LOWBIT_CHECK(K > 0 && N > 0, "layer '", name, "': empty shape K=", K, ", N=", N);
  LOWBIT_CHECK(K % vpp == 0, "layer '", name, "': K = ", K, " is not a multiple of ", vpp, " as ", B,
               "-bit qweight packing along K requires");
  LOWBIT_CHECK(N % vpp == 0, "layer '", name, "': N = ", N, " is not a multiple of ", vpp, " as ", B,
               "-bit qzeros packing along N requires");
}

/// Stored qzeros field for an actual zero in format `f` (throws for a v1 zero of 0).
inline std::uint32_t encode_zero(std::uint32_t zero, CheckpointFormat f, const std::string& name, std::size_t g,
                                 std::size_t n) {
  if (f == CheckpointFormat::gptq_v2) return zero;
  LOWBIT_CHECK(zero != 0, "layer '", name, "': zero point 0 at (group ", g, ", n ", n,
               ") cannot be stored in the v1 \"gptq\" format (it stores zero-1); write checkpoint_format "
               "\"gptq_v2\" instead");
  return zero - 1;
}

/// Actual zero of a stored qzeros field in format `f` (throws when v1 decodes outside the code range).
inline std::uint32_t decode_zero(std::uint32_t stored, std::uint32_t max_code, CheckpointFormat f,
                                 const std::string& name, std::size_t g, std::size_t n) {
  if (f == CheckpointFormat::gptq_v2) return stored;
  LOWBIT_CHECK(stored < max_code, "layer '", name, "': v1 \"gptq\" qzeros field ", stored, " at (group ", g, ", n ", n,
               ") decodes to zero ", stored + 1, ", outside the ", max_code + 1,
               "-code range (a wrapped zero of 0 written by a buggy packer?)");
  return stored + 1;
}

template <int B>
PackedLayer pack_bits(const QuantizedWeight& q, CheckpointFormat f, const std::string& name) {
  using QW = GptqQWeightLayout<B>;
  using QZ = GptqQZerosLayout<B>;
  check_packable<B>(name, q.K, q.N);
  const std::size_t K = q.K, N = q.N, G = q.groups();
  PackedLayer p;
  p.name = name;
  p.K = K;
  p.N = N;
  p.bits = B;
  p.group_size = q.spec.group_size > 0 ? q.spec.group_size : -1;
  p.format = f;
  p.qweight.assign(QW::packed_size(K, N), 0);
  QW::pack(q.codes.data(), K, N, reinterpret_cast<std::uint32_t*>(p.qweight.data()));
  std::vector<std::uint32_t> stored(G * N);
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t n = 0; n < N; ++n) stored[g * N + n] = encode_zero(q.zeros[g * N + n], f, name, g, n);
  p.qzeros.assign(QZ::packed_size(G, N), 0);
  QZ::pack(stored.data(), G, N, reinterpret_cast<std::uint32_t*>(p.qzeros.data()));
  p.scales.resize(G * N);
  for (std::size_t i = 0; i < G * N; ++i) p.scales[i] = half_t(q.scales[i]);
  p.g_idx = q.g_idx;
  return p;
}

template <int B>
QuantizedWeight unpack_bits(const PackedLayer& p) {
  using QW = GptqQWeightLayout<B>;
  using QZ = GptqQZerosLayout<B>;
  const std::size_t K = p.K, N = p.N, G = p.groups();
  QuantizedWeight q;
  q.spec = p.spec();
  q.K = K;
  q.N = N;
  q.codes.resize(K * N);
  QW::unpack(reinterpret_cast<const std::uint32_t*>(p.qweight.data()), K, N, q.codes.data());
  q.zeros.resize(G * N);
  const auto* zw = reinterpret_cast<const std::uint32_t*>(p.qzeros.data());
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t n = 0; n < N; ++n)
      q.zeros[g * N + n] = static_cast<std::uint8_t>(
          decode_zero(QZ::get(zw, G, N, g, n), Bits<B>::max_code, p.format, p.name, g, n));
  q.scales.resize(G * N);
  for (std::size_t i = 0; i < G * N; ++i) q.scales[i] = static_cast<float>(p.scales[i]);
  q.g_idx = p.g_idx;
  return q;
}

template <int B>
void convert_bits(PackedLayer& p, CheckpointFormat to) {
  using QZ = GptqQZerosLayout<B>;
  const std::size_t G = p.groups(), N = p.N;
  auto* zw = reinterpret_cast<std::uint32_t*>(p.qzeros.data());
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t n = 0; n < N; ++n) {
      const std::uint32_t zero = decode_zero(QZ::get(zw, G, N, g, n), Bits<B>::max_code, p.format, p.name, g, n);
      QZ::set(zw, G, N, g, n, encode_zero(zero, to, p.name, g, n));
    }
  p.format = to;
}

}  // namespace detail

/// Checks a PackedLayer's shapes against bits/group/K/N, its g_idx range and its scales.
/// @param p the layer.
/// @throws lowbit::Error naming the layer, tensor and problem.
inline void validate(const PackedLayer& p) {
  const std::string& nm = p.name;
  LOWBIT_CHECK(is_supported_bits(p.bits), "layer '", nm, "': bits must be 2, 3, 4 or 8 (got ", p.bits, ")");
  LOWBIT_CHECK(p.group_size == -1 || p.group_size > 0, "layer '", nm, "': group_size must be -1 or positive");
  dispatch_bits(p.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    detail::check_packable<B>(nm, p.K, p.N);
  });
  LOWBIT_CHECK(p.group_size <= 0 || p.K % static_cast<std::size_t>(p.group_size) == 0, "layer '", nm,
               "': group size ", p.group_size, " does not divide K = ", p.K);
  const std::size_t G = p.groups();
  dispatch_bits(p.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    const detail::Geometry<B> geo{p.K, p.N, G};
    LOWBIT_CHECK(p.qweight.size() == geo.qweight_rows() * p.N, "layer '", nm, "': qweight has ", p.qweight.size(),
                 " words, expected ", geo.qweight_rows(), " x ", p.N);
    LOWBIT_CHECK(p.qzeros.size() == G * geo.qzeros_cols(), "layer '", nm, "': qzeros has ", p.qzeros.size(),
                 " words, expected ", G, " x ", geo.qzeros_cols());
  });
  LOWBIT_CHECK(p.scales.size() == G * p.N, "layer '", nm, "': scales has ", p.scales.size(), " values, expected ", G,
               " x ", p.N);
  LOWBIT_CHECK(p.g_idx.size() == p.K, "layer '", nm, "': g_idx has ", p.g_idx.size(), " entries, expected K = ", p.K);
  for (std::size_t k = 0; k < p.K; ++k)
    LOWBIT_CHECK(p.g_idx[k] >= 0 && static_cast<std::size_t>(p.g_idx[k]) < G, "layer '", nm, "': g_idx[", k,
                 "] = ", p.g_idx[k], " is outside [0, ", G, ")");
  for (std::size_t i = 0; i < p.scales.size(); ++i) {
    const float s = static_cast<float>(p.scales[i]);
    LOWBIT_CHECK(std::isfinite(s) && s > 0.f, "layer '", nm, "': tensor '", nm, ".scales' value ", s, " at (group ",
                 i / p.N, ", n ", i % p.N, ") is not finite and positive");
  }
  LOWBIT_CHECK(p.bias.empty() || p.bias.size() == p.N, "layer '", nm, "': bias has ", p.bias.size(),
               " values, expected N = ", p.N);
}

/// Packs an unpacked weight into checkpoint tensors in format `f`.
/// @param q    the weight (validated first).
/// @param f    zero convention to write.
/// @param name layer name.
/// @throws lowbit::Error if q is invalid, cannot be packed (K or N not a multiple of the pack length),
///         or holds a zero of 0 while `f` is v1.
inline PackedLayer pack(const QuantizedWeight& q, CheckpointFormat f, const std::string& name = "layer") {
  lowbit::validate(q);
  return dispatch_bits(q.spec.bits, [&](auto Bc) { return detail::pack_bits<decltype(Bc)::value>(q, f, name); });
}

/// Unpacks checkpoint tensors into a QuantizedWeight with actual (v2) zeros.
/// @param p the layer (validated first).
/// @throws lowbit::Error if p is invalid or a v1 zero decodes outside the code range.
inline QuantizedWeight unpack(const PackedLayer& p) {
  validate(p);
  QuantizedWeight q = dispatch_bits(p.bits, [&](auto Bc) { return detail::unpack_bits<decltype(Bc)::value>(p); });
  lowbit::validate(q);
  return q;
}

/// Re-encodes qzeros in another zero convention; everything else is copied unchanged (lossless both
/// ways wherever both formats can represent the zeros).
/// @param p  the layer (validated first).
/// @param to target format.
/// @throws lowbit::Error for a zero of 0 going to v1, or a v1 field that decodes outside the range.
inline PackedLayer convert(const PackedLayer& p, CheckpointFormat to) {
  validate(p);
  PackedLayer out = p;
  if (p.format == to) return out;
  dispatch_bits(p.bits, [&](auto Bc) { detail::convert_bits<decltype(Bc)::value>(out, to); });
  return out;
}

/// Dequantized weight `[N, K]` row-major (PyTorch Linear convention).
/// @param p the layer.
inline std::vector<float> dequantize(const PackedLayer& p) { return lowbit::dequantize(unpack(p)); }

/// Exact bytes the layer's tensors occupy (qweight, qzeros, scales, g_idx, bias).
/// @param p the layer.
inline Footprint footprint(const PackedLayer& p) {
  Footprint f = gptq_footprint(p.N, p.K, p.spec(), true, false);
  f.bias = static_cast<std::uint64_t>(p.bias.size()) * dtype_size(p.bias_dtype);
  f.total += f.bias;
  f.bits_per_weight = 8.0 * static_cast<double>(f.total) / (static_cast<double>(p.N) * static_cast<double>(p.K));
  return f;
}

/// Adds the layer's tensors (`<name>.qweight`, `.qzeros`, `.scales`, `.g_idx`, `.bias` if any).
/// @param w the writer.
/// @param p the layer (validated first).
inline void add_layer(safetensors::Writer& w, const PackedLayer& p) {
  validate(p);
  const std::uint64_t G = p.groups();
  const std::uint64_t N = p.N;
  w.add(p.name + ".qweight", {static_cast<std::uint64_t>(p.qweight.size()) / N, N}, p.qweight);
  w.add(p.name + ".qzeros", {G, static_cast<std::uint64_t>(p.qzeros.size()) / G}, p.qzeros);
  w.add(p.name + ".scales", {G, N}, p.scales);
  w.add(p.name + ".g_idx", {static_cast<std::uint64_t>(p.K)}, p.g_idx);
  if (!p.bias.empty()) {
    switch (p.bias_dtype) {
      case DType::f32: w.add(p.name + ".bias", {N}, p.bias); break;
      case DType::bf16: {
        std::vector<bfloat16_t> b(p.bias.size());
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = bfloat16_t(p.bias[i]);
        w.add(p.name + ".bias", {N}, std::move(b));
        break;
      }
      default: {
        std::vector<half_t> b(p.bias.size());
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = half_t(p.bias[i]);
        w.add(p.name + ".bias", {N}, std::move(b));
      }
    }
  }
}

/// Names of the quantized layers in a tensor source (every `<name>` with a `<name>.qweight`), sorted.
/// @param names all tensor names.
inline std::vector<std::string> find_layers(const std::vector<std::string>& names) {
  constexpr std::string_view kSuffix = ".qweight";
  std::vector<std::string> out;
  for (const auto& n : names)
    if (n.size() > kSuffix.size() && n.compare(n.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0)
      out.push_back(n.substr(0, n.size() - kSuffix.size()));
  std::sort(out.begin(), out.end());
  return out;
}

/// Loads and validates one layer from a tensor source.
/// @tparam Source safetensors::Reader or safetensors::ShardedReader (anything with contains/tensor).
/// @param src  the tensors
/// @param name layer name
/// @param cfg  the checkpoint's quantize_config (bits, group size, format)
/// @throws lowbit::Error naming the tensor and the problem (missing tensor, dtype, shape, g_idx out of
///         range, non-finite or non-positive scale, undecodable v1 zero).
template <class Source>
PackedLayer load_layer(const Source& src, const std::string& name, const QuantizeConfig& cfg) {
  cfg.validate();
  auto need = [&](const char* suffix, DType dt, std::size_t rank) {
    const std::string tn = name + suffix;
    if (!src.contains(tn)) detail::fail("layer '", name, "': missing tensor '", tn, "'");
    safetensors::TensorView t = src.tensor(tn);
    if (t.dtype() != dt)
      detail::fail("tensor '", tn, "': dtype ", safetensors::dtype_name(t.dtype()), ", expected ",
                   safetensors::dtype_name(dt));
    if (t.shape().size() != rank)
      detail::fail("tensor '", tn, "': shape ", safetensors::detail::shape_string(t.shape()), " has rank ",
                   t.shape().size(), ", expected ", rank);
    return t;
  };
  PackedLayer p;
  p.name = name;
  p.bits = cfg.bits;
  p.group_size = cfg.group_size;
  p.format = cfg.checkpoint_format;
  auto qw = need(".qweight", DType::i32, 2);
  auto qz = need(".qzeros", DType::i32, 2);
  auto sc = need(".scales", DType::f16, 2);
  dispatch_bits(cfg.bits, [&](auto Bc) {
    constexpr int B = decltype(Bc)::value;
    using T = Bits<B>;
    const std::uint64_t rows = qw.shape()[0];
    if (rows % T::words_per_pack != 0)
      detail::fail("tensor '", name, ".qweight': ", rows, " rows are not a whole number of ", T::words_per_pack,
                   "-word packs for ", B, "-bit codes");
    p.K = static_cast<std::size_t>(rows / T::words_per_pack * T::values_per_pack);
    p.N = static_cast<std::size_t>(qw.shape()[1]);
    detail::check_packable<B>(name, p.K, p.N);
    const std::uint64_t G = cfg.group_size > 0 ? p.K / static_cast<std::size_t>(cfg.group_size) : 1;
    if (cfg.group_size > 0 && p.K % static_cast<std::size_t>(cfg.group_size) != 0)
      detail::fail("layer '", name, "': group size ", cfg.group_size, " does not divide K = ", p.K,
                   " (from qweight ", safetensors::detail::shape_string(qw.shape()), ")");
    const std::vector<std::uint64_t> want_sc{G, p.N};
    if (sc.shape() != want_sc)
      detail::fail("tensor '", name, ".scales': shape ", safetensors::detail::shape_string(sc.shape()), ", expected ",
                   safetensors::detail::shape_string(want_sc), " for K = ", p.K, ", group size ", cfg.group_size);
    const std::vector<std::uint64_t> want_qz{G, GptqQZerosLayout<B>::packed_cols(G, p.N)};
    if (qz.shape() != want_qz)
      detail::fail("tensor '", name, ".qzeros': shape ", safetensors::detail::shape_string(qz.shape()), ", expected ",
                   safetensors::detail::shape_string(want_qz), " for N = ", p.N, " at ", B, " bits");
  });
  p.qweight = qw.template to_vector<std::int32_t>();
  p.qzeros = qz.template to_vector<std::int32_t>();
  p.scales = sc.template to_vector<half_t>();
  for (std::size_t i = 0; i < p.scales.size(); ++i) {
    const float s = static_cast<float>(p.scales[i]);
    if (!(std::isfinite(s) && s > 0.f))
      detail::fail("tensor '", name, ".scales': value ", s, " at (group ", i / p.N, ", n ", i % p.N,
                   ") is not finite and positive");
  }
  if (src.contains(name + ".g_idx")) {
    auto gi = need(".g_idx", DType::i32, 1);
    if (gi.shape()[0] != p.K)
      detail::fail("tensor '", name, ".g_idx': length ", gi.shape()[0], ", expected K = ", p.K);
    p.g_idx = gi.template to_vector<std::int32_t>();
    const std::int64_t G = static_cast<std::int64_t>(p.groups());
    for (std::size_t k = 0; k < p.K; ++k)
      if (p.g_idx[k] < 0 || p.g_idx[k] >= G)
        detail::fail("tensor '", name, ".g_idx': entry ", k, " = ", p.g_idx[k], " is outside [0, ", G, ")");
  } else {  // some writers omit g_idx without act-order: columns are in natural group order
    p.g_idx = sequential_g_idx(p.K, p.spec());
  }
  if (src.contains(name + ".bias")) {
    safetensors::TensorView b = src.tensor(name + ".bias");
    if (!safetensors::is_floating(b.dtype()) || b.dtype() == DType::f64)
      detail::fail("tensor '", name, ".bias': dtype ", safetensors::dtype_name(b.dtype()),
                   " is not F16, BF16 or F32");
    if (b.shape() != std::vector<std::uint64_t>{p.N})
      detail::fail("tensor '", name, ".bias': shape ", safetensors::detail::shape_string(b.shape()), ", expected [",
                   p.N, "]");
    p.bias = b.to_float_vector();
    p.bias_dtype = b.dtype();
  }
  validate(p);
  // Decode every zero now so an undecodable v1 field is reported at load time.
  (void)unpack(p);
  return p;
}

/// A GPTQ checkpoint on disk: tensors (one file, a folder, or a sharded index) plus its config.
class Checkpoint {
 public:
  /// Opens `path` (a `.safetensors` file, a folder, or a `model.safetensors.index.json`) and reads
  /// `quantize_config.json` beside it (or `config.json`'s `quantization_config`).
  /// @throws lowbit::Error when the files are malformed, the config is missing, or no layer is found.
  static Checkpoint open(const std::filesystem::path& path) {
    Checkpoint c{safetensors::ShardedReader::open(path)};
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path qc = c.tensors_.root() / "quantize_config.json";
    const fs::path hf = c.tensors_.root() / "config.json";
    if (fs::exists(qc, ec)) {
      c.config_ = QuantizeConfig::load(qc);
      c.config_path_ = qc;
    } else if (fs::exists(hf, ec)) {
      const nlohmann::json j = safetensors::read_json_file(hf);
      if (!j.is_object() || !j.contains("quantization_config"))
        detail::fail(path.string(), ": no quantize_config.json, and config.json has no quantization_config");
      c.config_ = QuantizeConfig::from_json(j["quantization_config"], hf.string() + " quantization_config");
      c.config_path_ = hf;
    } else {
      detail::fail(path.string(), ": no quantize_config.json (or config.json) beside the checkpoint in ",
                   c.tensors_.root().string());
    }
    c.layers_ = find_layers(c.tensors_.names());
    if (c.layers_.empty()) detail::fail(path.string(), ": no quantized layers (no tensor named '<layer>.qweight')");
    return c;
  }
  /// The quantization settings.
  [[nodiscard]] const QuantizeConfig& config() const { return config_; }
  /// Quantized layer names, sorted.
  [[nodiscard]] const std::vector<std::string>& layers() const { return layers_; }
  /// All tensors.
  [[nodiscard]] const safetensors::ShardedReader& tensors() const { return tensors_; }
  /// Every file read (shards, index, config): outputs must not overwrite these.
  [[nodiscard]] std::vector<std::filesystem::path> files() const {
    auto f = tensors_.files();
    f.push_back(config_path_);
    return f;
  }
  /// True when `tensor` is one of the packed tensors of a quantized layer (qweight/qzeros/scales/g_idx).
  [[nodiscard]] bool is_layer_tensor(const std::string& tensor) const {
    for (const char* s : {".qweight", ".qzeros", ".scales", ".g_idx"}) {
      const std::string_view suf(s);
      if (tensor.size() > suf.size() && tensor.compare(tensor.size() - suf.size(), suf.size(), suf) == 0 &&
          std::binary_search(layers_.begin(), layers_.end(), tensor.substr(0, tensor.size() - suf.size())))
        return true;
    }
    return false;
  }
  /// Loads and validates one layer.
  [[nodiscard]] PackedLayer layer(const std::string& name) const { return load_layer(tensors_, name, config_); }

 private:
  explicit Checkpoint(safetensors::ShardedReader t) : tensors_(std::move(t)) {}
  safetensors::ShardedReader tensors_;
  QuantizeConfig config_;
  std::filesystem::path config_path_;
  std::vector<std::string> layers_;
};

}  // namespace gptq
}  // namespace lowbit
