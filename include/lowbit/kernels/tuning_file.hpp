/// @file tuning_file.hpp
/// @brief Decode tunings (kernels/tuning.hpp) stored in a JSON file, so that an engine measures each
/// weight shape once per device (tune_decode, a few seconds each) and loads the result at later starts.
///
/// Format (`"format": "lowbit.decode_tuning"`, `"version": 1`): a list of tunings, each with the device
/// name and SM count, the weight it applies to (`bits`, `K`, `N`, `group_size`, `sym`, `act_order`) and
/// one row per tuned M (`M`, `warps`, `splits`, `slabs`, `persist` (optional, 0), `us`, `planned_us`). Loading validates every field and
/// refuses duplicates, so a damaged or hand-edited file fails with a message naming the entry; a shape
/// the weight cannot run is still refused later by gemm. Saving is atomic (temporary file + rename):
/// an interrupted save leaves the previous file as it was.
///
/// @code
///   std::vector<lowbit::kernels::DecodeTuning> cache;
///   if (std::filesystem::exists(path)) cache = lowbit::kernels::load_decode_tunings(path);
///   const auto* t = lowbit::kernels::find_decode_tuning(cache, layer.weight().meta, sms, device_name);
///   if (t) (void)layer.set_decode_tuning(*t);
///   else if (layer.tune(stream).ok()) { cache.push_back(layer.decode_tuning()); lowbit::kernels::save_decode_tunings(path, cache); }
/// @endcode
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../bits.hpp"
#include "../error.hpp"
#include "../safetensors.hpp"
#include "layout.hpp"
#include "tuning.hpp"

namespace lowbit::kernels {

/// The `format` tag of a decode tuning file.
inline constexpr const char* kDecodeTuningFormat = "lowbit.decode_tuning";
/// The version this library writes and reads.
inline constexpr int kDecodeTuningVersion = 1;

/// The first tuning in `tunings` that applies to weights like `meta` on a device named `device` with
/// `sms` SMs (DecodeTuning::applies_to), or nullptr.
inline const DecodeTuning* find_decode_tuning(std::span<const DecodeTuning> tunings, const TiledMeta& meta, int sms,
                                              std::string_view device) {
  for (const DecodeTuning& t : tunings)
    if (t.applies_to(meta, sms, device)) return &t;
  return nullptr;
}

/// The JSON document of `tunings`.
/// @throws lowbit::Error for a tuning that was never measured (sm_count 0, no device name) or has a
///         field out of range.
inline nlohmann::json decode_tunings_to_json(std::span<const DecodeTuning> tunings) {
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < tunings.size(); ++i) {
    const DecodeTuning& t = tunings[i];
    LOWBIT_CHECK(t.sm_count > 0 && !t.device.empty(), "decode tuning ", i, ": never measured (no device)");
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t M = 1; M <= kDecodeMaxM; ++M) {
      const DecodeChoice c = t.by_m[M];
      if (c.planned() && t.us[M] == 0 && t.planned_us[M] == 0) continue;  // not tuned
      LOWBIT_CHECK(decode_choice_in_range(c), "decode tuning ", i, ": M = ", M, " has {", c.warps, ", ", c.splits, ", ",
                   c.slabs, ", ", c.persist, "}, out of range");
      rows.push_back({{"M", M},
                      {"warps", c.warps},
                      {"splits", c.splits},
                      {"slabs", c.slabs},
                      {"persist", c.persist},
                      {"us", t.us[M]},
                      {"planned_us", t.planned_us[M]}});
    }
    list.push_back({{"device", t.device},
                    {"sm_count", t.sm_count},
                    {"weight",
                     {{"bits", t.meta.bits},
                      {"K", t.meta.K},
                      {"N", t.meta.N},
                      {"group_size", t.meta.group_size},
                      {"sym", t.meta.sym},
                      {"act_order", t.meta.act_order}}},
                    {"rows", std::move(rows)}});
  }
  return {{"format", kDecodeTuningFormat}, {"version", kDecodeTuningVersion}, {"tunings", std::move(list)}};
}

