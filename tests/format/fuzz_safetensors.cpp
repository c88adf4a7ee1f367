// libFuzzer target for the safetensors reader and the GPTQ layer loader (built with -DLOWBIT_FUZZ=ON
// and clang). Any input must either load or throw lowbit::Error; anything else is a finding.
//   ./fuzz_safetensors -max_total_time=60 corpus/
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <lowbit/format.hpp>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = lowbit::safetensors;
  namespace gq = lowbit::gptq;
  std::vector<std::byte> bytes(size);
  if (size) std::memcpy(bytes.data(), data, size);
  try {
    const st::Reader r = st::Reader::from_memory(std::move(bytes), "fuzz");
    unsigned sum = 0;
    std::vector<std::string> names;
    for (const st::TensorInfo& t : r.tensors()) {
      const st::TensorView v = r.view(t);
      for (std::uint64_t i = 0; i < v.nbytes(); ++i) sum += static_cast<unsigned>(v.data()[i]);
      if (st::is_floating(v.dtype())) (void)v.to_float_vector();
      names.push_back(t.name);
    }
    (void)sum;
    for (int bits : {2, 3, 4, 8}) {
      gq::QuantizeConfig cfg;
      cfg.bits = bits;
      cfg.group_size = 32;
      for (const std::string& layer : gq::find_layers(names)) {
        try {
          (void)gq::dequantize(gq::load_layer(r, layer, cfg));
        } catch (const lowbit::Error&) {
        }
      }
    }
  } catch (const lowbit::Error&) {
  }
  return 0;
}
