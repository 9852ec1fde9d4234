// The one big-endian reader of message bodies, in both directions. Every read is checked against
// the bytes actually there: a length or count from the network never reads past the body.
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/protocol_error.hpp"

namespace rproxy::protocol {

// Unchecked: the caller has made sure 4 bytes are there.
inline uint32_t be32(std::string_view b, std::size_t at) {
    auto u = [&](std::size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(b[at + i])); };
    return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

// The body of the framed message at the front of buf (a type byte, then an Int32 length that counts
// itself), once it has all arrived; consumed is set then. Judged from the header alone, before the
// body is buffered: a length below 4 is 08P01, one above max_size 54000.
inline std::optional<std::string_view> frame_body(std::string_view buf, std::size_t max_size, std::size_t& consumed,
                                                  bool from_server) {
    if (buf.size() < 5) return std::nullopt;
    uint32_t len = be32(buf, 1);
    if (len < 4) throw ProtocolError("08P01", from_server ? "invalid message length from the server" : "invalid message length");
    if (len > max_size) {
        throw ProtocolError("54000", std::string(from_server ? "server message" : "message") + " length " +
                                         std::to_string(len) + " exceeds the maximum allowed (" +
                                         std::to_string(max_size) + ")");
    }
    if (buf.size() < std::size_t(len) + 1) return std::nullopt;
    consumed = std::size_t(len) + 1;
    return buf.substr(5, len - 4);
}

class WireReader {
public:
    explicit WireReader(std::string_view body) : b_(body) {}

    uint8_t u8() {
        need(1);
        return static_cast<uint8_t>(b_[pos_++]);
    }
    uint16_t u16() {
        need(2);
        uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(b_[pos_]) << 8) | static_cast<uint8_t>(b_[pos_ + 1]));
        pos_ += 2;
        return v;
    }
    int16_t i16() { return static_cast<int16_t>(u16()); }
    int32_t i32() {
        need(4);
        uint32_t v = be32(b_, pos_);
        pos_ += 4;
        return static_cast<int32_t>(v);
    }
    std::string_view cstr_view() {
        std::size_t end = b_.find('\0', pos_);
        if (end == std::string_view::npos) throw ProtocolError("08P01", "invalid string in message");
        std::string_view s = b_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return s;
    }
    std::string cstr() { return std::string(cstr_view()); }
    std::string_view bytes_view(std::size_t n) {
        need(n);
        std::string_view s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    std::string bytes(std::size_t n) { return std::string(bytes_view(n)); }
    // An Int32 length followed by that many bytes; -1 is NULL (has_value false).
    bool value(std::string_view& out) {
        int32_t len = i32();
        if (len == -1) return false;
        if (len < 0) throw ProtocolError("08P01", "invalid value length " + std::to_string(len));
        out = bytes_view(std::size_t(len));
        return true;
    }
    // An Int16 count, read unsigned as the server reads it (up to 65535), of items at least
    // bytes_each long: never more than the bytes that are left could hold.
    std::size_t count(std::size_t bytes_each) {
        std::size_t n = u16();
        if (n * bytes_each > b_.size() - pos_) throw ProtocolError("08P01", "insufficient data left in message");
        return n;
    }
    std::string_view rest() {
        std::string_view s = b_.substr(pos_);
        pos_ = b_.size();
        return s;
    }
    bool done() const { return pos_ == b_.size(); }
    void end() {
        if (pos_ != b_.size()) throw ProtocolError("08P01", "invalid message format");
    }

private:
    void need(std::size_t n) {
        if (b_.size() - pos_ < n) throw ProtocolError("08P01", "insufficient data left in message");
    }
    std::string_view b_;
    std::size_t pos_ = 0;
};

}  // namespace rproxy::protocol