/// The tunings of a JSON document (validated).
/// @param j     the document
/// @param where name used in messages (the file)
/// @throws lowbit::Error naming the entry and field on anything missing, mistyped, out of range or
///         duplicated, and on another format or a newer version.
inline std::vector<DecodeTuning> decode_tunings_from_json(const nlohmann::json& j, std::string_view where = "decode tuning") {
  auto bad = [&](auto&&... a) { lowbit::detail::fail(where, ": ", a...); };
  if (!j.is_object()) bad("not a JSON object");
  const auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_string() || fmt->get<std::string>() != kDecodeTuningFormat)
    bad("not a decode tuning file (\"format\" must be \"", kDecodeTuningFormat, "\")");
  const auto ver = j.find("version");
  if (ver == j.end() || !ver->is_number_integer()) bad("\"version\" must be an integer");
  const std::int64_t v = ver->get<std::int64_t>();
  if (v != kDecodeTuningVersion) bad("version ", v, " (this library reads version ", kDecodeTuningVersion, ")");
  const auto list = j.find("tunings");
  if (list == j.end() || !list->is_array()) bad("\"tunings\" must be a list");

  // integer field `key` of object `o` in [lo, hi]
  auto get_int = [&](const nlohmann::json& o, const char* key, std::int64_t lo, std::int64_t hi, const std::string& ctx) {
    const auto it = o.find(key);
    if (it == o.end()) bad(ctx, "missing \"", key, "\"");
    if (!it->is_number_integer()) bad(ctx, "\"", key, "\" must be an integer");
    const std::int64_t x = it->get<std::int64_t>();
    if (x < lo || x > hi) bad(ctx, "\"", key, "\" = ", x, " is out of range (", lo, " .. ", hi, ")");
    return x;
  };
  auto get_bool = [&](const nlohmann::json& o, const char* key, const std::string& ctx) {
    const auto it = o.find(key);
    if (it == o.end() || !it->is_boolean()) bad(ctx, "\"", key, "\" must be true or false");
    return it->get<bool>();
  };
  auto get_time = [&](const nlohmann::json& o, const char* key, const std::string& ctx) {
    const auto it = o.find(key);
    if (it == o.end() || !it->is_number()) bad(ctx, "\"", key, "\" must be a number");
    const double x = it->get<double>();
    if (!std::isfinite(x) || x < 0 || x > 1e9) bad(ctx, "\"", key, "\" = ", x, " is not a time in microseconds");
    return x;
  };

  std::vector<DecodeTuning> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& e = (*list)[i];
    const std::string ctx = "tuning " + std::to_string(i) + ": ";
    if (!e.is_object()) bad(ctx, "not an object");
    DecodeTuning t;
    const auto dev = e.find("device");
    if (dev == e.end() || !dev->is_string() || dev->get<std::string>().empty()) bad(ctx, "\"device\" must be a name");
    t.device = dev->get<std::string>();
    t.sm_count = static_cast<int>(get_int(e, "sm_count", 1, 1 << 20, ctx));
    const auto w = e.find("weight");
    if (w == e.end() || !w->is_object()) bad(ctx, "\"weight\" must be an object");
    t.meta.bits = static_cast<int>(get_int(*w, "bits", 1, 32, ctx));
    if (!is_supported_bits(t.meta.bits)) bad(ctx, "\"bits\" = ", t.meta.bits, " (supported: 2, 3, 4, 8)");
    t.meta.K = static_cast<std::size_t>(get_int(*w, "K", 64, 1 << 30, ctx));
    t.meta.N = static_cast<std::size_t>(get_int(*w, "N", 64, 1 << 30, ctx));
    if (t.meta.K % 64 || t.meta.N % 64) bad(ctx, "K (", t.meta.K, ") and N (", t.meta.N, ") must be multiples of 64");
    t.meta.group_size = static_cast<std::size_t>(get_int(*w, "group_size", 32, 1 << 30, ctx));
    if (t.meta.K % t.meta.group_size || (t.meta.group_size != 32 && t.meta.group_size % 64))
      bad(ctx, "\"group_size\" = ", t.meta.group_size, " (32 or a multiple of 64 dividing K)");
    t.meta.sym = get_bool(*w, "sym", ctx);
    t.meta.act_order = get_bool(*w, "act_order", ctx);
    const auto rows = e.find("rows");
    if (rows == e.end() || !rows->is_array()) bad(ctx, "\"rows\" must be a list");
    std::array<bool, kDecodeMaxM + 1> seen{};
    for (const nlohmann::json& r : *rows) {
      if (!r.is_object()) bad(ctx, "a row is not an object");
      const auto M = static_cast<std::size_t>(get_int(r, "M", 1, static_cast<std::int64_t>(kDecodeMaxM), ctx));
      const std::string rctx = ctx + "M = " + std::to_string(M) + ": ";
      if (seen[M]) bad(rctx, "listed twice");
      seen[M] = true;
      const DecodeChoice c{static_cast<int>(get_int(r, "warps", 0, 16, rctx)),
                           static_cast<int>(get_int(r, "splits", 0, kMaxDecodeSplits, rctx)),
                           static_cast<int>(get_int(r, "slabs", 0, 2, rctx)),
                           // absent in files written before persistent CTAs existed: planned
                           r.contains("persist") ? static_cast<int>(get_int(r, "persist", 0, 2, rctx)) : 0};
      if (!decode_choice_in_range(c)) bad(rctx, "\"warps\" = ", c.warps, " (4, 8, 16, or 0 for the planner's)");
      t.by_m[M] = c;
      t.us[M] = get_time(r, "us", rctx);
      t.planned_us[M] = get_time(r, "planned_us", rctx);
    }
    for (std::size_t k = 0; k < out.size(); ++k)
      if (out[k].applies_to(t.meta, t.sm_count, t.device))
        bad(ctx, "same weight shape and device as tuning ", k);
    out.push_back(std::move(t));
  }
  return out;
}

/// Writes `tunings` to `path` atomically (temporary file + fsync + rename).
/// @throws lowbit::Error on an unmeasured tuning or an I/O failure (the previous file is then intact).
inline void save_decode_tunings(const std::filesystem::path& path, std::span<const DecodeTuning> tunings) {
  const std::string text = decode_tunings_to_json(tunings).dump(2) + "\n";
  safetensors::write_text_file_atomic(path, text);
}

/// Reads a decode tuning file.
/// @throws lowbit::Error on I/O, JSON or field errors (message names the file and the entry).
inline std::vector<DecodeTuning> load_decode_tunings(const std::filesystem::path& path) {
  return decode_tunings_from_json(safetensors::read_json_file(path, 64u << 20), path.string());
}

}  // namespace lowbit::kernels
