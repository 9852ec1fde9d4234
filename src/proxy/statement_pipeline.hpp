// The statement pipeline of one client session, shared by the simple query protocol, the
// extended protocol and the fast path. Its stages each have a file:
//   decode (the frontend's message loop) -> judge (stage_judge.cpp) -> cache probe
//   (stage_cache.cpp) -> acquire (stage_acquire.cpp) -> forward (pipeline_query.cpp,
//   pipeline_extended.cpp, pipeline_fast_path.cpp) -> relay and capture (stage_relay.cpp)
//   -> finish (stage_finish.cpp).
// Routing, rewrite hooks and the audit log each plug in between two of them. The client's session
// state lives here: its settings, what it was told, its pinned connection, its statements and
// portals.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/cache_types.hpp"
#include "core/error_fields.hpp"
#include "core/parameter_hook.hpp"
#include "core/pin_reason.hpp"
#include "core/statement_facts.hpp"
#include "core/verdict.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/client_io.hpp"
#include "proxy/exchange.hpp"
#include "proxy/message_log.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/statement_description.hpp"
#include "proxy/told_parameters.hpp"
#include "proxy/upstream.hpp"
#include "proxy/write_tracker.hpp"

namespace rproxy {

class Worker;

class StatementPipeline {
public:
    StatementPipeline(Worker& worker, ClientIo& io);
    ~StatementPipeline();

    // Startup: the client's settings from its startup packet; the upstream is asked what it
    // reports for them (once per distinct set). Then the ParameterStatus messages to send.
    boost::asio::awaitable<std::optional<ErrorFields>> start(const protocol::StartupPacket& packet);
    void announce_parameters();

    boost::asio::awaitable<void> handle_query(const std::string& received);
    // pipeline_extended.cpp: Parse, Bind, Describe, Execute, Close, Sync, Flush.
    boost::asio::awaitable<void> handle_extended(const protocol::FrontendMessage& msg);
    // The same, when it can be done without waiting; false: handle_extended() must do it.
    bool extended_now(const protocol::FrontendMessage& msg);
    // pipeline_fast_path.cpp: FunctionCall, for the calls that read large objects.
    boost::asio::awaitable<void> handle_function_call(std::string_view body);

    // The upstream this client's statements go to, chosen at login (routing); it stays the
    // client's while it is connected, whatever changes in the tables.
    void set_upstream(UpstreamPtr upstream);
    // The connection the client's own login opened (auth passthrough): its connection for the
    // whole session, closed when it leaves.
    void adopt(ConnectionPtr conn);
    Upstream& upstream() { return *upstream_; }
    const UpstreamPtr& upstream_ptr() const { return upstream_; }
    char transaction_status() const { return tx_status_; }
    bool discarding() const { return discard_until_sync_; }
    // While the client listens, its pinned connection carries the notifications.
    const ConnectionPtr& listening_connection() const {
        static const ConnectionPtr none;
        return listening_ ? pinned_ : none;
    }
    // NotificationResponse for every notification the connection received outside a statement.
    bool relay_notifications(const ConnectionPtr& conn);
    // The statement running upstream, if any.
    ConnectionPtr running() const { return current_conn_.lock(); }
    void cancel_upstream(const ConnectionPtr& conn);
    // The client left: its pinned connection goes back, or is closed when it carries session state.
    void release_pinned();
    // The client parks: what only a statement or an extended batch under way needs is given back.
    void shed_idle_memory();
    // Extended-protocol messages came since the last Sync: the client waits in the middle of a
    // batch, with answers before Sync possibly still held in the output. It does not park.
    bool mid_batch() const {
        return batch_open() || discard_until_sync_ || (ext_ && (!ext_->batch_log_.empty() || ext_->batch_log_full_));
    }
    // Answers buffered until Sync are written once this large; the caller flushes.
    bool output_due();
    const std::string& upstream_role() { return upstream().role(); }
    // A statement of this client: the worker's count and its upstream's.
    void count_statement();
    // The message log's tap for this session's upstream connections (null: not logged); the
    // connections it holds now follow at once, those it takes later when taken.
    void set_tap(MessageLog* log, int32_t session);

private:

