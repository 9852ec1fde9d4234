// The extended query protocol through the statement pipeline. The client's messages are forwarded
// as it sent them, up to Sync or Flush, on one connection per batch: statement names map to the
// connection's own (each text prepared once per connection, whoever asks), portal names pass as
// they are. The server's answers come back byte for byte: errors arrive where the server raises
// them, portals really suspend, one Sync is one implicit transaction, any type comes in any format.
//
// The one exception is a Bind the cache may answer: it is held back until its Execute, which a
// hit answers with the proxy's own BindComplete, RowDescription and the stored rows.
#include <charconv>

#include "core/format_codes.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {

constexpr std::size_t kClientFlush = 64 * 1024;    // answers buffered until Sync are written past this
constexpr std::size_t kUpstreamBatch = 64 * 1024;  // a longer pipeline is sent and drained as it grows
constexpr std::size_t kRetryLog = 1024 * 1024;      // a batch larger than this is not run again

std::string statement_key(const std::vector<uint32_t>& types, const std::string& sql) {
    std::string key;
    for (uint32_t t : types) key += std::to_string(t) + ",";
    return key + '\0' + sql;
}

ErrorFields error(const char* sqlstate, std::string message) {
    return ErrorFields::make("ERROR", sqlstate, std::move(message));
}

Expected expect(Expected::Kind kind, bool swallow = false) {
    Expected e;
    e.kind = kind;
    e.swallow = swallow;
    return e;
}

// What besides the statement makes a Bind's result differ: parameters, their formats, the result
// formats. Length-prefixed, so no parameter value can imitate another split of the bytes.
std::string bind_cache_extra(const std::vector<uint32_t>& types, const protocol::BindMessage& b) {
    std::string extra(1, '\0');
    std::size_t values = 0;
    for (const auto& p : b.params) values += p ? p->size() + 16 : 8;
    extra.reserve(64 + types.size() * 11 + b.result_formats.size() * 2 + values);
    extra += "bind types=";
    extra += statement_key(types, "");
    extra += " rf=";
    for (int16_t f : b.result_formats) extra += f ? '1' : '0';
    char digits[24];
    for (std::size_t i = 0; i < b.params.size(); ++i) {
        extra += " p";
        extra += format_for(b.param_formats, i) ? '1' : '0';
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
    return extra;
}

}  // namespace

const StatementDescription* StatementPipeline::description_of(const ClientStatement& st) {
    if (st.description) return st.description.get();
    if (st.describing && st.describing->complete()) return st.describing.get();
    return nullptr;
}

bool StatementPipeline::output_due() {
    if (out_.size() < kClientFlush) return false;
    flushed_since_start_ = true;  // part of the batch's answer reached the client: it cannot run again
    return true;
}

void StatementPipeline::append_held_bind_answer(std::string& out, const ClientPortal& portal) {
    protocol::append_bind_complete(out);
    if (!portal.describe) return;
    const StatementDescription* d = description_of(*portal.statement);
    if (d && d->rows[0] == 'T')
        protocol::append_row_description_for(out, std::string_view(d->rows).substr(5), portal.bind.result_formats);
    else protocol::append_no_data(out);
}

