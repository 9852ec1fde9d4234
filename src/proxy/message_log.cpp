#include "proxy/message_log.hpp"

#include <time.h>

#include <cstdio>

#include "protocol/message_summary.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy {

namespace {

const char* direction_name(Direction d) {
    switch (d) {
        case Direction::ClientToProxy: return "C>P";
        case Direction::ProxyToUpstream: return "P>U";
        case Direction::UpstreamToProxy: return "U>P";
        case Direction::ProxyToClient: return "P>C";
    }
    return "?";
}

bool frontend(Direction d) { return d == Direction::ClientToProxy || d == Direction::ProxyToUpstream; }

// The type byte as written: never one that would break the line.
char shown_type(char type) { return type > ' ' && type < 0x7f ? type : '?'; }

// Messages that come in long runs, logged as one line per run.
bool bulk(bool from_frontend, char type) { return type == 'd' || (!from_frontend && type == 'D'); }

}  // namespace

void MessageLog::configure(const MessageLogConfig& c) {
    config_ = c;
    if (config_.bytes < 0) config_.bytes = 0;
    file_.configure(c.path, c.rotate_bytes, c.keep_files);
}

bool MessageLog::wants(const std::string& upstream) const {
    if (!on()) return false;
    if (config_.upstreams.empty()) return true;
    for (const auto& u : config_.upstreams)
        if (u == upstream || (upstream.empty() && u == "default")) return true;
    return false;
}

void MessageLog::append_time() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != second_) {
        second_ = ts.tv_sec;
        tm t;
        gmtime_r(&ts.tv_sec, &t);
        char buf[80];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                      t.tm_hour, t.tm_min, t.tm_sec);
        time_prefix_ = buf;
    }
    char micros[32];
    std::snprintf(micros, sizeof micros, "%06ldZ", static_cast<long>(ts.tv_nsec / 1000));
    line_ += time_prefix_;
    line_ += micros;
}

void MessageLog::begin(int32_t session, Direction d) {
    append_time();
    line_ += ' ';
    line_ += std::to_string(session);
    line_ += ' ';
    line_ += direction_name(d);
    line_ += ' ';
}

void MessageLog::end(std::string* hold) {
    if (hold) hold->append(line_);
    else file_.write(line_);
    line_.clear();
}

void MessageLog::message(int32_t session, Direction d, char type, std::string_view body, std::string* hold) {
    const bool fe = frontend(d);
    begin(session, d);
    line_ += shown_type(type);
    line_ += ' ';
    line_ += protocol::message_name(fe, type);
    line_ += " len=";
    line_ += std::to_string(body.size() + 4);
    line_ += ' ';
    bool show = protocol::append_summary(line_, fe, type, body);
    if (show && config_.bytes > 0) {
        // The framing as it was on the wire, then the body.
        uint32_t len = static_cast<uint32_t>(body.size() + 4);
        const char head[5] = {type, char(len >> 24), char(len >> 16), char(len >> 8), char(len)};
        std::size_t limit = static_cast<std::size_t>(config_.bytes);
        if (line_.back() != ' ') line_ += ' ';
        line_ += "hex=";
        protocol::append_hex(line_, std::string_view(head, 5), limit);
        if (limit > 5) protocol::append_hex(line_, body, limit - 5);
    }
    while (!line_.empty() && line_.back() == ' ') line_.pop_back();
    line_ += '\n';
    end(hold);
}

void MessageLog::run(int32_t session, Direction d, char type, std::string_view bytes, std::size_t count, std::string* hold) {
    begin(session, d);
    line_ += shown_type(type);
    line_ += ' ';
    line_ += protocol::message_name(frontend(d), type);
    line_ += " x ";
    line_ += std::to_string(count);
    line_ += " len=";
    line_ += std::to_string(bytes.size());
    line_ += " rows=";
    line_ += std::to_string(count);
    if (config_.bytes > 0) {
        line_ += " hex=";
        protocol::append_hex(line_, bytes, static_cast<std::size_t>(config_.bytes));
    }
    line_ += '\n';
    end(hold);
}

void MessageLog::messages(int32_t session, Direction d, std::string_view bytes, std::string* hold) {
    // The lines of one write go to the file in one queueing.
    const bool batching = hold == nullptr;
    if (batching) hold = &batch_;
    const bool fe = frontend(d);
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        if (bytes.size() - pos < 5) break;
        char type = bytes[pos];
        uint32_t len = protocol::be32(bytes, pos + 1);
        if (len < 4 || len > bytes.size() - pos - 1) break;
        if (bulk(fe, type)) {
            // The run of this type from here.
            std::size_t end = pos, count = 0;
            while (bytes.size() - end >= 5 && bytes[end] == type) {
                uint32_t l = protocol::be32(bytes, end + 1);
                if (l < 4 || l > bytes.size() - end - 1) break;
                end += 1 + l;
                ++count;
            }
            if (count > 1) {
                run(session, d, type, bytes.substr(pos, end - pos), count, hold);
                pos = end;
                continue;
            }
        }
        message(session, d, type, bytes.substr(pos + 5, len - 4), hold);
        pos += 1 + std::size_t(len);
    }
    if (pos < bytes.size()) {
        begin(session, d);
        line_ += "- [partial] len=" + std::to_string(bytes.size() - pos) + '\n';
        end(hold);
    }
    if (batching) {
        file_.write(batch_);
        if (batch_.capacity() > 1024 * 1024) std::string().swap(batch_);
        else batch_.clear();
    }
}

void MessageLog::startup(int32_t session, const protocol::StartupPacket& p, std::string* hold) {
    using Kind = protocol::StartupPacket::Kind;
    begin(session, Direction::ClientToProxy);
    switch (p.kind) {
        case Kind::SslRequest: line_ += "- SSLRequest len=8"; break;
        case Kind::GssEncRequest: line_ += "- GSSENCRequest len=8"; break;
        case Kind::CancelRequest:
            line_ += "- CancelRequest len=16 pid=" + std::to_string(p.cancel_pid) + " key=[redacted]";
            break;
        case Kind::Startup: {
            // Only these parameters: the rest of the packet is not the log's to keep.
            line_ += "- StartupMessage version=" + std::to_string(p.version >> 16) + "." + std::to_string(p.version & 0xffff);
            for (const char* name : {"user", "database", "options"}) {
                if (const std::string* v = p.param(name)) {
                    line_ += ' ';
                    line_ += name;
                    line_ += '=';
                    protocol::append_quoted(line_, *v, 256);
                }
            }
            break;
        }
    }
    line_ += '\n';
    end(hold);
}

void MessageLog::negotiation_answer(int32_t session, char answer, std::string* hold) {
    begin(session, Direction::ProxyToClient);
    line_ += "- NegotiationAnswer len=1 answer=";
    line_ += answer;
    line_ += '\n';
    end(hold);
}

}  // namespace rproxy
