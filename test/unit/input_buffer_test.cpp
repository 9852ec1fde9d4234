// The client input path as ClientSession runs it: bytes appended as reads deliver them (plain
// sockets append, TLS reads prepare and commit), messages taken with take_message(), and each
// message's body read by its "handler" only after further reads went into the buffer. Run in the
// ASan build, a view into memory that a read or a compaction moved or freed fails here (issue 13).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "protocol/frontend_encode.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/input_buffer.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

using namespace rproxy::protocol;

namespace {

constexpr std::size_t kMax = 16 * 1024 * 1024;  // pg_rproxy.max_message_size's default
constexpr std::size_t KiB = 1024;

struct Sent {
    char type;
    std::string body;
};

std::string body_of(std::size_t n, uint32_t seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

std::string frame(char type, const std::string& body) {
    std::string s(1, type);
    MessageWriter::put32(s, static_cast<uint32_t>(body.size() + 4));
    return s + body;
}

// Feeds stream to an InputBuffer in reads of random sizes and takes every message as the session
// does. Each message is checked only after the next read has gone into the buffer.
std::vector<Sent> feed(const std::string& stream, std::mt19937& rng, std::size_t max_read) {
    InputBuffer in;
    std::vector<Sent> got;
    std::size_t at = 0;
    std::optional<FrontendMessage> held;
    auto check_held = [&] {
        if (held) got.push_back({held->type, std::string(held->body)});
        held.reset();
    };
    auto read_some = [&] {
        std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + rng() % max_read);
        if (rng() % 2) {
            in.append(stream.data() + at, n);
        } else {  // a TLS read: room prepared first, part of it filled
            std::size_t room = n + rng() % 64;
            char* p = in.prepare(room);
            std::copy(stream.data() + at, stream.data() + at + n, p);
            in.commit(n);
        }
        at += n;
    };
    while (at < stream.size() || !in.empty()) {
        if (at < stream.size()) read_some();
        check_held();  // the handler of the previous message reads its body now, after the read
        for (;;) {
            check_held();  // handled before the next take, as the session's loop does
            auto msg = take_message(in, kMax);
            if (!msg) break;
            held = msg;
            if (at < stream.size() && rng() % 4 == 0) {
                read_some();  // a read while the message is being handled
                if (rng() % 2) {  // handler done: next_message() releases before it waits
                    check_held();
                    in.release();
                }
            }
        }
        if (at == stream.size() && !in.empty()) ADD_FAILURE() << "bytes left that never made a message";
        if (at == stream.size()) break;
    }
    check_held();
    return got;
}

void expect_same(const std::vector<Sent>& sent, const std::vector<Sent>& got) {
    ASSERT_EQ(sent.size(), got.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        ASSERT_EQ(sent[i].type, got[i].type) << "message " << i;
        ASSERT_EQ(sent[i].body.size(), got[i].body.size()) << "message " << i;
        ASSERT_TRUE(sent[i].body == got[i].body) << "message " << i << " of " << sent[i].body.size() << " bytes differs";
    }
}

const char kTypes[] = {'Q', 'P', 'B', 'E', 'D', 'C', 'S', 'H', 'F', 'X', 'd', 'c', 'f', 'p'};

}  // namespace

// Every frontend type at sizes around the buffer's thresholds (16 KiB compaction, 256 KiB freeing).
TEST(InputBuffer, EveryTypeAtEveryThresholdInRandomReads) {
    const std::size_t sizes[] = {0, 1, 16 * KiB - 6, 16 * KiB - 5, 16 * KiB - 4, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1,
                                 256 * KiB - 1, 256 * KiB, 256 * KiB + 1};
    std::vector<Sent> sent;
    std::string stream;
    uint32_t seed = 1;
    for (char t : kTypes)
        for (std::size_t n : sizes) {
            sent.push_back({t, body_of(n, seed++)});
            stream += frame(t, sent.back().body);
        }
    for (std::size_t max_read : {std::size_t(7), 16 * KiB, 64 * KiB, 300 * KiB}) {
        std::mt19937 rng(static_cast<uint32_t>(max_read));
        SCOPED_TRACE("reads up to " + std::to_string(max_read) + " bytes");
        expect_same(sent, feed(stream, rng, max_read));
    }
}

// 1 MiB and the largest message allowed (length == max_message_size), between small pipelined ones.
TEST(InputBuffer, LargestMessagesBetweenSmallOnes) {
    std::vector<Sent> sent;
    std::string stream;
    uint32_t seed = 100;
    for (std::size_t big : {1024 * KiB, kMax - 4}) {
        for (char t : {'Q', 'P', 'B', 'd'}) {
            sent.push_back({'S', ""});
            sent.push_back({t, body_of(big, seed++)});
            sent.push_back({'H', ""});
            sent.push_back({'E', body_of(9, seed++)});
        }
    }
    for (const auto& m : sent) stream += frame(m.type, m.body);
    std::mt19937 rng(7);
    expect_same(sent, feed(stream, rng, 64 * KiB));
}

