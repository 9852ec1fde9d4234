// Stage "relay and capture": the upstream's messages go to the client as the server sent them,
// byte for byte, and into the cache capture of the statement they answer. They are taken against
// the queue of what was forwarded (exchange.hpp), so the proxy knows where each answer ends, which
// answers are its own to swallow, and where its own answers go in between.
#include <sys/socket.h>

#include <cerrno>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {
constexpr std::size_t kFlushThreshold = 64 * 1024;
constexpr std::size_t kCopySendThreshold = 64 * 1024;
}  // namespace

void StatementPipeline::queue_local(std::string bytes) {
    if (expected_.empty()) {
        if (!discard_until_sync_) out_ += bytes;
        return;
    }
    Expected e;
    e.kind = Expected::Kind::Local;
    e.local = std::move(bytes);
    expected_.push_back(std::move(e));
}

void StatementPipeline::emit_local_answers() {
    while (!expected_.empty() && expected_.front().kind == Expected::Kind::Local) {
        out_ += expected_.front().local;
        expected_.pop_front();
    }
}

// The server skips every message up to Sync after an error: so does the queue. Statements whose
// Parse was skipped are not prepared on the connection, nor known to the client.
void StatementPipeline::drop_until_sync(const ConnectionPtr& conn) {
    while (!expected_.empty() && expected_.front().kind != Expected::Kind::Sync) {
        Expected& e = expected_.front();
        if (!e.prepared_key.empty()) conn->forget_prepared(e.prepared_key);
        if (e.statement_id && ext_) {
            auto it = ext_->statements_.find(e.client_statement);
            if (it != ext_->statements_.end() && it->second.get() == e.statement_id) ext_->statements_.erase(it);
        }
        if (e.fill) fills_.push_back(std::move(e.fill));
        expected_.pop_front();
    }
}

void StatementPipeline::relay_rows(std::string_view run, uint64_t rows, Fill* fill) {
    out_.append(run);
    if (!fill) return;
    Capture& c = fill->capture;
    c.rows += rows;
    if (c.overflowed) return;
    if (c.bytes.size() + run.size() > c.limit) {
        c.overflowed = true;
        std::string().swap(c.bytes);
        return;
    }
    c.bytes.append(run);
}

void StatementPipeline::relay_message(char type, std::string_view body, Fill* fill) {
    std::size_t before = out_.size();
    protocol::append_message(out_, type, body);
    if (!fill) return;
    Capture& c = fill->capture;
    if (type == 'D') ++c.rows;
    if (type == 'E') c.error = true;
    if (c.overflowed) return;
    std::size_t added = out_.size() - before;
    if (c.bytes.size() + added > c.limit) {
        c.overflowed = true;
        std::string().swap(c.bytes);
        return;
    }
    c.bytes.append(out_, before, added);
}

