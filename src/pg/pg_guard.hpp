// The error boundary between C++ and PostgreSQL.
//  - pg_call(fn): runs PostgreSQL code that may ereport(ERROR) and turns the error into a C++
//    PgError thrown after the PG_TRY frame is gone, so no longjmp crosses live C++ objects.
//    fn must not create C++ objects with destructors.
//  - invoke_cpp(fcinfo, fn): the body of every SQL-callable function; no C++ exception reaches a
//    PostgreSQL frame, and the ERROR is raised only after the C++ frame has been unwound.
#pragma once

#include <stdexcept>
#include <string>

#include "pg/server_headers.hpp"

namespace rproxy::pg {

class PgError : public std::runtime_error {
public:
    PgError(int sqlerrcode, const std::string& message, int cursorpos)
        : std::runtime_error(message), sqlerrcode(sqlerrcode), cursorpos(cursorpos) {}
    int sqlerrcode;
    int cursorpos;
};

// Copies the current error out of ErrorContext and clears it. Call in PG_CATCH.
ErrorData* take_error(MemoryContext into);
[[noreturn]] void throw_pg_error(ErrorData* edata);
// Ends a catalog read's transaction; an error aborts it instead, so the worker never keeps a
// failed one. Back in ctx afterwards.
bool commit_guarded(MemoryContext ctx);

template <class Fn>
void pg_call(Fn&& fn) {
    MemoryContext ctx = CurrentMemoryContext;
    ErrorData* volatile edata = nullptr;
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        edata = take_error(ctx);
    }
    PG_END_TRY();
    if (edata) throw_pg_error(edata);
}

// Runs body (returning Datum); converts any C++ exception into a PostgreSQL ERROR raised from
// this frame only after the try block (and every C++ object in it) is gone.
template <class Fn>
Datum invoke_cpp(Fn&& body) {
    char message[1024];
    int code = ERRCODE_INTERNAL_ERROR;
    try {
        return body();
    } catch (const PgError& e) {
        code = e.sqlerrcode;
        strlcpy(message, e.what(), sizeof message);
    } catch (const std::exception& e) {
        strlcpy(message, e.what(), sizeof message);
    } catch (...) {
        strlcpy(message, "unknown C++ exception", sizeof message);
    }
    ereport(ERROR, (errcode(code), errmsg("%s", message)));
    pg_unreachable();
}

}  // namespace rproxy::pg
