// Deterministic mutation fuzzing of the safetensors reader and the GPTQ layer loader.
//
// Starting from valid small files (a plain multi-dtype file and a GPTQ checkpoint), thousands of
// seeded mutations (bit flips, byte sets, truncations, header-length edits, number and dtype edits
// inside the JSON, splices) are fed to the readers. Each must either load consistently (every tensor
// inside the data section; every byte readable; layers decode) or throw lowbit::Error — never crash,
// read out of bounds (CI runs this under ASan+UBSan) or throw anything else. Bounded to a few seconds.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <lowbit/format.hpp>
#include <optional>
#include <random>
#include <string>

#include "format_test_util.hpp"

namespace st = lowbit::safetensors;
namespace gq = lowbit::gptq;

namespace {

constexpr int kIterationsPerSeed = 15000;  // mutated files per seed file
constexpr double kTimeBudgetSeconds = 8.0;  // stop early on very slow (sanitized, shared) machines

std::vector<std::byte> seed_plain(const format_test::TempDir& dir) {
  st::Writer w;
  w.add("a.f32", {3, 5}, std::vector<float>(15, 1.25f));
  w.add("b.f16", {7}, std::vector<lowbit::half_t>(7, lowbit::half_t(-0.5f)));
  w.add("c.bf16", {2, 2}, std::vector<lowbit::bfloat16_t>(4, lowbit::bfloat16_t(3.f)));
  w.add("d.i32", {4}, std::vector<std::int32_t>{1, -2, 3, -4});
  w.add("e.u8", {0}, std::vector<std::uint8_t>{});
  w.add("f.i8", {}, std::vector<std::int8_t>{-9});
  w.set_metadata("format", "pt");
  w.write(dir / "plain.safetensors");
  return format_test::read_bytes(dir / "plain.safetensors");
}

std::vector<std::byte> seed_gptq(const format_test::TempDir& dir) {
  lowbit::QuantSpec spec;
  spec.bits = 4;
  spec.group_size = 32;
  const std::size_t N = 16, K = 64;
  std::vector<float> W(N * K);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (auto& x : W) x = normal(rng);
  st::Writer w;
  gq::PackedLayer p = gq::pack(lowbit::rtn_quantize(W.data(), N, K, spec), gq::CheckpointFormat::gptq_v2, "l");
  p.bias.assign(N, 0.5f);
  gq::add_layer(w, p);
  w.write(dir / "gptq.safetensors");
  return format_test::read_bytes(dir / "gptq.safetensors");
}

/// Applies one random mutation in place.
void mutate(std::vector<std::byte>& f, std::mt19937_64& rng) {
  auto pick = [&](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  std::uint64_t hlen = 0;
  if (f.size() >= 8) std::memcpy(&hlen, f.data(), 8);
  const std::size_t header_end = static_cast<std::size_t>(std::min<std::uint64_t>(f.size(), 8 + hlen));
  auto header_pos = [&]() -> std::size_t { return header_end > 8 ? 8 + pick(header_end - 8) : pick(f.size()); };
  static const char kInteresting[] = "{}[]\",:-+0123456789eE. \\u";
  static const char* const kNumbers[] = {"0", "1", "2", "4", "7", "-1", "4294967296", "9223372036854775807",
                                         "18446744073709551615", "18446744073709551616", "1e20", "0.5", "65536"};
  static const char* const kDtypes[] = {"F32", "F16", "BF16", "I32", "I8", "U8", "F64", "I64", "BOOL", "U16", "Q4"};
  switch (rng() % 8) {
    case 0:  // flip a bit, mostly inside the header
      if (!f.empty()) {
        const std::size_t at = (rng() % 4 != 0) ? header_pos() : pick(f.size());
        f[at] ^= static_cast<std::byte>(1u << (rng() % 8));
      }
      break;
    case 1:  // set a header byte to a JSON-significant character
      if (!f.empty()) f[header_pos()] = static_cast<std::byte>(kInteresting[pick(sizeof kInteresting - 1)]);
      break;
    case 2:  // truncate
      f.resize(pick(f.size() + 1));
      break;
    case 3: {  // edit the header length
      std::uint64_t v;
      switch (rng() % 4) {
        case 0: v = hlen + 1 + pick(8); break;
        case 1: v = hlen > 8 ? hlen - 1 - pick(8) : 0; break;
        case 2: v = pick(f.size() + 16); break;
        default: v = rng(); break;
      }
      if (f.size() < 8) f.resize(8);
      std::memcpy(f.data(), &v, 8);
      break;
    }
    case 4: {  // replace a number inside the JSON
      std::string h(reinterpret_cast<const char*>(f.data()) + std::min<std::size_t>(8, f.size()),
                    header_end > 8 ? header_end - 8 : 0);
      std::vector<std::size_t> starts;
      for (std::size_t i = 0; i < h.size(); ++i)
        if (std::isdigit(static_cast<unsigned char>(h[i])) && (i == 0 || !std::isdigit(static_cast<unsigned char>(h[i - 1]))))
          starts.push_back(i);
      if (starts.empty()) break;
      const std::size_t s = starts[pick(starts.size())];
      std::size_t e = s;
      while (e < h.size() && std::isdigit(static_cast<unsigned char>(h[e]))) ++e;
      std::string repl = rng() % 3 == 0 ? std::to_string(rng() % 100000) : kNumbers[pick(std::size(kNumbers))];
      h.replace(s, e - s, repl);
      // keep the length prefix consistent so the edit reaches the JSON checks
      std::vector<std::byte> g(8 + h.size() + (f.size() - header_end));
      const std::uint64_t n = h.size();
      std::memcpy(g.data(), &n, 8);
      std::memcpy(g.data() + 8, h.data(), h.size());
      if (f.size() > header_end) std::memcpy(g.data() + 8 + h.size(), f.data() + header_end, f.size() - header_end);
      f.swap(g);
      break;
    }
    case 5: {  // swap a dtype string for another of the same length (layout stays byte-compatible)
      std::string h(reinterpret_cast<const char*>(f.data()) + std::min<std::size_t>(8, f.size()),
                    header_end > 8 ? header_end - 8 : 0);
      const char* from = kDtypes[pick(std::size(kDtypes))];
      const std::size_t at = h.find(std::string("\"") + from + "\"", pick(h.size() + 1) / 2);
      if (at == std::string::npos) break;
      std::string to = kDtypes[pick(std::size(kDtypes))];
      if (to.size() != std::strlen(from)) break;
      std::memcpy(f.data() + 8 + at + 1, to.data(), to.size());
      break;
    }
    case 6: {  // splice a chunk of the file over another place
      if (f.size() < 2) break;
      const std::size_t len = 1 + pick(std::min<std::size_t>(32, f.size() - 1));
      const std::size_t src = pick(f.size() - len + 1), dst = header_pos();
      for (std::size_t i = 0; i < len && dst + i < f.size(); ++i) f[dst + i] = f[src + i];
      break;
    }
    default: {  // append garbage
      const std::size_t n = 1 + pick(64);
      for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<std::byte>(rng() & 0xff));
      break;
    }
  }
}

struct Stats {
  int accepted = 0, rejected = 0, layers_loaded = 0, layers_rejected = 0;
};

/// Loads a candidate file and checks the accepted result is consistent.
void exercise(const std::vector<std::byte>& f, Stats& s) {
  std::optional<st::Reader> r;
  try {
    r.emplace(st::Reader::from_memory(f, "fuzz"));
  } catch (const lowbit::Error&) {
    ++s.rejected;
    return;
  }
  ++s.accepted;
  const std::uint64_t data_size = r->file_size() - r->data_start();
  REQUIRE(r->data_start() <= r->file_size());
  unsigned sum = 0;
  for (const st::TensorInfo& t : r->tensors()) {
    REQUIRE(t.offset <= data_size);
    REQUIRE(t.nbytes <= data_size - t.offset);
    const st::TensorView v = r->view(t);
    for (std::uint64_t i = 0; i < v.nbytes(); ++i) sum += static_cast<unsigned>(v.data()[i]);  // ASan: in bounds
    if (st::is_floating(v.dtype())) REQUIRE(v.to_float_vector().size() == v.numel());
  }
  (void)sum;
  gq::QuantizeConfig cfg;
  cfg.bits = 4;
  cfg.group_size = 32;
  cfg.checkpoint_format = gq::CheckpointFormat::gptq_v2;
  std::vector<std::string> names;
  for (const auto& t : r->tensors()) names.push_back(t.name);
  for (const std::string& layer : gq::find_layers(names)) {
    try {
      const gq::PackedLayer p = gq::load_layer(*r, layer, cfg);
      const std::vector<float> W = gq::dequantize(p);
      REQUIRE(W.size() == p.N * p.K);
      ++s.layers_loaded;
    } catch (const lowbit::Error&) {
      ++s.layers_rejected;
    }
  }
}

}  // namespace

