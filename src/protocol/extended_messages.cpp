#include "protocol/extended_messages.hpp"

#include "protocol/message_writer.hpp"

namespace rproxy::protocol {

namespace {

// Bounds-checked reader over one message body.
class Reader {
public:
    explicit Reader(std::string_view b) : b_(b) {}
    uint8_t u8() {
        need(1);
        return static_cast<uint8_t>(b_[pos_++]);
    }
    int16_t i16() {
        need(2);
        uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(b_[pos_]) << 8) | static_cast<uint8_t>(b_[pos_ + 1]));
        pos_ += 2;
        return static_cast<int16_t>(v);
    }
    int32_t i32() {
        need(4);
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(b_[pos_ + i]);
        pos_ += 4;
        return static_cast<int32_t>(v);
    }
    std::string cstr() { return std::string(cstr_view()); }
    std::string_view cstr_view() {
        std::size_t end = b_.find('\0', pos_);
        if (end == std::string_view::npos) throw ProtocolError("08P01", "invalid string in message");
        std::string_view s = b_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return s;
    }
    std::string bytes(std::size_t n) {
        need(n);
        std::string s(b_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    // A count read from the network: never more than the bytes that are left could hold.
    std::size_t count(std::size_t bytes_each) {
        int16_t n = i16();
        if (n < 0 || std::size_t(n) * bytes_each > b_.size() - pos_)
            throw ProtocolError("08P01", "insufficient data left in message");
        return std::size_t(n);
    }
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

}  // namespace

bool parse_repeats(std::string_view body, const std::string& name, const std::string& query,
                   const std::vector<uint32_t>& types) {
    Reader r(body);
    if (r.cstr_view() != name || r.cstr_view() != query) return false;
    std::size_t n = r.count(4);
    if (n != types.size()) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (static_cast<uint32_t>(r.i32()) != types[i]) return false;
    r.end();
    return true;
}

ParseMessage decode_parse(std::string_view body) {
    Reader r(body);
    ParseMessage m;
    m.name = r.cstr();
    m.query = r.cstr();
    std::size_t n = r.count(4);
    for (std::size_t i = 0; i < n; ++i) m.param_types.push_back(static_cast<uint32_t>(r.i32()));
    r.end();
    return m;
}

BindMessage decode_bind(std::string_view body) {
    Reader r(body);
    BindMessage m;
    m.portal = r.cstr();
    m.statement = r.cstr();
    std::size_t nf = r.count(2);
    for (std::size_t i = 0; i < nf; ++i) m.param_formats.push_back(r.i16());
    std::size_t np = r.count(4);
    for (std::size_t i = 0; i < np; ++i) {
        int32_t len = r.i32();
        if (len == -1) {
            m.params.emplace_back(std::nullopt);
        } else if (len < 0) {
            throw ProtocolError("08P01", "invalid parameter length " + std::to_string(len));
        } else {
            m.params.emplace_back(r.bytes(std::size_t(len)));
        }
    }
    std::size_t nr = r.count(2);
    for (std::size_t i = 0; i < nr; ++i) m.result_formats.push_back(r.i16());
    r.end();
    return m;
}

TargetMessage decode_target(std::string_view body, const char* what) {
    Reader r(body);
    TargetMessage m;
    m.kind = static_cast<char>(r.u8());
    if (m.kind != 'S' && m.kind != 'P')
        throw ProtocolError("08P01", std::string("invalid ") + what + " message subtype " + std::to_string(int(m.kind)));
    m.name = r.cstr();
    r.end();
    return m;
}

ExecuteMessage decode_execute(std::string_view body) {
    Reader r(body);
    ExecuteMessage m;
    m.portal = r.cstr();
    m.max_rows = r.i32();
    r.end();
    return m;
}

void append_parse_complete(std::string& out) { MessageWriter(out, '1'); }
void append_bind_complete(std::string& out) { MessageWriter(out, '2'); }
void append_close_complete(std::string& out) { MessageWriter(out, '3'); }
void append_no_data(std::string& out) { MessageWriter(out, 'n'); }
void append_portal_suspended(std::string& out) { MessageWriter(out, 's'); }

void append_parameter_description(std::string& out, const std::vector<uint32_t>& types) {
    MessageWriter w(out, 't');
    w.int16(static_cast<int16_t>(types.size()));
    for (uint32_t t : types) w.int32(static_cast<int32_t>(t));
}

}  // namespace rproxy::protocol
