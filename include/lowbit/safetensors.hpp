/// @file safetensors.hpp
/// @brief Validating `.safetensors` reader (memory-mapped), atomic writer, and sharded checkpoints.
///
/// File layout (the published safetensors format): an 8-byte little-endian header length `L`, `L`
/// bytes of UTF-8 JSON (optionally padded with trailing spaces), then the data section. The JSON maps
/// each tensor name to `{"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}` with offsets
/// relative to the start of the data section; an optional `"__metadata__"` maps strings to strings.
///
/// Every size is 64-bit and every shape product is overflow-checked, so tensors larger than 4 GiB work
/// and hostile files produce a `lowbit::Error` naming the file, the tensor and the problem — never a
/// read outside the file.
///
/// @code
/// auto f = lowbit::safetensors::Reader::open("model.safetensors");
/// auto t = f.tensor("layer.weight");            // TensorView
/// std::vector<float> w = t.to_float_vector();   // F32 / F16 / BF16 / F64 converted to float
///
/// lowbit::safetensors::Writer out;
/// out.add("x", {2, 3}, std::vector<float>(6, 1.f));
/// out.write("out.safetensors");                 // temp file + fsync + rename
/// @endcode
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "numeric.hpp"

static_assert(std::endian::native == std::endian::little,
              "lowbit's safetensors code assumes a little-endian host (as the format does)");

namespace lowbit {
namespace safetensors {

/// Largest JSON header accepted (the reference implementation uses the same bound).
inline constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB
/// Bytes of the little-endian header-length prefix.
inline constexpr std::uint64_t kLengthPrefixBytes = 8;
/// Deepest JSON nesting a valid header needs: root object > tensor entry > shape array.
inline constexpr int kMaxJsonDepth = 3;

/// The dtype string the format uses for a DType ("F32", "BF16", ...).
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i16: return "I16";
    case DType::u16: return "U16";
    case DType::u32: return "U32";
    case DType::bool_: return "BOOL";
  }
  return "?";
}

