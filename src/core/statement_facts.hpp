// What the parser layer learns about each statement of a query string: everything the firewall
// policy needs, as plain data. Produced in the pg layer from the raw parse tree; judged by the pure
// policy (core/firewall_policy), so the decision logic is testable without a server.
#pragma once
#include "core/pure_layer.hpp"
#include "core/shared_list.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rproxy {

// Volatility as in pg_proc.provolatile, plus "not a gateway built-in: ask the upstream".
enum class Volatility : char { Immutable = 'i', Stable = 's', Volatile = 'v', NotBuiltin = '?', Missing = 'u' };

struct FunctionRef {
    std::string schema;  // "" when unqualified
    std::string name;
    int nargs = -1;      // arguments at the call site; -1 when unknown
    Volatility volatility = Volatility::NotBuiltin;  // worst over all overloads
    std::string display() const { return (schema.empty() ? name : schema + "." + name) + "()"; }
    std::string key() const { return schema + "." + name + "/" + std::to_string(nargs); }
};

// Whether a pg_proc candidate can take a call with nargs arguments (defaults, VARIADIC).
inline bool arity_matches(int nargs, int pronargs, int pronargdefaults, bool variadic) {
    if (nargs < 0) return true;
    if (variadic) return nargs >= pronargs - 1 - pronargdefaults;
    return nargs <= pronargs && nargs >= pronargs - pronargdefaults;
}

struct StatementFacts {
    std::string kind;          // command name, e.g. "SELECT", "INSERT", "SET", "BEGIN"
    std::string write_kind;    // non-empty: a write or unsupported construct, e.g. "SELECT INTO", "DELETE"
    std::string setting_error; // non-empty: a forbidden setting change, already worded
    std::vector<FunctionRef> functions;  // functions that would execute
    std::vector<std::string> settings;   // settings changed (SET, RESET, set_config), lower case
    bool time_dependent = false;  // CURRENT_TIMESTAMP, CURRENT_USER and the other SQLValueFunctions
    bool session_state = false;   // leaves state on the upstream session (SET, PREPARE, WITH HOLD, LISTEN)
    std::string state_reason;     // what that state is, for pg_rproxy_sessions.pinned
    bool transaction_control = false;
    bool read_write_transaction = false;  // BEGIN / SET TRANSACTION ... READ WRITE
    // What it writes, for the cache's invalidation on read-write upstreams: relations as named
    // ("schema.name" or "name"), and whether it has effects the text does not show (DO, CALL,
    // EXECUTE, DDL of functions, privileges, policies...).
    std::vector<std::string> written;
    bool unseen_write = false;
    std::string prepare_name;     // PREPARE name
    std::string execute_name;     // EXECUTE name
    std::string deallocate_name;  // DEALLOCATE name
    bool deallocate_all = false;  // DEALLOCATE ALL, DISCARD ALL
    // Session settings this statement sets (value) or resets (nullopt), when they can be tracked
    // by the proxy instead of pinning the client to its connection; reset_all for RESET ALL.
    std::vector<std::pair<std::string, std::optional<std::string>>> setting_changes;
    bool reset_all = false;
};

// What the server's scanner alone makes of a query string, far cheaper than the grammar.
struct ScannedQuery {
    bool ok = false;  // false: the scanner rejected the string (the parser reports why)
    // The whole string as the cache keys it: tokens from the server's scanner, comments and
    // whitespace dropped, keywords and unquoted identifiers in one case, literals kept.
    std::string normalized;
    // The same tokens with every literal replaced by a placeholder of its token kind. Strings of
    // one shape get the same parse tree but for the literals' values, so the same facts unless
    // the walk read a literal (ParsedQuery::literal_facts). Empty when a literal can change a name
    // (Unicode escapes with UESCAPE), so the string has no shape.
    std::string shape;
};

struct ParsedQuery {
    SharedList<StatementFacts> statements;
    std::string normalized;  // ScannedQuery::normalized
    // normalized with its literals numbered $1, $2... as pg_rproxy_statements and the audit log show
    // it (shared by every string of the shape); null when the string has no shape.
    std::shared_ptr<const std::string> shown_shape;
    uint64_t shape_digest = 0;  // a hash of shown_shape, made with it
    SharedList<std::string> relations;  // tables/views named, "schema.name" or "name"
    bool reads_catalog = false;          // names pg_catalog or information_schema relations
    bool temp_relation = false;          // names pg_temp relations
    // A syntax (or other parser) error: answered by the gateway as the server would.
    std::optional<std::string> error_sqlstate;
    std::string error_message;
    int error_position = 0;
    // Some fact was read from a literal's value (a set_config name, a SET value, an EXPLAIN
    // option, a transaction mode): another string of the same shape may differ in its facts.
    bool literal_facts = false;
    // When these facts were taken from an earlier string of the same shape: that string's parse,
    // under which the firewall's verdict is remembered (see StatementMemo).
    std::shared_ptr<const ParsedQuery> same_facts_as;
    const ParsedQuery* facts_identity() const { return same_facts_as ? same_facts_as.get() : this; }
};

}  // namespace rproxy
