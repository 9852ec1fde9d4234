// A client's session settings (from its startup packet) and the SQL that brings an upstream
// connection from the settings it carries to the ones the client needs. Connections are shared, so
// only the difference is sent, and only when a connection changes hands.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace rproxy {

class SessionSettings {
public:
    // Copied, never moved: a moved-from object would keep its version with other contents.
    SessionSettings() = default;
    SessionSettings(const SessionSettings&) = default;
    SessionSettings& operator=(const SessionSettings&) = default;

    using Values = std::map<std::string, std::string>;  // lower-case name -> value

    // Names are case-insensitive, as GUC names are.
    void set(std::string_view name, std::string value);
    const std::string* get(std::string_view name) const;
    void erase(std::string_view name);
    // One version never describes two contents, so equal versions are equal settings.
    bool operator==(const SessionSettings& o) const { return version_ == o.version_ || values() == o.values(); }
    bool empty() const { return values().empty(); }
    const Values& values() const { return values_ ? *values_ : kNone; }
    // Changes with every set/erase, and no two different contents ever share one (the counter is
    // per process), so a copy keeps a version that still describes it.
    uint64_t version() const { return version_; }

private:
    void touch();
    // Shared by copies, and replaced, never changed, by set() and erase(): a client's settings,
    // its startup settings and those of every client that started with the same ones (see
    // Worker::intern_settings) are one map.
    std::shared_ptr<const Values> values_;
    uint64_t version_ = 0;
    static const Values kNone;
};

// SQL that turns `have` into `want` on a connection (RESET for settings the connection carries
// but the client does not, set_config for the rest), or "" when nothing differs. Values are sent as
// E'' literals so the text is right whatever standard_conforming_strings is upstream.
std::string settings_sync_sql(const SessionSettings& have, const SessionSettings& want);

std::string quote_literal(std::string_view s);
std::string quote_identifier(std::string_view s);

}  // namespace rproxy
