// libFuzzer: what the second cache level reads from Redis and from settings and Bind parameters:
// values (checked before a byte reaches a client), invalidation messages, parameter hooks and
// Redis URLs. A value that round-trips through the encoder must decode to exactly what went in.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/l2_value.hpp"
#include "core/parameter_hook.hpp"
#include "core/redis_scripts.hpp"
#include "core/redis_url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    rproxy::L2Entry e;
    rproxy::decode_l2_value(in, "key", 0, &e);
    rproxy::redis_scripts::parse_invalidation(in);
    rproxy::parse_parameter_hook(in);
    std::string error;
    if (auto ep = rproxy::parse_redis_url(in, &error)) {
        if (!ep->password.empty() && ep->describe().find(ep->password) != std::string::npos && ep->password != "***" &&
            ep->describe().find(":" + ep->password + "@") != std::string::npos)
            std::abort();  // the password must never be shown
    }
    // the input split in two: a key and the wire bytes of a result
    std::size_t cut = size ? data[0] % (size + 1) : 0;
    std::string_view key = in.substr(0, cut), wire = in.substr(cut);
    std::string v = rproxy::encode_l2_value(key, wire, 7, 1000);
    rproxy::L2Entry back;
    rproxy::L2Decode d = rproxy::decode_l2_value(v, key, 0, &back);
    if (d == rproxy::L2Decode::Ok && (back.wire != wire || back.rows != 7)) std::abort();
    if (d == rproxy::L2Decode::OtherKey || d == rproxy::L2Decode::Expired) std::abort();
    return 0;
}