    // intercept (stage_intercept.cpp): the rewrite rules, then the statement hook, before the
    // statement is parsed and judged. The firewall judges, the cache keys and the upstream runs
    // what they made of the text.
    // Simple protocol: the text to run (received itself when nothing intercepts), or null when it
    // was refused (the error and ReadyForQuery are in the output). Plain, so that handle_query's
    // frame holds one pointer more and no co_await.
    const std::string* intercept_query(const std::string& received);
    // text rewritten in place; the error the client gets when it is refused. sent: the text as the
    // client sent it when rules or the hook changed it (the audit log shows both), else empty.
    std::optional<ErrorFields> intercept(std::string& text, const char* protocol, std::optional<std::string>& sent);
    // intercept() unobserved; by_hook: the failure is the statement hook's.
    std::optional<ErrorFields> intercept_now(std::string& text, const char* protocol, bool& by_hook);
    std::string intercepted_;  // the simple protocol's statement as intercept_query() made it
    std::optional<std::string> sent_text_;  // and as the client sent it, when that differs
    const std::string* sent_query() const { return sent_text_ ? &*sent_text_ : nullptr; }
    const std::string* query_text_ = nullptr;  // handle_query()'s statement: intercepted_ or what was received

    // judge
    boost::asio::awaitable<Verdict> judge(const ParsedQuery& parsed, ConnectionPtr& conn,
                                          std::optional<ErrorFields>& failure);
    Verdict judge_known(const ParsedQuery& parsed);  // pending_functions: the upstream must be asked
    // judge_known() remembered per statement until the next reload; null when the upstream must be asked.
    std::shared_ptr<const Verdict> known_verdict(const std::shared_ptr<const ParsedQuery>& parsed);
    Verdict finish_judgement(Verdict verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure);
    // Rejections are counted and answered, EXECUTE checked against this client's PREPAREs.
    void check_judgement(const Verdict& verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure);
    std::shared_ptr<const ParsedQuery> parse(const std::string& sql);
    bool answer_locally(const ParsedQuery& parsed);
    bool deallocate_locally(const ParsedQuery& parsed, std::string& out);
    std::optional<ErrorFields> track_prepared(const ParsedQuery& parsed);

    // writes (stage_writes.cpp), on read-write upstreams: what a statement's writes reach, learnt
    // from the upstream once per relation name, and the transaction's writes until they commit.
    // After an exchange (never inside an extended batch: the catalog query's own Sync would end
    // the batch's implicit transaction): what the writes whose reach was unknown reach, learnt when
    // conn is between transactions.
    boost::asio::awaitable<void> learn_unknown_reach(const ConnectionPtr& conn);
    void note_writes(const Verdict& verdict);
    // Simple protocol: the statement's writes join the transaction's, and the exchange begins.
    void start_writes(const ParsedQuery& parsed, const Verdict& verdict, char status_before);
    WriteTracker& writes();
    // Before an exchange with the upstream; confirms_at_complete: see WriteTracker::begin_exchange.
    void begin_write_exchange(bool confirms_at_complete) {
        if (writes_) writes_->begin_exchange(confirms_at_complete);
    }
    // The generation counters a read of these relations records (its fill's snapshot).
    std::vector<uint32_t> read_generation_buckets(const ParsedQuery& parsed);
    std::unique_ptr<WriteTracker> writes_;  // made at the first write

    // observe (stage_observe.cpp): what each statement did, handed to Worker::statement_done() (the
    // audit log, pg_rproxy_statements, the metrics) once its answer is complete. When nothing
    // observes, one branch per statement. Simple protocol: the statement in observed_.
    void observe_query(const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed);
    // The judgement (or what it needed) failed: the statement ends here, in either protocol.
    // sent: the client's text when interception changed it (else null), here and below.
    void observe_refusal(const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed,
                         const Verdict& verdict, const ErrorFields& failure, StatementProtocol protocol,
                         const std::string* sent);
    void observe_cache(bool keyed, ProbeResult result);
    void observe_error(const ErrorFields& e);
    void observe_lost();           // 08006: the client or the upstream connection went
    void append_connection_lost();  // the error for a statement whose upstream connection was lost
    void observe_done();
    void observe_retry();  // a simple Query runs again on a fresh connection: its first answers are forgotten
    // Extended protocol: an Execute, answered from the cache (emitted at once) or forwarded (the
    // result goes into its Expected entry, completed by the relay).
    // keeps_sql: what keeps sql alive until then (its ClientStatement).
    std::unique_ptr<Observed> observe_execute(std::shared_ptr<const void> keeps_sql, const std::string& sql,
                                              const std::string* sent,
                                              const std::shared_ptr<const ParsedQuery>& parsed, bool keyed,
                                              ProbeResult result);
    // An allowed Parse, Bind or Execute that never reached the upstream: no connection could be had.
    void observe_unreached(std::shared_ptr<const void> keeps_sql, const std::string& sql, const std::string* sent,
                           const std::shared_ptr<const ParsedQuery>& parsed, const ErrorFields& failure);
    // The relay saw a statement's CommandComplete, EmptyQueryResponse, PortalSuspended or error.
    void observe_answer(Expected& f, char type, std::string_view body);
    void emit_observed(const Observed& o, bool refused, RejectReason reason, std::string_view refusal_code,
                       std::string_view refusal_message = {});
    std::unique_ptr<Observed> observed_;  // the worker's, while a simple Query is observed
    // Extended: Executes whose connection was lost, emitted with 08006 once the batch is not run
    // again; and, when it is, how many of its records were emitted already (its second run skips
    // them, so that no statement is counted twice).
    std::vector<std::unique_ptr<Observed>> lost_observed_;
    uint32_t batch_emitted_ = 0;
    uint32_t skip_emits_ = 0;
    void emit_lost_observed();
    bool emit_extended(const Observed& o);  // false: skipped, a retried batch's second record
    bool observing_ = false;              // observed_ holds the simple Query under way
    const char* uncacheable_why_ = "not_a_read";  // cache_key_for()'s last "no"
    uint64_t hit_rows_ = 0;                       // probe_cache_now()'s last hit

