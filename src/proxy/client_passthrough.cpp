// Authentication passthrough (pg_rproxy_upstreams.auth = 'passthrough'): the client logs in to the
// upstream itself. libpq opens the connection (TLS, host lists) and sends the startup packet with
// the client's user name; from the server's first authentication request on, the proxy relays
// each request to the client and each answer back, so the password never passes through the
// proxy in a form it could reuse (SCRAM, md5), and the upstream's own error reaches the client
// unchanged. The connection then serves that client alone, for its whole session.
#include "protocol/auth_messages.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"
#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {

enum : int32_t { kAuthOk = 0, kCleartext = 3, kMd5 = 5, kSasl = 10, kSaslContinue = 11, kSaslFinal = 12 };

int32_t be32(std::string_view b) {
    if (b.size() < 4) return -1;
    return static_cast<int32_t>((uint32_t(uint8_t(b[0])) << 24) | (uint32_t(uint8_t(b[1])) << 16) |
                                (uint32_t(uint8_t(b[2])) << 8) | uint32_t(uint8_t(b[3])));
}

// What the rule allows the client to send: as in pg_hba, md5 also lets SCRAM pass; the password
// method (and trust, which leaves the decision to the upstream) lets everything pass.
bool rule_allows(auth::Method rule, int32_t request) {
    switch (rule) {
        case auth::Method::Trust:
        case auth::Method::Password:
        case auth::Method::Cert:
            return true;
        case auth::Method::Md5:
            return request != kCleartext;
        case auth::Method::ScramSha256:
            return request == kSasl || request == kSaslContinue || request == kSaslFinal;
        case auth::Method::Reject:
            return false;
    }
    return false;
}

const char* request_name(int32_t request) {
    switch (request) {
        case kCleartext: return "password";
        case kMd5: return "md5";
        default: return "scram-sha-256";
    }
}

}  // namespace

