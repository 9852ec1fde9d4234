// Re-encodes what libpq hands back (PGresult objects, possibly one row at a time) into the exact
// backend messages the upstream sent: RowDescription once per statement, DataRows, CommandComplete,
// EmptyQueryResponse, ErrorResponse with every field.
#pragma once
#include "core/pure_layer.hpp"

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rproxy {

class ResultRelay {
public:
    // describe_rows = false for Execute in the extended protocol: the client got the
    // RowDescription from Describe, the server sends none with the rows.
    explicit ResultRelay(std::string& out, bool describe_rows = true) : out_(out), describe_rows_(describe_rows) {}

    enum class Step {
        Next,         // take the next result
        CopyOut,      // CopyOutResponse sent: relay PQgetCopyData chunks, then copy_done()
        Unsupported,  // a result kind the gateway does not relay (COPY IN, pipeline states)
    };
    // Appends the messages for r.
    Step relay(const PGresult* r);
    void copy_data(const char* data, int len);
    void copy_done();

    // Also keep a copy of every message relayed (for the result cache), up to limit bytes; past
    // that the copy is dropped and overflowed() tells.
    void capture_into(std::string* capture, std::size_t limit) {
        capture_ = capture;
        capture_limit_ = limit;
    }
    bool overflowed() const { return overflowed_; }

    // Columns to send in binary although the upstream sent text: the type OID per column, 0 to keep
    // the text. A value that cannot be encoded stops the rows; conversion_failed() names its type.
    void encode_binary(const std::vector<uint32_t>* types) { binary_types_ = types; }
    uint32_t conversion_failed() const { return conversion_failed_; }
    uint64_t rows() const { return rows_; }

    bool saw_error() const { return saw_error_; }
    uint64_t results() const { return results_; }

private:
    Step relay_one(const PGresult* r);
    void row_description(const PGresult* r);
    void data_row(const PGresult* r, int row);

    std::string& out_;
    bool describe_rows_;
    bool described_ = false;  // RowDescription already sent for the statement in progress
    bool saw_error_ = false;
    uint64_t results_ = 0;
    uint64_t rows_ = 0;
    std::string* capture_ = nullptr;
    std::size_t capture_limit_ = 0;
    bool overflowed_ = false;
    const std::vector<uint32_t>* binary_types_ = nullptr;
    uint32_t conversion_failed_ = 0;
};

void append_notice(std::string& out, const PGresult* notice);

// RowDescription of a result (or of PQdescribePrepared), with the format codes a Bind asked for:
// none = all text, one = all columns, otherwise one per column.
void append_row_description(std::string& out, const PGresult* r, const std::vector<int16_t>& formats);

}  // namespace rproxy
