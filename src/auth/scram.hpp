// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it: the verifier is the
// one in pg_authid ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"), the user name in
// the client's messages is ignored (the startup packet's counts), and SCRAM-SHA-256-PLUS binds the
// exchange to the TLS connection with tls-server-end-point. Pure: parses untrusted input, so it is
// fuzzed on its own.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/crypto.hpp"

namespace rproxy::auth {

inline constexpr const char* kScramSha256 = "SCRAM-SHA-256";
inline constexpr const char* kScramSha256Plus = "SCRAM-SHA-256-PLUS";

struct ScramSecret {
    int iterations = 4096;
    std::string salt;  // raw bytes
    Digest stored_key{};
    Digest server_key{};
};

std::optional<ScramSecret> parse_scram_secret(std::string_view secret);
// The secret PostgreSQL would store for this password (salt given), for tests and cleartext checks.
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);
// Whether a cleartext password matches the secret (the `password` method over TLS).
bool scram_password_matches(const ScramSecret& secret, std::string_view password);
std::string format_scram_secret(const ScramSecret& secret);

class ScramExchange {
public:
    // secret = nullopt: the role does not exist or has no SCRAM secret. The exchange still runs
    // to the end with a made-up secret (derived from mock_seed), so that a client cannot tell, and
    // then fails. tls_end_point: the hash of the server certificate, empty without TLS.
    ScramExchange(std::optional<ScramSecret> secret, std::string_view mock_seed, std::string tls_end_point);

    enum class State { Continue, Success, Failure };
    struct Step {
        State state = State::Failure;
        std::string message;      // the data of AuthenticationSASLContinue / SASLFinal
        std::string sqlstate;     // on failure: 08P01 for a malformed exchange, 28P01 for a wrong proof
        std::string error;        // on failure, the client-facing message
        std::string detail;
    };
    // SASLInitialResponse: the mechanism the client chose and its client-first-message.
    // server_nonce: empty for a fresh random one (given only by tests, to replay RFC vectors).
    Step client_first(std::string_view mechanism, std::string_view data, std::string_view server_nonce = {});
    // SASLResponse: the client-final-message.
    Step client_final(std::string_view data);

    bool channel_bound() const { return channel_bound_; }

private:
    Step malformed(std::string detail);

    ScramSecret secret_;
    bool real_ = false;
    std::string tls_end_point_;
    std::string gs2_header_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string nonce_;  // client nonce + server nonce
    bool channel_bound_ = false;
    bool started_ = false;
    bool finished_ = false;
};

// The mechanisms offered in AuthenticationSASL: -PLUS first when the connection is TLS.
std::vector<std::string> scram_mechanisms(bool tls);

}  // namespace rproxy::auth
