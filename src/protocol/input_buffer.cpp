#include "protocol/input_buffer.hpp"

#include <stdexcept>

namespace rproxy::protocol {

namespace {
// The receive buffer is freed once empty when larger than this, so a client that once sent a big
// message does not keep its memory while idle; a smaller one keeps its capacity for the next read.
constexpr std::size_t kKeepCapacity = 256 * 1024;
// A handled message keeps its memory only when small (the usual statement): an idle client then
// holds one small message buffer beside its receive buffer.
constexpr std::size_t kKeepHeld = 16 * 1024;
// Taken bytes are dropped from the front once they are this many and more than half the buffer:
// memmove stays amortised, and a pipelined burst does not grow the buffer without bound.
constexpr std::size_t kCompactAfter = 16 * 1024;

void clear_keeping(std::string& s, std::size_t keep) {
    if (s.capacity() > keep) std::string().swap(s);
    else s.clear();
}
}  // namespace

char* InputBuffer::prepare(std::size_t n) {
    if (prepared_) throw std::logic_error("InputBuffer::prepare while a read is outstanding");
    compact();
    std::size_t old = buf_.size();
    buf_.resize(old + n);
    prepared_ = n;
    return buf_.data() + old;
}

void InputBuffer::commit(std::size_t n) {
    if (n > prepared_) throw std::logic_error("InputBuffer::commit of more than was prepared");
    buf_.resize(buf_.size() - prepared_ + n);
    prepared_ = 0;
}

std::string_view InputBuffer::take(std::size_t n) {
    if (prepared_) throw std::logic_error("InputBuffer::take while a read is outstanding");
    if (n > buf_.size() - pos_) throw std::logic_error("InputBuffer::take of more than was received");
    if (pos_ == 0 && n == buf_.size()) {
        // The message is everything received (the usual case, and a large message's): hand over
        // the buffer itself instead of copying it.
        held_.swap(buf_);
        buf_.clear();
        if (buf_.capacity() > kKeepCapacity) std::string().swap(buf_);
        return held_;
    }
    held_.assign(buf_, pos_, n);
    pos_ += n;
    compact();
    return held_;
}

void InputBuffer::skip(std::size_t n) {
    if (prepared_) throw std::logic_error("InputBuffer::skip while a read is outstanding");
    if (n > buf_.size() - pos_) throw std::logic_error("InputBuffer::skip of more than was received");
    pos_ += n;
}

void InputBuffer::release() { clear_keeping(held_, kKeepHeld); }

void InputBuffer::shrink_if_empty() {
    if (prepared_ || pos_ != buf_.size()) return;
    std::string().swap(buf_);
    std::string().swap(held_);
    pos_ = 0;
}

void InputBuffer::compact() {
    if (pos_ == buf_.size()) {
        clear_keeping(buf_, kKeepCapacity);
        pos_ = 0;
    } else if (pos_ > kCompactAfter && pos_ * 2 > buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
}

}  // namespace rproxy::protocol
