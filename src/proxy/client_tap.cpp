// The client side's taps for the message log (pg_rproxy.message_log): what the client sends, as
// each message is taken, and what it is sent, as the output is written.
#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace rproxy {

void ClientSession::tap_start() {
    MessageLog& log = worker_.message_log();
    tap_ = log.on() ? &log : nullptr;
    out_tapped_ = out_.size();
}

// Routed: the session is logged when its upstream is one the log wants. The lines held until now
// (startup packet, authentication) are written then, or dropped.
void ClientSession::tap_routed(const std::string& upstream) {
    MessageLog& log = worker_.message_log();
    bool wanted = log.wants(upstream);
    if (starting_ && !starting_->tap_routed) {
        starting_->tap_routed = true;
        starting_->tap_upstream = upstream;
        if (wanted && !starting_->tap_held.empty()) log.write_held(starting_->tap_held);
        std::string().swap(starting_->tap_held);
    }
    if (wanted && !tap_) out_tapped_ = out_.size();  // what was queued before is not announced late
    tap_ = wanted ? &log : nullptr;
    pipeline_.set_tap(tap_, backend_pid_);
}

void ClientSession::retap() {
    MessageLog& log = worker_.message_log();
    if (starting_ && !starting_->tap_routed) {
        if (!tap_ && log.on()) out_tapped_ = out_.size();
        tap_ = log.on() ? &log : nullptr;
        return;
    }
    tap_routed(starting_ ? starting_->tap_upstream : pipeline_.upstream().name());
}

// A session that ended before it was routed (refused, or left during authentication) is logged
// only when the log wants every upstream's clients.
void ClientSession::tap_finish() {
    if (!starting_ || starting_->tap_routed || starting_->tap_held.empty()) return;
    MessageLog& log = worker_.message_log();
    if (log.wants_unrouted()) log.write_held(starting_->tap_held);
    std::string().swap(starting_->tap_held);
}

void ClientSession::tap_input(const protocol::FrontendMessage& msg) {
    tap_->message(backend_pid_, Direction::ClientToProxy, msg.type, msg.body, tap_hold());
}

void ClientSession::tap_output() {
    if (out_tapped_ > out_.size()) out_tapped_ = out_.size();
    if (out_tapped_ < out_.size())
        tap_->messages(backend_pid_, Direction::ProxyToClient, std::string_view(out_).substr(out_tapped_), tap_hold());
    out_tapped_ = out_.size();
}

}  // namespace rproxy
