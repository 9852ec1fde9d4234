// The firewall's answer for one query string, per statement and as a whole. Produced by
// core/firewall_policy from the parser's facts; consumed by client sessions and by the SQL function
// pg_rproxy_classify, so both always agree.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <vector>

namespace rproxy {

enum class RejectReason { None, StatementKind, Setting, VolatileFunction, DeniedFunction, UnknownFunction,
                          SyntaxError, FastPath, UnknownPreparedStatement, SideEffectFunction };
const char* reject_reason_name(RejectReason r);
constexpr int kRejectReasonCount = 10;

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
    bool cacheable = false;  // every statement cacheable
};

}  // namespace rproxy
