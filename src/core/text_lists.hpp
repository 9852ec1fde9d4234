// The comma-separated lists of settings, rules and conninfo values, split in one place. Items are
// copies: several callers keep splitting strings they go on to change.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace rproxy {

// Every item as written, empty ones included (a libpq host or port list, where an empty entry
// means the default).
inline std::vector<std::string> split_commas(std::string_view text) {
    std::vector<std::string> out;
    for (;;) {
        std::size_t comma = text.find(',');
        out.emplace_back(text.substr(0, comma));
        if (comma == std::string_view::npos) return out;
        text.remove_prefix(comma + 1);
    }
}

// Names: items trimmed of blanks, empty ones dropped.
inline std::vector<std::string> split_names(std::string_view text) {
    std::vector<std::string> out;
    for (std::string& item : split_commas(text)) {
        std::size_t b = item.find_first_not_of(" \t\n\r"), e = item.find_last_not_of(" \t\n\r");
        if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    }
    return out;
}

// A list of TCP ports ("5433,5434"): empty when any item is not a port, or none is given.
inline std::vector<int> parse_port_list(std::string_view text) {
    std::vector<int> out;
    for (const std::string& item : split_names(text)) {
        if (item.size() > 5 || item.find_first_not_of("0123456789") != std::string::npos) return {};
        int port = std::stoi(item);
        if (port < 1 || port > 65535) return {};
        bool seen = false;
        for (int p : out) seen = seen || p == port;
        if (!seen) out.push_back(port);
    }
    return out;
}

}  // namespace rproxy
