// The ceilings the workloads are measured against, in the same run: what the hardware and the
// libraries do with nothing of devlistd around them. A noisy machine slows both alike, so the
// ratio survives where the absolute figure does not.
//
// The raw SQLite ceiling talks to SQLite directly (its own scratch database and table, shaped
// like the store's): it is the floor the store is measured against, so it cannot go through
// the store.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

#include "bench/workload_data.hpp"

namespace devlist::bench {

struct verify_ceiling {
    double seconds = 0;
    double cpu_seconds = 0;    // of the whole process: steadier on a loaded machine
    std::size_t failures = 0;  // signatures that did not verify (a bug in the generator)
};

// Verifies every signature once (crypto_sign_verify_detached over the canonical message), on
// `threads` threads.
verify_ceiling raw_verify(std::span<const signed_message> signatures, unsigned threads);

// One transaction upserting `rows` rows (a text key and `payload_bytes` of text) plus one
// single-row update (as next_batch), in a fresh WAL database in `dir` with synchronous NORMAL, or
// FULL when `full`. Seconds for BEGIN … COMMIT, statements prepared beforehand.
double raw_sqlite_upsert(const std::filesystem::path& dir, std::size_t rows,
                         std::size_t payload_bytes, bool full);

// Seconds to make `count` signed one-time keys without the store: a Curve25519 key pair, its
// canonical JSON and the Ed25519 signature.
double raw_one_time_keys(std::size_t count);

// An HTTP/1.1 server on `acceptor` answering every request with 200 and `body`, keep-alive,
// until the acceptor is closed: the socket ceiling of the lookup workloads. Connections end
// when their clients close them.
boost::asio::awaitable<void> echo_server(boost::asio::local::stream_protocol::acceptor* acceptor,
                                         std::string body);

}  // namespace devlist::bench
