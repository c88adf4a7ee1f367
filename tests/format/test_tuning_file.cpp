// Decode tuning files (lowbit/kernels/tuning_file.hpp): round trip of every field, lookup by weight shape
// and device, and refusal, with a message naming the entry, of every kind of damaged or mistyped file;
// a failed save leaves the previous file as it was.
#include <catch2/catch.hpp>
#include <lowbit/kernels/tuning_file.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "format_test_util.hpp"

namespace k = lowbit::kernels;
using format_test::TempDir;

namespace {

k::DecodeTuning make_tuning(const std::string& device, int sms, k::TiledMeta meta, std::uint32_t seed) {
  std::mt19937 rng(seed);
  k::DecodeTuning t;
  t.device = device;
  t.sm_count = sms;
  t.meta = meta;
  const int warps[] = {4, 8, 16};
  for (std::size_t M = 1; M <= k::kDecodeMaxM; M += 1 + rng() % 3) {
    t.by_m[M] = {warps[rng() % 3], static_cast<int>(1 + rng() % 16), static_cast<int>(1 + rng() % 2),
                 static_cast<int>(rng() % 3)};
    t.us[M] = 5.0 + static_cast<double>(rng() % 100000) / 997.0;  // not short decimals: exercises the round trip
    t.planned_us[M] = t.us[M] * (1.0 + static_cast<double>(rng() % 300) / 1000.0);
  }
  return t;
}

std::vector<k::DecodeTuning> sample() {
  return {make_tuning("NVIDIA H100 80GB HBM3", 132, {4, 8192, 28672, 128, false, false}, 1),
          make_tuning("NVIDIA H100 80GB HBM3", 132, {3, 4096, 4096, 32, true, true}, 2),
          make_tuning("NVIDIA H200", 132, {4, 8192, 28672, 128, false, false}, 3)};
}

void require_same(const k::DecodeTuning& a, const k::DecodeTuning& b) {
  CHECK(a.device == b.device);
  CHECK(a.sm_count == b.sm_count);
  CHECK(a.meta.bits == b.meta.bits);
  CHECK(a.meta.K == b.meta.K);
  CHECK(a.meta.N == b.meta.N);
  CHECK(a.meta.group_size == b.meta.group_size);
  CHECK(a.meta.sym == b.meta.sym);
  CHECK(a.meta.act_order == b.meta.act_order);
  for (std::size_t M = 0; M <= k::kDecodeMaxM; ++M) {
    INFO("M " << M);
    CHECK(a.by_m[M] == b.by_m[M]);
    CHECK(a.us[M] == b.us[M]);  // exact: doubles are written with round-trip precision
    CHECK(a.planned_us[M] == b.planned_us[M]);
  }
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("decode tuning file: every field survives a save and a load", "[format][tuning]") {
  TempDir dir("tuning_rt");
  const auto tunings = sample();
  const auto path = dir / "decode_tuning.json";
  k::save_decode_tunings(path, tunings);
  const auto back = k::load_decode_tunings(path);
  REQUIRE(back.size() == tunings.size());
  for (std::size_t i = 0; i < back.size(); ++i) require_same(back[i], tunings[i]);
  // no temporary file left behind
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 1);
  // lookup: weight shape, device name and SM count must all match
  const k::TiledMeta m{4, 8192, 28672, 128, false, false};
  CHECK(k::find_decode_tuning(back, m, 132, "NVIDIA H100 80GB HBM3") == &back[0]);
  CHECK(k::find_decode_tuning(back, m, 132, "NVIDIA H200") == &back[2]);
  CHECK(k::find_decode_tuning(back, m, 114, "NVIDIA H100 80GB HBM3") == nullptr);
  k::TiledMeta other = m;
  other.group_size = 64;
  CHECK(k::find_decode_tuning(back, other, 132, "NVIDIA H100 80GB HBM3") == nullptr);
  // an empty list is a valid file
  k::save_decode_tunings(path, {});
  CHECK(k::load_decode_tunings(path).empty());
}

TEST_CASE("decode tuning file: damaged or mistyped entries are refused with the entry named", "[format][tuning]") {
  const nlohmann::json good = k::decode_tunings_to_json(sample());
  CHECK_NOTHROW(k::decode_tunings_from_json(good));
  struct Case {
    const char* what;
    void (*edit)(nlohmann::json&);
    const char* message;
  };
  const Case cases[] = {
      {"not an object", [](nlohmann::json& j) { j = nlohmann::json::array(); }, "not a JSON object"},
      {"other format", [](nlohmann::json& j) { j["format"] = "safetensors"; }, "not a decode tuning file"},
      {"newer version", [](nlohmann::json& j) { j["version"] = 2; }, "version 2"},
      {"version as text", [](nlohmann::json& j) { j["version"] = "1"; }, "\"version\" must be an integer"},
      {"tunings not a list", [](nlohmann::json& j) { j["tunings"] = 3; }, "\"tunings\" must be a list"},
      {"entry not an object", [](nlohmann::json& j) { j["tunings"][1] = 7; }, "tuning 1: not an object"},
      {"no device", [](nlohmann::json& j) { j["tunings"][0].erase("device"); }, "tuning 0: \"device\""},
      {"empty device", [](nlohmann::json& j) { j["tunings"][0]["device"] = ""; }, "tuning 0: \"device\""},
      {"no SMs", [](nlohmann::json& j) { j["tunings"][2]["sm_count"] = 0; }, "tuning 2: \"sm_count\" = 0"},
      {"5 bits", [](nlohmann::json& j) { j["tunings"][0]["weight"]["bits"] = 5; }, "\"bits\" = 5"},
      {"K not a multiple of 64", [](nlohmann::json& j) { j["tunings"][0]["weight"]["K"] = 8200; }, "multiples of 64"},
      {"group 48", [](nlohmann::json& j) { j["tunings"][0]["weight"]["group_size"] = 48; }, "\"group_size\" = 48"},
      {"group not dividing K", [](nlohmann::json& j) { j["tunings"][1]["weight"]["group_size"] = 3072; }, "\"group_size\""},
      {"sym as text", [](nlohmann::json& j) { j["tunings"][0]["weight"]["sym"] = "no"; }, "\"sym\" must be true or false"},
      {"weight missing", [](nlohmann::json& j) { j["tunings"][0].erase("weight"); }, "\"weight\" must be an object"},
      {"rows not a list", [](nlohmann::json& j) { j["tunings"][0]["rows"] = nlohmann::json::object(); }, "\"rows\" must be a list"},
      {"M = 0", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["M"] = 0; }, "\"M\" = 0"},
      {"M = 17", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["M"] = 17; }, "\"M\" = 17"},
      {"M twice", [](nlohmann::json& j) { j["tunings"][0]["rows"][1]["M"] = j["tunings"][0]["rows"][0]["M"]; }, "listed twice"},
      {"12 warps", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["warps"] = 12; }, "\"warps\" = 12"},
      {"65 splits", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["splits"] = 65; }, "\"splits\" = 65"},
      {"3 slabs", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["slabs"] = 3; }, "\"slabs\" = 3"},
      {"no slabs", [](nlohmann::json& j) { j["tunings"][0]["rows"][0].erase("slabs"); }, "missing \"slabs\""},
      {"persist 3", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["persist"] = 3; }, "\"persist\" = 3"},
      {"persist as text", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["persist"] = "on"; }, "\"persist\" must be an integer"},
      {"fractional warps", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["warps"] = 8.5; }, "\"warps\" must be an integer"},
      {"negative time", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["us"] = -1.0; }, "is not a time"},
      {"time as text", [](nlohmann::json& j) { j["tunings"][0]["rows"][0]["planned_us"] = "fast"; }, "\"planned_us\" must be a number"},
      {"duplicate tuning", [](nlohmann::json& j) { j["tunings"][1] = j["tunings"][0]; }, "same weight shape and device as tuning 0"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    nlohmann::json j = good;
    c.edit(j);
    CHECK_THROWS_WITH(k::decode_tunings_from_json(j, "cache.json"), Catch::Contains(c.message) && Catch::Contains("cache.json"));
  }
  // rows of files written before persistent CTAs existed have no "persist": they load as planned (0)
  nlohmann::json old = good;
  for (auto& row : old["tunings"][0]["rows"]) row.erase("persist");
  const auto back = k::decode_tunings_from_json(old);
  const auto orig = sample();
  for (std::size_t M = 1; M <= k::kDecodeMaxM; ++M) {
    INFO("M " << M);
    k::DecodeChoice want = orig[0].by_m[M];
    want.persist = 0;
    CHECK(back[0].by_m[M] == want);
  }
}

