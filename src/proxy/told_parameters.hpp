// What a client has been told in ParameterStatus messages. At startup that is what the pool
// learned for the client's settings, shared by every client with the same settings: an idle
// client then holds one pointer, not a map of 13 settings. Values told later, after a SET, are kept
// beside it.
#pragma once
#include "core/pure_layer.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rproxy {

class ToldParameters {
public:
    using Values = std::vector<std::pair<std::string, std::string>>;

    void start(std::shared_ptr<const Values> at_startup) {
        base_ = std::move(at_startup);
        changed_.clear();
    }
    // Whether the client was told exactly this value (never told: the empty value).
    bool told(std::string_view name, std::string_view value) const {
        const std::string* t = find(name);
        return t ? *t == value : value.empty();
    }
    void tell(std::string_view name, std::string_view value) {
        for (auto& [k, v] : changed_)
            if (k == name) {
                v = value;
                return;
            }
        changed_.emplace_back(name, value);
    }

private:
    const std::string* find(std::string_view name) const {
        for (const auto& [k, v] : changed_)
            if (k == name) return &v;
        if (base_)
            for (const auto& [k, v] : *base_)
                if (k == name) return &v;
        return nullptr;
    }
    std::shared_ptr<const Values> base_;
    Values changed_;
};

}  // namespace rproxy
