// The extended query protocol on top of libpq. A client's statements are judged by the firewall
// at Parse and prepared upstream under names of the proxy's own, on whichever pooled connection
// runs them; portals live in the proxy. Errors skip every message up to Sync, as the server does.
#include <charconv>

#include "proxy/client_session.hpp"

#include "core/format_codes.hpp"

#include "protocol/backend_messages.hpp"
#include "protocol/binary_from_text.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/result_relay.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

namespace {
constexpr std::size_t kExtendedFlush = 64 * 1024;  // answers buffered until Sync are written past this
}

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {

std::string statement_key(const std::vector<uint32_t>& types, const std::string& sql) {
    std::string key;
    for (uint32_t t : types) key += std::to_string(t) + ",";
    return key + '\0' + sql;
}

ErrorFields error(const char* sqlstate, std::string message) {
    return ErrorFields::make("ERROR", sqlstate, std::move(message));
}

}  // namespace

asio::awaitable<void> ClientSession::handle_extended(const protocol::FrontendMessage& msg) {
    if (discard_until_sync_) co_return;  // skipped until Sync, like the server
    std::optional<ErrorFields> failure;
    if (msg.type == 'P') failure = co_await on_parse(msg.body);
    else failure = co_await on_execute(msg.body);
    extended_failed(failure);
    if (out_.size() >= kExtendedFlush) co_await flush();
}

void ClientSession::handle_extended_now(const protocol::FrontendMessage& msg) {
    if (discard_until_sync_) return;
    if (msg.type == 'B') extended_failed(on_bind(msg.body));
    else if (msg.type == 'D') extended_failed(on_describe(msg.body));
    else extended_failed(on_close(msg.body));
}

// An error skips every extended-protocol message up to Sync, as the server does.
void ClientSession::extended_failed(const std::optional<ErrorFields>& failure) {
    if (!failure) return;
    protocol::append_error(out_, *failure);
    discard_until_sync_ = true;
}

bool ClientSession::parse_again_now(std::string_view body) {
    if (discard_until_sync_ || pinned_) return false;
    auto it = statements_.find(std::string());
    if (it == statements_.end()) return false;
    ClientStatement& st = *it->second;
    if (!st.description || st.reloads != worker_.reloads() || st.settings_version != settings_.version()) return false;
    if (!protocol::parse_repeats(body, std::string(), st.sql, st.types)) return false;
    std::optional<ErrorFields> failure;
    check_judgement(st.verdict, *st.parsed, failure);  // rejections are counted each time, as before
    if (failure) extended_failed(failure);
    else protocol::append_parse_complete(out_);
    return true;
}

asio::awaitable<std::optional<ErrorFields>> ClientSession::on_parse(std::string_view body) {
    protocol::ParseMessage m = protocol::decode_parse(body);
    if (!m.name.empty() && statements_.count(m.name))
        co_return error("42P05", "prepared statement \"" + m.name + "\" already exists");
    auto st = std::make_shared<ClientStatement>();
    st->reloads = worker_.reloads();
    st->settings_version = settings_.version();
    st->sql = m.query;
    st->types = m.param_types;
    st->parsed = parse(m.query);
    if (st->parsed->statements.size() > 1)
        co_return error("42601", "cannot insert multiple commands into a prepared statement");
    ConnectionPtr conn = pinned_;
    std::optional<ErrorFields> failure;
    st->verdict = judge_known(*st->parsed);
    if (st->verdict.pending_functions.empty()) st->verdict = finish_judgement(std::move(st->verdict), *st->parsed, failure);
    else st->verdict = co_await judge(*st->parsed, conn, failure);
    // The same statement described before for the same upstream and settings: no round trip.
    std::string described_key = make_cache_key(key_prefix(), statement_key(st->types, st->sql)).full;
    if (!failure && !pinned_) st->description = worker_.description(described_key);
    if (!failure && !st->parsed->statements.empty() && !st->description) {
        // Prepared upstream now, so that errors (an unknown table...) come at Parse as from the
        // server, and Describe needs no round trip later.
        conn = co_await ensure_connection(conn, failure);
        std::string name;
        if (!failure) failure = co_await sync_settings(conn);  // search_path decides what names mean
        if (!failure) failure = co_await ensure_prepared(conn, *st, &name);
        if (!failure) {
            auto described = co_await conn->describe_prepared(name);
            if (described.error) failure = described.error;
            else {
                st->description = std::shared_ptr<PGresult>(described.rows.release(), PQclear);
                worker_.remember_description(described_key, st->description);
            }
        }
    }
    if (conn && conn != pinned_) keep_or_release(conn, false);
    if (failure) co_return failure;
    statements_[m.name] = st;
    protocol::append_parse_complete(out_);
    co_return std::nullopt;
}

