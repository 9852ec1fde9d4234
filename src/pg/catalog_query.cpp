#include "pg/catalog_query.hpp"

#include "pg/pg_guard.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
}

namespace rproxy::pg {

namespace {

// Plain C, filled inside PG_TRY: no C++ object lives in that frame.
struct RawQuery {
    const char* sql;
    int nargs;
    Oid* types;
    Datum* values;
    char* nulls;
    bool read_only;
};

struct RawRows {
    int nrows;
    int ncols;
    char** cells;  // row-major, in TopTransactionContext; NULL = SQL NULL
};

char* run_guarded(int n, RawQuery* queries, RawRows* out, MemoryContext ctx) {
    char* volatile failure = nullptr;
    PG_TRY();
    {
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        // The loop waits for these: a lock held on a routing table, or a slow router, must not
        // stall the worker's other clients for long.
        SPI_execute("SET LOCAL lock_timeout = '1s'; SET LOCAL statement_timeout = '5s'", false, 0);
        for (int q = 0; q < n; q++) {
            RawQuery* rq = &queries[q];
            for (int a = 0; a < rq->nargs; a++)
                if (rq->nulls[a] != 'n') rq->values[a] = CStringGetTextDatum(DatumGetPointer(rq->values[a]));
            int rc = SPI_execute_with_args(rq->sql, rq->nargs, rq->types, rq->values, rq->nulls, rq->read_only, 0);
            if (rc < 0) elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
            int nrows = SPI_tuptable ? static_cast<int>(SPI_processed) : 0;
            int ncols = SPI_tuptable ? SPI_tuptable->tupdesc->natts : 0;
            out[q].nrows = nrows;
            out[q].ncols = ncols;
            out[q].cells = static_cast<char**>(
                MemoryContextAllocZero(TopTransactionContext, sizeof(char*) * (static_cast<Size>(nrows) * ncols + 1)));
            for (int r = 0; r < nrows; r++)
                for (int c = 0; c < ncols; c++) {
                    char* v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
                    out[q].cells[r * ncols + c] = v ? MemoryContextStrdup(TopTransactionContext, v) : nullptr;
                }
        }
        SPI_finish();
        PopActiveSnapshot();
    }
    PG_CATCH();
    {
        ErrorData* e = take_error(ctx);
        failure = MemoryContextStrdup(ctx, e->message ? e->message : "unknown error");
        FreeErrorData(e);
        AbortCurrentTransaction();
        MemoryContextSwitchTo(ctx);
    }
    PG_END_TRY();
    return failure;
}

}  // namespace

CatalogResult run_catalog_queries(const std::vector<CatalogQuery>& queries) {
    CatalogResult result;
    MemoryContext ctx = CurrentMemoryContext;
    std::size_t n = queries.size();
    std::vector<RawQuery> raw(n);
    std::vector<std::vector<Oid>> types(n);
    std::vector<std::vector<Datum>> values(n);
    std::vector<std::string> nulls(n);
    for (std::size_t q = 0; q < n; ++q) {
        const auto& params = queries[q].params;
        types[q].assign(params.size() + 1, TEXTOID);
        values[q].assign(params.size() + 1, Datum(0));
        nulls[q].assign(params.size(), ' ');
        for (std::size_t a = 0; a < params.size(); ++a) {
            if (params[a]) values[q][a] = PointerGetDatum(params[a]->c_str());  // made text in the transaction
            else nulls[q][a] = 'n';
        }
        raw[q] = RawQuery{queries[q].sql.c_str(), static_cast<int>(params.size()), types[q].data(), values[q].data(),
                          nulls[q].data(), queries[q].read_only};
    }
    std::vector<RawRows> rows(n, RawRows{0, 0, nullptr});
    if (char* failure = run_guarded(static_cast<int>(n), raw.data(), rows.data(), ctx)) {
        result.error = failure;
        pfree(failure);
        return result;
    }
    result.results.resize(n);
    for (std::size_t q = 0; q < n; ++q) {
        for (int r = 0; r < rows[q].nrows; ++r) {
            CatalogRow row;
            for (int c = 0; c < rows[q].ncols; ++c) {
                const char* v = rows[q].cells[r * rows[q].ncols + c];
                row.push_back(v ? std::optional<std::string>(v) : std::nullopt);
            }
            result.results[q].push_back(std::move(row));
        }
    }
    if (!commit_guarded(ctx)) {
        result.results.clear();
        result.error = "could not commit the catalog read";
    }
    return result;
}

std::optional<std::string> quoted_qualified_name(const std::string& name) {
    MemoryContext ctx = CurrentMemoryContext;
    char* volatile quoted = nullptr;
    const char* text = name.c_str();
    PG_TRY();
    {
        List* names = stringToQualifiedNameList(text);
        quoted = NameListToQuotedString(names);
    }
    PG_CATCH();
    {
        FreeErrorData(take_error(ctx));
        MemoryContextSwitchTo(ctx);
    }
    PG_END_TRY();
    if (!quoted) return std::nullopt;
    std::string out = quoted;
    pfree(quoted);
    return out;
}

}  // namespace rproxy::pg