    // cache probe. extra: what besides the statement changes the bytes (Bind's parameters, formats)
    // hook: a Bind's parameter hook (pg_rproxy.parameter_hooks), when it has one.
    std::optional<CacheKey> cache_key_for(const std::string& sql, const ParsedQuery& parsed, const Verdict& verdict,
                                          int* ttl_seconds, const std::string& extra,
                                          const std::optional<ParameterHook>& hook = std::nullopt);
    std::string caller_key_;  // cache_key_for()'s hook's CACHE_KEY, for make_fill()
    std::optional<ParameterHook> parameter_hook(const protocol::BindMessage& b) const;
    std::optional<Uncacheable> why_uncacheable(const CacheHints& hints, const ParsedQuery& parsed, const Verdict& verdict,
                                               std::size_t extra_size);
    // For the observers: why a statement that was not looked up could not have been.
    const char* uncacheable_reason(const std::string& sql, const ParsedQuery& parsed, const Verdict& verdict);
    // Hit: the stored bytes are appended to out. Claimed: *fill is set, this client fills the entry.
    ProbeResult probe_cache_now(const CacheKey& key, std::string& out, std::optional<uint64_t>* fill);  // one look
    std::size_t capture_limit(const std::optional<CacheKey>& key) const;
    boost::asio::awaitable<ProbeResult> wait_for_fill(const CacheKey& key, std::string& out, std::optional<uint64_t>* fill);
    bool l2_on() const;
    // What the first level's probe could not settle at once: waiting for another client's fill
    // (Wait), or asking the second level (Claimed, with Redis on). Makes *fill when this client
    // fills the entry; Hit when out got the result from either.
    boost::asio::awaitable<ProbeResult> probe_further(const CacheKey& key, std::string& out, ProbeResult first,
                                                      std::optional<uint64_t>& id, std::unique_ptr<Fill>& fill, int ttl,
                                                      const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed);
    // The second level for a fill this client holds: true when it answered (appended to out).
    // may_wait false: a batch with executions of its own in flight must not wait for another
    // gateway's fill (that gateway's batch may be waiting for one of this batch's).
    boost::asio::awaitable<bool> fetch_second_level(Fill& fill, std::string& out, bool may_wait = true);
    CacheEntryMeta entry_meta(const Fill& f) const;
    // The fill this client makes after probe_cache_now() claimed entry id for it.
    std::unique_ptr<Fill> make_fill(const CacheKey& key, uint64_t id, int ttl, const std::string& sql,
                                    const std::shared_ptr<const ParsedQuery>& parsed);
    void finish_fill(Fill& fill);

    // acquire: the connection a statement runs on, with the client's settings: the one this
    // client holds when there is one, else one from the pool; null with failure set when the
    // upstream cannot be had.
    boost::asio::awaitable<ConnectionPtr> acquire(ConnectionPtr held, std::optional<ErrorFields>& failure);
    ConnectionPtr acquire_now(ConnectionPtr& held);
    boost::asio::awaitable<ConnectionPtr> ensure_connection(ConnectionPtr conn, std::optional<ErrorFields>& failure);
    boost::asio::awaitable<std::optional<ErrorFields>> sync_settings(const ConnectionPtr& conn);

