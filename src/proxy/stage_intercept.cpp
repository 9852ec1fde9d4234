// The intercept stage: pg_rproxy_rewrite_rules, then pg_rproxy.statement_hook, on the text of a
// simple Query or a Parse, before it is parsed and judged. Whatever they make of it is judged like
// any statement, so neither can let through what the firewall refuses. The hook's answers are
// never remembered: it is asked again for every statement.
#include "core/statement_hook.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace rproxy {

std::optional<ErrorFields> StatementPipeline::intercept(std::string& text, const char* protocol,
                                                       std::optional<std::string>& sent) {
    bool by_hook = false;
    sent = text;  // a copy only while something intercepts: the hook alone costs far more
    std::optional<ErrorFields> failure = intercept_now(text, protocol, by_hook);
    if (*sent == text) sent.reset();
    if (failure) {
        Verdict refused;
        refused.allowed = false;
        // The hook's NULL and the errors it raises are its way of refusing: counted with the
        // firewall's refusals (a rewrite rule that fails to run is not a refusal).
        if (by_hook) {
            refused.reason = RejectReason::StatementHook;
            worker_.stats().count_rejection(RejectReason::StatementHook);
        }
        observe_refusal(text, parse(text), refused, *failure,
                        protocol[0] == 's' ? StatementProtocol::Simple : StatementProtocol::Extended,
                        sent ? &*sent : nullptr);
    }
    return failure;
}

std::optional<ErrorFields> StatementPipeline::intercept_now(std::string& text, const char* protocol, bool& by_hook) {
    StatementInterceptor& host = worker_.host();
    std::optional<ErrorFields> failure;
    host.rewrite(upstream().name(), text, failure);
    if (failure || !host.hook_set()) return failure;
    ClientIdentity who = io_.identity();
    const std::string* app = settings_.get("application_name");
    HookContext context{who.role, who.database, who.server_name, upstream().name(), who.client_address,
                        app ? std::string_view(*app) : std::string_view(), protocol};
    HookAnswer answer = host.call_statement_hook(text, hook_context_json(context));
    by_hook = true;
    if (answer.error) return answer.error;
    if (!answer.statement) return hook_refusal();
    text = std::move(*answer.statement);
    return std::nullopt;
}

const std::string* StatementPipeline::intercept_query(const std::string& received) {
    if (!worker_.host().intercepting()) {
        sent_text_.reset();
        return &received;
    }
    intercepted_ = received;
    std::optional<ErrorFields> failure = intercept(intercepted_, "simple", sent_text_);
    if (!failure) return &intercepted_;
    reject(*failure);
    return nullptr;
}

}  // namespace rproxy
