#include "auth/scram.hpp"

#include <charconv>

namespace rproxy::auth {

namespace {

constexpr std::size_t kServerNonceBytes = 18;  // as PostgreSQL

std::optional<Digest> decode_key(std::string_view b64) {
    auto raw = base64_decode(b64);
    if (!raw || raw->size() != Digest{}.size()) return std::nullopt;
    Digest d{};
    std::copy(raw->begin(), raw->end(), d.begin());
    return d;
}

// "<attr>=<value>" at the front of text, up to the next ','; advances text past it.
std::optional<std::string_view> take_attribute(std::string_view& text, char attr) {
    if (text.size() < 2 || text[0] != attr || text[1] != '=') return std::nullopt;
    std::size_t end = text.find(',');
    std::string_view value = text.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    return value;
}

bool printable_nonce(std::string_view nonce) {
    if (nonce.empty()) return false;
    for (char c : nonce)
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
}

Digest xor_digests(const Digest& a, const Digest& b) {
    Digest out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
    return out;
}

}  // namespace

std::optional<ScramSecret> parse_scram_secret(std::string_view secret) {
    std::string_view prefix = "SCRAM-SHA-256$";
    if (secret.substr(0, prefix.size()) != prefix) return std::nullopt;
    secret.remove_prefix(prefix.size());
    std::size_t colon = secret.find(':');
    std::size_t dollar = secret.find('$');
    if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar) return std::nullopt;
    ScramSecret out;
    std::string_view iter = secret.substr(0, colon);
    auto [p, ec] = std::from_chars(iter.data(), iter.data() + iter.size(), out.iterations);
    if (ec != std::errc() || p != iter.data() + iter.size() || out.iterations < 1) return std::nullopt;
    auto salt = base64_decode(secret.substr(colon + 1, dollar - colon - 1));
    if (!salt || salt->empty()) return std::nullopt;
    out.salt = std::move(*salt);
    std::string_view keys = secret.substr(dollar + 1);
    std::size_t sep = keys.find(':');
    if (sep == std::string_view::npos) return std::nullopt;
    auto stored = decode_key(keys.substr(0, sep));
    auto server = decode_key(keys.substr(sep + 1));
    if (!stored || !server) return std::nullopt;
    out.stored_key = *stored;
    out.server_key = *server;
    return out;
}

ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
    ScramSecret s;
    s.iterations = iterations;
    s.salt = std::string(salt);
    Digest salted = pbkdf2_sha256(password, salt, iterations);
    s.stored_key = sha256(view(hmac_sha256(salted, "Client Key")));
    s.server_key = hmac_sha256(salted, "Server Key");
    return s;
}

bool scram_password_matches(const ScramSecret& secret, std::string_view password) {
    ScramSecret computed = make_scram_secret(password, secret.salt, secret.iterations);
    return equal_in_constant_time(view(computed.stored_key), view(secret.stored_key)) &&
           equal_in_constant_time(view(computed.server_key), view(secret.server_key));
}

std::string format_scram_secret(const ScramSecret& s) {
    return "SCRAM-SHA-256$" + std::to_string(s.iterations) + ":" + base64_encode(s.salt) + "$" +
           base64_encode(view(s.stored_key)) + ":" + base64_encode(view(s.server_key));
}

std::vector<std::string> scram_mechanisms(bool tls) {
    if (tls) return {kScramSha256Plus, kScramSha256};
    return {kScramSha256};
}

ScramExchange::ScramExchange(std::optional<ScramSecret> secret, std::string_view mock_seed, std::string tls_end_point)
    : tls_end_point_(std::move(tls_end_point)) {
    if (secret) {
        secret_ = std::move(*secret);
        real_ = true;
    } else {
        // Same shape as a real secret, stable per user name: a probe sees the same salt each time.
        Digest salt = sha256(std::string("pg_rproxy mock salt:") + std::string(mock_seed));
        secret_.iterations = 4096;
        secret_.salt.assign(reinterpret_cast<const char*>(salt.data()), 16);
        secret_.stored_key = sha256(view(salt));
        secret_.server_key = salt;
    }
}

ScramExchange::Step ScramExchange::malformed(std::string detail) {
    finished_ = true;
    Step s;
    s.sqlstate = "08P01";
    s.error = "malformed SCRAM message";
    s.detail = std::move(detail);
    return s;
}

