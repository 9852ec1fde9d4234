#include "proxy/upstream_functions.hpp"

#include <set>

namespace rproxy {

namespace {
const std::string kLookupSql =
    "SELECT n.nspname, p.proname, p.provolatile FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = ANY ($1::pg_catalog.text[])";
}

std::optional<Volatility> UpstreamFunctions::lookup(const FunctionRef& f) const {
    auto it = cache_.find(f.key());
    if (it == cache_.end() || std::chrono::steady_clock::now() - it->second.at > ttl_) return std::nullopt;
    return it->second.volatility;
}

std::string UpstreamFunctions::array_literal(const std::vector<std::string>& names) {
    std::string out = "{";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ",";
        out += "\"";
        for (char c : names[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += "\"";
    }
    return out + "}";
}

Volatility UpstreamFunctions::worst(Volatility a, Volatility b) {
    auto rank = [](Volatility v) {
        switch (v) {
            case Volatility::Volatile: return 3;
            case Volatility::Stable: return 2;
            case Volatility::Immutable: return 1;
            default: return 0;
        }
    };
    return rank(a) >= rank(b) ? a : b;
}

boost::asio::awaitable<std::optional<ErrorFields>> UpstreamFunctions::resolve(UpstreamConnection& conn,
                                                                             const std::vector<std::string>& keys) {
    std::set<std::string> names;
    for (const auto& k : keys) names.insert(k.substr(k.find('.') + 1));
    std::vector<std::string> params{array_literal(std::vector<std::string>(names.begin(), names.end()))};
    auto result = co_await conn.run_internal(kLookupSql, params);
    if (result.error) co_return result.error;
    auto now = std::chrono::steady_clock::now();
    for (const auto& key : keys) {
        std::string schema = key.substr(0, key.find('.'));
        std::string name = key.substr(key.find('.') + 1);
        // Unqualified: the client's search_path decides which one runs, so any candidate counts.
        Volatility v = Volatility::Missing;
        bool found = false;
        for (int i = 0; result.rows && i < PQntuples(result.rows.get()); ++i) {
            if (name != PQgetvalue(result.rows.get(), i, 1)) continue;
            if (!schema.empty() && schema != PQgetvalue(result.rows.get(), i, 0)) continue;
            auto candidate = static_cast<Volatility>(PQgetvalue(result.rows.get(), i, 2)[0]);
            v = found ? worst(v, candidate) : candidate;
            found = true;
        }
        cache_[key] = Entry{v, now};
    }
    co_return std::nullopt;
}

}  // namespace rproxy