    // relay: the upstream's answers to what was forwarded, against expected_, into out_.
    enum class Outcome { Ready, Drained, CopyIn, Lost, ClientGone };
    // Runs until ReadyForQuery (Ready) or, with until_ready false, until nothing more is expected
    // (Drained). out_start: where this exchange's output began in out_ (for a retry).
    boost::asio::awaitable<Outcome> relay(const ConnectionPtr& conn, bool until_ready);
    void emit_local_answers();
    void drop_until_sync(const ConnectionPtr& conn);
    void relay_message(char type, std::string_view body, Fill* fill);
    void relay_rows(std::string_view run, uint64_t rows, Fill* fill);
    // COPY FROM STDIN: the client's CopyData, CopyDone or CopyFail go upstream until the copy ends.
    boost::asio::awaitable<bool> pump_copy_in(const ConnectionPtr& conn, bool extended);
    boost::asio::awaitable<Outcome> relay_all(const ConnectionPtr& conn, bool until_ready, bool extended);
    bool flushed_since_start_ = false;  // output reached the client since the exchange began

    // finish: after ReadyForQuery. The client's own state follows what ran (settings, pinning,
    // LISTEN, DEALLOCATE ALL); the connection goes back to the pool or stays with the client.
    void finish_statement(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded, char status_before,
                          bool session_state, bool& pins);
    void after_deallocate_all(const ParsedQuery& parsed, const ConnectionPtr& conn);
    void after_listen(const ParsedQuery& parsed, const ConnectionPtr& conn);
    // Session-level SET/RESET/set_config that succeeded outside a transaction become the client's
    // own settings (applied wherever it runs next), with ParameterStatus for reported ones. Inside
    // a transaction the client stays pinned instead. Returns whether the statement must pin.
    bool track_settings(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded, char status_before);
    void keep_or_release(ConnectionPtr conn, bool session_state);
    void finish_fills(bool complete);
    // What is still expected is given up (the connection is lost or the client gone).
    void abandon_expected();

