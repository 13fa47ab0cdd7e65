// GET /metrics: the engine's and the socket API's counters in the Prometheus text exposition
// format, version 0.0.4 (what every Prometheus-compatible scraper reads).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sync/sync_engine.hpp"

namespace devlist::daemon {

// The socket API's own counters since start.
struct api_counters {
    std::map<unsigned, std::uint64_t> responses;  // by HTTP status
    std::uint64_t denied = 0;                     // requests refused for the peer's credentials
    std::uint64_t private_keys_handed_out = 0;    // one-time and fallback private keys
};

inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

std::string render_metrics(const sync::engine_status& engine, const api_counters& api);

// A label value with '\', '"' and newlines escaped as the format demands.
std::string escape_label_value(std::string_view value);

}  // namespace devlist::daemon
