// Why a client holds its upstream connection between statements (pg_rproxy_sessions.pinned).
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string_view>

namespace rproxy {

enum class PinReason : uint8_t {
    None, Transaction, SessionPoolMode, Prepare, Listen, HoldCursor, TemporaryTable, AdvisoryLock, Setting,
    Opaque,  // DO, CALL, a function of the upstream's own, a fast-path call, unparsed text: may leave anything
};

inline const char* pin_reason_name(PinReason r) {
    switch (r) {
        case PinReason::None: return "";
        case PinReason::Transaction: return "transaction";
        case PinReason::SessionPoolMode: return "pool_mode session";
        case PinReason::Prepare: return "PREPARE";
        case PinReason::Listen: return "LISTEN";
        case PinReason::HoldCursor: return "cursor WITH HOLD";
        case PinReason::TemporaryTable: return "temporary table";
        case PinReason::AdvisoryLock: return "advisory lock";
        case PinReason::Setting: return "SET";
        case PinReason::Opaque: return "unseen session state";
    }
    return "";
}

// StatementFacts::state_reason as a PinReason (the parser's words for what a statement leaves).
inline PinReason pin_reason_of(std::string_view state_reason) {
    if (state_reason == "PREPARE") return PinReason::Prepare;
    if (state_reason == "LISTEN") return PinReason::Listen;
    if (state_reason == "cursor WITH HOLD") return PinReason::HoldCursor;
    if (state_reason == "temporary table") return PinReason::TemporaryTable;
    if (state_reason == "advisory lock") return PinReason::AdvisoryLock;
    if (state_reason == "unseen session state") return PinReason::Opaque;
    return PinReason::Setting;  // SET FROM CURRENT, set_config(), session characteristics, RESET ROLE
}

}  // namespace rproxy
