// Client authentication against the gateway's roles, by the first matching rule of
// pg_rproxy_auth_rules (or pg_rproxy.auth_method when there are none). Nothing reaches the upstream
// before this succeeds, and no password is ever logged.
#include <ctime>

#include "auth/md5_auth.hpp"
#include "auth/scram.hpp"
#include "protocol/auth_messages.hpp"
#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {

constexpr std::size_t kMaxAuthMessage = 65535;  // PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH

ErrorFields password_failed(const std::string& user) {
    return ErrorFields::make("FATAL", "28P01", "password authentication failed for user \"" + user + "\"");
}

bool expired(const RoleAuthInfo& role) { return role.valid_until && *role.valid_until < std::time(nullptr); }

}  // namespace

void ClientSession::arm_authentication_timeout() {
    auto& timer = starting_->auth_timer;
    timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), worker_.security().authentication_timeout);
    std::weak_ptr<ClientSession> weak = shared_from_this();
    timer->async_wait([weak](boost::system::error_code ec) {
        auto self = weak.lock();
        if (ec || !self || self->authenticated()) return;
        // A slow or silent client gives its slot back: the connection is cut, whatever it waits on.
        self->note_event(ConnEvent::AuthenticationTimeout, "08006");
        self->advance(Phase::Gone);
        boost::system::error_code ignored;
        self->socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        self->socket_.close(ignored);
    });
}

asio::awaitable<bool> ClientSession::admit() {
    const SecurityConfig& sec = worker_.security();
    if (sec.connection_rate > 0 && !worker_.auth_catalog().rate_allow(client_address_, sec.connection_rate, sec.connection_burst)) {
        ErrorFields e = ErrorFields::make("FATAL", "53400", "too many connection attempts from " + client_address_);
        e.add('H', "pg_rproxy.connection_rate limits new connections per client address.");
        co_return co_await refuse(ConnEvent::RateLimited, e, false);
    }
    if (!worker_.auth_catalog().claim_client(sec.max_client_connections)) {
        ErrorFields e = ErrorFields::make("FATAL", "53300", "sorry, too many clients already");
        co_return co_await refuse(ConnEvent::MaxClientConnections, e, false);
    }
    client_claimed_ = true;
    co_return true;
}

