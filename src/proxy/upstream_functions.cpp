#include "proxy/upstream_functions.hpp"

#include <cstdlib>
#include <set>

namespace rproxy {

namespace {
const std::string kLookupSql =
    "SELECT n.nspname, p.proname, p.provolatile, p.pronargs, p.pronargdefaults, p.provariadic <> 0 "
    "FROM pg_catalog.pg_proc p "
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

boost::asio::awaitable<std::optional<ErrorFields>> UpstreamFunctions::resolve(ServerConnection& conn,
                                                                             const std::vector<std::string>& keys) {
    // keys are FunctionRef::key(): "schema.name/nargs"
    struct Want {
        std::string schema, name;
        int nargs;
    };
    std::vector<Want> wants;
    std::set<std::string> names;
    for (const auto& k : keys) {
        std::size_t dot = k.find('.'), slash = k.rfind('/');
        Want w{k.substr(0, dot), k.substr(dot + 1, slash - dot - 1), std::stoi(k.substr(slash + 1))};
        names.insert(w.name);
        wants.push_back(std::move(w));
    }
    std::vector<std::string> params{array_literal(std::vector<std::string>(names.begin(), names.end()))};
    auto result = co_await conn.run_internal(kLookupSql, params);
    if (result.error) co_return result.error;
    auto now = std::chrono::steady_clock::now();
    const auto& rows = result.rows;
    auto text = [&rows](std::size_t i, int col) -> std::string_view {
        const auto& v = rows[i][std::size_t(col)];
        return v ? std::string_view(*v) : std::string_view();
    };
    for (std::size_t k = 0; k < keys.size(); ++k) {
        const Want& w = wants[k];
        // Unqualified: the client's search_path decides which one runs, so any candidate counts;
        // among overloads, those that can take this many arguments (all of them if none can).
        Volatility v = Volatility::Missing;
        for (int pass = 0; pass < 2 && v == Volatility::Missing; ++pass) {
            for (std::size_t i = 0; i < rows.size(); ++i) {
                if (rows[i].size() < 6) continue;
                if (w.name != text(i, 1)) continue;
                if (!w.schema.empty() && w.schema != text(i, 0)) continue;
                bool fits = arity_matches(w.nargs, std::atoi(std::string(text(i, 3)).c_str()),
                                          std::atoi(std::string(text(i, 4)).c_str()), text(i, 5) == "t");
                if (pass == 0 && !fits) continue;
                if (text(i, 2).empty()) continue;
                auto candidate = static_cast<Volatility>(text(i, 2)[0]);
                v = v == Volatility::Missing ? candidate : worst(v, candidate);
            }
        }
        cache_[keys[k]] = Entry{v, now};
    }
    co_return std::nullopt;
}

}  // namespace rproxy
