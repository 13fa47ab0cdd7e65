// Verification and storage of a /keys/query answer, in slices, without stalling the io loop.
//
// A user whose part of the answer has the digest stored with the user (the part is
// byte-identical to one that was accepted whole, see sync/answer_digest.hpp) is neither parsed
// nor verified, nor are the user's stored keys read: it is an unchanged result, committed many
// to a transaction. The other users' parts are parsed first, all of them, so that a part that
// does not parse refuses the answer before anything of it is committed.
//
// The users of an answer are independent: each user's devices, cross-signing keys, events and
// outdated flag are decided from that user's part of the answer alone. So the tickets are cut
// into slices of about a millisecond of work; the io thread yields between slices so that the
// sync loop and the socket server keep answering, and verified users are committed a few at a
// time, each commit one transaction. A crash between two commits leaves the committed users
// fresh and the others outdated: both are true.
//
// Verification runs on the calling (io) thread within a time budget per slice, or, with a
// verification pool, on the pool's threads while the io thread serves others; the store is only
// ever touched from the calling thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "devlist/error.hpp"
#include "storage/query_result.hpp"
#include "sync/device_list_tracker.hpp"
#include "sync/key_verifier.hpp"
#include "sync/keys_query_response.hpp"
#include "sync/parse_context.hpp"

namespace boost::asio {
class thread_pool;
}

namespace devlist::storage {
class store;
}

namespace devlist::sync {

struct ingest_options {
    // Verification work done before a slice is committed and the io thread yields.
    std::chrono::microseconds slice_budget{1000};
    // Without a pool: users verified before their slices are committed together (a commit
    // writes its pages to the WAL, so tiny ones cost more than the users in them).
    std::size_t commit_users = 16;
    // Users whose part repeats the stored one, per commit (one statement each).
    std::size_t repeated_commit_users = 256;
    // Parses the parts that need it; a context of its own when null. Used on the calling
    // thread only, before the first suspension.
    parse_context* parser = nullptr;
    // When set, slices are verified on this pool (several at once, up to its size) and
    // committed in order on the calling thread.
    boost::asio::thread_pool* pool = nullptr;
    std::size_t pool_threads = 0;  // the pool's size (how many slices are verified at once)
    // Each pool thread lowers its own priority (nice) by this much when it first verifies, so
    // that the io thread wins a contended core (a thread never raises it again).
    int pool_nice = 0;
};

struct ingest_totals {
    verification_stats stats{};
    std::vector<std::string> absent{};  // users missing from the answer (they stay outdated)
    std::vector<std::string> answered_servers{};  // servers of the tickets not in `failures`
    storage::query_outcome outcome{};             // merged over the committed slices
    std::vector<storage::security_event> security_events{};  // as committed
    std::size_t slices = 0;                                  // transactions committed
    // Set when a slice could not be committed; the slices before it are committed, the users
    // of this one and of the later ones are left outdated.
    std::optional<error> store_error{};
    // Set when a user's part could not be parsed: the answer is refused as a whole, nothing of
    // it is committed, and its users stay outdated.
    std::optional<error> refused{};
    // Devices dropped from the parts parsed (invalid device IDs).
    std::size_t dropped = 0;
    std::vector<std::string> drop_reasons{};
};

// Verifies `answer` for `tickets` and stores it slice by slice. `prepare` runs on the calling
// thread on each slice's result just before it is committed (the engine drops events it has
// already recorded and adds its server backoff to the first slice). Cancellation is checked
// between slices: what was committed stays committed.
boost::asio::awaitable<ingest_totals> ingest_query_answer(
    storage::store& store, const keys_query_answer& answer, std::vector<query_ticket> tickets,
    storage::timestamp_ms now, ingest_options options,
    std::function<void(storage::query_result&)> prepare = {});

}  // namespace devlist::sync
