// The client side of the socket workloads: HTTP/1.1 GETs over a Unix socket, one at a time or
// pipelined, each answer checked (status 200 and an expected piece of the body), each latency
// recorded.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

namespace devlist::bench {

struct lookup_request {
    std::string target;  // percent-encoded path
    std::string expect;  // must occur in the answer's body
};

struct latency_stats {
    std::vector<double> micros;  // one per answered request
    std::size_t failures = 0;
    std::string first_error;
    double seconds = 0;  // wall time of the whole run

    double rate() const { return seconds > 0 ? static_cast<double>(micros.size()) / seconds : 0; }
    // The q-quantile (0..1) of the latencies, in µs; 0 without any.
    double quantile(double q) const;
};

// `count` requests (cycling through `requests`) on one kept-alive connection, each sent when the
// previous answer arrived. With stop_flag set, runs until it is true instead (at least
// `count` requests); another thread may set it.
struct run_control {
    std::size_t count = 0;
    const std::atomic<bool>* stop_flag = nullptr;
};

boost::asio::awaitable<void> sequential_lookups(std::string socket_path,
                                                const std::vector<lookup_request>* requests,
                                                run_control control, latency_stats* stats);

// The same, `depth` requests written at once before their answers are read (HTTP pipelining
// on one connection); each latency runs from the batch's write to that answer.
boost::asio::awaitable<void> pipelined_lookups(std::string socket_path,
                                               const std::vector<lookup_request>* requests,
                                               std::size_t count, std::size_t depth,
                                               latency_stats* stats);

}  // namespace devlist::bench