// The messages of a batch the proxy answers itself, handled without a coroutine: the repeated
// unnamed Parse of a statement already judged and described, a Bind held for the cache, a
// Describe answered from the description, and Sync when nothing went upstream. Anything else
// (and every error) takes handle_extended().
bool StatementPipeline::extended_now(const protocol::FrontendMessage& msg) {
    if (ext().batch_conn_ || ext().batch_lost_ || !expected_.empty()) return false;
    if (msg.type == 'S') {
        if (ext().held_portal_) return false;
        discard_until_sync_ = false;
        forget_batch_log();
        if (tx_status_ == 'I') ext().portals_.clear();
        protocol::append_ready_for_query(out_, tx_status_);
        return true;
    }
    if (discard_until_sync_) {
        log_for_retry(msg);
        return true;
    }
    switch (msg.type) {
        case 'P': {
            if (ext().held_portal_) return false;
            auto again = ext().statements_.find(std::string());
            if (again == ext().statements_.end()) return false;
            ClientStatement& st = *again->second;
            if (st.reloads != worker_.reloads() || st.settings_version != settings_.version() || !description_of(st) ||
                st.intercepted || worker_.host().intercepting() ||
                !protocol::parse_repeats(msg.body, std::string(), st.sql, st.types))
                return false;
            log_for_retry(msg);
            std::optional<ErrorFields> failure;
            check_judgement(st.verdict, *st.parsed, failure);  // rejections are counted each time
            if (failure) {
                observe_refusal(st.sql, st.parsed, st.verdict, *failure, StatementProtocol::Extended, st.sent());
                extended_failed(failure);
            } else {
                protocol::append_parse_complete(out_);
            }
            return true;
        }
        case 'B': {
            if (ext().held_portal_) return false;
            protocol::BindMessage m = protocol::decode_bind(msg.body);
            auto it = ext().statements_.find(m.statement);
            if (it == ext().statements_.end() || (!m.portal.empty() && ext().portals_.count(m.portal))) return false;
            const ClientStatement& st = *it->second;
            const auto& facts = st.parsed->statements;
            bool may_hit = worker_.cache_config().enabled && facts.size() == 1 && facts[0].kind == "SELECT" &&
                           st.verdict.cacheable && !pinned_ && !session_dirty_ && !ext().batch_unsafe_ && tx_status_ == 'I' &&
                           description_of(st) != nullptr;
            if (!may_hit) return false;
            log_for_retry(msg);
            ClientPortal portal;
            portal.statement = it->second;
            portal.state = ClientPortal::State::Held;
            portal.bind_body.assign(msg.body);
            portal.bind = std::move(m);
            ext().held_portal_ = portal.bind.portal;
            ext().portals_[portal.bind.portal] = std::move(portal);
            return true;
        }
        case 'E': {
            // The Execute of a held portal whose answer the cache has. A miss that claims the
            // entry leaves the claim on the portal for on_execute(), which forwards it.
            if (!ext().held_portal_) return false;
            protocol::ExecuteMessage m = protocol::decode_execute(msg.body);
            if (m.portal != *ext().held_portal_ || m.max_rows != 0) return false;
            auto it = ext().portals_.find(m.portal);
            if (it == ext().portals_.end() || it->second.state != ClientPortal::State::Held) return false;
            ClientPortal& portal = it->second;
            const ClientStatement& st = *portal.statement;
            int ttl = 0;
            std::optional<CacheKey> key =
                cache_key_for(st.sql, *st.parsed, st.verdict, &ttl, bind_cache_extra(st.types, portal.bind),
                              parameter_hook(portal.bind));
            if (!key) {
                portal.no_key = true;
                return false;
            }
            std::string answer;
            append_held_bind_answer(answer, portal);
            std::optional<uint64_t> id;
            ProbeResult result = probe_cache_now(*key, answer, &id);
            if (result == ProbeResult::Claimed && id) portal.claimed = make_fill(*key, *id, ttl, st.sql, st.parsed);
            if (result != ProbeResult::Hit) return false;
            log_for_retry(msg);
            count_statement();
            observe_execute(portal.statement, st.sql, st.sent(), st.parsed, true, ProbeResult::Hit);
            ext().held_portal_.reset();
            portal.state = ClientPortal::State::Answered;
            portal.describe = false;
            queue_local(std::move(answer));
            return true;
        }
        case 'D': {
            if (msg.body.empty()) return false;
            std::string_view name = msg.body.substr(1);
            name = name.substr(0, name.find('\0'));
            if (msg.body[0] == 'P') {
                if (!ext().held_portal_ || *ext().held_portal_ != name) return false;
                log_for_retry(msg);
                ext().portals_[*ext().held_portal_].describe = true;
                return true;
            }
            if (ext().held_portal_) return false;
            auto it = ext().statements_.find(std::string(name));
            if (it == ext().statements_.end() || !description_of(*it->second)) return false;
            log_for_retry(msg);
            const StatementDescription* d = description_of(*it->second);
            out_ += d->parameters;
            out_ += d->rows;
            return true;
        }
        default:
            return false;
    }
}

asio::awaitable<void> StatementPipeline::handle_extended(const protocol::FrontendMessage& msg) {
    if (msg.type == 'S') {
        co_await on_sync();
        co_return;
    }
    log_for_retry(msg);  // skipped ones too: the batch may run again after a lost connection
    if (discard_until_sync_) co_return;  // skipped until Sync, like the server
    if (msg.type == 'H') {
        co_await on_flush();
        co_return;
    }
    std::optional<ErrorFields> failure;
    // A held Bind waits only for its own Describe and Execute: anything else sends it first, so
    // that every answer keeps its place.
    if (ext().held_portal_) {
        bool same = false;
        if (msg.type == 'D' || msg.type == 'E') {
            std::size_t at = msg.type == 'D' ? 1 : 0;
            if (msg.body.size() > at && (msg.type != 'D' || msg.body[0] == 'P')) {
                std::string_view name = msg.body.substr(at);
                name = name.substr(0, name.find('\0'));
                same = name == *ext().held_portal_;
            }
        }
        if (!same) {
            std::string name = *ext().held_portal_;
            failure = co_await forward_portal(name, ext().portals_[name]);
        }
    }
    if (!failure) {
        switch (msg.type) {
            case 'P': failure = co_await on_parse(msg.body); break;
            case 'B': failure = co_await on_bind(msg.body); break;
            case 'D': failure = co_await on_describe(msg.body); break;
            case 'E': failure = co_await on_execute(msg.body); break;
            case 'C': failure = co_await on_close(msg.body); break;
            default: break;
        }
    }
    extended_failed(failure);
    if (ext().batch_conn_ && ext().batch_conn_->output().size() >= kUpstreamBatch) co_await drain_batch();
    if (output_due()) co_await io_.flush();
}

