// pg_rproxy.statement_hook in a worker: the function it names, resolved once per configuration
// reload, called for each statement in a transaction of its own on the loop's thread.
#pragma once

#include <string>

#include "core/statement_hook.hpp"

namespace rproxy::pg {

void define_statement_hook_guc();

class StatementHook {
public:
    // The setting names a function.
    bool set() const;
    // After a reload: the name is looked up again at the next call.
    void forget() { resolved_ = false; }
    HookAnswer call(const std::string& sql, const std::string& context);

private:
    HookAnswer unusable(std::string problem);
    unsigned int function_ = 0;  // its oid once resolved
    bool resolved_ = false;
    std::string problem_;  // why the setting names no usable function (logged once per reload)
};

}  // namespace rproxy::pg
