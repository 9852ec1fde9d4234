#include "proxy/session_settings.hpp"

#include <cctype>

namespace rproxy {

namespace {
std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // GUC names are ASCII
    return out;
}
uint64_t last_version = 0;
}  // namespace

const SessionSettings::Values SessionSettings::kNone;

void SessionSettings::touch() { version_ = ++last_version; }

void SessionSettings::set(std::string_view name, std::string value) {
    auto next = std::make_shared<Values>(values());
    (*next)[lower(name)] = std::move(value);
    values_ = std::move(next);
    touch();
}

void SessionSettings::erase(std::string_view name) {
    auto next = std::make_shared<Values>(values());
    next->erase(lower(name));
    values_ = std::move(next);
    touch();
}

const std::string* SessionSettings::get(std::string_view name) const {
    const Values& v = values();
    auto it = v.find(lower(name));
    return it == v.end() ? nullptr : &it->second;
}

std::string quote_literal(std::string_view s) {
    std::string out = "E'";
    for (char c : s) {
        if (c == '\'' || c == '\\') out.push_back(c);
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

std::string quote_identifier(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out.push_back(c);
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string settings_sync_sql(const SessionSettings& have, const SessionSettings& want) {
    std::string resets, sets;
    for (const auto& [name, value] : have.values()) {
        if (!want.get(name)) resets += "RESET " + quote_identifier(name) + ";";
    }
    for (const auto& [name, value] : want.values()) {
        const std::string* cur = have.get(name);
        if (cur && *cur == value) continue;
        sets += sets.empty() ? "SELECT " : ", ";
        sets += "pg_catalog.set_config(" + quote_literal(name) + ", " + quote_literal(value) + ", false)";
    }
    return sets.empty() ? resets : resets + sets;
}

}  // namespace rproxy
