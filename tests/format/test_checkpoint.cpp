// GPTQ checkpoint format: published-layout words checked bit for bit, v1 <-> v2 zero conventions
// (lossless both ways, refusal of a v1 zero of 0), load-time validation with named errors,
// quantize_config.json, and dequantization in PyTorch's [N, K] orientation.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <lowbit/format.hpp>
#include <random>

#include "format_test_util.hpp"

namespace st = lowbit::safetensors;
namespace gq = lowbit::gptq;
using format_test::TempDir;
using gq::CheckpointFormat;

namespace {

/// A QuantizedWeight with random codes, zeros in [zmin, max_code] (or 2^(b-1) when sym) and random
/// fp16-exact scales; g_idx sequential or (act_order) a random assignment with every group used.
lowbit::QuantizedWeight synthetic(int bits, int group, std::size_t K, std::size_t N, bool sym, unsigned zmin,
                                  std::uint32_t seed, bool act_order = false) {
  std::mt19937 rng(seed);
  lowbit::QuantizedWeight q;
  q.spec.bits = bits;
  q.spec.group_size = group;
  q.spec.sym = sym;
  q.K = K;
  q.N = N;
  const unsigned maxc = (1u << bits) - 1u;
  const std::size_t G = q.spec.num_groups(K);
  q.codes.resize(K * N);
  for (auto& c : q.codes) c = static_cast<std::uint8_t>(rng() % (maxc + 1));
  q.zeros.resize(G * N);
  for (auto& z : q.zeros)
    z = static_cast<std::uint8_t>(sym ? (1u << (bits - 1)) : zmin + rng() % (maxc + 1 - zmin));
  q.scales.resize(G * N);
  std::uniform_real_distribution<float> u(1e-4f, 0.1f);
  for (auto& s : q.scales) s = lowbit::round_to_half(u(rng));
  q.g_idx = lowbit::sequential_g_idx(K, q.spec);
  if (act_order) std::shuffle(q.g_idx.begin(), q.g_idx.end(), rng);
  return q;
}

/// Independent bit-level reference of the GPTQ stream packing: bit (i*b + j) of the stream is bit j of
/// value i; word w holds stream bits [32w, 32w+32), lowest first.
std::vector<std::uint32_t> reference_stream(const std::vector<unsigned>& values, int bits) {
  const std::size_t nbits = values.size() * static_cast<std::size_t>(bits);
  std::vector<std::uint32_t> words((nbits + 31) / 32, 0);
  for (std::size_t i = 0; i < values.size(); ++i)
    for (int j = 0; j < bits; ++j) {
      const std::size_t bit = i * static_cast<std::size_t>(bits) + static_cast<std::size_t>(j);
      if ((values[i] >> j) & 1u) words[bit / 32] |= 1u << (bit % 32);
    }
  return words;
}

std::uint32_t u32(std::int32_t v) { return static_cast<std::uint32_t>(v); }

void save_layer_file(const std::filesystem::path& file, const gq::PackedLayer& p) {
  st::Writer w;
  gq::add_layer(w, p);
  w.write(file);
}

}  // namespace

