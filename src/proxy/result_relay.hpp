// Re-encodes what libpq hands back (PGresult objects, possibly one row at a time) into the exact
// backend messages the upstream sent: RowDescription once per statement, DataRows, CommandComplete,
// EmptyQueryResponse, ErrorResponse with every field.
#pragma once
#include "core/pure_layer.hpp"

#include <libpq-fe.h>

#include <cstdint>
#include <string>

namespace rproxy {

class ResultRelay {
public:
    explicit ResultRelay(std::string& out) : out_(out) {}

    enum class Step {
        Next,         // take the next result
        CopyOut,      // CopyOutResponse sent: relay PQgetCopyData chunks, then copy_done()
        Unsupported,  // a result kind the gateway does not relay (COPY IN, pipeline states)
    };
    // Appends the messages for r.
    Step relay(const PGresult* r);
    void copy_data(const char* data, int len);
    void copy_done();

    bool saw_error() const { return saw_error_; }
    uint64_t results() const { return results_; }

private:
    void row_description(const PGresult* r);
    void data_row(const PGresult* r, int row);

    std::string& out_;
    bool described_ = false;  // RowDescription already sent for the statement in progress
    bool saw_error_ = false;
    uint64_t results_ = 0;
};

void append_notice(std::string& out, const PGresult* notice);

}  // namespace rproxy
