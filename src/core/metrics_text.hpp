// The Prometheus text exposition format (version 0.0.4) of a metrics snapshot.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <string_view>

#include "core/metrics.hpp"

namespace rproxy {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_metrics(const MetricsSnapshot& s);

// A label value as the format quotes it: \ " and newline escaped.
std::string escape_label_value(std::string_view v);

}  // namespace rproxy