TEST_CASE("checkpoint: hand-made 4-bit layer matches the published layout bit for bit", "[format][checkpoint]") {
  // K = 16, N = 8, group 8 (G = 2). code[k][n] = (k + n) % 16; zero[g][n] = n + 1 + g; scale 0.5.
  lowbit::QuantizedWeight q;
  q.spec.bits = 4;
  q.spec.group_size = 8;
  q.K = 16;
  q.N = 8;
  for (std::size_t k = 0; k < 16; ++k)
    for (std::size_t n = 0; n < 8; ++n) q.codes.push_back(static_cast<std::uint8_t>((k + n) % 16));
  for (std::size_t g = 0; g < 2; ++g)
    for (std::size_t n = 0; n < 8; ++n) q.zeros.push_back(static_cast<std::uint8_t>(n + 1 + g));
  q.scales.assign(16, 0.5f);
  q.g_idx = lowbit::sequential_g_idx(16, q.spec);

  const gq::PackedLayer v2 = gq::pack(q, CheckpointFormat::gptq_v2, "l");
  const gq::PackedLayer v1 = gq::pack(q, CheckpointFormat::gptq, "l");
  // qweight [K*4/32, N] = [2, 8]: word (r, n) holds codes k = 8r..8r+7 of column n, lowest nibble first.
  REQUIRE(v2.qweight.size() == 16);
  CHECK(u32(v2.qweight[0 * 8 + 0]) == 0x76543210u);  // column 0, k 0..7
  CHECK(u32(v2.qweight[1 * 8 + 0]) == 0xFEDCBA98u);  // column 0, k 8..15
  CHECK(u32(v2.qweight[0 * 8 + 1]) == 0x87654321u);  // column 1, k 1..8
  CHECK(u32(v2.qweight[1 * 8 + 7]) == 0x6543210Fu);  // column 7, k 15, 16%16=0, ...
  CHECK(v1.qweight == v2.qweight);
  // qzeros [G, N*4/32] = [2, 1]: zeros of n = 0..7 along the word.
  REQUIRE(v2.qzeros.size() == 2);
  CHECK(u32(v2.qzeros[0]) == 0x87654321u);  // v2: zeros 1..8 as is
  CHECK(u32(v2.qzeros[1]) == 0x98765432u);
  CHECK(u32(v1.qzeros[0]) == 0x76543210u);  // v1: zero - 1
  CHECK(u32(v1.qzeros[1]) == 0x87654321u);
  // scales: fp16 0.5 is 0x3800.
  for (auto s : v1.scales) CHECK(s.bits == 0x3800);

  // On disk: int32 little-endian, so the first qweight bytes are 10 32 54 76.
  TempDir dir("handmade");
  save_layer_file(dir / "model.safetensors", v1);
  const st::Reader r = st::Reader::open(dir / "model.safetensors");
  const st::TensorView t = r.tensor("l.qweight");
  CHECK(t.shape() == std::vector<std::uint64_t>{2, 8});
  const auto* b = reinterpret_cast<const unsigned char*>(t.data());
  CHECK((b[0] == 0x10 && b[1] == 0x32 && b[2] == 0x54 && b[3] == 0x76));
  CHECK(r.tensor("l.qzeros").shape() == std::vector<std::uint64_t>{2, 1});
  CHECK(r.tensor("l.scales").shape() == std::vector<std::uint64_t>{2, 8});
  CHECK(r.tensor("l.scales").dtype() == lowbit::DType::f16);
  CHECK(r.tensor("l.g_idx").to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1});

  // Read back as v1 and dequantize: w[n, k] = 0.5 * (code - zero), laid out [N, K].
  gq::QuantizeConfig cfg;
  cfg.bits = 4;
  cfg.group_size = 8;
  cfg.checkpoint_format = CheckpointFormat::gptq;
  const gq::PackedLayer back = gq::load_layer(r, "l", cfg);
  const std::vector<float> W = gq::dequantize(back);
  REQUIRE(W.size() == 16 * 8);
  for (std::size_t n = 0; n < 8; ++n)
    for (std::size_t k = 0; k < 16; ++k) {
      const double code = static_cast<double>((k + n) % 16), zero = static_cast<double>(n + 1 + k / 8);
      CHECK(W[n * 16 + k] == static_cast<float>(0.5 * (code - zero)));
    }
}

TEST_CASE("checkpoint: packing matches a bit-level reference for 2/3/4/8 bits", "[format][checkpoint]") {
  for (int bits : {2, 3, 4, 8}) {
    INFO("bits " << bits);
    const std::size_t K = 64, N = 64;
    const auto q = synthetic(bits, 32, K, N, false, 0, 100u + static_cast<unsigned>(bits));
    const gq::PackedLayer p = gq::pack(q, CheckpointFormat::gptq_v2, "l");
    const std::size_t rows = K * static_cast<std::size_t>(bits) / 32;
    REQUIRE(p.qweight.size() == rows * N);
    for (std::size_t n = 0; n < N; ++n) {  // each column is one stream along K
      std::vector<unsigned> col(K);
      for (std::size_t k = 0; k < K; ++k) col[k] = q.codes[k * N + n];
      const auto ref = reference_stream(col, bits);
      for (std::size_t r = 0; r < rows; ++r) CHECK(u32(p.qweight[r * N + n]) == ref[r]);
    }
    const std::size_t G = 2, zcols = N * static_cast<std::size_t>(bits) / 32;
    REQUIRE(p.qzeros.size() == G * zcols);
    for (std::size_t g = 0; g < G; ++g) {  // each group row is one stream along N
      std::vector<unsigned> row(q.zeros.begin() + static_cast<long>(g * N), q.zeros.begin() + static_cast<long>((g + 1) * N));
      const auto ref = reference_stream(row, bits);
      for (std::size_t c = 0; c < zcols; ++c) CHECK(u32(p.qzeros[g * zcols + c]) == ref[c]);
    }
  }
}

