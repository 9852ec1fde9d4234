// One scrape's numbers, read from the shared memory the pg_rproxy_* views read.
#pragma once

#include "core/metrics.hpp"

namespace rproxy::pg {

MetricsSnapshot read_metrics_snapshot();

}  // namespace rproxy::pg