asio::awaitable<StatementPipeline::Outcome> StatementPipeline::relay(const ConnectionPtr& conn, bool until_ready) {
    using Kind = Expected::Kind;
    current_conn_ = conn;
    io_.watch_while_busy(conn);
    Outcome outcome = Outcome::Drained;
    for (;;) {
        emit_local_answers();
        if (expected_.empty()) break;
        Expected& head = expected_.front();
        if (head.kind == Expected::Kind::Query || head.kind == Expected::Kind::Execute) {
            // Rows, the bulk of most results: every whole DataRow received goes on in one copy.
            uint64_t rows = 0;
            std::string_view run = conn->data_rows(rows);
            if (!run.empty()) {
                relay_rows(run, rows, head.fill.get());
                if (head.observed) head.observed->data_rows += rows;
                if (out_.size() >= kFlushThreshold) {
                    flushed_since_start_ = true;
                    if (!co_await io_.flush()) {
                        outcome = Outcome::ClientGone;
                        break;
                    }
                }
                continue;
            }
        }
        std::optional<protocol::BackendMessage> m;
        try {
            m = conn->next_buffered();
        } catch (const protocol::ProtocolError&) {
            conn->mark_broken();
            outcome = Outcome::Lost;
            break;
        }
        if (!m) {
            // Everything received so far is handled: the client gets it before the proxy waits.
            if (!out_.empty()) {
                flushed_since_start_ = true;
                if (!io_.write_now() && !co_await io_.flush()) {
                    outcome = Outcome::ClientGone;
                    break;
                }
            }
            m = co_await conn->next();
            if (io_.gone()) {
                outcome = Outcome::ClientGone;
                break;
            }
            if (!m) {
                conn->mark_broken();
                outcome = Outcome::Lost;
                break;
            }
        }
        Expected& f = expected_.front();
        const char type = m->type;
        bool protocol_violation = false;
        switch (type) {
            case 'N': case 'A':
                protocol::append_message(out_, type, m->body);
                break;
            case 'S':
                break;  // noted by the connection; the client is told at finish (track_settings)
            case 'Z':
                if (f.kind == Kind::Sync || f.kind == Kind::Query || f.kind == Kind::FunctionCall) {
                    // Before the client sees it: a commit of writes is confirmed here.
                    if (writes_ && writes_->pending())
                        writes_->ready(protocol::decode_ready_for_query(m->body), batch_failed_);
                    if (f.fill) {
                        f.fill->complete = true;  // a simple Query's result ends here (an error marks its capture)
                        fills_.push_back(std::move(f.fill));
                    }
                    expected_.pop_front();
                    outcome = Outcome::Ready;
                } else {
                    protocol_violation = true;
                }
                break;
            case 'E':
                if (conn->broken() && !flushed_since_start_ && conn != pinned_) {
                    // A FATAL goodbye (the server shutting down, the backend terminated) before the
                    // client saw anything, on a connection it does not hold: lost, and may be retried.
                    outcome = Outcome::Lost;
                    break;
                }
                relay_message(type, m->body, f.fill.get());
                observe_answer(f, type, m->body);
                batch_failed_ = true;
                if (f.kind == Kind::Query || f.kind == Kind::FunctionCall) break;
                drop_until_sync(conn);  // the failed message's entry included
                discard_until_sync_ = true;  // and the client's next messages, up to its Sync
                break;
            case '1': case '2': case '3': {
                Kind want = type == '1' ? Kind::Parse : type == '2' ? Kind::Bind : Kind::Close;
                if (f.kind != want) {
                    protocol_violation = true;
                    break;
                }
                if (!f.swallow) protocol::append_message(out_, type, m->body);
                expected_.pop_front();
                break;
            }
            case 't':
                if (f.kind != Kind::Describe) {
                    protocol_violation = true;
                    break;
                }
                if (f.describe_into) protocol::append_message(f.describe_into->parameters, type, m->body);
                if (!f.swallow) protocol::append_message(out_, type, m->body);
                break;
            case 'T': case 'n':
                if (f.kind == Kind::Describe) {
                    if (f.describe_into) {
                        protocol::append_message(f.describe_into->rows, type, m->body);
                        if (!f.remember_as.empty() && f.describe_into->complete())
                            worker_.remember_description(f.remember_as, f.describe_into);
                    }
                    if (!f.swallow) protocol::append_message(out_, type, m->body);
                    expected_.pop_front();
                } else {
                    relay_message(type, m->body, f.fill.get());
                }
                break;
            case 'C': case 'I': case 's':
                if (type == 'C' && writes_ && writes_->pending()) {
                    std::string_view tag = m->body;
                    if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
                    writes_->command_complete(tag);
                }
                relay_message(type, m->body, f.fill.get());
                observe_answer(f, type, m->body);
                if (f.kind == Kind::Execute) {
                    if (f.fill) {
                        f.fill->complete = type != 's';
                        fills_.push_back(std::move(f.fill));
                    }
                    expected_.pop_front();
                }
                break;
            case 'G':
                protocol::append_message(out_, type, m->body);
                outcome = Outcome::CopyIn;
                break;
            case 'D': case 'd': case 'c': case 'H': case 'W': case 'V':
                relay_message(type, m->body, f.fill.get());
                if (type == 'D' && f.observed) ++f.observed->data_rows;  // (runs of whole rows: above)
                break;
            default:
                protocol_violation = true;  // authentication or key data mid-session: not a server we trust
                break;
        }
        if (protocol_violation) {
            conn->mark_broken();
            outcome = Outcome::Lost;
            break;
        }
        if (outcome == Outcome::Lost) break;
        if (outcome == Outcome::Ready) {
            if (until_ready) break;
            outcome = Outcome::Drained;
        }
        if (outcome == Outcome::CopyIn) break;
        if (out_.size() >= kFlushThreshold) {
            // Awaiting the client here is the back-pressure: upstream is not read meanwhile.
            flushed_since_start_ = true;
            if (!co_await io_.flush()) {
                outcome = Outcome::ClientGone;
                break;
            }
        }
    }
    io_.stop_watching();
    current_conn_.reset();
    if (outcome == Outcome::Lost) upstream_->connection_lost(*conn);
    co_return outcome;
}