asio::awaitable<bool> ClientSession::refuse(ConnEvent event, const ErrorFields& e, bool delay) {
    const std::string* code = e.find('C');
    note_event(event, code ? *code : std::string());
    if (delay && worker_.security().auth_failure_delay.count() > 0) {
        asio::steady_timer pause(socket_.get_executor(), worker_.security().auth_failure_delay);
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_await fatal(e);
    co_return false;
}

asio::awaitable<std::optional<std::string>> ClientSession::read_password_message() {
    bool sent = co_await flush();  // the request this message answers
    if (!sent) co_return std::nullopt;
    for (;;) {
        if (auto msg = protocol::take_message(*input_, kMaxAuthMessage)) {
            if (tap_) tap_input(*msg);  // password messages are logged as "[redacted]", without bytes
            if (msg->type != 'p')
                throw protocol::ProtocolError("08P01", "expected password response, got message type " +
                                                           std::to_string(static_cast<int>(msg->type)));
            co_return std::string(msg->body);
        }
        if (!co_await read_more()) co_return std::nullopt;  // the client left (psql asks for a password so)
    }
}

// 1: authenticated; 0: wrong credentials (the caller answers 28P01); -1: the client left or was
// already answered.
asio::awaitable<int> ClientSession::scram_exchange(const std::optional<std::string>& secret_text, const std::string& user) {
    std::optional<auth::ScramSecret> secret;
    if (secret_text) secret = auth::parse_scram_secret(*secret_text);
    bool can_bind = tls_ && !starting_->tls_end_point.empty();
    auth::ScramExchange exchange(secret, user, can_bind ? starting_->tls_end_point : std::string());
    protocol::append_auth_sasl(out_, auth::scram_mechanisms(can_bind));
    auto first = co_await read_password_message();
    if (!first) co_return -1;
    auto initial = protocol::decode_sasl_initial_response(*first);
    auto step = exchange.client_first(initial.mechanism, initial.data);
    if (step.state == auth::ScramExchange::State::Continue) {
        protocol::append_auth_sasl_continue(out_, step.message);
        auto final_message = co_await read_password_message();
        if (!final_message) co_return -1;
        step = exchange.client_final(*final_message);
    }
    if (step.state == auth::ScramExchange::State::Success) {
        protocol::append_auth_sasl_final(out_, step.message);
        starting_->shown.auth_method = exchange.channel_bound() ? "scram-sha-256-plus" : "scram-sha-256";
        co_return 1;
    }
    if (step.sqlstate == "28P01") co_return 0;
    ErrorFields e = ErrorFields::make("FATAL", step.sqlstate, step.error);
    if (!step.detail.empty()) e.add('D', step.detail);
    co_await refuse(ConnEvent::PasswordFailed, e, true);
    co_return -1;
}

// 1: the credentials are right; 0: wrong (the caller answers 28P01); -1: the client left or was
// already answered.
asio::awaitable<int> ClientSession::check_credentials(auth::Method method, const RoleAuthInfo& role,
                                                      const std::optional<std::string>& secret, const std::string& user,
                                                      const std::string& where) {
    bool ok = false;
    switch (method) {
        case auth::Method::Reject: {
            ErrorFields e = ErrorFields::make("FATAL", "28000", "pg_rproxy_auth_rules rejects connection for " + where);
            co_await refuse(ConnEvent::RuleRejected, e, true);
            co_return -1;
        }
        case auth::Method::Trust:
            ok = role.exists;
            if (!ok) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "role \"" + user + "\" does not exist");
                co_await refuse(ConnEvent::CannotLogin, e, true);
                co_return -1;
            }
            break;
        case auth::Method::Cert: {
            std::string cn = tls_ ? tls_verified_peer_cn(tls_->native_handle()) : std::string();
            if (cn.empty()) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "connection requires a valid client certificate");
                co_await refuse(ConnEvent::CertificateFailed, e, true);
                co_return -1;
            }
            if (cn != user || !role.exists) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "certificate authentication failed for user \"" + user + "\"");
                e.add('D', "The certificate's common name \"" + cn + "\" does not name this role.");
                co_await refuse(ConnEvent::CertificateFailed, e, true);
                co_return -1;
            }
            ok = true;
            break;
        }
        case auth::Method::Password: {
            if (!tls_) {
                ErrorFields e = ErrorFields::make("FATAL", "28000", "cleartext password authentication is only allowed over SSL");
                co_await refuse(ConnEvent::RuleRejected, e, true);
                co_return -1;
            }
            protocol::append_auth_cleartext_request(out_);
            auto message = co_await read_password_message();
            if (!message) co_return -1;
            std::string password(protocol::decode_password_message(*message));
            if (secret) {
                if (auto scram = auth::parse_scram_secret(*secret)) ok = auth::scram_password_matches(*scram, password);
                else if (auth::is_md5_secret(*secret)) ok = auth::md5_secret(password, user) == *secret;
            }
            break;
        }
        case auth::Method::Md5:
            // A role with a SCRAM secret authenticates with SCRAM, as PostgreSQL does for md5 rules.
            if (!secret || !auth::is_md5_secret(*secret)) {
                int r = co_await scram_exchange(secret, user);
                if (r < 0) co_return -1;
                ok = r == 1;
            } else {
                std::string salt = auth::random_bytes(4);
                protocol::append_auth_md5_request(out_, salt);
                auto message = co_await read_password_message();
                if (!message) co_return -1;
                ok = auth::md5_response_matches(*secret, salt, protocol::decode_password_message(*message));
            }
            break;
        case auth::Method::ScramSha256: {
            int r = co_await scram_exchange(secret, user);
            if (r < 0) co_return -1;
            ok = r == 1;
            break;
        }
    }
    co_return ok ? 1 : 0;
}

