// A client's session settings (from its startup packet) and the SQL that brings an upstream
// connection from the settings it carries to the ones the client needs. Connections are shared, so
// only the difference is sent, and only when a connection changes hands.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace rproxy {

class SessionSettings {
public:
    // Copied, never moved: a moved-from object would keep its version with other contents.
    SessionSettings() = default;
    SessionSettings(const SessionSettings&) = default;
    SessionSettings& operator=(const SessionSettings&) = default;

    // Names are case-insensitive, as GUC names are.
    void set(std::string_view name, std::string value);
    const std::string* get(std::string_view name) const;
    void erase(std::string_view name);
    // One version never describes two contents, so equal versions are equal settings.
    bool operator==(const SessionSettings& o) const { return version_ == o.version_ || values_ == o.values_; }
    bool empty() const { return values_.empty(); }
    const std::map<std::string, std::string>& values() const { return values_; }
    // Changes with every set/erase, and no two different contents ever share one (the counter is
    // per process), so a copy keeps a version that still describes it.
    uint64_t version() const { return version_; }

private:
    void touch();
    std::map<std::string, std::string> values_;  // lower-case name -> value
    uint64_t version_ = 0;
};

// SQL that turns `have` into `want` on a connection (RESET for settings the connection carries
// but the client does not, set_config for the rest), or "" when nothing differs. Values are sent as
// E'' literals so the text is right whatever standard_conforming_strings is upstream.
std::string settings_sync_sql(const SessionSettings& have, const SessionSettings& want);

std::string quote_literal(std::string_view s);
std::string quote_identifier(std::string_view s);

}  // namespace rproxy