TEST_CASE("checkpoint: v1 <-> v2 conversion is lossless for every width, group and symmetry", "[format][checkpoint]") {
  const std::size_t K = 128, N = 64;
  std::uint32_t seed = 7;
  for (int bits : {2, 3, 4, 8}) {
    for (int group : {-1, 32, 64, 128}) {
      for (bool sym : {true, false}) {
        for (bool act : {false, true}) {
          INFO("bits " << bits << " group " << group << " sym " << sym << " act_order " << act);
          const auto q = synthetic(bits, group, K, N, sym, 1, seed++, act);  // zeros >= 1: v1-representable
          const gq::PackedLayer v2 = gq::pack(q, CheckpointFormat::gptq_v2, "l");
          const gq::PackedLayer v1 = gq::pack(q, CheckpointFormat::gptq, "l");
          const gq::PackedLayer v1c = gq::convert(v2, CheckpointFormat::gptq);
          const gq::PackedLayer v2c = gq::convert(v1, CheckpointFormat::gptq_v2);
          CHECK(v1c.qzeros == v1.qzeros);
          CHECK(v2c.qzeros == v2.qzeros);
          CHECK(gq::convert(v1c, CheckpointFormat::gptq_v2).qzeros == v2.qzeros);
          CHECK(v1c.qweight == v2.qweight);
          CHECK(v1c.format == CheckpointFormat::gptq);
          for (const gq::PackedLayer* p : {&v1, &v2, &v1c, &v2c}) {
            const lowbit::QuantizedWeight u = gq::unpack(*p);
            CHECK(u.codes == q.codes);
            CHECK(u.zeros == q.zeros);
            CHECK(u.scales == q.scales);
            CHECK(u.g_idx == q.g_idx);
          }
          if (!sym && bits <= 4) CHECK(v1.qzeros != v2.qzeros);  // the conventions really differ
        }
      }
    }
  }
}

TEST_CASE("checkpoint: a zero of 0 cannot be written as v1 and a v1 field 2^b-1 cannot be read", "[format][checkpoint]") {
  for (int bits : {2, 3, 4, 8}) {
    INFO("bits " << bits);
    auto q = synthetic(bits, 32, 64, 32, false, 1, 50u + static_cast<unsigned>(bits));
    q.zeros[1 * 32 + 5] = 0;  // group 1, column 5
    CHECK_THROWS_WITH(gq::pack(q, CheckpointFormat::gptq, "layer.x"),
                      Catch::Contains("layer 'layer.x'") && Catch::Contains("zero point 0 at (group 1, n 5)") &&
                          Catch::Contains("gptq_v2"));
    const gq::PackedLayer v2 = gq::pack(q, CheckpointFormat::gptq_v2, "layer.x");
    CHECK_THROWS_WITH(gq::convert(v2, CheckpointFormat::gptq), Catch::Contains("zero point 0 at (group 1, n 5)"));
    CHECK(gq::unpack(v2).zeros == q.zeros);  // v2 holds it fine

    // A v1 field holding 2^b - 1 (what a zero of 0 wraps to) decodes to 2^b: refused, not wrapped.
    gq::PackedLayer v1 = gq::pack(synthetic(bits, 32, 64, 32, false, 1, 60u + static_cast<unsigned>(bits)),
                                  CheckpointFormat::gptq, "layer.y");
    lowbit::dispatch_bits(bits, [&](auto B) {
      using QZ = lowbit::GptqQZerosLayout<decltype(B)::value>;
      QZ::set(reinterpret_cast<std::uint32_t*>(v1.qzeros.data()), 2, 32, 0, 3, lowbit::Bits<decltype(B)::value>::max_code);
    });
    CHECK_THROWS_WITH(gq::unpack(v1), Catch::Contains("layer 'layer.y'") && Catch::Contains("(group 0, n 3)") &&
                                          Catch::Contains("decodes to zero " + std::to_string(1 << bits)));
    CHECK_THROWS_WITH(gq::convert(v1, CheckpointFormat::gptq_v2), Catch::Contains("outside the"));
  }
}

