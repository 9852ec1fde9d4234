// A violation of the wire protocol that ends the connection.
#pragma once
#include "core/pure_layer.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace rproxy::protocol {

// sqlstate is 08P01 (protocol_violation), or 54000 (program_limit_exceeded) for oversized messages.
class ProtocolError : public std::runtime_error {
public:
    ProtocolError(std::string sqlstate, const std::string& message)
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string sqlstate_;
};

}  // namespace rproxy::protocol