std::optional<ErrorFields> ClientSession::on_bind(std::string_view body) {
    protocol::BindMessage m = protocol::decode_bind(body);
    auto it = statements_.find(m.statement);
    if (it == statements_.end()) return error("26000", "prepared statement \"" + m.statement + "\" does not exist");
    const ClientStatement& st = *it->second;
    std::size_t nparams = st.description ? std::size_t(PQnparams(st.description.get())) : st.types.size();
    if (m.param_formats.size() > 1 && m.param_formats.size() != m.params.size())
        return error("08P01", "bind message has " + std::to_string(m.param_formats.size()) + " parameter formats but " +
                                  std::to_string(m.params.size()) + " parameters");
    if (m.params.size() != nparams)
        return error("08P01", "bind message supplies " + std::to_string(m.params.size()) + " parameters, but prepared statement \"" +
                                  m.statement + "\" requires " + std::to_string(nparams));
    for (int16_t f : m.param_formats)
        if (f != 0 && f != 1) return error("22023", "unsupported format code: " + std::to_string(f));
    for (int16_t f : m.result_formats)
        if (f != 0 && f != 1) return error("22023", "unsupported format code: " + std::to_string(f));
    if (!m.portal.empty() && portals_.count(m.portal))
        return error("42P03", "portal \"" + m.portal + "\" already exists");
    ClientPortal portal;
    portal.statement = it->second;
    portal.bind = std::move(m);
    std::string name = portal.bind.portal;
    portals_[name] = std::move(portal);
    protocol::append_bind_complete(out_);
    return std::nullopt;
}

std::optional<ErrorFields> ClientSession::on_describe(std::string_view body) {
    protocol::TargetMessage m = protocol::decode_target(body, "DESCRIBE");
    const ClientStatement* st = nullptr;
    const std::vector<int16_t>* formats = nullptr;
    static const std::vector<int16_t> kText;
    if (m.kind == 'S') {
        auto it = statements_.find(m.name);
        if (it == statements_.end()) return error("26000", "prepared statement \"" + m.name + "\" does not exist");
        st = it->second.get();
        formats = &kText;  // a statement's columns are described in text format
        std::vector<uint32_t> types;
        for (int i = 0; st->description && i < PQnparams(st->description.get()); ++i)
            types.push_back(PQparamtype(st->description.get(), i));
        protocol::append_parameter_description(out_, types);
    } else {
        auto it = portals_.find(m.name);
        if (it == portals_.end()) return error("34000", "portal \"" + m.name + "\" does not exist");
        st = it->second.statement.get();
        formats = &it->second.bind.result_formats;
    }
    if (st->description && PQnfields(st->description.get()) > 0) append_row_description(out_, st->description.get(), *formats);
    else protocol::append_no_data(out_);
    return std::nullopt;
}

std::optional<ErrorFields> ClientSession::on_close(std::string_view body) {
    protocol::TargetMessage m = protocol::decode_target(body, "CLOSE");
    // Closing what does not exist is not an error. The upstream statement stays prepared on its
    // connections for the next client with the same text.
    if (m.kind == 'S') statements_.erase(m.name);
    else portals_.erase(m.name);
    protocol::append_close_complete(out_);
    return std::nullopt;
}

asio::awaitable<std::optional<ErrorFields>> ClientSession::ensure_prepared(const ConnectionPtr& conn,
                                                                           const ClientStatement& st, std::string* name) {
    std::string key = statement_key(st.types, st.sql);
    if (const std::string* known = conn->prepared_name(key)) {
        *name = *known;
        co_return std::nullopt;
    }
    std::vector<std::string> evicted;
    *name = conn->add_prepared(key, &evicted);
    for (const auto& old : evicted) co_await conn->run_internal("DEALLOCATE " + quote_identifier(old));
    auto result = co_await conn->prepare(*name, st.sql, st.types);
    if (result.error) {
        conn->forget_prepared(key);
        co_return result.error;
    }
    co_return std::nullopt;
}