    // Extended query protocol (client_session_extended.cpp): messages are forwarded as they come,
    // statement names mapped to the connection's own, until Sync (or Flush) sends them.
    struct ClientStatement {
        std::string sql;  // as judged and prepared upstream: after the rewrite rules and the hook
        bool intercepted = false;  // rules or the hook saw it: a repeated Parse is not taken as the same
        std::optional<std::string> sent_sql;  // as the client sent it, when rules or the hook changed it
        const std::string* sent() const { return sent_sql ? &*sent_sql : nullptr; }
        std::vector<uint32_t> types;
        std::shared_ptr<const ParsedQuery> parsed;
        Verdict verdict;
        std::shared_ptr<const StatementDescription> description;  // known before it runs, or learnt at Parse
        std::shared_ptr<StatementDescription> describing;          // being learnt on the connection
        std::string described_key;
        uint64_t reloads = 0;           // Worker::reloads() when judged and described
        uint64_t settings_version = 0;  // settings_.version() then
    };
    struct ClientPortal {
        std::shared_ptr<ClientStatement> statement;
        // Held back while the proxy may still answer its Execute from the cache: the Bind as
        // received, and whether a Describe of the portal came meanwhile.
        enum class State : uint8_t { Held, Forwarded, Answered } state = State::Held;
        std::string bind_body;
        protocol::BindMessage bind;
        bool describe = false;
        bool may_fill = false;  // forwarded, with bind kept for the cache key
        // The freshness counters' sum when its Bind went (the server's snapshot is taken there).
        uint64_t bound_generation_sum = 0;
        // The cache entry its Execute claimed to fill when extended_now() looked and missed:
        // on_execute() forwards it with this fill instead of looking again.
        std::unique_ptr<Fill> claimed;
        bool no_key = false;  // extended_now() found it uncacheable (and counted it so)
    };
    static const StatementDescription* description_of(const ClientStatement& st);
    // What a held Bind (and the Describe of its portal) answer when the cache answers the Execute.
    static void append_held_bind_answer(std::string& out, const ClientPortal& portal);
    void answer_held_portal(const std::shared_ptr<ClientStatement>& st, ClientPortal& portal, std::string answer);
    void extended_failed(const std::optional<ErrorFields>& failure);
    // e, for a statement refused outside the firewall's judgement (observed as refused).
    ErrorFields refused(const ClientStatement& st, ErrorFields e);
    boost::asio::awaitable<std::optional<ErrorFields>> on_parse(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_bind(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_describe(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_execute(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_close(std::string_view body);
    boost::asio::awaitable<void> on_sync();
    boost::asio::awaitable<void> on_flush();
    // The connection this batch of extended messages runs on, acquired at the first message that
    // needs the upstream.
    boost::asio::awaitable<ConnectionPtr> batch_connection(std::optional<ErrorFields>& failure);
    // Makes sure st is prepared on conn (a Parse, and a Describe when its description is not
    // known yet, queued ahead); visible: the client waits for a ParseComplete.
    void prepare_on(const ConnectionPtr& conn, const std::shared_ptr<ClientStatement>& st, bool visible,
                    const std::string& client_name, std::string* upstream_name);
    // A held portal goes upstream after all: its Bind (and Describe) are forwarded.
    boost::asio::awaitable<std::optional<ErrorFields>> forward_portal(const std::string& name, ClientPortal& portal);
    // The batch's messages so far are sent with a Flush and their answers relayed, so that the
    // connection can run a statement of the proxy's own, or a long pipeline does not fill both
    // directions' buffers.
    boost::asio::awaitable<bool> drain_batch();
    // After the upstream's ReadyForQuery for a Sync, or when the batch's connection was lost.
    void finish_batch(bool ready);
    boost::asio::awaitable<void> close_open_batch();
    void log_for_retry(const protocol::FrontendMessage& msg);
    void forget_batch_log();
    boost::asio::awaitable<bool> run_batch_again();
    void queue_local(std::string bytes);
    void local_answer_done();

    bool discard_until_sync_ = false;
    ExpectedQueue expected_;
    struct Executed {
        std::shared_ptr<const ParsedQuery> parsed;
        bool session_state;
    };
    // The extended protocol's state: the client's statements and portals, and the batch since its
    // last Sync. Made at the first extended message, and given back when the client parks with
    // none of it in use, so that a simple-protocol client does not carry it.
    struct Extended {
        std::unordered_map<std::string, std::shared_ptr<ClientStatement>> statements_;
        std::unordered_map<std::string, ClientPortal> portals_;
        ConnectionPtr batch_conn_;       // the connection of the extended messages since the last Sync
        std::optional<std::string> held_portal_;  // the portal whose Bind is held back
        std::vector<Executed> batch_executed_;    // statements run in this batch, for finish
        char batch_status_before_ = 'I';
        bool batch_unsafe_ = false;      // the batch ran something besides plain reads: no cache until Sync
        bool batch_writes_ = false;      // the batch sent a write: never run again
        std::string batch_log_;          // the batch's messages as received, for run_batch_again()
        bool batch_log_full_ = false;    // too large to keep: not run again
        bool batch_lost_ = false;        // the connection was lost before Sync (while draining)
        bool lost_retryable_ = false;    // and the batch could run again
        std::size_t batch_out_start_ = 0;
        std::vector<std::string> batch_statements_;  // statements the batch named with Parse
        // statements the batch closed or replaced, in order
        std::vector<std::pair<std::string, std::shared_ptr<ClientStatement>>> batch_replaced_;
        bool in_use() const;
    };
    std::unique_ptr<Extended> ext_;
    // An extended batch is under way (messages since the last Sync, or answers still expected).
    bool batch_open() const { return (ext_ && (ext_->batch_conn_ || ext_->held_portal_)) || !expected_.empty(); }
    Extended& ext() {
        if (!ext_) ext_ = std::make_unique<Extended>();
        return *ext_;
    }
    bool batch_failed_ = false;      // an error in this batch (the server rolls its implicit transaction back)
    std::vector<std::unique_ptr<Fill>> fills_;  // results complete, stored once the transaction is known
    void reject(const ErrorFields& e);

    Worker& worker_;
    ClientIo& io_;
    std::string& out_;  // the frontend's output buffer
    UpstreamPtr upstream_;
    SessionSettings settings_;
    SessionSettings startup_settings_;  // what RESET ALL returns to
    // cache_key_prefix() of the settings and upstream it was computed for
    std::string key_prefix_;
    uint64_t key_prefix_version_ = 0;
    uint64_t key_prefix_reloads_ = 0;
    const std::string& key_prefix();
    ToldParameters told_;  // the ParameterStatus values this client has been sent
    std::weak_ptr<ServerConnection> current_conn_;
    // The client's own upstream connection while it is in a transaction or has changed session
    // state (SET, PREPARE, WITH HOLD cursors, LISTEN); a connection that carried session state is
    // closed, never pooled again, when the client leaves.
    ConnectionPtr pinned_;
    bool session_dirty_ = false;
    PinReason dirty_reason_ = PinReason::None;  // what made session_dirty_
    PinReason pin_shown_ = PinReason::None;     // what pg_rproxy_sessions shows
    void show_pin(PinReason r);
    std::set<std::string> prepared_;  // statements this client PREPAREd (allowed by the firewall)
    char tx_status_ = 'I';
    bool listening_ = false;
    MessageLog* tap_ = nullptr;
    int32_t tap_session_ = 0;
};

}  // namespace rproxy