ScramExchange::Step ScramExchange::client_first(std::string_view mechanism, std::string_view data,
                                                std::string_view server_nonce) {
    if (started_ || finished_) return malformed("Unexpected SCRAM message.");
    started_ = true;
    bool plus = mechanism == kScramSha256Plus;
    if (!plus && mechanism != kScramSha256) {
        finished_ = true;
        Step s;
        s.sqlstate = "08P01";
        s.error = "client selected an invalid SASL authentication mechanism";
        return s;
    }
    if (plus && tls_end_point_.empty()) return malformed("Channel binding is not supported over this connection.");
    std::string_view rest = data;
    // gs2-header: the channel binding flag, then an (unsupported) authorization identity
    if (rest.empty()) return malformed("The message is empty.");
    char flag = rest[0];
    if (flag == 'p') {
        if (!plus) return malformed("The client selected SCRAM-SHA-256 without channel binding, but the message requests it.");
        std::string_view cb = rest.substr(0, rest.find(','));
        if (cb != "p=tls-server-end-point")
            return malformed("Unsupported SCRAM channel-binding type \"" + std::string(cb.substr(cb.size() > 2 ? 2 : 0)) + "\".");
        rest.remove_prefix(cb.size());
    } else if (flag == 'y' || flag == 'n') {
        if (plus) return malformed("The client selected SCRAM-SHA-256-PLUS, but the message does not contain channel binding data.");
        // 'y': the client could bind but thinks the server cannot; we can over TLS (a downgrade)
        if (flag == 'y' && !tls_end_point_.empty())
            return malformed("The client supports SCRAM channel binding but thinks the server does not. However, this server does support channel binding.");
        rest.remove_prefix(1);
    } else {
        return malformed("Unexpected channel-binding flag \"" + std::string(1, flag) + "\".");
    }
    if (rest.empty() || rest[0] != ',') return malformed("Comma expected.");
    rest.remove_prefix(1);
    if (!rest.empty() && rest[0] == 'a') return malformed("Client uses authorization identity, but it is not supported.");
    if (rest.empty() || rest[0] != ',') return malformed("Comma expected.");
    rest.remove_prefix(1);
    gs2_header_ = std::string(data.substr(0, data.size() - rest.size()));
    client_first_bare_ = std::string(rest);
    if (!rest.empty() && rest[0] == 'm') return malformed("Mandatory extensions are not supported.");
    if (!take_attribute(rest, 'n')) return malformed("Attribute \"n\" expected.");
    auto nonce = take_attribute(rest, 'r');
    if (!nonce || !printable_nonce(*nonce)) return malformed("Attribute \"r\" expected: a printable nonce.");
    channel_bound_ = plus;
    nonce_ = std::string(*nonce) +
             (server_nonce.empty() ? base64_encode(random_bytes(kServerNonceBytes)) : std::string(server_nonce));
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret_.salt) + ",i=" + std::to_string(secret_.iterations);
    Step s;
    s.state = State::Continue;
    s.message = server_first_;
    return s;
}

ScramExchange::Step ScramExchange::client_final(std::string_view data) {
    if (!started_ || finished_) return malformed("Unexpected SCRAM message.");
    finished_ = true;
    std::size_t proof_at = data.rfind(",p=");
    if (proof_at == std::string_view::npos) return malformed("Could not find proof in client-final-message.");
    std::string_view without_proof = data.substr(0, proof_at);
    std::string_view rest = without_proof;
    auto binding = take_attribute(rest, 'c');
    if (!binding) return malformed("Attribute \"c\" expected.");
    auto cb = base64_decode(*binding);
    if (!cb) return malformed("Invalid channel binding data.");
    std::string expected = gs2_header_ + (channel_bound_ ? tls_end_point_ : std::string());
    if (*cb != expected) {
        Step s;
        s.sqlstate = "28000";
        s.error = channel_bound_ ? "SCRAM channel binding check failed" : "unexpected SCRAM channel-binding attribute in client-final-message";
        return s;
    }
    auto nonce = take_attribute(rest, 'r');
    if (!nonce || *nonce != nonce_) return malformed("Nonce does not match.");
    auto proof = base64_decode(data.substr(proof_at + 3));
    if (!proof || proof->size() != Digest{}.size()) return malformed("Malformed proof in client-final-message.");

    std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    Digest client_signature = hmac_sha256(secret_.stored_key, auth_message);
    Digest client_proof{};
    std::copy(proof->begin(), proof->end(), client_proof.begin());
    Digest client_key = xor_digests(client_proof, client_signature);
    if (!real_ || !equal_in_constant_time(view(sha256(view(client_key))), view(secret_.stored_key))) {
        Step s;
        s.sqlstate = "28P01";
        return s;  // the caller words it with the user name
    }
    Step s;
    s.state = State::Success;
    s.message = "v=" + base64_encode(view(hmac_sha256(secret_.server_key, auth_message)));
    return s;
}

}  // namespace rproxy::auth