TEST_CASE("checkpoint: folder round trip, config, dequantize [N, K] and footprint", "[format][checkpoint]") {
  TempDir dir("folder");
  const std::size_t K = 256, N = 96;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 0.05f);
  std::vector<float> W(N * K);
  for (auto& w : W) w = normal(rng);
  lowbit::QuantSpec spec;
  spec.bits = 3;
  spec.group_size = 64;
  spec.sym = true;
  const lowbit::QuantizedWeight q = lowbit::rtn_quantize(W.data(), N, K, spec);
  gq::PackedLayer p = gq::pack(q, CheckpointFormat::gptq, "model.layers.0.self_attn.q_proj");
  p.bias.resize(N);
  for (std::size_t n = 0; n < N; ++n) p.bias[n] = lowbit::round_to_half(0.01f * static_cast<float>(n));
  st::Writer w;
  gq::add_layer(w, p);
  w.add("model.norm.weight", {K}, std::vector<float>(K, 1.f));
  w.write_sharded(dir.path(), 4096);  // several shards + index
  gq::QuantizeConfig cfg;
  cfg.bits = 3;
  cfg.group_size = 64;
  cfg.sym = true;
  cfg.checkpoint_format = CheckpointFormat::gptq;
  cfg.save(dir / "quantize_config.json");

  const gq::Checkpoint ck = gq::Checkpoint::open(dir.path());
  CHECK(ck.layers() == std::vector<std::string>{"model.layers.0.self_attn.q_proj"});
  CHECK(ck.config().bits == 3);
  CHECK(ck.config().group_size == 64);
  CHECK(ck.config().checkpoint_format == CheckpointFormat::gptq);
  CHECK(ck.is_layer_tensor("model.layers.0.self_attn.q_proj.qzeros"));
  CHECK_FALSE(ck.is_layer_tensor("model.layers.0.self_attn.q_proj.bias"));
  CHECK_FALSE(ck.is_layer_tensor("model.norm.weight"));
  const gq::PackedLayer back = ck.layer("model.layers.0.self_attn.q_proj");
  CHECK(back.K == K);
  CHECK(back.N == N);
  CHECK(back.bias == p.bias);
  const std::vector<float> Wq = gq::dequantize(back);
  REQUIRE(Wq.size() == N * K);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t g = k / 64;
      const float ref = q.scales[g * N + n] * (static_cast<float>(q.codes[k * N + n]) - static_cast<float>(q.zeros[g * N + n]));
      if (Wq[n * K + k] != ref) FAIL_CHECK("mismatch at n " << n << " k " << k);
    }
  // RTN error bound: |w - wq| <= scale/2 on the grid, plus what rounding the scale to fp16 (relative
  // 2^-11) moves the extreme grid point (at most 2^(b-1) steps from the zero): 4 * scale * 2^-11.
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) {
      const float s = q.scales[(k / 64) * N + n];
      if (std::abs(W[n * K + k] - Wq[n * K + k]) > s * (0.5f + 4.f / 2048.f) + 1e-7f)
        FAIL_CHECK("RTN error above scale/2 at n " << n << " k " << k);
    }

  // Footprint = the bytes actually stored.
  const lowbit::Footprint f = gq::footprint(back);
  std::uint64_t stored = 0;
  for (const char* s : {".qweight", ".qzeros", ".scales", ".g_idx", ".bias"})
    stored += ck.tensors().tensor("model.layers.0.self_attn.q_proj" + std::string(s)).nbytes();
  CHECK(f.total == stored);
  CHECK(f.codes == K * 3 / 32 * N * 4);

  // config.json's quantization_config works when quantize_config.json is absent.
  std::filesystem::remove(dir / "quantize_config.json");
  CHECK_THROWS_WITH(gq::Checkpoint::open(dir.path()), Catch::Contains("no quantize_config.json"));
  format_test::write_bytes(dir / "config.json", [] {
    const std::string s = R"({"architectures":["X"],"quantization_config":{"bits":3,"group_size":64,"sym":true,"quant_method":"gptq"}})";
    std::vector<std::byte> b(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
  }());
  CHECK(gq::Checkpoint::open(dir.path()).layer("model.layers.0.self_attn.q_proj").K == K);
}

