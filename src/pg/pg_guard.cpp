#include "pg/pg_guard.hpp"

namespace rproxy::pg {

ErrorData* take_error(MemoryContext into) {
    MemoryContextSwitchTo(into);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    return edata;
}

void throw_pg_error(ErrorData* edata) {
    int code = edata->sqlerrcode;
    int pos = edata->cursorpos;
    std::string message = edata->message ? edata->message : "unknown error";
    FreeErrorData(edata);
    throw PgError(code, message, pos);
}

bool commit_guarded(MemoryContext ctx) {
    volatile bool ok = true;
    PG_TRY();
    {
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        FreeErrorData(take_error(ctx));
        AbortCurrentTransaction();
        ok = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(ctx);
    return ok;
}

}  // namespace rproxy::pg
