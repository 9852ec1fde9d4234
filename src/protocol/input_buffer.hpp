// Bytes received from a peer, not yet framed, and the one message the reader is working on.
//
// A decoder looks at unread() and says how many bytes its message used; take() then moves those
// bytes out of the receive buffer. What take() returns stays valid until the next take() or
// release(), however much is appended, compacted or freed meanwhile: a handler may hold the
// message across waits and reads. (Views straight into the receive buffer were freed or shifted
// under their handlers by the next compaction: issue 13.)
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace rproxy::protocol {

class InputBuffer {
public:
    // The bytes received and not yet taken. Valid until the next append, prepare, commit or take.
    std::string_view unread() const { return std::string_view(buf_).substr(pos_); }
    bool empty() const { return pos_ == buf_.size(); }

    void append(const char* data, std::size_t n) {
        compact();
        buf_.append(data, n);
    }
    // Room for n more bytes at the end (for reads that need their buffer while they wait, TLS);
    // commit(k) keeps the first k of them. Nothing else may touch the buffer in between.
    char* prepare(std::size_t n);
    void commit(std::size_t n);

    // The first n unread bytes, moved out of the receive buffer; see the class comment.
    std::string_view take(std::size_t n);
    // The first n unread bytes were handled where they lie (views from unread()): they are dropped
    // without a copy. Those views stay valid until the next append, prepare or take.
    void skip(std::size_t n);
    // The taken message is no longer needed: its memory is freed unless it was small.
    void release();
    // Nothing unread and no message held: every buffer is freed (an idle client parks with none).
    void shrink_if_empty();

    // Memory held, for tests and accounting.
    std::size_t capacity() const { return buf_.capacity() + held_.capacity(); }

private:
    void compact();

    std::string buf_;
    std::size_t pos_ = 0;       // buf_[0, pos_) has been taken
    std::size_t prepared_ = 0;  // bytes added by prepare() and not yet committed
    std::string held_;          // the message take() returned last
};

}  // namespace rproxy::protocol
