// The message log (pg_rproxy.message_log), the intercept log of a worker: one line per protocol
// message in each of the four directions, formatted on the loop and written by a LogFile thread.
//
//   2026-12-02T08:51:23.123456Z 16777217 C>P Q Query len=25 sql="select 1" hex=5100000019...
//
// Fields: time (UTC), session (the BackendKeyData pid the client was given), direction (C>P client
// to proxy, P>U proxy to upstream, U>P upstream to proxy, P>C proxy to client), the type letter
// ("-" for the untyped startup packets), the message's name, its length as framed on the wire, a
// decoded summary (protocol/message_summary.hpp), then the first pg_rproxy.message_log_bytes bytes
// in hex, framing included. A run of DataRow (or CopyData) messages sent or received together is
// one line "DataRow x N" with the run's length and first bytes. Secrets (password messages, SASL
// challenges, cancel keys) are "[redacted]" with no hex.
//
// Whether a session logs is decided when it is routed (pg_rproxy.message_log_upstreams) and again
// after each reload; its sessions and connections hold a MessageLog* that is null otherwise, so the
// cost when the log is off is a null check per read and write.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/message_log_config.hpp"
#include "protocol/frontend_messages.hpp"
#include "proxy/log_file.hpp"

namespace rproxy {

enum class Direction : uint8_t { ClientToProxy, ProxyToUpstream, UpstreamToProxy, ProxyToClient };

class MessageLog {
public:
    MessageLog() : file_("message log") {}
    void start() { file_.start(); }  // the writer thread: before signals are unblocked
    void configure(const MessageLogConfig& c);
    bool on() const { return file_.enabled(); }
    // Whether a client of this upstream ("" for pg_rproxy.upstream's) is logged.
    bool wants(const std::string& upstream) const;
    // Whether a client that never got as far as being routed is logged: when every one is.
    bool wants_unrouted() const { return on() && config_.upstreams.empty(); }
    LogFile& file() { return file_; }

    // Lines are appended to hold instead of written when hold is not null (a session not yet
    // routed: written once it is known to be wanted).
    // One framed message.
    void message(int32_t session, Direction d, char type, std::string_view body, std::string* hold = nullptr);
    // Framed messages back to back (what a write sends); a message cut short ends the walk.
    void messages(int32_t session, Direction d, std::string_view bytes, std::string* hold = nullptr);
    void startup(int32_t session, const protocol::StartupPacket& p, std::string* hold);
    // The one-byte answer to SSLRequest / GSSENCRequest.
    void negotiation_answer(int32_t session, char answer, std::string* hold);
    void write_held(std::string_view lines) { file_.write(lines); }

private:
    void begin(int32_t session, Direction d);
    void end(std::string* hold);
    void append_time();
    void run(int32_t session, Direction d, char type, std::string_view bytes, std::size_t count, std::string* hold);

    LogFile file_;
    MessageLogConfig config_;
    std::string line_;
    std::string batch_;
    int64_t second_ = -1;  // the second time_prefix_ shows
    std::string time_prefix_;
};

}  // namespace rproxy