// COPY FROM STDIN (read-write upstreams; the firewall refuses it on read-only ones): the client's
// CopyData go upstream as they come, until CopyDone or CopyFail. Anything else ends the copy with
// CopyFail, as the server would end it with an error. In the extended protocol the server ignores
// Sync and Flush during the copy and waits for the Sync that follows CopyDone: those are forwarded
// too, up to that Sync, whose ReadyForQuery the relay then waits for.
asio::awaitable<bool> StatementPipeline::pump_copy_in(const ConnectionPtr& conn, bool extended) {
    flushed_since_start_ = true;
    bool copying = true;
    if (!co_await io_.flush()) {
        protocol::append_copy_fail(conn->output(), "the client disconnected during COPY");
        co_await conn->send();
        co_return false;
    }
    for (;;) {
        auto msg = co_await io_.next_message();
        if (!msg) {
            if (copying) protocol::append_copy_fail(conn->output(), "the client disconnected during COPY");
            co_await conn->send();
            co_return false;
        }
        char type = msg->type;
        if (!copying) {
            protocol::append_message(conn->output(), type, msg->body);
            if (type == 'S') {
                co_await conn->send();
                co_return true;
            }
            continue;
        }
        switch (type) {
            case 'd':
                protocol::append_message(conn->output(), 'd', msg->body);
                if (conn->output().size() >= kCopySendThreshold && !co_await conn->send()) co_return true;
                break;
            case 'c': case 'f':
                protocol::append_message(conn->output(), type, msg->body);
                if (!extended) {
                    co_await conn->send();
                    co_return true;
                }
                copying = false;
                break;
            case 'H': case 'S':
                if (extended) protocol::append_message(conn->output(), type, msg->body);
                break;  // ignored during COPY, as the server does
            default:
                protocol::append_copy_fail(conn->output(), std::string("unexpected message type '") + type +
                                                               "' during COPY from stdin");
                if (!extended) {
                    co_await conn->send();
                    co_return true;
                }
                copying = false;
                break;
        }
    }
}

// relay(), with COPY FROM STDIN passed through wherever it starts.
asio::awaitable<StatementPipeline::Outcome> StatementPipeline::relay_all(const ConnectionPtr& conn, bool until_ready,
                                                                         bool extended) {
    Outcome outcome = co_await relay(conn, until_ready);
    while (outcome == Outcome::CopyIn) {
        if (extended && !until_ready) {
            // Drained before the client's Sync (a Flush, a long pipeline): the Sync that ends the
            // copy would be read by the pump, not by the batch. Refused, as the server refuses a
            // copy it cannot finish.
            protocol::append_copy_fail(conn->output(), "pg_rproxy: COPY FROM STDIN must be followed by Sync, not Flush");
            if (!co_await conn->send()) co_return Outcome::Lost;
            outcome = co_await relay(conn, until_ready);
            continue;
        }
        if (!co_await pump_copy_in(conn, extended)) io_.mark_gone();
        if (io_.gone()) co_return Outcome::ClientGone;
        outcome = co_await relay(conn, until_ready);
    }
    co_return outcome;
}

}  // namespace rproxy
