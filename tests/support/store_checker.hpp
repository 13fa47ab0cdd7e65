// The store checker: after a scenario (faults, crashes, restarts), compares what devlistd's store
// holds with the test homeserver's truth and lists every disagreement in words a person can act
// on. An empty list is a pass.
//
// What it checks (issue 7, "A checker"):
//  - the stored next_batch is a token of this homeserver and not ahead of its stream;
//  - the tracked set is exactly the own user, the users sharing an encrypted room with the own
//    user at that next_batch, and the users tracked on request;
//  - no user is wrongly fresh: a fresh user's devices, device keys and cross-signing keys are
//    what /keys/query serves now, unless the homeserver changed them after next_batch (the
//    next /sync announces that); with expect_all_fresh, no user is left outdated but those of
//    servers named in unreachable_servers;
//  - the own device: the identity keys on the server are the stored ones; every one-time key the
//    server ever accepted for it (still published, or claimed since) and every fallback key it
//    ever held has its private part in the store, under the same ID and public key (claimed
//    one-time keys may be missing once the store kept one_time_keys_kept published keys: the
//    documented pruning cap); with a sealing key, each private part opens and belongs to its
//    public key; no key ID is used for two keys, in the store or on the server, and the server
//    never refused an upload for a reused key ID; uploaded own cross-signing keys are the ones
//    on the server;
//  - events: the outbox never announces a device twice (while nothing was pruned, every live
//    device exactly once); given a consumer's view (what it read and which acknowledgements it
//    got answered), nothing was skipped, no acknowledged event came again, no cursor named two
//    different events, and no acknowledgement was lost.
//
// For end-to-end tests, check_store_file() opens the database (and its sealing key file) after
// the daemon stopped or was killed: the store is locked while a devlistd runs.
//
// Thread-safety: none; call it from the thread that owns the store, while no transaction is open.
#pragma once

#include "crypto/seal.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"
#include "tests/homeserver/test_homeserver.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace devlist::test {

// What one local consumer of the event stream saw, in order.
class consumer_view {
  public:
    struct read {
        std::optional<std::int64_t> after{};  // the cursor it asked after, when it named one
        std::vector<storage::outbox_event> events{};
    };
    struct acknowledged {
        std::int64_t cursor = 0;  // an acknowledgement devlistd answered (so it committed)
    };
    using step = std::variant<read, acknowledged>;

    explicit consumer_view(std::string name = "default") : name_(std::move(name)) {}

    void on_read(std::vector<storage::outbox_event> events,
                 std::optional<std::int64_t> after = std::nullopt) {
        steps_.emplace_back(read{after, std::move(events)});
    }
    void on_acknowledged(std::int64_t cursor) { steps_.emplace_back(acknowledged{cursor}); }

    const std::string& name() const noexcept { return name_; }
    const std::vector<step>& steps() const noexcept { return steps_; }
    // The highest cursor read so far (0 if none).
    std::int64_t last_read() const;

  private:
    std::string name_;
    std::vector<step> steps_;
};

struct store_checker_options {
    std::string user_id = "@bot:localhost";
    std::string device_id = "BOTDEVICE";
    // Opens the private parts (otherwise only their presence is checked).
    const crypto::sealing_key* sealing_key = nullptr;
    // After a run that converged: nobody outdated but users of these servers.
    bool expect_all_fresh = true;
    std::set<std::string> unreachable_servers{};
    // engine_options::one_time_keys_kept of the run.
    std::size_t one_time_keys_kept = 5000;
    const consumer_view* consumer = nullptr;
    // The consumer read from the first event on (the "default" consumer of a new database): it
    // must then have seen every device announced.
    bool consumer_from_start = true;
    // It read until nothing was left: the last event it saw is the store's last.
    bool consumer_drained = true;
};

using problem_list = std::vector<std::string>;

// Compares the store with the homeserver; the problems found, none if they agree.
problem_list check_store(storage::store& store, const testing::test_homeserver& hs,
                         const store_checker_options& options = {});

// The same for a database file that no process holds: opens it, and the sealing key in
// "<database>.key" when options carry none and the file exists.
problem_list check_store_file(const std::filesystem::path& database,
                              const testing::test_homeserver& hs,
                              store_checker_options options = {});

// One problem a line, for test messages ("no problems" when empty).
std::string describe(const problem_list& problems);

}  // namespace devlist::test
