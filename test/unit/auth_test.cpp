#include <gtest/gtest.h>

#include "core/cidr.hpp"
#include "auth/auth_rules.hpp"
#include "auth/crypto.hpp"
#include "auth/md5_auth.hpp"
#include "auth/scram.hpp"

using namespace rproxy::auth;
using rproxy::address_matches;

namespace {

// The client side of SCRAM, written from RFC 5802 independently of the server code.
std::string client_final(const std::string& password, const std::string& client_first_bare,
                         const std::string& server_first, const std::string& channel_binding) {
    auto attr = [&](char a) {
        std::size_t at = server_first.find(std::string(1, a) + "=");
        std::size_t end = server_first.find(',', at);
        return server_first.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
    };
    std::string salt = *base64_decode(attr('s'));
    int iterations = std::stoi(attr('i'));
    Digest salted = pbkdf2_sha256(password, salt, iterations);
    Digest client_key = hmac_sha256(salted, "Client Key");
    Digest stored = sha256(view(client_key));
    std::string without_proof = "c=" + base64_encode(channel_binding) + ",r=" + attr('r');
    Digest signature = hmac_sha256(stored, client_first_bare + "," + server_first + "," + without_proof);
    std::string proof(32, '\0');
    for (int i = 0; i < 32; ++i) proof[i] = char(client_key[i] ^ signature[i]);
    return without_proof + ",p=" + base64_encode(proof);
}

}  // namespace

TEST(Base64, RoundTripsAndRejectsGarbage) {
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)})
        EXPECT_EQ(base64_decode(base64_encode(s)), s);
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_FALSE(base64_decode("Zm9"));
    EXPECT_FALSE(base64_decode("Zm9=Zm9v"));
    EXPECT_FALSE(base64_decode("Zm!v"));
    EXPECT_FALSE(base64_decode("Z==="));
    EXPECT_FALSE(base64_decode("===="));
    EXPECT_FALSE(base64_decode("Zm9 "));  // blanks OpenSSL alone would skip
    EXPECT_FALSE(base64_decode(" Zm9v   "));
    EXPECT_EQ(base64_decode("Zm8="), "fo");
    EXPECT_EQ(base64_decode("Zg=="), "f");
}