TEST_CASE("checkpoint: quantize_config.json fields are checked", "[format][checkpoint]") {
  using nlohmann::json;
  gq::QuantizeConfig c;
  c.bits = 2;
  c.group_size = -1;
  c.desc_act = true;
  c.sym = false;
  c.static_groups = true;
  c.true_sequential = false;
  c.damp_percent = 0.1;
  c.checkpoint_format = CheckpointFormat::gptq_v2;
  const gq::QuantizeConfig d = gq::QuantizeConfig::from_json(c.to_json());
  CHECK(d.bits == 2);
  CHECK(d.group_size == -1);
  CHECK(d.desc_act);
  CHECK_FALSE(d.sym);
  CHECK(d.static_groups);
  CHECK_FALSE(d.true_sequential);
  CHECK(d.damp_percent == 0.1);
  CHECK(d.checkpoint_format == CheckpointFormat::gptq_v2);
  CHECK(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 128}}).checkpoint_format == CheckpointFormat::gptq);

  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 5}, {"group_size", 128}}), Catch::Contains("bits must be 2, 3, 4 or 8"));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}}), Catch::Contains("missing \"group_size\""));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", "4"}, {"group_size", 128}}), Catch::Contains("\"bits\" must be an integer"));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 0}}), Catch::Contains("group_size must be -1 or positive"));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 128}, {"sym", "yes"}}), Catch::Contains("\"sym\" must be true or false"));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 128}, {"checkpoint_format", "gptq_v3"}}), Catch::Contains("unknown checkpoint_format \"gptq_v3\""));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 128}, {"quant_method", "awq"}}), Catch::Contains("not \"gptq\""));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json{{"bits", 4}, {"group_size", 128}, {"damp_percent", 2.0}}), Catch::Contains("damp_percent must be in [0, 1]"));
  CHECK_THROWS_WITH(gq::QuantizeConfig::from_json(json::array()), Catch::Contains("not a JSON object"));
  TempDir dir("cfg");
  format_test::write_bytes(dir / "quantize_config.json", std::vector<std::byte>{std::byte{'{'}});
  CHECK_THROWS_WITH(gq::QuantizeConfig::load(dir / "quantize_config.json"), Catch::Contains("invalid JSON"));
}

