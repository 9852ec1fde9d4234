// pg_rproxy.* settings in the gateway's postgresql.conf.
#pragma once

#include "core/config.hpp"
#include "core/firewall_policy.hpp"

namespace rproxy::pg {

void define_gucs();

int guc_workers();
const char* guc_database();
ListenConfig listen_config();
UpstreamConfig upstream_config();
FirewallConfig firewall_config();

}  // namespace rproxy::pg
