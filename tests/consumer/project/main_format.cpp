// A consumer linking lowbit::format: the format entry header (when present) and nlohmann/json resolve.
#if __has_include(<lowbit/format.hpp>)
#include <lowbit/format.hpp>
#endif
#include <lowbit/lowbit.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

int main() {
  const auto j = nlohmann::json::parse(R"({"bits": 4})");
  if (j.at("bits").get<int>() != lowbit::Bits<4>::bits) {
    std::printf("FAIL: json round trip\n");
    return 1;
  }
  std::printf("lowbit::format consumer OK\n");
  return 0;
}
