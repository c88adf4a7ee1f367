// safetensors reader/writer: round trips for every dtype and odd shapes, typed access, every class of
// malformed header with its message, > 4 GiB tensors on a sparse file, sharded checkpoints, and
// atomic writes that never leave a partial output or touch an input.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <lowbit/format.hpp>

#include "format_test_util.hpp"

namespace st = lowbit::safetensors;
using format_test::raw_file;
using format_test::TempDir;
using lowbit::DType;

namespace {

const DType kAllDtypes[] = {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8,  DType::u8,
                            DType::f64, DType::i64, DType::i16,  DType::u16, DType::u32, DType::bool_};

std::string error_of(const std::vector<std::byte>& file) {
  try {
    (void)st::Reader::from_memory(file, "t.safetensors");
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("safetensors: every dtype and odd shapes round-trip byte for byte", "[format][safetensors]") {
  TempDir dir("roundtrip");
  const std::vector<std::vector<std::uint64_t>> shapes = {{}, {0}, {1}, {7}, {3, 5}, {2, 3, 7}, {1, 0, 4}, {13, 1}};
  st::Writer w;
  struct Expect {
    std::string name;
    DType dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::vector<Expect> expect;
  std::uint32_t seed = 1;
  for (DType dt : kAllDtypes) {
    for (const auto& shape : shapes) {
      std::uint64_t n = 1;
      for (auto d : shape) n *= d;
      Expect e{std::string(st::dtype_name(dt)) + "_" + std::to_string(expect.size()), dt, shape,
               format_test::random_bytes(n * lowbit::dtype_size(dt), seed++)};
      w.add_copy(e.name, dt, shape, e.bytes.data(), e.bytes.size());
      expect.push_back(std::move(e));
    }
  }
  w.set_metadata("format", "pt");
  w.set_metadata("note", "round trip");
  w.write(dir / "a.safetensors");

  const st::Reader r = st::Reader::open(dir / "a.safetensors");
  REQUIRE(r.tensors().size() == expect.size());
  CHECK(r.metadata().at("format") == "pt");
  CHECK(r.metadata().at("note") == "round trip");
  CHECK(r.data_start() % 8 == 0);  // header padded to 8 bytes
  std::uint64_t covered = 0;
  for (const Expect& e : expect) {
    const st::TensorView t = r.tensor(e.name);
    CHECK(t.dtype() == e.dtype);
    CHECK(t.shape() == e.shape);
    REQUIRE(t.nbytes() == e.bytes.size());
    if (!e.bytes.empty()) CHECK(std::memcmp(t.data(), e.bytes.data(), e.bytes.size()) == 0);
    // Writer layout: each tensor aligned for its dtype inside the file.
    CHECK((r.data_start() + t.info().offset) % lowbit::dtype_size(e.dtype) == 0);
    covered += t.nbytes();
  }
  CHECK(covered == r.file_size() - r.data_start());  // no holes, no trailing bytes
  // Tensors are listed by offset and do not overlap.
  for (std::size_t i = 1; i < r.tensors().size(); ++i)
    CHECK(r.tensors()[i].offset >= r.tensors()[i - 1].offset + r.tensors()[i - 1].nbytes);

  // Re-writing what was read gives the identical file.
  st::Writer again;
  for (const auto& t : r.tensors()) again.add_view(r.view(t));
  again.set_metadata("format", "pt");
  again.set_metadata("note", "round trip");
  again.write(dir / "b.safetensors", std::vector<std::filesystem::path>{dir / "a.safetensors"});
  CHECK(format_test::read_bytes(dir / "a.safetensors") == format_test::read_bytes(dir / "b.safetensors"));
}

TEST_CASE("safetensors: typed access and float conversion", "[format][safetensors]") {
  const std::vector<float> f32 = {1.5f, -2.25f, 0.f, 3.0e-3f};
  const std::vector<float> exact_half = {1.5f, -2.25f, 65504.f, 5.9604644775390625e-8f /* 2^-24 */, -0.f};
  std::vector<lowbit::half_t> f16;
  for (float x : exact_half) f16.push_back(lowbit::half_t(x));
  const std::vector<float> exact_bf16 = {1.0f, -3.0e38f, 0.15625f};
  std::vector<lowbit::bfloat16_t> bf16;
  for (float x : exact_bf16) bf16.push_back(lowbit::bfloat16_t(x));

  st::Writer w;
  w.add("f32", {2, 2}, f32);
  w.add("f16", {5}, f16);
  w.add("bf16", {3}, bf16);
  w.add("f64", {2}, std::vector<double>{0.5, -1.25});
  w.add("i32", {3}, std::vector<std::int32_t>{-1, 0, 7});
  TempDir dir("typed");
  w.write(dir / "t.safetensors");
  const st::Reader r = st::Reader::open(dir / "t.safetensors");

  const auto s = r.tensor("f32").as<float>();
  CHECK(std::vector<float>(s.begin(), s.end()) == f32);
  CHECK(r.tensor("f32").to_float_vector() == f32);
  // bf16 of -3e38 is not exact: compare with the bits the bf16 value holds, independently decoded.
  std::vector<float> bf_expect;
  for (auto b : bf16) {
    std::uint32_t u = static_cast<std::uint32_t>(b.bits) << 16;
    float v;
    std::memcpy(&v, &u, 4);
    bf_expect.push_back(v);
  }
  CHECK(r.tensor("bf16").to_float_vector() == bf_expect);
  const auto h = r.tensor("f16").to_float_vector();
  REQUIRE(h.size() == exact_half.size());
  for (std::size_t i = 0; i < h.size(); ++i) CHECK(h[i] == exact_half[i]);
  CHECK(std::signbit(h[4]));
  CHECK(r.tensor("f64").to_float_vector() == std::vector<float>{0.5f, -1.25f});
  CHECK(r.tensor("i32").to_vector<std::int32_t>() == std::vector<std::int32_t>{-1, 0, 7});

  CHECK_THROWS_WITH(r.tensor("f32").as<std::int32_t>(), Catch::Contains("tensor 'f32'") && Catch::Contains("dtype is F32, not I32"));
  CHECK_THROWS_WITH(r.tensor("f16").as<float>(), Catch::Contains("dtype is F16, not F32"));
  CHECK_THROWS_WITH(r.tensor("i32").to_float_vector(), Catch::Contains("tensor 'i32'") && Catch::Contains("not a floating-point"));
  CHECK_THROWS_WITH(r.tensor("nope"), Catch::Contains("missing tensor 'nope'"));
  CHECK_FALSE(r.contains("nope"));

  // Unaligned data (legal in files from other writers): as<T> refuses, to_vector copies.
  const std::string hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  auto img = raw_file(hdr, 9);
  const float vals[2] = {3.5f, -1.f};
  std::memcpy(img.data() + 8 + hdr.size() + 1, vals, 8);
  const std::size_t data_start = 8 + hdr.size();
  const auto m = st::Reader::from_memory(img);
  const bool misaligned = (reinterpret_cast<std::uintptr_t>(m.tensor("x").data()) % alignof(float)) != 0;
  if (misaligned) CHECK_THROWS_WITH(m.tensor("x").as<float>(), Catch::Contains("not aligned"));
  CHECK(m.tensor("x").to_vector<float>() == std::vector<float>{3.5f, -1.f});
  CHECK(m.data_start() == data_start);
}

TEST_CASE("safetensors: malformed files are refused with a message naming the problem", "[format][safetensors]") {
  // Shorter than the length prefix.
  CHECK_THAT(error_of(std::vector<std::byte>(5)), Catch::Contains("truncated file") && Catch::Contains("t.safetensors"));
  {  // absurd header length
    auto f = raw_file("{}", 0);
    const std::uint64_t huge = 1ull << 40;
    std::memcpy(f.data(), &huge, 8);
    CHECK_THAT(error_of(f), Catch::Contains("exceeds the 104857600-byte limit"));
  }
  {  // header length larger than the file
    auto f = raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
    const std::uint64_t len = f.size();
    std::memcpy(f.data(), &len, 8);
    CHECK_THAT(error_of(f), Catch::Contains("truncated file: header length"));
  }
  struct Case {
    const char* header;
    std::size_t data;
    const char* expect;
  };
  const Case cases[] = {
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", 4, "invalid JSON header"},
      {R"([{"a":1}])", 0, "does not start with '{'"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x)", 4, "invalid JSON header"},
      {R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1, "tensor 'a': unknown dtype \"F8_E4M3\""},
      {R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", 1, "tensor 'a': missing or non-string \"dtype\""},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "tensor 'a': negative dimension -1"},
      {R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "tensor 'a': shape entries must be integers"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4, "tensor 'a': shape [4294967296, 4294967296] overflows"},
      {R"({"a":{"dtype":"F16","shape":[18446744073709551615],"data_offsets":[0,4]}})", 4, "overflows 64-bit"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "tensor 'a': data_offsets [0, 8] lie outside the 4-byte data section"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8, "tensor 'a': data_offsets [8, 4] are reversed"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8, "tensor 'a': data_offsets must be non-negative"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 8, "tensor 'a': \"data_offsets\" must be [begin, end]"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "tensor 'a': byte length 8 does not match shape [3] of F32 (12 bytes)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, "tensors 'a' and 'b' overlap"},
      {R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})", 4, "overlap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "duplicate key 'a'"},
      {R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 8, "duplicate key 'dtype'"},
      {R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, "__metadata__ entry 'k' is not a string"},
      {R"({"__metadata__":[1]})", 0, "__metadata__ must be an object"},
      {R"({"a":[1,2,3]})", 0, "tensor 'a': entry is not a JSON object"},
      {R"({"a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]}})", 4, "nesting deeper"},
      {R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, "empty tensor name"},
  };
  for (const Case& c : cases) {
    INFO(c.header);
    CHECK_THAT(error_of(raw_file(c.header, c.data)), Catch::Contains(c.expect));
  }
  // Zero-size tensors may sit anywhere inside the data section (they cover no bytes).
  CHECK_NOTHROW(st::Reader::from_memory(raw_file(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", 8)));
  // A file cut short on disk names the tensor that no longer fits.
  TempDir dir("bad");
  st::Writer w;
  w.add("w", {4, 4}, std::vector<float>(16, 1.f));
  w.write(dir / "ok.safetensors");
  std::filesystem::resize_file(dir / "ok.safetensors", std::filesystem::file_size(dir / "ok.safetensors") - 3);
  CHECK_THROWS_WITH(st::Reader::open(dir / "ok.safetensors"),
                    Catch::Contains("ok.safetensors") && Catch::Contains("tensor 'w'") && Catch::Contains("outside"));
  CHECK_THROWS_WITH(st::Reader::open(dir / "missing.safetensors"), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(st::Reader::open(dir.path()), Catch::Contains("not a regular file"));
}

TEST_CASE("safetensors: tensors larger than 4 GiB (sparse file, nothing allocated)", "[format][safetensors][large]") {
  TempDir dir("large");
  constexpr std::uint64_t kGiB = 1ull << 30;
  constexpr std::uint64_t kBigElems = 3 * kGiB;          // F16: 6 GiB of data, > 2^32 bytes
  constexpr std::uint64_t kBigBytes = kBigElems * 2;
  const std::string hdr = "{\"big\":{\"dtype\":\"F16\",\"shape\":[3," + std::to_string(kGiB) +
                          "],\"data_offsets\":[0," + std::to_string(kBigBytes) +
                          "]},\"tail\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[" + std::to_string(kBigBytes) +
                          "," + std::to_string(kBigBytes + 8) + "]}}";
  const std::uint64_t hlen = hdr.size();
  const std::uint64_t data_start = 8 + hlen;
  const std::uint64_t total = data_start + kBigBytes + 8;
  const auto path = dir / "big.safetensors";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  bool ok = ::ftruncate(fd, static_cast<off_t>(total)) == 0;
  ok = ok && ::pwrite(fd, &hlen, 8, 0) == 8;
  ok = ok && ::pwrite(fd, hdr.data(), hdr.size(), 8) == static_cast<ssize_t>(hdr.size());
  const std::int32_t tail[2] = {-7, 123456789};
  ok = ok && ::pwrite(fd, tail, 8, static_cast<off_t>(data_start + kBigBytes)) == 8;
  const std::uint16_t last_half = 0x3c00;  // 1.0 in fp16, the very last element of "big"
  ok = ok && ::pwrite(fd, &last_half, 2, static_cast<off_t>(data_start + kBigBytes - 2)) == 2;
  ::close(fd);
  if (!ok) {
    WARN("filesystem refused a sparse 6 GiB file; skipping the > 4 GiB test");
    return;
  }
  const st::Reader r = st::Reader::open(path);
  CHECK(r.file_size() == total);
  const st::TensorView big = r.tensor("big");
  CHECK(big.numel() == kBigElems);
  CHECK(big.nbytes() == kBigBytes);
  CHECK(big.nbytes() > (1ull << 32));
  CHECK(big.shape() == std::vector<std::uint64_t>{3, kGiB});
  std::uint16_t got = 0;
  std::memcpy(&got, big.data() + (kBigBytes - 2), 2);
  CHECK(got == last_half);
  const st::TensorView t = r.tensor("tail");
  CHECK(t.info().offset == kBigBytes);
  CHECK(t.to_vector<std::int32_t>() == std::vector<std::int32_t>{-7, 123456789});

  // One byte short of the declared size: refused with 64-bit offsets in the message.
  std::filesystem::resize_file(path, total - 1);
  CHECK_THROWS_WITH(st::Reader::open(path), Catch::Contains("tensor 'tail'") &&
                                                Catch::Contains(std::to_string(kBigBytes + 8)) && Catch::Contains("outside"));
}

TEST_CASE("safetensors: sharded checkpoints through model.safetensors.index.json", "[format][safetensors]") {
  TempDir dir("sharded");
  st::Writer w;
  std::vector<std::vector<float>> data;
  for (int i = 0; i < 6; ++i) {
    data.push_back(std::vector<float>(100 + i));
    for (std::size_t j = 0; j < data.back().size(); ++j) data.back()[j] = static_cast<float>(i * 1000 + j);
    w.add("t" + std::to_string(i), {static_cast<std::uint64_t>(100 + i)}, data.back());
  }
  const auto files = w.write_sharded(dir.path(), 1000);  // ~2 tensors per shard
  REQUIRE(files.size() >= 3);
  CHECK(files.back().filename() == "model.safetensors.index.json");
  for (const auto& open_path : {dir.path(), files.back()}) {
    const st::ShardedReader r = st::ShardedReader::open(open_path);
    CHECK(r.shards().size() == files.size() - 1);
    CHECK(r.names().size() == 6);
    for (int i = 0; i < 6; ++i) CHECK(r.tensor("t" + std::to_string(i)).to_float_vector() == data[i]);
    CHECK(r.files().size() == files.size());
  }
  // A single-file folder works too.
  TempDir one("single");
  w.write(one / "model.safetensors");
  CHECK(st::ShardedReader::open(one.path()).names().size() == 6);

  const auto index = files.back();
  const std::string shard1 = files[0].filename().string();
  auto write_index = [&](const std::string& map) {
    format_test::write_bytes(index, [&] {
      const std::string s = "{\"weight_map\":" + map + "}";
      std::vector<std::byte> b(s.size());
      std::memcpy(b.data(), s.data(), s.size());
      return b;
    }());
  };
  write_index("{\"t0\":\"../" + shard1 + "\"}");
  CHECK_THROWS_WITH(st::ShardedReader::open(dir.path()), Catch::Contains("not a plain file name"));
  write_index("{\"t0\":\"" + shard1 + "\",\"zz\":\"" + shard1 + "\"}");
  CHECK_THROWS_WITH(st::ShardedReader::open(dir.path()), Catch::Contains("tensor 'zz' is listed in shard"));
  write_index("{\"t0\":\"nothere.safetensors\"}");
  CHECK_THROWS_WITH(st::ShardedReader::open(dir.path()), Catch::Contains("nothere.safetensors") && Catch::Contains("cannot open"));
  write_index("[]");
  CHECK_THROWS_WITH(st::ShardedReader::open(dir.path()), Catch::Contains("missing \"weight_map\""));
  {  // the same tensor in two shards
    st::Writer a;
    a.add("dup", {1}, std::vector<float>{1.f});
    a.write(dir / "s1.safetensors");
    a.write(dir / "s2.safetensors");
    write_index(R"({"dup":"s1.safetensors","x":"s2.safetensors"})");
    CHECK_THROWS_WITH(st::ShardedReader::open(dir.path()), Catch::Contains("tensor 'dup' appears in both"));
  }
  TempDir empty("empty");
  CHECK_THROWS_WITH(st::ShardedReader::open(empty.path()), Catch::Contains("neither model.safetensors"));
}

TEST_CASE("safetensors: writes are atomic and never touch an input", "[format][safetensors][atomic]") {
  TempDir dir("atomic");
  st::Writer w;
  w.add("x", {1024, 64}, std::vector<float>(1024 * 64, 2.f));  // 256 KiB of data
  const auto in = dir / "in.safetensors";
  w.write(in);
  const auto in_bytes = format_test::read_bytes(in);

  // Output == input (also through another spelling of the path): refused, input unchanged.
  CHECK_THROWS_WITH(w.write(in, std::vector<std::filesystem::path>{in}), Catch::Contains("refusing to overwrite an input"));
  const auto alias = dir.path() / "." / "in.safetensors";
  CHECK_THROWS_WITH(w.write(alias, std::vector<std::filesystem::path>{in}), Catch::Contains("refusing to overwrite"));
  CHECK(format_test::read_bytes(in) == in_bytes);

  // A write that fails half-way (file size limit => EFBIG) leaves the old output intact and no temp file.
  const auto out = dir / "out.safetensors";
  st::Writer small;
  small.add("old", {2}, std::vector<float>{1.f, 2.f});
  small.write(out);
  const auto old_bytes = format_test::read_bytes(out);
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = saved;
  lim.rlim_cur = 64 * 1024;  // 64 KiB: the 256 KiB tensor cannot be written
  const bool limited = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
  std::string err;
  try {
    w.write(out, std::vector<std::filesystem::path>{in});
  } catch (const lowbit::Error& e) {
    err = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  if (limited) {
    CHECK_THAT(err, Catch::Contains("write failed"));
    CHECK(format_test::read_bytes(out) == old_bytes);
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  } else {
    WARN("setrlimit(RLIMIT_FSIZE) refused; mid-write failure not exercised");
  }
  // Unwritable destination folder: error, nothing created.
  CHECK_THROWS_WITH(w.write(dir / "no_such_dir" / "x.safetensors"), Catch::Contains("cannot create temporary file"));
  CHECK(format_test::read_bytes(in) == in_bytes);

  // Writer input checks.
  st::Writer bad;
  bad.add("a", {1}, std::vector<float>{1.f});
  CHECK_THROWS_WITH(bad.add("a", {1}, std::vector<float>{1.f}), Catch::Contains("duplicate tensor name 'a'"));
  CHECK_THROWS_WITH(bad.add("b", {3}, std::vector<float>{1.f}), Catch::Contains("4 bytes given for shape [3]"));
  CHECK_THROWS_WITH(bad.add("__metadata__", {1}, std::vector<float>{1.f}), Catch::Contains("reserved"));
  CHECK(bad.size() == 1);
  bad.add(std::string("bad\xff\xfename"), {1}, std::vector<float>{1.f});  // not UTF-8: refused at write
  CHECK_THROWS_WITH(bad.write(dir / "utf8.safetensors"), Catch::Contains("cannot encode the header"));
  CHECK_FALSE(std::filesystem::exists(dir / "utf8.safetensors"));
}
