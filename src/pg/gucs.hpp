// pg_rproxy.* settings in the gateway's postgresql.conf.
#pragma once

#include "core/config.hpp"
#include "core/cache_types.hpp"
#include "core/firewall_policy.hpp"
#include "core/observe_config.hpp"
#include "core/metrics.hpp"
#include "core/message_log_config.hpp"

namespace rproxy::pg {

void define_gucs();
void define_security_gucs();  // security_gucs.cpp: authentication, TLS, limits
void define_observe_gucs();   // observe_gucs.cpp: statement statistics, the audit log
void define_metrics_gucs();   // metrics_gucs.cpp: the Prometheus endpoint
void define_message_log_gucs();  // message_log_gucs.cpp
void define_redis_gucs();  // redis_gucs.cpp
void fill_redis_config(CacheConfig& c);
MessageLogConfig message_log_config();

int guc_workers();
const char* guc_database();
ListenConfig listen_config();
UpstreamConfig upstream_config();
FirewallConfig firewall_config();
CacheConfig cache_config();
SecurityConfig security_config();
RoutingConfig routing_config();
MetricsConfig metrics_config();
int guc_cache_max_entries();
int guc_session_table_size();
uint64_t guc_cache_size();
int guc_statements_max();
ObserveConfig observe_config();

}  // namespace rproxy::pg
