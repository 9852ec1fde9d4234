// libFuzzer: the client input path as ClientSession runs it (protocol::InputBuffer +
// take_message), fed in reads whose sizes the input chooses, plain appends and TLS-style
// prepare/commit alike. Each message is held across the next read before its decoder runs, and
// every message must equal what the framing decoder finds in the whole stream at once.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/auth_messages.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/input_buffer.hpp"

using namespace rproxy::protocol;

namespace {

constexpr std::size_t kMax = 1 << 16;  // small, so that the limit is reached too

struct Msg {
    char type;
    std::string body;
};

// What the session's handlers would decode; their errors end the connection like framing ones.
void dispatch(const FrontendMessage& m) {
    switch (m.type) {
        case 'Q': decode_query(m.body); break;
        case 'P': decode_parse(m.body); break;
        case 'B': decode_bind(m.body); break;
        case 'D': decode_target(m.body, "Describe"); break;
        case 'E': decode_execute(m.body); break;
        case 'p': decode_sasl_initial_response(m.body); break;
        default: break;
    }
}

// The reference: framing over the whole stream at once. error: the stream turned bad there.
std::vector<Msg> whole(std::string_view s, bool& error) {
    std::vector<Msg> out;
    error = false;
    try {
        while (!s.empty()) {
            std::size_t used = 0;
            auto m = decode_message(s, kMax, used);
            if (!m) break;
            out.push_back({m->type, std::string(m->body)});
            s.remove_prefix(used);
        }
    } catch (const ProtocolError&) {
        error = true;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    // The first 4 bytes choose the read sizes; the rest is what the client sent.
    uint32_t state = uint32_t(data[0]) | uint32_t(data[1]) << 8 | uint32_t(data[2]) << 16 | uint32_t(data[3]) << 24;
    std::string_view stream(reinterpret_cast<const char*>(data) + 4, size - 4);
    auto next = [&state] { return state = state * 1103515245u + 12345u; };

    bool expect_error = false;
    std::vector<Msg> expected = whole(stream, expect_error);

    InputBuffer in;
    std::vector<Msg> got;
    std::optional<FrontendMessage> held;
    std::size_t at = 0;
    bool error = false;
    auto read_some = [&] {
        std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + (next() >> 8) % 4096);
        if (next() & 1) {
            in.append(stream.data() + at, n);
        } else {
            char* p = in.prepare(n + (next() >> 8) % 32);
            std::copy(stream.data() + at, stream.data() + at + n, p);
            in.commit(n);
        }
        at += n;
    };
    auto handle_held = [&] {
        if (!held) return;
        got.push_back({held->type, std::string(held->body)});
        try {
            dispatch(*held);
        } catch (const ProtocolError&) {
        }
        held.reset();
    };
    try {
        while (at < stream.size()) {
            read_some();
            handle_held();
            for (;;) {
                handle_held();  // handled before the next take, as the session's loop does
                auto m = take_message(in, kMax);
                if (!m) break;
                held = m;
                if (at < stream.size() && (next() & 3) == 0) read_some();
            }
        }
    } catch (const ProtocolError&) {
        error = true;
    }
    handle_held();

    if (error != expect_error || got.size() != expected.size()) __builtin_trap();
    for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i].type != expected[i].type || got[i].body != expected[i].body) __builtin_trap();
    return 0;
}
