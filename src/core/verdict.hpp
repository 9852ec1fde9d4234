// The firewall's answer for one query string, per statement and as a whole. Produced by
// core/firewall_policy from the parser's facts; consumed by client sessions and by the SQL function
// pg_rproxy_classify, so both always agree.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <vector>

namespace rproxy {

enum class RejectReason { None, StatementKind, Setting, VolatileFunction, DeniedFunction, UnknownFunction,
                          SyntaxError, FastPath, UnknownPreparedStatement, SideEffectFunction, StatementHook };
const char* reject_reason_name(RejectReason r);
constexpr int kRejectReasonCount = 11;

struct StatementVerdict {
    std::string kind;
    bool allowed = false;
    bool cacheable = false;  // deterministic: only immutable functions, nothing time- or user-dependent
    std::string reason;      // why it was rejected
};

struct Verdict {
    bool allowed = false;
    std::vector<StatementVerdict> statements;
    std::string sqlstate;   // empty when allowed
    std::string message;    // client-facing message of the first rejection
    int position = 0;       // 1-based character position for syntax errors, 0 if none
    RejectReason reason = RejectReason::None;
    // Functions that are not gateway built-ins and whose upstream volatility is not known yet: the
    // caller looks them up on the upstream and evaluates again.
    std::vector<std::string> pending_functions;  // FunctionRef::key()
    bool session_state = false;
    std::string state_reason;  // the first statement's StatementFacts::state_reason
    bool cacheable = false;  // every statement cacheable
    // Read-write upstreams only: the statements may change data (not to be run twice), the
    // relations they write as named, and whether they may write what the text does not show.
    bool writes = false;
    bool writes_unseen = false;
    bool changes_definitions = false;  // DDL: what the proxy learnt about relations may change
    std::vector<std::string> written;
    bool unparsed = false;  // the gateway's parser refused it: forwarded as it is
};

}  // namespace rproxy
