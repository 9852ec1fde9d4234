// The settings a PostgreSQL 15 server reports with ParameterStatus (GUC_REPORT), in its order.
#pragma once

namespace rproxy {

inline constexpr const char* kReportedParameters[] = {
    "application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
    "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding",
    "server_version", "session_authorization", "standard_conforming_strings", "TimeZone",
};

}  // namespace rproxy
