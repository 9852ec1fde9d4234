// What one statement did, as the observers after the pipeline's finish stage see it: the audit
// log, the pg_rproxy_statements statistics and the Prometheus counters. Filled by the pipeline
// as the statement passes its stages; handed to Worker::statement_done() once its answer is
// complete (ReadyForQuery for a simple Query, CommandComplete/ErrorResponse of an Execute).
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/cache_types.hpp"
#include "core/verdict.hpp"

namespace rproxy {

enum class CacheOutcome : uint8_t { Hit, Miss, Uncacheable };
enum class StatementProtocol : uint8_t { Simple, Extended };

struct StatementRecord {
    std::chrono::steady_clock::time_point started;
    double duration_ms = 0;
    StatementProtocol protocol = StatementProtocol::Simple;
    // The text that was judged (after rewrite rules and the statement hook) and its normalised
    // form (literals replaced by placeholders; empty when the text did not parse).
    std::string_view statement;
    std::string_view normalized;
    // The text as the client sent it, when rewrite rules or the hook changed it.
    std::optional<std::string_view> sent;
    uint64_t digest = 0;  // a hash of normalized; 0: none made yet
    bool refused = false;
    RejectReason reason = RejectReason::None;  // why it was refused
    std::string_view refusal_sqlstate;          // the refusal's SQLSTATE (25006, 42501, ...)
    std::string_view refusal_message;
    CacheOutcome cache = CacheOutcome::Uncacheable;
    // When cache == Uncacheable: uncacheable_name() of the reason, or "not_a_read".
    std::string_view uncacheable_reason;
    uint64_t rows = 0;
    // The final SQLSTATE: "00000" when it succeeded, else the ErrorResponse's code.
    std::string_view sqlstate = "00000";
};

}  // namespace rproxy