TEST_CASE("fuzz: seeded mutations of safetensors / GPTQ files load consistently or throw lowbit::Error",
          "[format][fuzz]") {
  format_test::TempDir dir("fuzz");
  const std::vector<std::vector<std::byte>> seeds = {seed_plain(dir), seed_gptq(dir)};
  const auto start = std::chrono::steady_clock::now();
  Stats stats;
  int done = 0;
  for (std::size_t si = 0; si < seeds.size(); ++si) {
    exercise(seeds[si], stats);  // the seeds themselves are valid
    for (int it = 0; it < kIterationsPerSeed; ++it) {
      std::mt19937_64 rng((static_cast<std::uint64_t>(si + 1) << 32) | static_cast<std::uint64_t>(it));
      std::vector<std::byte> f = seeds[si];
      const int n_mut = 1 + static_cast<int>(rng() % 3);
      for (int m = 0; m < n_mut; ++m) mutate(f, rng);
      try {
        exercise(f, stats);
      } catch (const std::exception& e) {
        if (dynamic_cast<const Catch::TestFailureException*>(&e) == nullptr)
          FAIL("seed " << si << " iteration " << it << ": unexpected exception type: " << e.what());
        throw;
      }
      ++done;
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kTimeBudgetSeconds) break;
    }
  }
  INFO("mutated files " << done << ", accepted " << stats.accepted << ", rejected " << stats.rejected
                        << ", layers loaded " << stats.layers_loaded << ", layers rejected " << stats.layers_rejected);
  // The mutations must reach both outcomes, or the test would not be testing anything.
  CHECK(stats.accepted > 10);
  CHECK(stats.rejected > 100);
  CHECK(stats.layers_loaded > 1);
  CHECK(stats.layers_rejected > 0);
  WARN("fuzz: " << done << " mutated files, " << stats.accepted << " accepted, " << stats.rejected << " rejected, "
                << stats.layers_loaded << " layers loaded, " << stats.layers_rejected << " layers rejected");
}