asio::awaitable<bool> ClientSession::authenticate(const protocol::StartupPacket& packet) {
    const std::string* user_param = packet.param("user");
    if (!user_param || user_param->empty()) {
        ErrorFields e = ErrorFields::make("FATAL", "28000", "no PostgreSQL user name specified in startup packet");
        co_return co_await refuse(ConnEvent::NoMatchingRule, e, false);
    }
    std::string user = *user_param;
    const std::string* db_param = packet.param("database");
    std::string database = db_param && !db_param->empty() ? *db_param : user;
    starting_->shown.role = user;  // for the audit log's connection events
    starting_->shown.database = database;
    AuthCatalog& catalog = worker_.auth_catalog();
    AuthSnapshot snap = catalog.auth_snapshot(user);
    std::string where = "host \"" + client_address_ + "\", user \"" + user + "\", database \"" + database + "\", " +
                        (tls_ ? "SSL encryption" : "no encryption");
    if (!snap.error.empty() || !snap.rule_problems.empty()) {
        std::string why = snap.error;
        for (const auto& p : snap.rule_problems) why += (why.empty() ? "" : "; ") + p;
        worker_.host().log(LogLevel::Warning, "pg_rproxy: authentication rules unusable, refusing every client: " + why);
        ErrorFields e = ErrorFields::make("FATAL", "28000", "pg_rproxy authentication rules are unusable; see the gateway log");
        co_return co_await refuse(ConnEvent::NoMatchingRule, e, true);
    }
    std::optional<auth::AuthRule> rule;
    if (snap.rules.empty()) {
        rule.emplace();
        rule->method = auth::parse_method(worker_.security().auth_method).value_or(auth::Method::ScramSha256);
    } else {
        auth::ConnectionFacts facts{tls_ != nullptr, database, user, client_address_};
        auth::MembershipCheck is_member = [&snap](const std::string& g) { return snap.member_of.count(g) > 0; };
        rule = auth::first_match(snap.rules, facts, is_member);
    }
    if (!rule) {
        ErrorFields e = ErrorFields::make("FATAL", "28000", "no pg_rproxy_auth_rules entry for " + where);
        co_return co_await refuse(ConnEvent::NoMatchingRule, e, true);
    }

    boost::system::error_code ec;
    auto local = socket_.local_endpoint(ec);
    RouteFacts facts{starting_->shown.server_name, database, user, client_address_, ec ? 0 : local.port()};
    if (rule->method != auth::Method::Reject && worker_.routes().passthrough_possible()) {
        // Routed before any password: an upstream with auth 'passthrough' authenticates the client
        // itself (the user name as sent; no gateway role needed). Any other route is decided
        // again after the gateway's authentication, as always.
        RouteDecision early = worker_.routes().resolve(facts, rule->upstream, snap);
        if (early.upstream && early.upstream->passthrough())
            co_return co_await passthrough_login(user, database, rule->method, std::move(early.upstream), facts.listen_port);
    }

    const RoleAuthInfo& role = snap.role;
    // The secret as PostgreSQL would use it: none for an unknown role or an expired password.
    std::optional<std::string> secret;
    if (role.exists && !role.secret.empty() && !expired(role)) secret = role.secret;
    int verdict = co_await check_credentials(rule->method, role, secret, user, where);
    if (verdict < 0) co_return false;
    bool ok = verdict == 1;
    if (!ok) {
        ErrorFields e = password_failed(user);
        co_return co_await refuse(ConnEvent::PasswordFailed, e, true);
    }
    if (!role.can_login) {
        ErrorFields e = ErrorFields::make("FATAL", "28000", "role \"" + user + "\" is not permitted to log in");
        co_return co_await refuse(ConnEvent::CannotLogin, e, true);
    }
    if (!catalog.claim_role(role.oid, role.conn_limit)) {
        ErrorFields e = ErrorFields::make("FATAL", "53300", "too many connections for role \"" + user + "\"");
        co_return co_await refuse(ConnEvent::RoleConnectionLimit, e, false);
    }
    role_claimed_ = role.oid;
    RouteDecision route = worker_.routes().resolve(facts, rule->upstream, snap);
    if (!route.upstream) co_return co_await refuse(ConnEvent::NoRoute, *route.error, true);
    UpstreamPtr upstream = std::move(route.upstream);
    if (upstream->passthrough()) {
        // A passthrough route found only now (the routing tables changed meanwhile): the client
        // authenticated to the gateway, not to the upstream, which would take no connection.
        ErrorFields e = ErrorFields::make("FATAL", "08006", "the routing tables changed during login; connect again");
        co_return co_await refuse(ConnEvent::NoRoute, e, false);
    }
    starting_->shown.upstream = upstream->name();
    starting_->shown.server = upstream->servers_text();
    starting_->shown.listen_port = facts.listen_port;
    pipeline_.set_upstream(std::move(upstream));
    tap_routed(pipeline_.upstream().name());
    starting_->shown.role = user;
    starting_->shown.database = database;
    if (starting_->shown.auth_method.empty()) starting_->shown.auth_method = auth::method_name(rule->method);  // SCRAM set its own
    advance(Phase::Ready);
    starting_->auth_timer.reset();  // destroying it cancels the wait; a logged-in client holds no timer
    worker_.stats().count_event(ConnEvent::Authenticated);  // audited once the session has its id
    co_return true;
}

}  // namespace rproxy