// The batch is over: what was kept to run it again goes.
void StatementPipeline::forget_batch_log() {
    emit_lost_observed();
    batch_emitted_ = 0;
    skip_emits_ = 0;
    // A small log keeps its buffer for the next batch (parking frees it); a large one goes.
    if (ext().batch_log_.capacity() > 4096) std::string().swap(ext().batch_log_);
    else ext().batch_log_.clear();
    ext().batch_log_full_ = false;
    ext().batch_statements_.clear();
    ext().batch_replaced_.clear();
}

// The batch's messages are kept (up to kRetryLog bytes) while nothing of its answer reached the
// client: if its connection is lost, the batch runs again on another one, as a simple query does.
void StatementPipeline::log_for_retry(const protocol::FrontendMessage& msg) {
    if (ext().batch_log_.empty() && !ext().batch_log_full_) {
        ext().batch_out_start_ = out_.size();
        flushed_since_start_ = false;
    }
    if (ext().batch_log_full_) return;
    if (ext().batch_log_.size() + msg.body.size() + 5 > kRetryLog) {
        ext().batch_log_full_ = true;
        std::string().swap(ext().batch_log_);
        return;
    }
    protocol::append_message(ext().batch_log_, msg.type, msg.body);
}

// An error skips every extended-protocol message up to Sync, as the server does.
void StatementPipeline::extended_failed(const std::optional<ErrorFields>& failure) {
    if (!failure) return;
    std::string bytes;
    protocol::append_error(bytes, *failure);
    queue_local(std::move(bytes));
    discard_until_sync_ = true;
}

asio::awaitable<ConnectionPtr> StatementPipeline::batch_connection(std::optional<ErrorFields>& failure) {
    if (ext().batch_conn_) co_return ext().batch_conn_;
    ConnectionPtr held;
    ConnectionPtr conn = acquire_now(held);
    if (!conn) conn = co_await acquire(held, failure);
    if (!conn) co_return nullptr;
    ext().batch_conn_ = conn;
    ext().batch_status_before_ = tx_status_;
    batch_failed_ = false;
    begin_write_exchange(false);
    current_conn_ = conn;
    co_return conn;
}

asio::awaitable<bool> StatementPipeline::drain_batch() {
    if (!ext().batch_conn_ || expected_.empty()) co_return true;
    ConnectionPtr conn = ext().batch_conn_;
    protocol::append_flush(conn->output());
    Outcome outcome = Outcome::Lost;
    if (co_await conn->send()) outcome = co_await relay_all(conn, false, true);
    if (outcome == Outcome::Drained) co_return true;
    bool retryable = conn != pinned_ && ext().batch_status_before_ == 'I' && !ext().batch_log_full_ && !ext().batch_writes_;
    finish_batch(false);
    if (outcome == Outcome::Lost) {
        // Reported (or the batch run again) at Sync; the messages up to it are skipped.
        ext().batch_lost_ = true;
        ext().lost_retryable_ = retryable;
        discard_until_sync_ = true;
    }
    co_return false;
}

void StatementPipeline::prepare_on(const ConnectionPtr& conn, const std::shared_ptr<ClientStatement>& st, bool visible,
                               const std::string& client_name, std::string* upstream_name) {
    std::string& out = conn->output();
    std::string key = statement_key(st->types, st->sql);
    std::string name;
    if (const std::string* known = conn->prepared_name(key)) {
        name = *known;
        if (visible) {
            std::string done;
            protocol::append_parse_complete(done);
            queue_local(std::move(done));
        }
    } else {
        std::vector<std::string> evicted;
        name = conn->add_prepared(key, &evicted);
        for (const auto& old : evicted) {
            protocol::append_close(out, 'S', old);
            expected_.push_back(expect(Expected::Kind::Close, true));
        }
        protocol::append_parse(out, name, st->sql, st->types);
        Expected e = expect(Expected::Kind::Parse, !visible);
        e.prepared_key = key;
        if (visible) {
            e.client_statement = client_name;
            e.statement_id = st.get();
        }
        expected_.push_back(std::move(e));
    }
    if (!description_of(*st) && !st->describing) {
        // Learnt once, so that a Describe or a cache hit later needs no round trip.
        st->describing = std::make_shared<StatementDescription>();
        protocol::append_describe(out, 'S', name);
        Expected e = expect(Expected::Kind::Describe, true);
        e.describe_into = st->describing;
        if (!pinned_ && !ext().batch_unsafe_) e.remember_as = st->described_key;
        expected_.push_back(std::move(e));
    }
    if (upstream_name) *upstream_name = std::move(name);
}