asio::awaitable<bool> ClientSession::passthrough_login(const std::string& user, const std::string& database,
                                                       auth::Method method, UpstreamPtr upstream, int listen_port) {
    if (method == auth::Method::Cert) {
        std::string cn = tls_ ? tls_verified_peer_cn(tls_->native_handle()) : std::string();
        if (cn != user) {
            ErrorFields e = ErrorFields::make("FATAL", "28000", "certificate authentication failed for user \"" + user + "\"");
            co_return co_await refuse(ConnEvent::CertificateFailed, e, true);
        }
    }
    auto [conn, error] = co_await upstream->open_for_login();
    if (!conn) {
        ErrorFields e = ErrorFields::make("FATAL", "08001", "could not connect to the upstream server: " + error);
        co_return co_await refuse(ConnEvent::NoRoute, e, false);
    }
    // Routed: the relayed login is logged (its password messages redacted) if this upstream is.
    tap_routed(upstream->name());
    if (tap_) conn->tap(tap_, backend_pid_);
    // The user name libpq sent: the client's, unless the conninfo or a role mapping renames it.
    const bool renamed = upstream->role() != user;
    std::string shown_method;
    // Whether the client proved anything: an answer relayed, or the server's SCRAM proof. Being let
    // in without one (the upstream trusts the gateway's address, peer or cert authentication on
    // the conninfo) is the upstream's trust in the proxy, not in the client.
    bool proven = false;
    for (;;) {
        auto m = co_await conn->next();
        if (!m) {
            ErrorFields e = ErrorFields::make("FATAL", "08006", "the upstream closed the connection during authentication");
            co_return co_await refuse(ConnEvent::PasswordFailed, e, false);
        }
        if (m->type == 'E') {
            // The upstream's refusal (28P01, 28000, 53300...) as it sent it, after the same
            // delay as the gateway's own.
            note_event(ConnEvent::PasswordFailed, "28P01");
            if (worker_.security().auth_failure_delay.count() > 0) {
                asio::steady_timer pause(socket_.get_executor(), worker_.security().auth_failure_delay);
                boost::system::error_code ec;
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            }
            protocol::append_message(out_, 'E', m->body);
            co_await flush();
            advance(Phase::Gone);
            co_return false;
        }
        if (m->type == 'N' || m->type == 'v') continue;  // a notice; NegotiateProtocolVersion (3.0 is spoken)
        if (m->type != 'R') {
            ErrorFields e = ErrorFields::make("FATAL", "08P01", std::string("unexpected message type '") + m->type +
                                                                "' from the upstream during authentication");
            co_return co_await refuse(ConnEvent::PasswordFailed, e, false);
        }
        int32_t request = be32(m->body);
        if (request == kAuthOk) {
            if (!proven && method != auth::Method::Trust) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "the upstream let user \"" + user +
                                                                    "\" in without a password, which the pg_rproxy_auth_rules entry for this connection (" +
                                                                    auth::method_name(method) + ") requires");
                e.add('H', "The upstream trusts the gateway (trust, peer or a client certificate in the conninfo): ask for "
                           "passwords there, or make the rule trust.");
                co_return co_await refuse(ConnEvent::RuleRejected, e, true);
            }
            break;
        }
        if (request == kCleartext && !tls_) {
            ErrorFields e = ErrorFields::make("FATAL", "28000", "the upstream asks for a cleartext password, which pg_rproxy relays only over SSL");
            co_return co_await refuse(ConnEvent::RuleRejected, e, true);
        }
        if (request == kMd5 && renamed) {
            ErrorFields e = ErrorFields::make("FATAL", "28000", "md5 authentication cannot pass through pg_rproxy for user \"" +
                                                                    user + "\": it is logged in upstream as \"" +
                                                                    upstream->role() + "\"");
            e.add('D', "md5 hashes the user name with the password; the upstream would never accept the client's answer.");
            e.add('H', "Use scram-sha-256 for that role upstream, or do not rename the user.");
            co_return co_await refuse(ConnEvent::RuleRejected, e, true);
        }
        bool known = request == kCleartext || request == kMd5 || request == kSasl || request == kSaslContinue ||
                     request == kSaslFinal;
        if (!known || !rule_allows(method, request)) {
            ErrorFields e = ErrorFields::make("FATAL", "28000", known ? std::string("the upstream asks for ") + request_name(request) +
                                                                            " authentication, which the pg_rproxy_auth_rules entry for this connection (" +
                                                                            auth::method_name(method) + ") does not allow"
                                                                      : "the upstream's authentication method (" + std::to_string(request) +
                                                                            ") cannot pass through pg_rproxy");
            co_return co_await refuse(ConnEvent::RuleRejected, e, true);
        }
        if (request == kSasl) {
            // Channel binding binds to the TLS session the client sees, which the proxy ends: the
            // upstream is offered to the client without SCRAM-SHA-256-PLUS.
            std::vector<std::string> mechanisms;
            std::string_view rest = m->body.substr(4);
            while (!rest.empty() && rest[0] != '\0') {
                std::size_t end = rest.find('\0');
                if (end == std::string_view::npos) break;
                std::string_view name = rest.substr(0, end);
                if (name != "SCRAM-SHA-256-PLUS") mechanisms.emplace_back(name);
                rest.remove_prefix(end + 1);
            }
            if (mechanisms.empty()) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "the upstream offers only SASL mechanisms with channel binding, which cannot pass through pg_rproxy");
                co_return co_await refuse(ConnEvent::RuleRejected, e, true);
            }
            protocol::append_auth_sasl(out_, mechanisms);
            shown_method = "scram-sha-256";
        } else {
            protocol::append_message(out_, 'R', m->body);
            if (request == kCleartext || request == kMd5) shown_method = request_name(request);
        }
        if (request == kSaslFinal) {
            proven = true;  // the server checked the client's proof before sending its own
            continue;       // the client checks it and answers nothing
        }
        auto answer = co_await read_password_message();
        if (!answer) co_return false;  // the client left; the connection goes with it
        if (request == kCleartext || request == kMd5) proven = true;  // the server checks it next
        protocol::append_message(conn->output(), 'p', *answer);
        bool sent = co_await conn->send();
        if (!sent) {
            ErrorFields e = ErrorFields::make("FATAL", "08006", "the upstream closed the connection during authentication");
            co_return co_await refuse(ConnEvent::PasswordFailed, e, false);
        }
    }
    // Let in: the server's parameters (noted by the connection), its key, then ReadyForQuery.
    int32_t pid = 0, key = 0;
    for (;;) {
        auto m = co_await conn->next();
        if (!m) {
            ErrorFields e = ErrorFields::make("FATAL", "08006", "the upstream closed the connection during startup");
            co_return co_await refuse(ConnEvent::PasswordFailed, e, false);
        }
        if (m->type == 'Z') break;
        if (m->type == 'K' && m->body.size() >= 8) {
            pid = be32(m->body);
            key = be32(m->body.substr(4));
        } else if (m->type == 'E') {
            protocol::append_message(out_, 'E', m->body);
            note_event(ConnEvent::CannotLogin, "28000");
            co_await flush();
            advance(Phase::Gone);
            co_return false;
        }
    }
    conn->finish_login(pid, key);
    starting_->shown.upstream = upstream->name();
    starting_->shown.server = upstream->servers_text();
    starting_->shown.listen_port = listen_port;
    starting_->shown.role = user;
    starting_->shown.database = database;
    starting_->shown.auth_method = "passthrough " + (shown_method.empty() ? std::string("trust") : shown_method);
    pipeline_.set_upstream(std::move(upstream));
    pipeline_.adopt(std::move(conn));
    advance(Phase::Ready);
    starting_->auth_timer.reset();
    worker_.stats().count_event(ConnEvent::Authenticated);  // audited once the session has its id
    co_return true;
}

}  // namespace rproxy