// Sends up to max_rows (0 = all) of a portal's fetched messages. Reaching the limit suspends the
// portal; the rows left wait for the next Execute.
void ClientSession::send_portal_rows(ClientPortal& portal, int32_t max_rows) {
    std::string& p = portal.pending;
    int32_t sent = 0;
    while (portal.pending_pos + 5 <= p.size()) {
        char type = p[portal.pending_pos];
        uint32_t len = 0;
        for (int i = 1; i <= 4; ++i) len = (len << 8) | static_cast<uint8_t>(p[portal.pending_pos + i]);
        if (type == 'D' && max_rows > 0 && sent == max_rows) {
            protocol::append_portal_suspended(out_);
            return;
        }
        if (type == 'C' && portal.started) {
            // The tag counts the rows of this Execute, as the server's does for a resumed portal.
            std::string tag = p.substr(portal.pending_pos + 5, len - 5);
            if (tag.rfind("SELECT ", 0) == 0) {
                protocol::append_command_complete(out_, "SELECT " + std::to_string(sent));
                portal.pending_pos += 1 + len;
                continue;
            }
        }
        out_.append(p, portal.pending_pos, 1 + len);
        portal.pending_pos += 1 + len;
        if (type == 'D') ++sent;
    }
    if (max_rows > 0 && sent == max_rows) {
        protocol::append_portal_suspended(out_);  // the server cannot tell either that nothing is left
        return;
    }
    p.clear();
    portal.pending_pos = 0;
}

