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

}  // namespace rproxy::pg
