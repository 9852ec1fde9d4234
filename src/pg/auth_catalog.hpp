// Reads what authenticating one client needs: the role in pg_authid, its memberships, the rules
// table and the upstream credential mapping (both in the extension's schema), in one transaction.
#pragma once

#include <string>

#include "auth/auth_snapshot.hpp"

namespace rproxy::pg {

AuthSnapshot read_auth_snapshot(const std::string& role);

}  // namespace rproxy::pg
