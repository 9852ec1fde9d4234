// Bytes read and written on client and upstream sockets, for the metrics endpoint. One set per
// process: a worker is one process and only its loop's thread does socket I/O. Plain additions
// here; Worker::publish() copies them to shared memory with the other counters.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>

namespace rproxy {

struct IoCounters {
    uint64_t client_received = 0, client_sent = 0;
    uint64_t upstream_received = 0, upstream_sent = 0;
};

inline IoCounters io_counters;

}  // namespace rproxy
