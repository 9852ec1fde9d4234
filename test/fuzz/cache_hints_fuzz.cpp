// libFuzzer: the cache-hint comment parser, which reads SQL text straight from clients.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/cache_key.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    rproxy::parse_cache_hints(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