TEST(Scram, Rfc7677Vector) {
    // RFC 7677 section 3: user "user", password "pencil"
    auto salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    ScramExchange ex(make_scram_secret("pencil", salt, 4096), "user", "");
    auto first = ex.client_first(kScramSha256, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    ASSERT_EQ(first.state, ScramExchange::State::Continue);
    EXPECT_EQ(first.message, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    auto final = ex.client_final(
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    ASSERT_EQ(final.state, ScramExchange::State::Success) << final.error << final.detail;
    EXPECT_EQ(final.message, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST(Scram, SecretsMadeByPostgres) {
    // pg_authid.rolpassword after SET password_encryption = 'scram-sha-256'; CREATE ROLE alice PASSWORD 'secret'
    const std::string made =
        "SCRAM-SHA-256$4096:WfWBBIQVCfd6CllsunwJBQ==$h2wV8j87nv8H49wa+1vr5FUT6oQSZ0hPGSXbTw76H/A=:"
        "00/1ACSKIZgI3UXozu9Er1cw4z1v0LPpo8WCVDhB3YI=";
    auto secret = parse_scram_secret(made);
    ASSERT_TRUE(secret);
    EXPECT_EQ(secret->iterations, 4096);
    EXPECT_EQ(format_scram_secret(*secret), made);
    EXPECT_TRUE(scram_password_matches(*secret, "secret"));
    EXPECT_FALSE(scram_password_matches(*secret, "Secret"));
    EXPECT_EQ(format_scram_secret(make_scram_secret("secret", secret->salt, 4096)), made);
    EXPECT_FALSE(parse_scram_secret("md5abc"));
    EXPECT_FALSE(parse_scram_secret("SCRAM-SHA-256$x:abc$def:ghi"));
    EXPECT_FALSE(parse_scram_secret("SCRAM-SHA-256$4096:WfWBBIQVCfd6CllsunwJBQ==$short:short"));
}

TEST(Scram, WrongPasswordFailsWith28P01) {
    ScramExchange ex(make_scram_secret("right", "saltsaltsaltsalt", 4096), "u", "");
    std::string bare = "n=,r=clientnonce";
    auto first = ex.client_first(kScramSha256, "n,," + bare);
    ASSERT_EQ(first.state, ScramExchange::State::Continue);
    auto final = ex.client_final(client_final("wrong", bare, first.message, "n,,"));
    EXPECT_EQ(final.state, ScramExchange::State::Failure);
    EXPECT_EQ(final.sqlstate, "28P01");
}

TEST(Scram, UnknownRoleRunsTheWholeExchangeThenFails) {
    ScramExchange a(std::nullopt, "ghost", "");
    ScramExchange b(std::nullopt, "ghost", "");
    auto fa = a.client_first(kScramSha256, "n,,n=,r=abc");
    auto fb = b.client_first(kScramSha256, "n,,n=,r=abc");
    ASSERT_EQ(fa.state, ScramExchange::State::Continue);
    // the same salt every time, as for a real role
    EXPECT_EQ(fa.message.substr(fa.message.find(",s=")), fb.message.substr(fb.message.find(",s=")));
    auto final = a.client_final(client_final("anything", "n=,r=abc", fa.message, "n,,"));
    EXPECT_EQ(final.sqlstate, "28P01");
}

TEST(Scram, ChannelBindingOverTls) {
    std::string end_point(32, '\x5a');
    ScramExchange ex(make_scram_secret("pw", "saltsaltsaltsalt", 4096), "u", end_point);
    std::string header = "p=tls-server-end-point,,";
    auto first = ex.client_first(kScramSha256Plus, header + "n=,r=xyz");
    ASSERT_EQ(first.state, ScramExchange::State::Continue) << first.detail;
    auto final = ex.client_final(client_final("pw", "n=,r=xyz", first.message, header + end_point));
    EXPECT_EQ(final.state, ScramExchange::State::Success) << final.error;
    EXPECT_TRUE(ex.channel_bound());

    ScramExchange wrong(make_scram_secret("pw", "saltsaltsaltsalt", 4096), "u", end_point);
    first = wrong.client_first(kScramSha256Plus, header + "n=,r=xyz");
    final = wrong.client_final(client_final("pw", "n=,r=xyz", first.message, header + std::string(32, '\x00')));
    EXPECT_EQ(final.state, ScramExchange::State::Failure);
    EXPECT_EQ(final.sqlstate, "28000");
}

TEST(Scram, DowngradeAndMalformedMessagesAreRefused) {
    auto secret = make_scram_secret("pw", "saltsaltsaltsalt", 4096);
    // 'y' over TLS: the client thinks we cannot bind, but we can
    EXPECT_EQ(ScramExchange(secret, "u", "ep").client_first(kScramSha256, "y,,n=,r=a").sqlstate, "08P01");
    EXPECT_EQ(ScramExchange(secret, "u", "").client_first(kScramSha256Plus, "p=tls-server-end-point,,n=,r=a").sqlstate, "08P01");
    EXPECT_EQ(ScramExchange(secret, "u", "").client_first("SCRAM-SHA-1", "n,,n=,r=a").sqlstate, "08P01");
    for (std::string bad : {"", "n", "n,", "n,,", "n,,r=a", "n,,n=", "n,,n=,r=", "x,,n=,r=a", "n,a=x,n=,r=a",
                            "n,,m=x,n=,r=a", "n,,n=,r=a\x01"})
        EXPECT_EQ(ScramExchange(secret, "u", "").client_first(kScramSha256, bad).state, ScramExchange::State::Failure)
            << bad;
    ScramExchange ex(secret, "u", "");
    auto first = ex.client_first(kScramSha256, "n,,n=,r=a");
    EXPECT_EQ(ex.client_final("c=biws,r=a,p=zzz").sqlstate, "08P01");
}

TEST(Md5, MatchesPostgresSecretAndResponse) {
    // pg_authid.rolpassword after SET password_encryption = 'md5'; CREATE ROLE bob PASSWORD 'secret'
    EXPECT_EQ(md5_secret("secret", "bob"), "md521f3163f8f86fa10bdefbfbd502a8f06");
    std::string secret = md5_secret("secret", "alice");
    EXPECT_TRUE(is_md5_secret(secret));
    std::string salt = "\x01\x02\x03\x04";
    EXPECT_TRUE(md5_response_matches(secret, salt, md5_client_response(secret, salt)));
    EXPECT_FALSE(md5_response_matches(secret, salt, md5_client_response(md5_secret("other", "alice"), salt)));
    EXPECT_FALSE(md5_response_matches("SCRAM-SHA-256$...", salt, "md5"));
}

TEST(AuthRules, FirstMatchWins) {
    std::vector<AuthRule> rules(4);
    rules[0] = {1, "hostssl", "all", "+admins", "all", Method::Cert, ""};
    rules[1] = {2, "host", "sales,hr", "analyst", "10.0.0.0/8", Method::ScramSha256, "host=up1"};
    rules[2] = {3, "hostnossl", "all", "all", "127.0.0.1/32", Method::Md5, ""};
    rules[3] = {4, "host", "all", "all", "::1/128", Method::Reject, ""};
    auto member = [](const std::string& g) { return g == "admins"; };
    auto none = [](const std::string&) { return false; };
    EXPECT_EQ(first_match(rules, {true, "sales", "bob", "1.2.3.4"}, member)->position, 1);
    EXPECT_FALSE(first_match(rules, {true, "sales", "bob", "1.2.3.4"}, none));
    EXPECT_EQ(first_match(rules, {false, "hr", "analyst", "10.9.8.7"}, none)->upstream, "host=up1");
    EXPECT_FALSE(first_match(rules, {false, "ops", "analyst", "10.9.8.7"}, none));
    EXPECT_EQ(first_match(rules, {false, "ops", "x", "127.0.0.1"}, none)->position, 3);
    EXPECT_EQ(first_match(rules, {false, "ops", "x", "::ffff:127.0.0.1"}, none)->position, 3);
    EXPECT_FALSE(first_match(rules, {true, "ops", "x", "127.0.0.1"}, none));
    EXPECT_EQ(first_match(rules, {true, "ops", "x", "::1"}, none)->method, Method::Reject);
}

TEST(AuthRules, AddressesAndValidation) {
    EXPECT_TRUE(address_matches("192.168.0.0/16", "192.168.44.1"));
    EXPECT_FALSE(address_matches("192.168.0.0/16", "192.169.0.1"));
    EXPECT_TRUE(address_matches("0.0.0.0/0", "8.8.8.8"));
    EXPECT_FALSE(address_matches("0.0.0.0/0", "2001:db8::1"));
    EXPECT_TRUE(address_matches("2001:db8::/32", "2001:db8:1::5"));
    EXPECT_FALSE(address_matches("10.0.0.0/33", "10.0.0.1"));
    EXPECT_FALSE(address_matches("garbage", "10.0.0.1"));
    EXPECT_TRUE(rule_error({1, "local", "all", "all", "all", Method::Trust, ""}));
    EXPECT_TRUE(rule_error({1, "host", "all", "all", "10.0.0.0/99", Method::Trust, ""}));
    EXPECT_FALSE(rule_error({1, "host", "all", "all", "10.0.0.0/8", Method::Trust, ""}));
}
