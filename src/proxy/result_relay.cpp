#include "proxy/result_relay.hpp"

#include "protocol/backend_messages.hpp"
#include "protocol/binary_from_text.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/upstream_connection.hpp"

namespace rproxy {

using protocol::MessageWriter;

ResultRelay::Step ResultRelay::relay(const PGresult* r) {
    std::size_t before = out_.size();
    Step step = relay_one(r);
    if (capture_) {
        std::size_t added = out_.size() - before;
        if (capture_->size() + added > capture_limit_) {
            overflowed_ = true;
            capture_->clear();
            capture_->shrink_to_fit();
            capture_ = nullptr;
        } else {
            capture_->append(out_, before, added);
        }
    }
    return step;
}

ResultRelay::Step ResultRelay::relay_one(const PGresult* r) {
    ++results_;
    switch (PQresultStatus(r)) {
        case PGRES_SINGLE_TUPLE:
            if (!described_) {
                if (describe_rows_) row_description(r);
                described_ = true;
            }
            data_row(r, 0);
            return Step::Next;
        case PGRES_TUPLES_OK: {
            if (!described_ && describe_rows_) row_description(r);
            int n = PQntuples(r);
            for (int i = 0; i < n; ++i) data_row(r, i);
            protocol::append_command_complete(out_, PQcmdStatus(const_cast<PGresult*>(r)));
            described_ = false;
            return Step::Next;
        }
        case PGRES_COMMAND_OK:
            protocol::append_command_complete(out_, PQcmdStatus(const_cast<PGresult*>(r)));
            return Step::Next;
        case PGRES_EMPTY_QUERY:
            protocol::append_empty_query_response(out_);
            return Step::Next;
        case PGRES_COPY_OUT: {
            int n = PQnfields(r);
            MessageWriter w(out_, 'H');
            w.int8(static_cast<uint8_t>(PQbinaryTuples(r))).int16(static_cast<int16_t>(n));
            for (int i = 0; i < n; ++i) w.int16(static_cast<int16_t>(PQfformat(r, i)));
            return Step::CopyOut;
        }
        case PGRES_FATAL_ERROR:
        case PGRES_NONFATAL_ERROR:
            saw_error_ = true;
            described_ = false;
            protocol::append_error(out_, error_fields_of(r));
            return Step::Next;
        default:
            return Step::Unsupported;
    }
}

void ResultRelay::copy_data(const char* data, int len) {
    MessageWriter(out_, 'd').bytes(data, static_cast<std::size_t>(len));
}

void ResultRelay::copy_done() { MessageWriter(out_, 'c'); }

void ResultRelay::row_description(const PGresult* r) {
    int n = PQnfields(r);
    std::vector<int16_t> formats;
    for (int i = 0; i < n; ++i) formats.push_back(static_cast<int16_t>(PQfformat(r, i)));
    append_row_description(out_, r, formats);
}

void append_row_description(std::string& out, const PGresult* r, const std::vector<int16_t>& formats) {
    int n = PQnfields(r);
    MessageWriter w(out, 'T');
    w.int16(static_cast<int16_t>(n));
    for (int i = 0; i < n; ++i) {
        int16_t format = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : formats[std::size_t(i)];
        w.cstr(PQfname(r, i))
            .int32(static_cast<int32_t>(PQftable(r, i)))
            .int16(static_cast<int16_t>(PQftablecol(r, i)))
            .int32(static_cast<int32_t>(PQftype(r, i)))
            .int16(static_cast<int16_t>(PQfsize(r, i)))
            .int32(PQfmod(r, i))
            .int16(format);
    }
}

void ResultRelay::data_row(const PGresult* r, int row) {
    if (conversion_failed_) return;
    ++rows_;
    int n = PQnfields(r);
    if (binary_types_) {
        std::string msg;
        {
            MessageWriter w(msg, 'D');
            w.int16(static_cast<int16_t>(n));
            for (int i = 0; i < n; ++i) {
                if (PQgetisnull(r, row, i)) {
                    w.int32(-1);
                    continue;
                }
                std::string_view text(PQgetvalue(r, row, i), static_cast<std::size_t>(PQgetlength(r, row, i)));
                uint32_t type = std::size_t(i) < binary_types_->size() ? (*binary_types_)[std::size_t(i)] : 0;
                if (!type) {
                    w.int32(static_cast<int32_t>(text.size())).bytes(text.data(), text.size());
                    continue;
                }
                auto bin = protocol::binary_from_text(type, text);
                if (!bin) {
                    conversion_failed_ = type;
                    return;
                }
                w.int32(static_cast<int32_t>(bin->size())).bytes(bin->data(), bin->size());
            }
        }
        out_ += msg;
        return;
    }
    MessageWriter w(out_, 'D');
    w.int16(static_cast<int16_t>(n));
    for (int i = 0; i < n; ++i) {
        if (PQgetisnull(r, row, i)) {
            w.int32(-1);
        } else {
            int len = PQgetlength(r, row, i);
            w.int32(len).bytes(PQgetvalue(r, row, i), static_cast<std::size_t>(len));
        }
    }
}

void append_notice(std::string& out, const PGresult* notice) {
    protocol::append_error(out, error_fields_of(notice), true);
}

}  // namespace rproxy
