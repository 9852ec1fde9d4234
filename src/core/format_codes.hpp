// The protocol's format-code lists (Bind's parameter and result formats, FunctionCall's argument
// formats): none means all text, one applies to every item, otherwise one per item.
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rproxy {

inline int16_t format_for(const std::vector<int16_t>& formats, std::size_t item) {
    if (formats.empty()) return 0;
    return formats.size() == 1 ? formats[0] : formats[item];
}

}  // namespace rproxy
