// Appends PostgreSQL v3 backend messages to an output buffer. The length word is patched in when
// the message is finished, so callers stream fields without computing sizes first.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace rproxy::protocol {

class MessageWriter {
public:
    MessageWriter(std::string& out, char type) : out_(out) {
        out_.push_back(type);
        start_ = out_.size();
        out_.append(4, '\0');
    }
    MessageWriter(const MessageWriter&) = delete;
    MessageWriter& operator=(const MessageWriter&) = delete;
    ~MessageWriter() { finish(); }

    MessageWriter& int8(uint8_t v) {
        out_.push_back(static_cast<char>(v));
        return *this;
    }
    MessageWriter& int16(int16_t v) {
        uint16_t u = static_cast<uint16_t>(v);
        char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
        out_.append(b, 2);
        return *this;
    }
    MessageWriter& int32(int32_t v) {
        put32(out_, static_cast<uint32_t>(v));
        return *this;
    }
    MessageWriter& cstr(std::string_view s) {
        out_.append(s.data(), s.size());
        out_.push_back('\0');
        return *this;
    }
    MessageWriter& bytes(const char* p, std::size_t n) {
        out_.append(p, n);
        return *this;
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        uint32_t len = static_cast<uint32_t>(out_.size() - start_);
        char b[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                     static_cast<char>(len >> 8), static_cast<char>(len)};
        std::memcpy(&out_[start_], b, 4);
    }

    static void put32(std::string& out, uint32_t u) {
        char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
        out.append(b, 4);
    }

private:
    std::string& out_;
    std::size_t start_ = 0;
    bool finished_ = false;
};

// A message passed on as it was received: its type and body, framed again.
inline void append_message(std::string& out, char type, std::string_view body) {
    MessageWriter(out, type).bytes(body.data(), body.size());
}

}  // namespace rproxy::protocol
