// What the proxy waits for from the upstream, in order, for the messages it forwarded, with the
// answers it gives itself (a cache hit, a statement already prepared, a Close of its own names)
// queued between them so that the client gets every answer in the order of its messages.
//
// The relay stage (stage_relay.cpp) takes the upstream's messages against the front entry; an
// ErrorResponse drops every entry up to the next Sync, as the server skips those messages.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstdint>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "core/cache_types.hpp"
#include "core/statement_facts.hpp"
#include "core/statement_record.hpp"
#include "proxy/statement_description.hpp"

namespace rproxy {

// A result being copied for the cache while it is relayed.
struct Capture {
    std::string bytes;
    std::size_t limit = 0;
    bool overflowed = false;
    bool error = false;
    uint64_t rows = 0;
};

// A cache entry this client fills with the result of one statement.
struct Fill {
    CacheKey key;
    uint64_t id = 0;
    int ttl = 0;
    std::string sql;
    std::shared_ptr<const ParsedQuery> parsed;
    Capture capture;
    bool complete = false;  // the statement ran to its end
    // core/relation_generations: the counters the result depends on, and their sum before the
    // statement was sent.
    std::vector<uint32_t> generation_buckets;
    uint64_t generation_sum = 0;
    std::string caller_key;  // a parameter hook's CACHE_KEY
    // The second level (proxy/l2_cache): what this fill stores in Redis, and under which versions.
    struct L2 {
        bool active = false;  // the lookup answered: the result may be stored
        bool owner = false;   // this client holds the fill lock
        std::string entry, lock, token;
        std::vector<std::string> version_keys, versions, sets;
    } l2;
};

// One statement on its way through the pipeline, for the observers (stage_observe.cpp): made when
// it is judged or executed, completed by the relay, handed to Worker::statement_done().
struct Observed {
    std::chrono::steady_clock::time_point started;
    const std::string* sql = nullptr;
    const std::string* sent = nullptr;  // the client's text, when rules or the hook changed it
    std::shared_ptr<const void> keeps_sql;  // an extended statement's text outlives its Close
    std::shared_ptr<const ParsedQuery> parsed;
    StatementProtocol protocol = StatementProtocol::Simple;
    CacheOutcome cache = CacheOutcome::Uncacheable;
    const char* uncacheable = "not_a_read";
    uint64_t rows = 0;
    uint64_t data_rows = 0;  // an Execute's DataRows: its rows when it ends with PortalSuspended (no tag)
    char sqlstate[6] = {'0', '0', '0', '0', '0', '\0'};
};

struct Expected {
    enum class Kind : uint8_t {
        Local,         // bytes of the proxy's own answer
        Query,         // simple Query: everything up to ReadyForQuery
        FunctionCall,  // fast path: FunctionCallResponse or an error, then ReadyForQuery
        Parse,         // ParseComplete
        Bind,          // BindComplete
        Describe,      // [ParameterDescription] then RowDescription or NoData
        Execute,       // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
        Close,         // CloseComplete
        Sync,          // ReadyForQuery
    };
    Kind kind = Kind::Local;
    bool swallow = false;  // sent on the proxy's own behalf: the client does not see the answer
    std::string local;     // Kind::Local
    // Parse: the key under which the statement is registered on the connection, forgotten again
    // if the server does not prepare it.
    std::string prepared_key;
    // Parse of a client's statement: forgotten by the client too if the server refuses it (the
    // name, and which statement of that name).
    std::string client_statement;
    const void* statement_id = nullptr;
    // Describe sent to learn a statement's description: filled here, and remembered by the worker
    // under remember_as.
    std::shared_ptr<StatementDescription> describe_into;
    std::string remember_as;
    // Execute or Query whose result goes into the cache.
    std::unique_ptr<Fill> fill;
    // Execute or Query of a statement the session must look at afterwards (settings, LISTEN...).
    std::shared_ptr<const ParsedQuery> parsed;
    // Execute: the statement as the observers see it (null when nothing observes).
    std::unique_ptr<Observed> observed;
};

// A FIFO that holds no memory until used (a deque allocates at construction: 600 bytes for each
// idle client), and gives its memory back once empty after a long pipeline.
class ExpectedQueue {
public:
    bool empty() const { return head_ == items_.size(); }
    std::size_t size() const { return items_.size() - head_; }
    // Valid until the next push_back.
    Expected& front() { return items_[head_]; }
    void push_back(Expected e) { items_.push_back(std::move(e)); }
    void pop_front() {
        items_[head_] = Expected();
        if (++head_ == items_.size()) clear();
    }
    void clear() {
        if (items_.capacity() > 64) std::vector<Expected>().swap(items_);
        else items_.clear();
        head_ = 0;
    }
    void shrink_if_empty() {
        if (empty()) {
            std::vector<Expected>().swap(items_);
            head_ = 0;
        }
    }
    std::vector<Expected>::iterator begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    std::vector<Expected>::iterator end() { return items_.end(); }

private:
    std::vector<Expected> items_;
    std::size_t head_ = 0;
};

}  // namespace rproxy
