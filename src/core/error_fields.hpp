// An ErrorResponse/NoticeResponse as a list of (field code, value) pairs, in the order they are
// sent. Kept generic so upstream errors are relayed with every field the server sent.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <utility>
#include <vector>

namespace rproxy {

struct ErrorFields {
    std::vector<std::pair<char, std::string>> fields;

    void add(char code, std::string value) { fields.emplace_back(code, std::move(value)); }
    const std::string* find(char code) const {
        for (const auto& f : fields)
            if (f.first == code) return &f.second;
        return nullptr;
    }

    // A gateway-generated error with the usual fields. severity is ERROR or FATAL.
    static ErrorFields make(const char* severity, std::string sqlstate, std::string message,
                            int position = 0) {
        ErrorFields e;
        e.add('S', severity);
        e.add('V', severity);
        e.add('C', std::move(sqlstate));
        e.add('M', std::move(message));
        if (position > 0) e.add('P', std::to_string(position));
        return e;
    }
};

}  // namespace rproxy
