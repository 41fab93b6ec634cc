#pragma once

#include "bench_common.hpp"

namespace tumbled::bench {

int run_ingest(const Options& options);
int run_latency(const Options& options);
int run_replay(const Options& options);
int run_checkpoint(const Options& options);
int run_footprint(const Options& options);
int run_http_write(const Options& options);
int run_kafka(const Options& options);

}  // namespace tumbled::bench