/// True when `name` is a dtype string this reader understands; stores it in `out`.
inline bool parse_dtype(std::string_view name, DType& out) {
  static constexpr DType all[] = {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8,  DType::u8,
                                  DType::f64, DType::i64, DType::i16,  DType::u16, DType::u32, DType::bool_};
  for (DType t : all) {
    if (name == dtype_name(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

/// True for the floating-point dtypes (F32, F16, BF16, F64).
inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

namespace detail {

using lowbit::detail::concat;
using lowbit::detail::fail;

/// The DType stored for a C++ element type (static_assert for unsupported types).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, half_t>) return DType::f16;
  else if constexpr (std::is_same_v<T, bfloat16_t>) return DType::bf16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::i32;
  else if constexpr (std::is_same_v<T, std::int8_t>) return DType::i8;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::u8;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::i64;
  else if constexpr (std::is_same_v<T, std::int16_t>) return DType::i16;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return DType::u16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return DType::u32;
  else static_assert(sizeof(T) == 0, "no safetensors dtype for this element type");
}

/// a*b, or false when it overflows 64 bits.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

/// Elements of a shape (1 for a scalar) or false on overflow.
inline bool checked_numel(const std::vector<std::uint64_t>& shape, std::uint64_t& out) {
  std::uint64_t n = 1;
  for (std::uint64_t d : shape)
    if (!checked_mul(n, d, n)) return false;
  out = n;
  return true;
}

/// "[a, b, c]" for messages.
inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Read-only bytes of a whole file: memory-mapped, or read into memory when mapping is unavailable.
class FileBytes {
 public:
  FileBytes() = default;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  FileBytes(FileBytes&& o) noexcept { swap(o); }
  FileBytes& operator=(FileBytes&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~FileBytes() { release(); }

  /// Maps (or reads) the file at `path`.
  static FileBytes open(const std::filesystem::path& path) {
    FileBytes f;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path.string(), ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      fail(path.string(), ": cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path.string(), ": not a regular file");
    }
    f.size_ = static_cast<std::uint64_t>(st.st_size);
    if (f.size_ > 0) {
      void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        f.map_ = p;
        f.data_ = static_cast<const std::byte*>(p);
      } else {  // fall back to streaming the file into memory
        f.owned_.resize(f.size_);
        std::uint64_t done = 0;
        while (done < f.size_) {
          const ssize_t r = ::pread(fd, f.owned_.data() + done, f.size_ - done, static_cast<off_t>(done));
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) {
            const int e = errno;
            ::close(fd);
            fail(path.string(), ": read failed: ", r == 0 ? "unexpected end of file" : std::strerror(e));
          }
          done += static_cast<std::uint64_t>(r);
        }
        f.data_ = f.owned_.data();
      }
    }
    ::close(fd);
    return f;
  }
  /// Takes ownership of an in-memory image of a file.
  static FileBytes from_memory(std::vector<std::byte> bytes) {
    FileBytes f;
    f.owned_ = std::move(bytes);
    f.size_ = f.owned_.size();
    f.data_ = f.owned_.data();
    return f;
  }
  /// First byte (nullptr for an empty file).
  [[nodiscard]] const std::byte* data() const { return data_; }
  /// Bytes in the file.
  [[nodiscard]] std::uint64_t size() const { return size_; }

 private:
  void release() {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    owned_.clear();
  }
  void swap(FileBytes& o) noexcept {
    std::swap(map_, o.map_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(owned_, o.owned_);
    if (!owned_.empty()) data_ = owned_.data();
    if (!o.owned_.empty()) o.data_ = o.owned_.data();
  }
  void* map_ = nullptr;
  const std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
  std::vector<std::byte> owned_;
};

/// JSON text of `j` (`indent` < 0: compact); invalid UTF-8 in a name becomes a lowbit::Error.
inline std::string dump_json(const nlohmann::json& j, int indent) {
  try {
    return j.dump(indent);
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors writer: cannot encode the header: ", e.what());
  }
}

/// True when two paths name the same file (existing files compared by inode, others by canonical path).
inline bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec)) {
    const bool eq = std::filesystem::equivalent(a, b, ec);
    if (!ec) return eq;
  }
  const auto ca = std::filesystem::weakly_canonical(a, ec);
  const auto cb = std::filesystem::weakly_canonical(b, ec);
  return ca == cb;
}

/// Writes a file atomically: everything goes to `<out>.tmp.<pid>`, which is fsync'ed and renamed over
/// `out` by commit(); destroyed without commit (an exception), the temp file is removed and `out` is
/// left exactly as it was.
class AtomicFile {
 public:
  /// Starts writing `out`; refuses when `out` is one of `inputs` (never overwrite an input).
  explicit AtomicFile(std::filesystem::path out, std::span<const std::filesystem::path> inputs = {})
      : out_(std::move(out)) {
    for (const auto& in : inputs)
      if (same_file(out_, in)) fail(out_.string(), ": refusing to overwrite an input file");
    std::error_code ec;
    if (std::filesystem::is_directory(out_, ec)) fail(out_.string(), ": is a directory");
    tmp_ = out_;
    tmp_ += ".tmp." + std::to_string(static_cast<long long>(::getpid()));
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(out_.string(), ": cannot create temporary file ", tmp_.string(), ": ", std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  /// Appends bytes (loops over partial writes; throws on failure, e.g. a full disk).
  void write(const void* p, std::uint64_t n) {
    const auto* b = static_cast<const char*>(p);
    while (n > 0) {
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, 1ull << 30));
      const ssize_t w = ::write(fd_, b, chunk);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail(out_.string(), ": write failed: ", w == 0 ? "no progress" : std::strerror(errno));
      b += w;
      n -= static_cast<std::uint64_t>(w);
    }
  }
  /// Flushes to disk and renames the temp file over the destination.
  void commit() {
    if (::fsync(fd_) != 0) fail(out_.string(), ": fsync failed: ", std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(out_.string(), ": close failed: ", std::strerror(errno));
    if (::rename(tmp_.c_str(), out_.c_str()) != 0) fail(out_.string(), ": rename failed: ", std::strerror(errno));
    committed_ = true;
    // Make the rename itself durable (best effort: not every filesystem supports fsync on a folder).
    const auto dir = out_.has_parent_path() ? out_.parent_path() : std::filesystem::path(".");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::filesystem::path out_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace detail

/// Reads a small JSON file (a config, an index, a tuning table) of at most `max_bytes`.
/// @throws lowbit::Error naming the file when it cannot be read, is larger, or is not valid JSON.
inline nlohmann::json read_json_file(const std::filesystem::path& path, std::uint64_t max_bytes = kMaxHeaderBytes) {
  auto bytes = detail::FileBytes::open(path);
  LOWBIT_CHECK(bytes.size() <= max_bytes, path.string(), ": ", bytes.size(), " bytes is too large for this file (limit ",
               max_bytes, ")");
  try {
    const char* b = reinterpret_cast<const char*>(bytes.data());
    return nlohmann::json::parse(b, b + bytes.size());
  } catch (const nlohmann::json::exception& e) {
    lowbit::detail::fail(path.string(), ": invalid JSON: ", e.what());
  }
}

/// Writes `text` to `out` atomically (temp file + fsync + rename), refusing to overwrite `inputs`.
inline void write_text_file_atomic(const std::filesystem::path& out, std::string_view text,
                                   std::span<const std::filesystem::path> inputs = {}) {
  detail::AtomicFile f(out, inputs);
  f.write(text.data(), text.size());
  f.commit();
}

/// Header entry of one tensor (validated: offsets inside the data section, byte length = shape × dtype).
struct TensorInfo {
  std::string name;                  ///< tensor name
  DType dtype = DType::u8;           ///< element type
  std::vector<std::uint64_t> shape;  ///< dimensions (empty for a scalar)
  std::uint64_t offset = 0;          ///< byte offset from the start of the data section
  std::uint64_t nbytes = 0;          ///< byte length (= numel × dtype_size)
  /// Number of elements (product of the shape; 1 for a scalar).
  [[nodiscard]] std::uint64_t numel() const { return nbytes / dtype_size(dtype); }
};

/// Read-only view of one tensor's bytes inside an open file (valid while the Reader lives).
class TensorView {
 public:
  /// Wraps a header entry, its bytes and the file name used in messages (all owned by a Reader).
  TensorView(const TensorInfo* info, const std::byte* data, const std::string* file)
      : info_(info), data_(data), file_(file) {}
  /// Tensor name.
  [[nodiscard]] const std::string& name() const { return info_->name; }
  /// Element type.
  [[nodiscard]] DType dtype() const { return info_->dtype; }
  /// Dimensions.
  [[nodiscard]] const std::vector<std::uint64_t>& shape() const { return info_->shape; }
  /// Number of elements.
  [[nodiscard]] std::uint64_t numel() const { return info_->numel(); }
  /// Byte length.
  [[nodiscard]] std::uint64_t nbytes() const { return info_->nbytes; }
  /// Raw bytes (may be unaligned for the element type in files written by other tools).
  [[nodiscard]] const std::byte* data() const { return data_; }
  /// The header entry.
  [[nodiscard]] const TensorInfo& info() const { return *info_; }

  /// Typed zero-copy access.
  /// @tparam T element type; must match dtype() exactly (float ↔ F32, half_t ↔ F16, ...).
  /// @throws lowbit::Error on a dtype mismatch or when the data is not aligned for T.
  template <class T>
  [[nodiscard]] std::span<const T> as() const {
    check_dtype<T>();
    if (reinterpret_cast<std::uintptr_t>(data_) % alignof(T) != 0)
      fail_here("data is not aligned for ", dtype_name(dtype()), " (use to_vector() to copy)");
    return {reinterpret_cast<const T*>(data_), static_cast<std::size_t>(numel())};
  }
  /// Typed copy (works for unaligned data).
  /// @tparam T element type; must match dtype() exactly.
  template <class T>
  [[nodiscard]] std::vector<T> to_vector() const {
    check_dtype<T>();
    std::vector<T> v(static_cast<std::size_t>(numel()));
    if (!v.empty()) std::memcpy(v.data(), data_, static_cast<std::size_t>(nbytes()));
    return v;
  }
  /// Elements converted to float; the dtype must be F32, F16, BF16 or F64.
  [[nodiscard]] std::vector<float> to_float_vector() const {
    const std::size_t n = static_cast<std::size_t>(numel());
    std::vector<float> v(n);
    switch (dtype()) {
      case DType::f32:
        if (n) std::memcpy(v.data(), data_, n * sizeof(float));
        break;
      case DType::f16:
        for (std::size_t i = 0; i < n; ++i) v[i] = half_bits_to_float(load<std::uint16_t>(i));
        break;
      case DType::bf16:
        for (std::size_t i = 0; i < n; ++i) v[i] = bf16_bits_to_float(load<std::uint16_t>(i));
        break;
      case DType::f64:
        for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(load<double>(i));
        break;
      default: fail_here("dtype ", dtype_name(dtype()), " is not a floating-point type");
    }
    return v;
  }

 private:
  template <class T>
  T load(std::size_t i) const {
    T x;
    std::memcpy(&x, data_ + i * sizeof(T), sizeof(T));
    return x;
  }
  template <class T>
  void check_dtype() const {
    constexpr DType want = detail::dtype_of<T>();
    if (dtype() != want) fail_here("dtype is ", dtype_name(dtype()), ", not ", dtype_name(want));
  }
  template <class... A>
  [[noreturn]] void fail_here(A&&... a) const {
    lowbit::detail::fail(*file_, ": tensor '", name(), "': ", std::forward<A>(a)...);
  }
  const TensorInfo* info_;
  const std::byte* data_;
  const std::string* file_;
};

/// A validated, memory-mapped `.safetensors` file.
///
/// Opening checks the whole header (see the file comment); afterwards every TensorView is in bounds.
class Reader {
 public:
  /// Opens and validates a file.
  /// @throws lowbit::Error naming the file (and tensor) on any malformed input.
  static Reader open(const std::filesystem::path& path) {
    Reader r;
    r.label_ = std::make_unique<std::string>(path.string());
    r.path_ = path;
    r.bytes_ = detail::FileBytes::open(path);
    r.parse();
    return r;
  }
  /// Validates an in-memory file image (`label` is used in messages).
  static Reader from_memory(std::vector<std::byte> bytes, std::string label = "<memory>") {
    Reader r;
    r.label_ = std::make_unique<std::string>(std::move(label));
    r.bytes_ = detail::FileBytes::from_memory(std::move(bytes));
    r.parse();
    return r;
  }

  /// Path the file was opened from (empty for from_memory).
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  /// Name used in messages.
  [[nodiscard]] const std::string& label() const { return *label_; }
  /// Header entries in file order (by offset).
  [[nodiscard]] const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The `__metadata__` map (empty if absent).
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// True when the file holds a tensor of this name.
  [[nodiscard]] bool contains(std::string_view name) const { return find(name) != nullptr; }
  /// The named tensor.
  /// @throws lowbit::Error when missing.
  [[nodiscard]] TensorView tensor(std::string_view name) const {
    const TensorInfo* t = find(name);
    if (!t) lowbit::detail::fail(*label_, ": missing tensor '", name, "'");
    return view(*t);
  }
  /// View of a header entry of this file.
  [[nodiscard]] TensorView view(const TensorInfo& t) const {
    return TensorView(&t, bytes_.data() + data_start_ + t.offset, label_.get());
  }
  /// Bytes in the file.
  [[nodiscard]] std::uint64_t file_size() const { return bytes_.size(); }
  /// Offset of the data section from the start of the file.
  [[nodiscard]] std::uint64_t data_start() const { return data_start_; }

 private:
  Reader() = default;
  const TensorInfo* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  template <class... A>
  [[noreturn]] void bad(A&&... a) const {
    lowbit::detail::fail(*label_, ": ", std::forward<A>(a)...);
  }

  void parse() {
    using nlohmann::json;
    const std::uint64_t size = bytes_.size();
    if (size < kLengthPrefixBytes)
      bad("truncated file: ", size, " bytes, shorter than the 8-byte header length");
    std::uint64_t hlen = 0;
    std::memcpy(&hlen, bytes_.data(), sizeof hlen);
    if (hlen > kMaxHeaderBytes) bad("header length ", hlen, " exceeds the ", kMaxHeaderBytes, "-byte limit");
    if (hlen > size - kLengthPrefixBytes)
      bad("truncated file: header length ", hlen, " is larger than the ", size - kLengthPrefixBytes,
          " bytes after the length prefix");
    if (hlen < 2) bad("header length ", hlen, " is too small for a JSON object");
    data_start_ = kLengthPrefixBytes + hlen;
    const std::uint64_t data_size = size - data_start_;
    const char* hbegin = reinterpret_cast<const char*>(bytes_.data() + kLengthPrefixBytes);
    if (hbegin[0] != '{') bad("header does not start with '{'");

    // Parse with a callback that rejects duplicate keys (nlohmann would keep the last silently) and
    // excess nesting (a valid header is 3 levels deep), so hostile headers cannot build deep trees.
    std::vector<std::set<std::string>> keys;
    std::string problem;
    auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
      switch (ev) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
          if (depth >= kMaxJsonDepth + 1) {
            if (problem.empty()) problem = "JSON nesting deeper than a safetensors header allows";
            return false;
          }
          if (ev == json::parse_event_t::object_start) keys.emplace_back();
          return true;
        case json::parse_event_t::object_end:
          if (!keys.empty()) keys.pop_back();
          return true;
        case json::parse_event_t::key:
          if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get<std::string>()).second &&
              problem.empty())
            problem = "duplicate key '" + parsed.get<std::string>() + "'";
          return true;
        default: return true;
      }
    };
    json h;
    try {
      h = json::parse(hbegin, hbegin + hlen, cb);
    } catch (const json::exception& e) {
      bad("invalid JSON header: ", e.what());
    }
    if (!problem.empty()) bad("invalid header: ", problem);
    if (!h.is_object()) bad("header is not a JSON object");

    struct Span {
      std::uint64_t b, e;
      std::size_t idx;
    };
    std::vector<Span> spans;
    for (auto it = h.begin(); it != h.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) bad("__metadata__ must be an object of strings");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) bad("__metadata__ entry '", m.key(), "' is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      auto tbad = [&](auto&&... a) { bad("tensor '", name, "': ", a...); };
      if (name.empty()) bad("empty tensor name");
      if (!v.is_object()) tbad("entry is not a JSON object");
      TensorInfo t;
      t.name = name;
      auto dt = v.find("dtype");
      if (dt == v.end() || !dt->is_string()) tbad("missing or non-string \"dtype\"");
      if (!parse_dtype(dt->get_ref<const std::string&>(), t.dtype))
        tbad("unknown dtype \"", dt->get_ref<const std::string&>(), "\"");
      auto sh = v.find("shape");
      if (sh == v.end() || !sh->is_array()) tbad("missing or non-array \"shape\"");
      for (const json& d : *sh) {
        if (!d.is_number_integer()) tbad("shape entries must be integers");
        if (!d.is_number_unsigned()) tbad("negative dimension ", d.dump());
        t.shape.push_back(d.get<std::uint64_t>());
      }
      std::uint64_t numel = 0;
      if (!detail::checked_numel(t.shape, numel) || !detail::checked_mul(numel, dtype_size(t.dtype), t.nbytes))
        tbad("shape ", detail::shape_string(t.shape), " overflows 64-bit byte sizes");
      auto off = v.find("data_offsets");
      if (off == v.end() || !off->is_array() || off->size() != 2) tbad("\"data_offsets\" must be [begin, end]");
      for (const json& o : *off)
        if (!o.is_number_unsigned()) tbad("data_offsets must be non-negative integers");
      const std::uint64_t b = (*off)[0].get<std::uint64_t>(), e = (*off)[1].get<std::uint64_t>();
      if (e < b) tbad("data_offsets [", b, ", ", e, "] are reversed");
      if (e > data_size)
        tbad("data_offsets [", b, ", ", e, "] lie outside the ", data_size, "-byte data section (truncated file?)");
      if (e - b != t.nbytes)
        tbad("byte length ", e - b, " does not match shape ", detail::shape_string(t.shape), " of ",
             dtype_name(t.dtype), " (", t.nbytes, " bytes)");
      t.offset = b;
      spans.push_back({b, e, tensors_.size()});
      tensors_.push_back(std::move(t));
    }
    // Overlaps: sort by begin; a non-empty tensor must start at or after the end of all earlier ones.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.b != b.b ? a.b < b.b : a.e < b.e;
    });
    std::uint64_t reach = 0;
    std::size_t reach_idx = 0;
    for (const Span& s : spans) {
      if (s.e == s.b) continue;
      if (s.b < reach)
        bad("tensors '", tensors_[reach_idx].name, "' and '", tensors_[s.idx].name, "' overlap in the data section");
      reach = s.e;
      reach_idx = s.idx;
    }
    // Keep file order (by offset) and build the name index.
    std::vector<TensorInfo> ordered;
    ordered.reserve(tensors_.size());
    for (const Span& s : spans) ordered.push_back(std::move(tensors_[s.idx]));
    tensors_ = std::move(ordered);
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  std::unique_ptr<std::string> label_;  // heap-held so views stay valid when the Reader moves
  std::filesystem::path path_;
  detail::FileBytes bytes_;
  std::uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// Collects named tensors and writes them as one `.safetensors` file (or shards) atomically.