asio::awaitable<std::optional<ErrorFields>> ClientSession::on_execute(std::string_view body) {
    protocol::ExecuteMessage m = protocol::decode_execute(body);
    auto it = portals_.find(m.portal);
    if (it == portals_.end()) co_return error("34000", "portal \"" + m.portal + "\" does not exist");
    ClientPortal& portal = it->second;
    if (portal.started) {
        if (portal.pending.empty()) protocol::append_command_complete(out_, "SELECT 0");  // ran to its end
        else send_portal_rows(portal, m.max_rows);
        co_return std::nullopt;
    }
    const ClientStatement& st = *portal.statement;
    if (st.parsed->statements.empty()) {
        protocol::append_empty_query_response(out_);
        co_return std::nullopt;
    }
    // libpq asks the server for one format per query. A mix is fetched as text and the binary
    // columns are encoded here (built-in types; anything else is refused before it runs).
    const std::vector<int16_t>& rf = portal.bind.result_formats;
    int ncols = st.description ? PQnfields(st.description.get()) : 0;
    if (rf.size() > 1 && int(rf.size()) != ncols)
        co_return error("08P01", "bind message has " + std::to_string(rf.size()) + " result formats but query has " +
                                     std::to_string(ncols) + " columns");
    bool any_binary = false, any_text = false;
    for (int i = 0; i < ncols; ++i) (format_for(rf, std::size_t(i)) ? any_binary : any_text) = true;
    int rformat = any_binary && !any_text ? 1 : 0;
    std::vector<uint32_t> binary_types;
    if (any_binary && any_text) {
        for (int i = 0; i < ncols; ++i) {
            uint32_t type = format_for(rf, std::size_t(i)) ? PQftype(st.description.get(), i) : 0;
            if (type && !protocol::binary_encodable(type))
                co_return error("0A000", "pg_rproxy cannot return column \"" + std::string(PQfname(st.description.get(), i)) +
                                             "\" (type " + std::to_string(type) +
                                             ") in binary format next to text columns; ask for one format for all columns");
            binary_types.push_back(type);
        }
    }
    std::string rf_key;
    for (int i = 0; i < ncols; ++i) rf_key += format_for(rf, std::size_t(i)) ? '1' : '0';
    if (deallocate_locally(*st.parsed)) co_return std::nullopt;
    for (const auto& f : st.parsed->statements)
        if (!f.execute_name.empty() || !f.prepare_name.empty() || !f.deallocate_name.empty())
            co_return error("0A000", "PREPARE, EXECUTE and DEALLOCATE are supported in simple queries only");
    worker_.count_statement();

    const protocol::BindMessage& b = portal.bind;
    // The result cache, keyed also by what Bind supplied. Row-limited fetches are not cached.
    int ttl = 0;
    std::optional<CacheKey> key;
    std::optional<uint64_t> fill;
    if (m.max_rows == 0) {
        // Length-prefixed, so no parameter value can imitate another split of the bytes.
        std::string extra(1, '\0');
        std::size_t values = 0;
        for (const auto& p : b.params) values += p ? p->size() + 16 : 8;
        extra.reserve(64 + st.types.size() * 11 + rf_key.size() + values);
        extra += "bind types=";
        extra += statement_key(st.types, "");
        extra += " rf=";
        extra += rf_key;
        char digits[24];
        for (std::size_t i = 0; i < b.params.size(); ++i) {
            int f = format_for(b.param_formats, i);
            extra += " p";
            extra += f ? '1' : '0';  // on_bind accepts formats 0 and 1 only
            if (!b.params[i]) {
                extra += ":null";
                continue;
            }
            extra += ':';
            auto [end, ec] = std::to_chars(digits, digits + sizeof digits, b.params[i]->size());
            extra.append(digits, static_cast<std::size_t>(end - digits));
            extra += ':';
            extra += *b.params[i];
        }
        key = cache_key_for(st.sql, *st.parsed, st.verdict, &ttl, extra);
        ProbeResult probe = key ? probe_cache_now(*key, &fill) : ProbeResult::Bypass;
        if (probe == ProbeResult::Wait) probe = co_await wait_for_fill(*key, &fill);
        if (probe == ProbeResult::Hit) {
            portal.started = true;
            co_return std::nullopt;
        }
    }

    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await ensure_connection(pinned_, failure);
    if (failure) co_return failure;
    std::string name;
    failure = co_await sync_settings(conn);
    if (!failure) failure = co_await ensure_prepared(conn, st, &name);
    if (failure) {
        keep_or_release(conn, false);
        if (fill) worker_.cache().cache_abandon(*key, *fill, 1);
        co_return failure;
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (std::size_t i = 0; i < b.params.size(); ++i) {
        values.push_back(b.params[i] ? b.params[i]->data() : nullptr);
        lengths.push_back(b.params[i] ? static_cast<int>(b.params[i]->size()) : 0);
        formats.push_back(format_for(b.param_formats, i));
    }
    Request request;
    request.describe_rows = false;
    request.send = [&](PGconn* pg) {
        return PQsendQueryPrepared(pg, name.c_str(), static_cast<int>(values.size()), values.data(), lengths.data(),
                                   formats.data(), rformat);
    };
    portal.started = true;
    if (m.max_rows > 0) request.buffer = &portal.pending;
    bool upstream_error = false;
    request.saw_error = &upstream_error;
    uint32_t conversion_failed = 0;
    if (!binary_types.empty()) {
        request.binary_types = &binary_types;
        request.conversion_failed = &conversion_failed;
    }
    current_conn_ = conn;
    char status_before = tx_status_;
    Capture capture;
    capture.limit = capture_limit(key);
    Outcome outcome = co_await run_on(conn, request, fill ? &capture : nullptr);
    current_conn_.reset();
    after_deallocate_all(*st.parsed, conn);
    after_listen(*st.parsed, conn);
    tx_status_ = PQstatus(conn->pg()) == CONNECTION_OK ? transaction_status_byte(conn->pg()) : 'I';
    if (conversion_failed) capture.error = true;
    if (fill) finish_fill(*key, *fill, outcome == Outcome::Done, capture, ttl, st.sql, *st.parsed);
    if (outcome != Outcome::Done) {
        if (outcome == Outcome::ClientGone) cancel_upstream(conn);
        conn->mark_broken();
        keep_or_release(conn, false);
        if (outcome == Outcome::ClientGone) co_return std::nullopt;
        co_return error("08006", "upstream connection lost");
    }
    bool pins = track_settings(*st.parsed, conn, !upstream_error, status_before);
    keep_or_release(conn, st.verdict.session_state || pins);
    if (m.max_rows > 0) {
        portal.started = false;  // first batch: the tag of a complete fetch is the server's own
        send_portal_rows(portal, m.max_rows);
        portal.started = true;
    }
    if (conversion_failed) {
        co_return error("0A000", "pg_rproxy could not encode a value of type " + std::to_string(conversion_failed) +
                                     " in binary format (dates and times need DateStyle ISO)");
    }
    // The error itself was relayed with the rows; what follows up to Sync is skipped.
    if (upstream_error) discard_until_sync_ = true;
    co_return std::nullopt;
}

}  // namespace rproxy
