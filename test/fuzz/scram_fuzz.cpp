// libFuzzer: the SCRAM exchange with attacker-chosen client messages (first byte picks the case:
// plain or over TLS; the rest splits at the first NUL into client-first and client-final), and
// the pg_authid secret parser.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/scram.hpp"

using namespace rproxy::auth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    parse_scram_secret(in);
    static const ScramSecret secret = make_scram_secret("fuzz", "0123456789abcdef", 1);
    bool tls = data[0] & 1;
    ScramExchange exchange(secret, "fuzzer", tls ? std::string(32, 'x') : std::string());
    std::size_t nul = in.find('\0');
    std::string_view first = in.substr(0, nul);
    std::string_view final_message = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    auto step = exchange.client_first(data[0] & 2 ? kScramSha256Plus : kScramSha256, first);
    if (step.state == ScramExchange::State::Continue) {
        step = exchange.client_final(final_message);
        if (step.state == ScramExchange::State::Success) __builtin_trap();  // no proof without the password
    }
    return 0;
}