///
/// Tensors are laid out by decreasing element size, then by name, so every tensor starts aligned for
/// its dtype (the header is padded with spaces to a multiple of 8 bytes) and the data section has no
/// holes, as other safetensors readers require.
class Writer {
 public:
  /// Adds a tensor whose bytes the caller keeps alive until write() returns (no copy).
  /// @param name   unique tensor name
  /// @param dtype  element type
  /// @param shape  dimensions
  /// @param data   `nbytes` bytes of row-major elements
  /// @param nbytes must equal numel(shape) × dtype_size(dtype)
  void add_borrowed(std::string name, DType dtype, std::vector<std::uint64_t> shape, const void* data,
                    std::uint64_t nbytes) {
    check_new(name, dtype, shape, nbytes);
    entries_.push_back({std::move(name), dtype, std::move(shape), static_cast<const std::byte*>(data), nbytes, {}});
  }
  /// Adds a tensor by copying its bytes.
  /// @param name   unique tensor name
  /// @param dtype  element type
  /// @param shape  dimensions
  /// @param data   `nbytes` bytes of row-major elements
  /// @param nbytes must equal numel(shape) × dtype_size(dtype)
  void add_copy(std::string name, DType dtype, std::vector<std::uint64_t> shape, const void* data,
                std::uint64_t nbytes) {
    check_new(name, dtype, shape, nbytes);
    auto owned = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(nbytes));
    if (nbytes) std::memcpy(owned->data(), data, static_cast<std::size_t>(nbytes));
    entries_.push_back({std::move(name), dtype, std::move(shape), owned->data(), nbytes, owned});
  }
  /// Adds a tensor of typed values (moved in; the writer owns them).
  /// @tparam T element type (float, half_t, bfloat16_t, int32_t, int8_t, uint8_t, ...).
  /// @param name   unique tensor name
  /// @param shape  dimensions; their product must equal values.size()
  /// @param values row-major elements
  template <class T>
  void add(std::string name, std::vector<std::uint64_t> shape, std::vector<T> values) {
    constexpr DType dt = detail::dtype_of<T>();
    const std::uint64_t nbytes = static_cast<std::uint64_t>(values.size()) * sizeof(T);
    check_new(name, dt, shape, nbytes);
    auto owned = std::make_shared<std::vector<T>>(std::move(values));
    entries_.push_back({std::move(name), dt, std::move(shape), reinterpret_cast<const std::byte*>(owned->data()),
                        nbytes, std::shared_ptr<const void>(owned, owned.get())});
  }
  /// Adds a tensor viewed in an open Reader (no copy; keep the Reader alive until write() returns).
  void add_view(const TensorView& t) { add_borrowed(t.name(), t.dtype(), t.shape(), t.data(), t.nbytes()); }
  /// Sets a `__metadata__` entry.
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }
  /// Number of tensors added.
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  /// True when a tensor of this name was added.
  [[nodiscard]] bool contains(std::string_view name) const { return names_.count(std::string(name)) != 0; }

  /// Writes all tensors to `out` atomically (temp file + fsync + rename).
  /// @param out    destination file
  /// @param inputs files that must not be overwritten (the inputs being converted)
  /// @throws lowbit::Error on I/O failure or when `out` is one of `inputs`; `out` is then untouched.
  void write(const std::filesystem::path& out, std::span<const std::filesystem::path> inputs = {}) const {
    std::vector<std::size_t> order(entries_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    write_subset(out, inputs, sorted(order));
  }

  /// Writes `<base>-0000i-of-0000n.safetensors` shards of at most `max_shard_bytes` data each (a
  /// larger tensor gets a shard of its own) plus `<base>.safetensors.index.json`, each atomically.
  /// With a single shard, writes `<base>.safetensors` and no index.
  /// @param dir             destination folder (created if missing)
  /// @param max_shard_bytes data bytes per shard before starting the next one
  /// @param base            file name stem ("model")
  /// @param inputs          files that must not be overwritten
  /// @return the files written (index last)
  std::vector<std::filesystem::path> write_sharded(const std::filesystem::path& dir, std::uint64_t max_shard_bytes,
                                                   const std::string& base = "model",
                                                   std::span<const std::filesystem::path> inputs = {}) const {
    LOWBIT_CHECK(max_shard_bytes > 0, "shard size must be positive");
    std::filesystem::create_directories(dir);
    std::vector<std::size_t> all(entries_.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    all = sorted(all);
    std::vector<std::vector<std::size_t>> shards(1);
    std::uint64_t used = 0;
    for (std::size_t i : all) {
      if (used > 0 && used + entries_[i].nbytes > max_shard_bytes) {
        shards.emplace_back();
        used = 0;
      }
      shards.back().push_back(i);
      used += entries_[i].nbytes;
    }
    std::vector<std::filesystem::path> written;
    if (shards.size() == 1) {
      written.push_back(dir / (base + ".safetensors"));
      write_subset(written.back(), inputs, shards[0]);
      return written;
    }
    nlohmann::json map = nlohmann::json::object();
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < shards.size(); ++s) {
      char num[64];
      std::snprintf(num, sizeof num, "-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      const std::string file = base + num;
      written.push_back(dir / file);
      write_subset(written.back(), inputs, shards[s]);
      for (std::size_t i : shards[s]) {
        map[entries_[i].name] = file;
        total += entries_[i].nbytes;
      }
    }
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", map}};
    written.push_back(dir / (base + ".safetensors.index.json"));
    write_text_file_atomic(written.back(), detail::dump_json(index, 2) + "\n", inputs);
    return written;
  }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::uint64_t> shape;
    const std::byte* data;
    std::uint64_t nbytes;
    std::shared_ptr<const void> owned;
  };

  void check_new(const std::string& name, DType dtype, const std::vector<std::uint64_t>& shape,
                 std::uint64_t nbytes) {
    LOWBIT_CHECK(!name.empty(), "safetensors writer: empty tensor name");
    LOWBIT_CHECK(name != "__metadata__", "safetensors writer: '__metadata__' is reserved");
    LOWBIT_CHECK(names_.insert(name).second, "safetensors writer: duplicate tensor name '", name, "'");
    std::uint64_t numel = 0, want = 0;
    if (!detail::checked_numel(shape, numel) || !detail::checked_mul(numel, dtype_size(dtype), want)) {
      names_.erase(name);
      detail::fail("safetensors writer: tensor '", name, "': shape ", detail::shape_string(shape), " overflows");
    }
    if (want != nbytes) {
      names_.erase(name);
      detail::fail("safetensors writer: tensor '", name, "': ", nbytes, " bytes given for shape ",
                   detail::shape_string(shape), " of ", dtype_name(dtype), " (", want, " bytes)");
    }
  }
  std::vector<std::size_t> sorted(std::vector<std::size_t> idx) const {
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      const auto sa = dtype_size(entries_[a].dtype), sb = dtype_size(entries_[b].dtype);
      return sa != sb ? sa > sb : entries_[a].name < entries_[b].name;
    });
    return idx;
  }
  void write_subset(const std::filesystem::path& out, std::span<const std::filesystem::path> inputs,
                    const std::vector<std::size_t>& order) const {
    nlohmann::json h = nlohmann::json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    std::uint64_t off = 0;
    for (std::size_t i : order) {
      const Entry& e = entries_[i];
      h[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes}}};
      off += e.nbytes;
    }
    std::string header = detail::dump_json(h, -1);
    constexpr std::size_t kHeaderAlign = 8;  // keeps the data section 8-byte aligned
    header.append((kHeaderAlign - header.size() % kHeaderAlign) % kHeaderAlign, ' ');
    const std::uint64_t hlen = header.size();
    detail::AtomicFile f(out, inputs);
    f.write(&hlen, sizeof hlen);
    f.write(header.data(), header.size());
    for (std::size_t i : order) f.write(entries_[i].data, entries_[i].nbytes);
    f.commit();
  }

  std::vector<Entry> entries_;
  std::set<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