ErrorFields StatementPipeline::refused(const ClientStatement& st, ErrorFields e) {
    Verdict v;
    v.allowed = false;
    v.reason = RejectReason::StatementKind;
    observe_refusal(st.sql, st.parsed, v, e, StatementProtocol::Extended, st.sent());
    return e;
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::on_parse(std::string_view body) {
    // The unnamed statement parsed again with the same text and types (what most drivers send
    // before every execution): the statement already judged and described is used again.
    auto again = ext().statements_.find(std::string());
    if (again != ext().statements_.end()) {
        ClientStatement& st = *again->second;
        // (Not when rules or a hook may change it: the text received is not the one judged, and
        // the hook is asked about every Parse.)
        if (st.reloads == worker_.reloads() && st.settings_version == settings_.version() && !st.intercepted &&
            !worker_.host().intercepting() && protocol::parse_repeats(body, std::string(), st.sql, st.types)) {
            std::optional<ErrorFields> failure;
            check_judgement(st.verdict, *st.parsed, failure);  // rejections are counted each time
            if (failure) {
                observe_refusal(st.sql, st.parsed, st.verdict, *failure, StatementProtocol::Extended, st.sent());
                co_return failure;
            }
            if (ext().batch_conn_ || !description_of(st)) {
                ConnectionPtr conn = co_await batch_connection(failure);
                if (!conn) {
                    if (failure) observe_unreached(again->second, st.sql, st.sent(), st.parsed, *failure);
                    co_return failure;
                }
                prepare_on(conn, again->second, true, std::string(), nullptr);
            } else {
                std::string done;
                protocol::append_parse_complete(done);
                queue_local(std::move(done));
            }
            co_return std::nullopt;
        }
    }
    protocol::ParseMessage m = protocol::decode_parse(body);
    if (!m.name.empty() && ext().statements_.count(m.name))
        co_return error("42P05", "prepared statement \"" + m.name + "\" already exists");
    auto st = std::make_shared<ClientStatement>();
    st->reloads = worker_.reloads();
    st->settings_version = settings_.version();
    st->sql = std::move(m.query);
    if (worker_.host().intercepting()) {
        st->intercepted = true;
        if (std::optional<ErrorFields> refused = intercept(st->sql, "extended", st->sent_sql)) co_return refused;
    }
    st->types = m.param_types;
    st->parsed = parse(st->sql);
    if (st->parsed->statements.size() > 1)
        co_return refused(*st, error("42601", "cannot insert multiple commands into a prepared statement"));
    // Refused before judging: judging records the names a client PREPAREs, and these never run.
    for (const auto& f : st->parsed->statements)
        if (!f.prepare_name.empty() || !f.execute_name.empty())
            co_return refused(*st, error("0A000", "PREPARE, EXECUTE and DEALLOCATE are supported in simple queries only"));
    std::optional<ErrorFields> failure;
    st->verdict = judge_known(*st->parsed);
    bool batch_under_way = ext().batch_conn_ || !expected_.empty();
    if (st->verdict.pending_functions.empty()) {
        st->verdict = finish_judgement(std::move(st->verdict), *st->parsed, failure);
    } else if (batch_under_way && upstream().access() == Access::ReadWrite) {
        // Asking the upstream now would end the batch's implicit transaction (the lookup's own
        // Sync) and commit what the batch did so far. On a read-write upstream every function
        // passes anyway: one not known yet counts as volatile (never cached, may write anything).
        UpstreamFunctions& functions = upstream().functions();
        UpstreamVolatility worst = [&functions](const FunctionRef& f) {
            std::optional<Volatility> v = functions.lookup(f);
            return v ? v : std::optional<Volatility>(Volatility::Volatile);
        };
        st->verdict = finish_judgement(evaluate(*st->parsed, worker_.firewall(), worst, Access::ReadWrite), *st->parsed, failure);
    } else {
        // The upstream's pg_proc is asked on the batch's connection: what was sent so far first.
        if (!co_await drain_batch() || discard_until_sync_) co_return std::nullopt;
        ConnectionPtr conn = co_await batch_connection(failure);
        if (!conn) {
            // Not judged: audited as a judgement that failed, like one whose lookup failed below.
            if (failure)
                observe_refusal(st->sql, st->parsed, st->verdict, *failure, StatementProtocol::Extended, st->sent());
            co_return failure;
        }
        st->verdict = co_await judge(*st->parsed, conn, failure);
    }
    if (failure) {
        observe_refusal(st->sql, st->parsed, st->verdict, *failure, StatementProtocol::Extended, st->sent());
        co_return failure;
    }
    st->described_key = make_cache_key(key_prefix(), statement_key(st->types, st->sql)).full;
    // The same statement described before for the same upstream and settings: no round trip.
    if (!pinned_ && !ext().batch_unsafe_) st->description = worker_.description(st->described_key);
    // (Looked up again: the waits above may have dropped a statement of that name.)
    auto replaced = ext().statements_.find(m.name);
    if (replaced != ext().statements_.end()) ext().batch_replaced_.emplace_back(m.name, std::move(replaced->second));
    ext().statements_[m.name] = st;
    ext().batch_statements_.push_back(m.name);
    if (ext().batch_conn_ || !st->description) {
        // Prepared upstream now, so that errors (an unknown table...) come at Parse as from the server.
        ConnectionPtr conn = co_await batch_connection(failure);
        if (!conn) {
            ext().statements_.erase(m.name);
            if (failure) observe_unreached(st, st->sql, st->sent(), st->parsed, *failure);
            co_return failure;
        }
        prepare_on(conn, st, true, m.name, nullptr);
    } else {
        std::string done;
        protocol::append_parse_complete(done);
        queue_local(std::move(done));
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::on_bind(std::string_view body) {
    protocol::BindMessage m = protocol::decode_bind(body);
    auto it = ext().statements_.find(m.statement);
    if (it == ext().statements_.end()) co_return error("26000", "prepared statement \"" + m.statement + "\" does not exist");
    std::shared_ptr<ClientStatement> st = it->second;
    auto existing = ext().portals_.find(m.portal);
    if (!m.portal.empty() && existing != ext().portals_.end())
        co_return error("42P03", "portal \"" + m.portal + "\" already exists");
    // Held back when the cache may answer its Execute: a read that may be cached, outside any
    // transaction, with a known description to answer a Describe of the portal.
    const CacheConfig& cfg = worker_.cache_config();
    bool reads = st->parsed->statements.size() == 1 && st->parsed->statements[0].kind == "SELECT";
    if (cfg.enabled && reads && st->verdict.cacheable && !description_of(*st) && st->describing && ext().batch_conn_) {
        // The description is on its way (the statement's first use in this worker): waited for,
        // so that this Execute can already be answered from the cache another worker filled.
        if (!co_await drain_batch() || discard_until_sync_) co_return std::nullopt;
    }
    bool may_hit = cfg.enabled && reads && st->verdict.cacheable && !pinned_ && !session_dirty_ && !ext().batch_unsafe_ &&
                   tx_status_ == 'I' && description_of(*st) != nullptr;
    ClientPortal portal;
    portal.statement = st;
    if (may_hit) {
        portal.state = ClientPortal::State::Held;
        portal.bind_body.assign(body);
        portal.bind = std::move(m);
        ext().held_portal_ = portal.bind.portal;
        ext().portals_[portal.bind.portal] = std::move(portal);
        co_return std::nullopt;
    }
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await batch_connection(failure);
    if (!conn) {
        if (failure) observe_unreached(st, st->sql, st->sent(), st->parsed, *failure);  // its Execute is skipped
        co_return failure;
    }
    std::string name;
    prepare_on(conn, st, false, std::string(), &name);
    protocol::append_bind_to(conn->output(), body, name);
    expected_.push_back(expect(Expected::Kind::Bind));
    portal.state = ClientPortal::State::Forwarded;
    std::string portal_name = m.portal;
    // Kept for the cache key: the result may still fill the cache (it cannot be answered from it).
    if (cfg.enabled && reads && st->verdict.cacheable) {
        portal.bind = std::move(m);
        portal.may_fill = true;
        portal.bound_generation_sum = worker_.cache().generation_sum(read_generation_buckets(*st->parsed));
    }
    ext().portals_[portal_name] = std::move(portal);
    co_return std::nullopt;
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::forward_portal(const std::string& name, ClientPortal& portal) {
    ext().held_portal_.reset();
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await batch_connection(failure);
    if (!conn) {
        ext().portals_.erase(name);
        co_return failure;
    }
    std::string statement;
    prepare_on(conn, portal.statement, false, std::string(), &statement);
    protocol::append_bind_to(conn->output(), portal.bind_body, statement);
    expected_.push_back(expect(Expected::Kind::Bind));
    if (portal.describe) {
        protocol::append_describe(conn->output(), 'P', name);
        expected_.push_back(expect(Expected::Kind::Describe));
        portal.describe = false;
    }
    portal.state = ClientPortal::State::Forwarded;
    std::string().swap(portal.bind_body);
    portal.bind = protocol::BindMessage();
    co_return std::nullopt;
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::on_describe(std::string_view body) {
    protocol::TargetMessage m = protocol::decode_target(body, "DESCRIBE");
    std::optional<ErrorFields> failure;
    if (m.kind == 'S') {
        auto it = ext().statements_.find(m.name);
        if (it == ext().statements_.end()) co_return error("26000", "prepared statement \"" + m.name + "\" does not exist");
        const StatementDescription* d = description_of(*it->second);
        if (!ext().batch_conn_ && d) {
            queue_local(d->parameters + d->rows);
            co_return std::nullopt;
        }
        ConnectionPtr conn = co_await batch_connection(failure);
        if (!conn) co_return failure;
        std::string name;
        prepare_on(conn, it->second, false, std::string(), &name);
        protocol::append_describe(conn->output(), 'S', name);
        expected_.push_back(expect(Expected::Kind::Describe));
        co_return std::nullopt;
    }
    auto it = ext().portals_.find(m.name);
    if (it != ext().portals_.end() && it->second.state == ClientPortal::State::Held) {
        it->second.describe = true;
        co_return std::nullopt;
    }
    if (it != ext().portals_.end() && it->second.state == ClientPortal::State::Answered) {
        const StatementDescription* d = description_of(*it->second.statement);
        std::string bytes;
        if (d && d->rows[0] == 'T')
            protocol::append_row_description_for(bytes, std::string_view(d->rows).substr(5), it->second.bind.result_formats);
        else protocol::append_no_data(bytes);
        queue_local(std::move(bytes));
        co_return std::nullopt;
    }
    if (it == ext().portals_.end() && !ext().batch_conn_ && !pinned_)
        co_return error("34000", "portal \"" + m.name + "\" does not exist");
    ConnectionPtr conn = co_await batch_connection(failure);
    if (!conn) co_return failure;
    protocol::append_message(conn->output(), 'D', body);
    expected_.push_back(expect(Expected::Kind::Describe));
    co_return std::nullopt;
}

// A held portal's Execute answered by a cache: the Bind's answer, then the result.
void StatementPipeline::answer_held_portal(const std::shared_ptr<ClientStatement>& st, ClientPortal& portal,
                                           std::string answer) {
    observe_execute(st, st->sql, st->sent(), st->parsed, true, ProbeResult::Hit);
    ext().held_portal_.reset();
    portal.state = ClientPortal::State::Answered;
    portal.describe = false;
    queue_local(std::move(answer));
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::on_execute(std::string_view body) {
    protocol::ExecuteMessage m = protocol::decode_execute(body);
    auto it = ext().portals_.find(m.portal);
    if (it == ext().portals_.end()) {
        if (!ext().batch_conn_ && !pinned_) co_return error("34000", "portal \"" + m.portal + "\" does not exist");
    } else if (it->second.state == ClientPortal::State::Answered) {
        std::string done;
        protocol::append_command_complete(done, "SELECT 0");  // ran to its end
        queue_local(std::move(done));
        co_return std::nullopt;
    }
    std::shared_ptr<ClientStatement> st = it == ext().portals_.end() ? nullptr : it->second.statement;
    if (st && st->verdict.writes && upstream().writes_revoked())
        co_return refused(*st, error("25006", "Write operations are not permitted: upstream \"" + upstream().name() +
                                                  "\" is no longer read_write; reconnect"));
    if (st) {
        std::string answered;
        if (deallocate_locally(*st->parsed, answered)) {
            if (it->second.state == ClientPortal::State::Held) {
                std::string bound;
                protocol::append_bind_complete(bound);
                answered = bound + answered;
                ext().held_portal_.reset();
                it->second.state = ClientPortal::State::Answered;
            }
            queue_local(std::move(answered));
            co_return std::nullopt;
        }
        for (const auto& f : st->parsed->statements)
            if (!f.execute_name.empty() || !f.prepare_name.empty() || !f.deallocate_name.empty())
                co_return refused(*st, error("0A000", "PREPARE, EXECUTE and DEALLOCATE are supported in simple queries only"));
        count_statement();
    }
    std::unique_ptr<Fill> fill;
    bool keyed = false;  // for the observers: the cache was asked
    if (st && it->second.state == ClientPortal::State::Held) {
        ClientPortal& portal = it->second;
        // cache probe, keyed also by what Bind supplied. Row-limited fetches are not cached.
        int ttl = 0;
        std::optional<CacheKey> key;
        if (portal.claimed) fill = std::move(portal.claimed);  // extended_now() looked already, and claimed the entry
        else if (m.max_rows == 0 && !portal.no_key)
            key = cache_key_for(st->sql, *st->parsed, st->verdict, &ttl, bind_cache_extra(st->types, portal.bind),
                                parameter_hook(portal.bind));
        keyed = key || fill;
        if (key) {
            std::string answer;
            append_held_bind_answer(answer, portal);
            std::size_t answer_start = answer.size();
            std::optional<uint64_t> id;
            ProbeResult result = probe_cache_now(*key, answer, &id);
            // Another client fills the entry: waited for, unless this batch has executions of its
            // own in flight (it may be filling that very entry itself).
            if (result == ProbeResult::Wait && expected_.empty()) result = co_await wait_for_fill(*key, answer, &id);
            if (result == ProbeResult::Hit) {
                answer_held_portal(st, portal, std::move(answer));
                co_return std::nullopt;
            }
            answer.resize(answer_start);
            if (id) fill = make_fill(*key, *id, ttl, st->sql, st->parsed);
        }
        // the second level, for the entry this client fills (claimed here or by extended_now())
        if (fill && l2_on()) {
            std::string answer;
            append_held_bind_answer(answer, portal);
            if (co_await fetch_second_level(*fill, answer, expected_.empty())) {
                fill.reset();
                answer_held_portal(st, portal, std::move(answer));
                co_return std::nullopt;
            }
        }
        auto failure = co_await forward_portal(m.portal, portal);
        if (failure) {
            if (fill) finish_fill(*fill);
            observe_unreached(st, st->sql, st->sent(), st->parsed, *failure);
            co_return failure;
        }
    } else if (st && m.max_rows == 0 && it->second.may_fill && !ext().batch_unsafe_) {
        // Bound upstream already (its description was not known yet): the result can still fill
        // the cache for the next client, unless another one is filling it.
        int ttl = 0;
        std::optional<CacheKey> key =
            cache_key_for(st->sql, *st->parsed, st->verdict, &ttl, bind_cache_extra(st->types, it->second.bind),
                          parameter_hook(it->second.bind));
        keyed = key.has_value();
        std::optional<uint64_t> id;
        std::string ignored;
        if (key && probe_cache_now(*key, ignored, &id) == ProbeResult::Claimed && id) {
            fill = make_fill(*key, *id, ttl, st->sql, st->parsed);
            fill->generation_sum = it->second.bound_generation_sum;  // the Bind may have gone already
        }
    }
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await batch_connection(failure);
    if (!conn) {
        if (fill) finish_fill(*fill);
        if (st && failure) observe_unreached(st, st->sql, st->sent(), st->parsed, *failure);
        co_return failure;
    }
    if (st && st->verdict.writes) {
        // writes: what a name not learnt yet reaches is asked after the batch's Sync (the catalog
        // query cannot run inside the batch); until then its write counts as reaching anything.
        note_writes(st->verdict);
        ext().batch_writes_ = true;
    }
    protocol::append_message(conn->output(), 'E', body);
    Expected e = expect(Expected::Kind::Execute);
    e.fill = std::move(fill);
    if (st && !keyed && worker_.observing())
        uncacheable_why_ = m.max_rows != 0 ? "row_limited" : uncacheable_reason(st->sql, *st->parsed, st->verdict);
    if (st) e.observed = observe_execute(st, st->sql, st->sent(), st->parsed, keyed, ProbeResult::Claimed);
    expected_.push_back(std::move(e));
    if (st) {
        ext().batch_executed_.push_back({st->parsed, st->verdict.session_state});
        // Anything but a plain read may change what later statements of the batch mean (SET,
        // BEGIN, set_config...), and the client's settings follow only at Sync: until then the
        // cache neither answers nor stores, and no description is remembered.
        const auto& facts = st->parsed->statements;
        bool plain_read = facts.size() == 1 && facts[0].kind == "SELECT" && facts[0].setting_changes.empty() &&
                          !facts[0].reset_all && !facts[0].transaction_control && !st->verdict.session_state;
        if (!plain_read) ext().batch_unsafe_ = true;
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::on_close(std::string_view body) {
    protocol::TargetMessage m = protocol::decode_target(body, "CLOSE");
    std::string done;
    protocol::append_close_complete(done);
    if (m.kind == 'S') {
        // The upstream statement stays prepared on its connections for the next client with the
        // same text. Closing what does not exist is not an error.
        auto it = ext().statements_.find(m.name);
        if (it != ext().statements_.end()) {
            ext().batch_replaced_.emplace_back(m.name, std::move(it->second));
            ext().statements_.erase(it);
        }
        queue_local(std::move(done));
        co_return std::nullopt;
    }
    auto it = ext().portals_.find(m.name);
    bool upstream = it == ext().portals_.end() ? ext().batch_conn_ != nullptr : it->second.state == ClientPortal::State::Forwarded;
    if (ext().held_portal_ && *ext().held_portal_ == m.name) ext().held_portal_.reset();
    if (it != ext().portals_.end()) ext().portals_.erase(it);
    if (!upstream) {
        queue_local(std::move(done));
        co_return std::nullopt;
    }
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await batch_connection(failure);
    if (!conn) co_return failure;
    protocol::append_message(conn->output(), 'C', body);
    expected_.push_back(expect(Expected::Kind::Close));
    co_return std::nullopt;
}

asio::awaitable<void> StatementPipeline::on_flush() {
    flushed_since_start_ = true;
    if (ext().held_portal_) {
        std::string name = *ext().held_portal_;
        std::optional<ErrorFields> failure = co_await forward_portal(name, ext().portals_[name]);
        extended_failed(failure);
    }
    if (ext().batch_conn_ && !expected_.empty()) co_await drain_batch();
    if (!io_.write_now()) co_await io_.flush();
}

asio::awaitable<void> StatementPipeline::on_sync() {
    for (int attempt = 0;; ++attempt) {
        if (ext().held_portal_ && !discard_until_sync_) {
            std::string name = *ext().held_portal_;
            std::optional<ErrorFields> failure = co_await forward_portal(name, ext().portals_[name]);
            extended_failed(failure);
        } else if (ext().held_portal_) {
            ext().portals_.erase(*ext().held_portal_);  // skipped after an error, as the server skips its Bind
        }
        ext().held_portal_.reset();
        discard_until_sync_ = false;
        bool retryable = false;
        Outcome outcome = Outcome::Lost;
        if (ext().batch_lost_) {  // lost while the batch was drained before its Sync
            ext().batch_lost_ = false;
            retryable = ext().lost_retryable_;
        } else if (!ext().batch_conn_) {
            emit_local_answers();
            break;
        } else {
            ConnectionPtr conn = ext().batch_conn_;
            retryable = conn != pinned_ && ext().batch_status_before_ == 'I' && !ext().batch_log_full_ && !ext().batch_writes_;
            protocol::append_sync(conn->output());
            expected_.push_back(expect(Expected::Kind::Sync));
            // Spelled out, as in the first form that ran under GCC 12: see ServerConnection::send().
            bool sent = conn->send_now();
            if (!sent) sent = co_await conn->send();
            if (sent) outcome = co_await relay_all(conn, true, true);
            if (outcome == Outcome::ClientGone) {
                cancel_upstream(conn);
                conn->mark_broken();
            }
            if (outcome == Outcome::Ready && writes_ && !writes_->unknown_reach.empty()) {
                tx_status_ = conn->transaction_status();
                co_await learn_unknown_reach(conn);
            }
            finish_batch(outcome == Outcome::Ready);
            discard_until_sync_ = false;  // an error relayed just now was the server's, before this Sync
            if (outcome == Outcome::ClientGone) {
                emit_lost_observed();
                co_return;
            }
            if (outcome == Outcome::Ready) break;
        }
        if (attempt == 0 && retryable && !flushed_since_start_ && co_await run_batch_again()) continue;
        protocol::append_error(out_, error("08006", "upstream connection lost"));
        break;
    }
    forget_batch_log();
    // Outside a transaction the portals end with the implicit transaction, as on the server.
    if (tx_status_ == 'I') ext().portals_.clear();
    protocol::append_ready_for_query(out_, tx_status_);
    if (!io_.write_now()) co_await io_.flush();
}

// The batch's connection was lost before any of its answers reached the client: what it did to the
// client's state is undone and its messages handled again, on a fresh connection.
asio::awaitable<bool> StatementPipeline::run_batch_again() {
    out_.resize(ext().batch_out_start_);
    lost_observed_.clear();          // they run again, and are observed then
    skip_emits_ = batch_emitted_;    // what was observed before the loss is not observed twice
    for (const auto& name : ext().batch_statements_) ext().statements_.erase(name);
    ext().batch_statements_.clear();
    // Statements the batch closed or replaced are back (latest first, so the oldest wins).
    for (auto it = ext().batch_replaced_.rbegin(); it != ext().batch_replaced_.rend(); ++it)
        ext().statements_[it->first] = std::move(it->second);
    ext().batch_replaced_.clear();
    ext().portals_.clear();  // the batch began outside a transaction: no portal outlived the last Sync
    std::string log = std::move(ext().batch_log_);
    ext().batch_log_.clear();
    std::string_view rest(log);
    std::size_t used = 0;
    while (auto m = protocol::decode_message(rest, rest.size(), used)) {
        std::string body(m->body);
        protocol::FrontendMessage again{m->type, body};
        co_await handle_extended(again);
        rest.remove_prefix(used);
        if (io_.gone()) co_return false;
    }
    co_return true;
}

// A Query or FunctionCall came while extended messages await their Sync: they are sent with a Sync
// of the proxy's own first (its ReadyForQuery is not the client's), so that the connection is at
// a message boundary and every answer keeps its order.
asio::awaitable<void> StatementPipeline::close_open_batch() {
    if (ext().held_portal_) {
        std::string name = *ext().held_portal_;
        std::optional<ErrorFields> failure = co_await forward_portal(name, ext().portals_[name]);
        extended_failed(failure);
    }
    if (ext().batch_conn_) {
        ConnectionPtr conn = ext().batch_conn_;
        protocol::append_sync(conn->output());
        expected_.push_back(expect(Expected::Kind::Sync, true));
        Outcome outcome = Outcome::Lost;
        // Spelled out, as in the first form that ran under GCC 12: see ServerConnection::send().
        bool sent = conn->send_now();
        if (!sent) sent = co_await conn->send();
        if (sent) outcome = co_await relay_all(conn, true, true);
        if (outcome == Outcome::ClientGone) {
            cancel_upstream(conn);
            conn->mark_broken();
        }
        finish_batch(outcome == Outcome::Ready);
        if (outcome == Outcome::Lost) protocol::append_error(out_, error("08006", "upstream connection lost"));
    }
    emit_local_answers();
    ext().batch_lost_ = false;
    forget_batch_log();
}

void StatementPipeline::finish_batch(bool ready) {
    ext().batch_unsafe_ = false;
    ext().batch_writes_ = false;
    ConnectionPtr conn = std::move(ext().batch_conn_);
    ext().batch_conn_.reset();
    ext().held_portal_.reset();
    std::vector<Executed> executed = std::move(ext().batch_executed_);
    ext().batch_executed_.clear();
    if (!conn) return;
    if (!ready) {
        // A write cut off before its Sync did not commit, unless it was a COMMIT (seen, if relayed).
        if (writes_) writes_->lost();
        conn->mark_broken();
        abandon_expected();
        keep_or_release(conn, false);
        ext().portals_.clear();
        return;
    }
    tx_status_ = conn->transaction_status();
    bool pins = false;
    // A transaction opened or ended within the batch may have rolled its settings back: they are
    // judged as inside a transaction (the client keeps its connection) rather than adopted.
    char status_before = ext().batch_status_before_;
    for (const auto& x : executed)
        for (const auto& f : x.parsed->statements)
            if (f.transaction_control) status_before = 'T';
    for (const auto& x : executed)
        finish_statement(*x.parsed, conn, !batch_failed_, status_before, x.session_state, pins);
    relay_notifications(conn);
    finish_fills(true);
    keep_or_release(conn, pins);
}

}  // namespace rproxy
