// The benchmark's "limit" server: speaks just enough of the PostgreSQL protocol for pgbench
// (trust startup, simple and extended queries) and answers every statement with one canned row
// from memory. Nothing a proxy does can be faster than this with the same client on the same
// machine, so it measures the ceiling for cache hits.
//
//   canned_server PORT [THREADS]     one epoll loop per thread, each with its own SO_REUSEPORT socket
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr uint32_t kMaxMessage = 1 << 20;

void put32(std::string& out, uint32_t v) {
    v = htonl(v);
    out.append(reinterpret_cast<const char*>(&v), 4);
}

void put16(std::string& out, uint16_t v) {
    v = htons(v);
    out.append(reinterpret_cast<const char*>(&v), 2);
}

// One message: type byte, length, body.
std::string message(char type, const std::string& body) {
    std::string m(1, type);
    put32(m, static_cast<uint32_t>(body.size() + 4));
    return m + body;
}

std::string parameter(const char* name, const char* value) {
    return message('S', std::string(name) + '\0' + value + '\0');
}

// RowDescription for one int4 column "abalance", DataRow "0".
std::string row_description() {
    std::string b;
    put16(b, 1);
    b += std::string("abalance") + '\0';
    put32(b, 0);
    put16(b, 0);
    put32(b, 23);
    put16(b, 4);
    put32(b, static_cast<uint32_t>(-1));
    put16(b, 0);
    return message('T', b);
}

std::string data_row() {
    std::string b;
    put16(b, 1);
    put32(b, 1);
    b += '0';
    return message('D', b);
}

struct Replies {
    std::string startup, simple, parse_complete, bind_complete, describe_statement, describe_portal, execute, sync,
        close_complete;
    Replies() {
        std::string auth_ok;
        put32(auth_ok, 0);
        startup = message('R', auth_ok) + parameter("server_version", "15.0") + parameter("client_encoding", "UTF8") +
                  parameter("server_encoding", "UTF8") + parameter("DateStyle", "ISO, MDY") +
                  parameter("integer_datetimes", "on") + parameter("standard_conforming_strings", "on") +
                  parameter("TimeZone", "UTC") + parameter("application_name", "");
        std::string key;
        put32(key, 4242);
        put32(key, 4242);
        startup += message('K', key) + message('Z', "I");
        std::string done = message('C', std::string("SELECT 1") + '\0');
        simple = row_description() + data_row() + done + message('Z', "I");
        parse_complete = message('1', "");
        bind_complete = message('2', "");
        std::string params;
        put16(params, 1);
        put32(params, 23);
        describe_statement = message('t', params) + row_description();
        describe_portal = row_description();
        execute = data_row() + done;
        sync = message('Z', "I");
        close_complete = message('3', "");
    }
};

const Replies replies;

struct Client {
    std::string in;
    std::string out;
    bool started = false;
};

// Handles every whole message in c.in; false when the client must be closed.
bool handle(Client& c) {
    size_t pos = 0;
    while (true) {
        if (!c.started) {
            if (c.in.size() - pos < 8) break;
            uint32_t len, code;
            memcpy(&len, c.in.data() + pos, 4);
            memcpy(&code, c.in.data() + pos + 4, 4);
            len = ntohl(len);
            code = ntohl(code);
            if (len < 8 || len > kMaxMessage) return false;
            if (c.in.size() - pos < len) break;
            pos += len;
            if (code == 80877103 || code == 80877104) {  // SSLRequest, GSSENCRequest: no
                c.out += 'N';
                continue;
            }
            if (code == 80877102) return false;  // CancelRequest
            c.out += replies.startup;
            c.started = true;
            continue;
        }
        if (c.in.size() - pos < 5) break;
        char type = c.in[pos];
        uint32_t len;
        memcpy(&len, c.in.data() + pos + 1, 4);
        len = ntohl(len);
        if (len < 4 || len > kMaxMessage) return false;
        if (c.in.size() - pos < 1 + static_cast<size_t>(len)) break;
        const char* body = c.in.data() + pos + 5;
        pos += 1 + len;
        switch (type) {
            case 'Q': c.out += replies.simple; break;
            case 'P': c.out += replies.parse_complete; break;
            case 'B': c.out += replies.bind_complete; break;
            case 'D': c.out += body[0] == 'S' ? replies.describe_statement : replies.describe_portal; break;
            case 'E': c.out += replies.execute; break;
            case 'S': c.out += replies.sync; break;
            case 'C': c.out += replies.close_complete; break;
            case 'H': break;
            case 'X': return false;
            default: return false;
        }
    }
    c.in.erase(0, pos);
    return true;
}

int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1024) != 0) {
        perror("canned_server: bind/listen");
        exit(1);
    }
    return fd;
}

void serve(int port) {
    int listener = listen_on(port);
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    std::unordered_map<int, Client> clients;
    std::vector<epoll_event> events(256);
    char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    clients[c];
                }
                continue;
            }
            Client& c = clients[fd];
            bool alive = true;
            ssize_t got = read(fd, buf, sizeof buf);
            if (got <= 0) alive = got < 0 && errno == EAGAIN;
            else {
                c.in.append(buf, static_cast<size_t>(got));
                alive = handle(c);
            }
            // pgbench waits for each answer, so the socket buffer always takes it whole
            while (alive && !c.out.empty()) {
                ssize_t w = write(fd, c.out.data(), c.out.size());
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) {
                    alive = false;
                    break;
                }
                c.out.erase(0, static_cast<size_t>(w));
            }
            if (!alive) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
                close(fd);
                clients.erase(fd);
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: canned_server PORT [THREADS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; i++) pool.emplace_back(serve, port);
    serve(port);
}