TEST_CASE("decode tuning file: I/O errors name the file, a failed save keeps the old one", "[format][tuning]") {
  TempDir dir("tuning_io");
  const auto path = dir / "t.json";
  CHECK_THROWS_WITH(k::load_decode_tunings(path), Catch::Contains("t.json") && Catch::Contains("cannot open"));
  const auto tunings = sample();
  k::save_decode_tunings(path, tunings);
  const std::string before = slurp(path);
  // every truncation of the file is refused (invalid JSON or a missing field), never half-loaded
  for (std::size_t cut : {std::size_t(0), std::size_t(1), before.size() / 3, before.size() / 2, before.size() - 2}) {
    INFO("cut at " << cut);
    const auto p2 = dir / "cut.json";
    {
      std::ofstream f(p2, std::ios::binary);
      f.write(before.data(), static_cast<std::streamsize>(cut));
    }
    CHECK_THROWS_AS(k::load_decode_tunings(p2), lowbit::Error);
  }
  // a tuning that was never measured is refused before anything is written
  std::vector<k::DecodeTuning> bad = tunings;
  bad.push_back(k::DecodeTuning{});
  CHECK_THROWS_WITH(k::save_decode_tunings(path, bad), Catch::Contains("never measured"));
  CHECK(slurp(path) == before);
  // a folder is not a file
  CHECK_THROWS_AS(k::save_decode_tunings(dir.path(), tunings), lowbit::Error);
  CHECK_THROWS_AS(k::load_decode_tunings(dir.path()), lowbit::Error);
}