TEST_CASE("checkpoint: malformed layers are refused naming the tensor and the problem", "[format][checkpoint]") {
  // A valid 3-bit layer K = 64, N = 32, group 32, then one defect at a time.
  const auto q = synthetic(3, 32, 64, 32, false, 1, 11);
  const gq::PackedLayer good = gq::pack(q, CheckpointFormat::gptq_v2, "L");
  gq::QuantizeConfig cfg;
  cfg.bits = 3;
  cfg.group_size = 32;
  cfg.checkpoint_format = CheckpointFormat::gptq_v2;

  using Edit = void (*)(st::Writer&, const gq::PackedLayer&);
  struct Case {
    const char* what;
    Edit edit;
    const char* expect;
  };
  auto base = [](st::Writer& w, const gq::PackedLayer& p, bool qw, bool qz, bool sc, bool gi) {
    if (qw) w.add("L.qweight", {static_cast<std::uint64_t>(p.qweight.size() / p.N), p.N}, p.qweight);
    if (qz) w.add("L.qzeros", {2, static_cast<std::uint64_t>(p.qzeros.size() / 2)}, p.qzeros);
    if (sc) w.add("L.scales", {2, p.N}, p.scales);
    if (gi) w.add("L.g_idx", {p.K}, p.g_idx);
  };
  static decltype(base)* B = nullptr;
  B = &base;
  const Case cases[] = {
      {"missing scales", [](st::Writer& w, const gq::PackedLayer& p) { (*B)(w, p, true, true, false, true); },
       "layer 'L': missing tensor 'L.scales'"},
      {"scales in F32",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, false, true);
         w.add("L.scales", {2, p.N}, std::vector<float>(2 * p.N, 0.1f));
       },
       "tensor 'L.scales': dtype F32, expected F16"},
      {"qweight rank 1",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, false, true, true, true);
         w.add("L.qweight", {static_cast<std::uint64_t>(p.qweight.size())}, p.qweight);
       },
       "tensor 'L.qweight': shape [192] has rank 1, expected 2"},
      {"qweight rows not a whole 3-bit pack",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, false, true, true, true);
         w.add("L.qweight", {4, p.N}, std::vector<std::int32_t>(4 * p.N));
       },
       "4 rows are not a whole number of 3-word packs"},
      {"N not a multiple of 32 at 3 bits",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, false, true, true, true);
         w.add("L.qweight", {6, 16}, std::vector<std::int32_t>(6 * 16));
       },
       "N = 16 is not a multiple of 32"},
      {"scales with the wrong group count",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, false, true);
         w.add("L.scales", {3, p.N}, std::vector<lowbit::half_t>(3 * p.N, lowbit::half_t(0.1f)));
       },
       "tensor 'L.scales': shape [3, 32], expected [2, 32]"},
      {"qzeros too narrow",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, false, true, true);
         w.add("L.qzeros", {2, 2}, std::vector<std::int32_t>(4));
       },
       "tensor 'L.qzeros': shape [2, 2], expected [2, 3]"},
      {"g_idx out of range",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, true, false);
         auto g = p.g_idx;
         g[40] = 2;
         w.add("L.g_idx", {p.K}, g);
       },
       "tensor 'L.g_idx': entry 40 = 2 is outside [0, 2)"},
      {"negative g_idx",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, true, false);
         auto g = p.g_idx;
         g[0] = -1;
         w.add("L.g_idx", {p.K}, g);
       },
       "entry 0 = -1 is outside"},
      {"g_idx too short",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, true, false);
         w.add("L.g_idx", {p.K - 1}, std::vector<std::int32_t>(p.K - 1, 0));
       },
       "tensor 'L.g_idx': length 63, expected K = 64"},
      {"NaN scale",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, false, true);
         auto s = p.scales;
         s[33] = lowbit::half_t::from_bits(0x7e00);
         w.add("L.scales", {2, p.N}, s);
       },
       "tensor 'L.scales': value nan at (group 1, n 1) is not finite and positive"},
      {"infinite scale",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, false, true);
         auto s = p.scales;
         s[2] = lowbit::half_t::from_bits(0x7c00);
         w.add("L.scales", {2, p.N}, s);
       },
       "value inf at (group 0, n 2)"},
      {"zero scale",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, false, true);
         auto s = p.scales;
         s[5] = lowbit::half_t(0.f);
         w.add("L.scales", {2, p.N}, s);
       },
       "value 0 at (group 0, n 5) is not finite and positive"},
      {"bias of the wrong length",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, true, true);
         w.add("L.bias", {p.N + 1}, std::vector<lowbit::half_t>(p.N + 1));
       },
       "tensor 'L.bias': shape [33], expected [32]"},
      {"integer bias",
       [](st::Writer& w, const gq::PackedLayer& p) {
         (*B)(w, p, true, true, true, true);
         w.add("L.bias", {p.N}, std::vector<std::int32_t>(p.N));
       },
       "tensor 'L.bias': dtype I32 is not F16, BF16 or F32"},
  };
  TempDir dir("badlayer");
  for (const Case& c : cases) {
    INFO(c.what);
    st::Writer w;
    c.edit(w, good);
    w.write(dir / "m.safetensors");
    const st::Reader r = st::Reader::open(dir / "m.safetensors");
    CHECK_THROWS_WITH(gq::load_layer(r, "L", cfg), Catch::Contains(c.expect));
  }
  {  // the unmodified layer loads, with and without g_idx (sequential assumed)
    st::Writer w;
    base(w, good, true, true, true, true);
    w.write(dir / "ok.safetensors");
    const st::Reader r = st::Reader::open(dir / "ok.safetensors");
    CHECK(gq::unpack(gq::load_layer(r, "L", cfg)).codes == q.codes);
    st::Writer w2;
    base(w2, good, true, true, true, false);
    w2.write(dir / "nogidx.safetensors");
    CHECK(gq::load_layer(st::Reader::open(dir / "nogidx.safetensors"), "L", cfg).g_idx == q.g_idx);
    // group size that does not divide K (= 64), and a config with another width than the file.
    gq::QuantizeConfig g48 = cfg;
    g48.group_size = 48;
    CHECK_THROWS_WITH(gq::load_layer(r, "L", g48), Catch::Contains("group size 48 does not divide K = 64"));
    gq::QuantizeConfig b4 = cfg;
    b4.bits = 4;  // qweight [6, 32] read as 4-bit is K = 48, inconsistent with scales/g_idx
    CHECK_THROWS_AS(gq::load_layer(r, "L", b4), lowbit::Error);
  }
  // A folder without any <name>.qweight is not a GPTQ checkpoint.
  TempDir plain("plain");
  st::Writer w;
  w.add("x.weight", {2, 2}, std::vector<float>(4));
  w.write(plain / "model.safetensors");
  cfg.save(plain / "quantize_config.json");
  CHECK_THROWS_WITH(gq::Checkpoint::open(plain.path()), Catch::Contains("no quantized layers"));
}