/// A checkpoint spread over one or more `.safetensors` files: a single file, a folder holding
/// `model.safetensors` or `model.safetensors.index.json`, or an index file itself (whose `weight_map`
/// maps tensor names to shard files in the same folder).
class ShardedReader {
 public:
  /// Opens a file, folder or index (see the class comment).
  /// @throws lowbit::Error when nothing loadable is found or the index / a shard is malformed.
  static ShardedReader open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    ShardedReader r;
    std::error_code ec;
    fs::path p = path;
    if (fs::is_directory(p, ec)) {
      if (fs::exists(p / "model.safetensors.index.json", ec)) {
        p = p / "model.safetensors.index.json";
      } else if (fs::exists(p / "model.safetensors", ec)) {
        p = p / "model.safetensors";
      } else {
        detail::fail(path.string(), ": folder holds neither model.safetensors nor model.safetensors.index.json");
      }
    }
    r.root_ = p.has_parent_path() ? p.parent_path() : fs::path(".");
    const std::string fname = p.filename().string();
    if (fname.size() >= 5 && fname.compare(fname.size() - 5, 5, ".json") == 0) {
      r.load_index(p);
    } else {
      r.shards_.push_back(std::make_unique<Reader>(Reader::open(p)));
      for (const TensorInfo& t : r.shards_[0]->tensors()) r.where_.emplace(t.name, 0);
    }
    return r;
  }

  /// Folder holding the checkpoint files.
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  /// Every file read (shards, and the index if any): outputs must not overwrite these.
  [[nodiscard]] std::vector<std::filesystem::path> files() const {
    std::vector<std::filesystem::path> f;
    for (const auto& s : shards_) f.push_back(s->path());
    if (!index_path_.empty()) f.push_back(index_path_);
    return f;
  }
  /// All tensor names, sorted.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& [k, v] : where_) n.push_back(k);
    return n;
  }
  /// True when some shard holds the tensor.
  [[nodiscard]] bool contains(std::string_view name) const { return where_.count(std::string(name)) != 0; }
  /// The named tensor.
  /// @throws lowbit::Error when missing.
  [[nodiscard]] TensorView tensor(std::string_view name) const {
    auto it = where_.find(std::string(name));
    if (it == where_.end()) detail::fail(root_.string(), ": missing tensor '", name, "'");
    return shards_[it->second]->tensor(name);
  }
  /// The open shards.
  [[nodiscard]] const std::vector<std::unique_ptr<Reader>>& shards() const { return shards_; }
  /// Merged `__metadata__` of all shards.
  [[nodiscard]] std::map<std::string, std::string> metadata() const {
    std::map<std::string, std::string> m;
    for (const auto& s : shards_) m.insert(s->metadata().begin(), s->metadata().end());
    return m;
  }

 private:
  void load_index(const std::filesystem::path& index) {
    namespace fs = std::filesystem;
    index_path_ = index;
    const std::string label = index.string();
    auto bytes = detail::FileBytes::open(index);
    if (bytes.size() > kMaxHeaderBytes) detail::fail(label, ": index file larger than ", kMaxHeaderBytes, " bytes");
    nlohmann::json j;
    try {
      const char* b = reinterpret_cast<const char*>(bytes.data());
      j = nlohmann::json::parse(b, b + bytes.size());
    } catch (const nlohmann::json::exception& e) {
      detail::fail(label, ": invalid JSON: ", e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      detail::fail(label, ": missing \"weight_map\" object");
    std::map<std::string, std::size_t> shard_of_file;
    std::map<std::string, std::string> mapped;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) detail::fail(label, ": weight_map entry '", it.key(), "' is not a file name");
      const std::string file = it.value().get<std::string>();
      const fs::path fp(file);
      if (file.empty() || fp.has_parent_path() || fp.is_absolute() || file == "." || file == "..")
        detail::fail(label, ": weight_map entry '", it.key(), "' names '", file,
                     "', which is not a plain file name in the checkpoint folder");
      mapped[it.key()] = file;
      if (!shard_of_file.count(file)) {
        shard_of_file[file] = shards_.size();
        shards_.push_back(std::make_unique<Reader>(Reader::open(root_ / fp)));
      }
    }
    if (shards_.empty()) detail::fail(label, ": weight_map is empty");
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      for (const TensorInfo& t : shards_[s]->tensors()) {
        if (!where_.emplace(t.name, s).second)
          detail::fail(label, ": tensor '", t.name, "' appears in both ", shards_[where_[t.name]]->path().string(),
                       " and ", shards_[s]->path().string());
      }
    }
    for (const auto& [name, file] : mapped) {
      const std::size_t s = shard_of_file[file];
      auto it = where_.find(name);
      if (it == where_.end() || it->second != s)
        detail::fail(label, ": tensor '", name, "' is listed in shard ", file, " but that shard does not hold it");
    }
  }

  std::filesystem::path root_;
  std::filesystem::path index_path_;
  std::vector<std::unique_ptr<Reader>> shards_;
  std::map<std::string, std::size_t> where_;
};

}  // namespace safetensors
}  // namespace lowbit