// A thousand small messages arriving in one read, as a pipelining driver writes them.
TEST(InputBuffer, PipelinedBurstInOneRead) {
    std::vector<Sent> sent;
    std::string stream;
    for (uint32_t i = 0; i < 1000; ++i) {
        sent.push_back({kTypes[i % sizeof kTypes], body_of(i % 97, i)});
        stream += frame(sent.back().type, sent.back().body);
    }
    std::mt19937 rng(3);
    expect_same(sent, feed(stream, rng, stream.size()));
}

// One byte over the limit is refused from its header alone, before its body is buffered.
TEST(InputBuffer, OverTheLimitRefusedBeforeTheBody) {
    InputBuffer in;
    std::string head(1, 'Q');
    MessageWriter::put32(head, static_cast<uint32_t>(kMax + 1));
    in.append(head.data(), head.size());
    try {
        take_message(in, kMax);
        FAIL() << "no ProtocolError";
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.sqlstate(), "54000");
    }
    EXPECT_LT(in.capacity(), 64 * KiB);
}

// A message taken stays intact while later reads shift and then free the receive buffer.
TEST(InputBuffer, TakenMessageOutlivesCompactionAndFreeing) {
    InputBuffer in;
    std::string first = body_of(20 * KiB, 1), second = body_of(300 * KiB, 2);
    std::string a = frame('P', first), b = frame('B', second);
    std::string both = a + b.substr(0, 100);
    in.append(both.data(), both.size());
    auto msg = take_message(in, kMax);
    ASSERT_TRUE(msg);
    in.append(b.data() + 100, b.size() - 100);  // grows and compacts the buffer under msg
    EXPECT_TRUE(msg->body == first);
    auto next = take_message(in, kMax);
    ASSERT_TRUE(next);
    EXPECT_TRUE(next->body == second);
    EXPECT_TRUE(in.empty());
    in.release();  // a large message is not kept once handled
    EXPECT_LT(in.capacity(), 300 * KiB);
}

TEST(InputBuffer, MisuseIsALogicErrorNotCorruption) {
    InputBuffer in;
    in.append("abc", 3);
    EXPECT_THROW(in.take(4), std::logic_error);
    in.prepare(10);
    EXPECT_THROW(in.take(1), std::logic_error);
    EXPECT_THROW(in.commit(11), std::logic_error);
    in.commit(2);
    EXPECT_EQ(in.unread().size(), 5u);
}

TEST(InputBuffer, SkippedMessagesAreReadInPlaceAndCompactedLater) {
    InputBuffer in;
    std::string wire;
    for (int i = 0; i < 3000; ++i) MessageWriter(wire, 'D').int16(1).int32(4).bytes("abcd", 4);
    in.append(wire.data(), wire.size());
    std::size_t seen = 0;
    for (;;) {
        std::string_view unread = in.unread();
        if (unread.size() < 5) break;
        std::size_t len = 1 + be32(unread, 1);
        EXPECT_EQ(unread.substr(0, len), std::string_view(wire).substr(seen, len));  // in place, no copy
        in.skip(len);
        seen += len;
        if (seen == 17 * len) {
            // A read after some were skipped: the skipped bytes go, the rest stays in order.
            std::string more;
            MessageWriter(more, 'C').cstr("SELECT 3001");
            in.append(more.data(), more.size());
            wire += more;
        }
    }
    EXPECT_EQ(seen, wire.size());
    EXPECT_TRUE(in.empty());
    EXPECT_THROW(in.skip(1), std::logic_error);
}

TEST(InputBuffer, ShrinkFreesEverythingOnlyWhenNothingIsUnread) {
    InputBuffer in;
    std::string msg;
    append_query(msg, "SELECT 1");
    in.append(msg.data(), msg.size());
    in.append(msg.data(), 3);  // the start of a second message
    auto first = take_message(in, kMax);
    ASSERT_TRUE(first);
    in.release();
    in.shrink_if_empty();
    EXPECT_EQ(in.unread().size(), 3u) << "a partial message is kept";
    in.append(msg.data() + 3, msg.size() - 3);
    auto second = take_message(in, kMax);
    ASSERT_TRUE(second);
    EXPECT_EQ(decode_query(second->body), "SELECT 1");
    in.release();
    in.shrink_if_empty();
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(in.capacity(), InputBuffer().capacity()) << "nothing held while parked";
}
