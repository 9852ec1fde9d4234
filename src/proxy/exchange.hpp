// What the proxy waits for from the upstream, in order, for the messages it forwarded, with the
// answers it gives itself (a cache hit, a statement already prepared, a Close of its own names)
// queued between them so that the client gets every answer in the order of its messages.
//
// The relay stage (stage_relay.cpp) takes the upstream's messages against the front entry; an
// ErrorResponse drops every entry up to the next Sync, as the server skips those messages.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "core/cache_types.hpp"
#include "core/statement_facts.hpp"
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
};

using ExpectedQueue = std::deque<Expected>;

}  // namespace rproxy
