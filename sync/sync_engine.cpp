#include "sync/sync_engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "crypto/base64.hpp"
#include "crypto/json_value.hpp"
#include "devlist/failpoint.hpp"
#include "sync/api_json.hpp"
#include "sync/api_model.hpp"
#include "sync/device_list_tracker.hpp"
#include "sync/key_maintenance.hpp"
#include "sync/key_verifier.hpp"
#include "sync/matrix_api.hpp"
#include "sync/matrix_ids.hpp"
#include "sync/own_keys.hpp"
#include "sync/parse_context.hpp"
#include "sync/query_ingest.hpp"
#include "sync/wakeup.hpp"

namespace devlist::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// What devlistd needs from /sync: member and encryption state of rooms, nothing else. Members
// are never lazy-loaded, so the tracker's room model is complete.
constexpr std::string_view sync_filter =
    R"({"account_data":{"types":[]},"presence":{"types":[]},)"
    R"("room":{"account_data":{"types":[]},"ephemeral":{"types":[]},)"
    R"("state":{"lazy_load_members":false,"types":["m.room.member","m.room.encryption"]},)"
    R"("timeline":{"limit":50,"types":["m.room.member","m.room.encryption"]}}})";

// Device changes named one by one in the log per /keys/query answer; the rest are counted.
constexpr std::size_t max_device_lines = 50;

std::int64_t system_now_ms() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string to_device_payload(const to_device_event& e) {
    json::value head = json::object{{"type", e.type}, {"sender", e.sender}};
    std::string payload = json::to_canonical(head);
    // The content is spliced as received: it may hold what our canonical writer refuses
    // (floats), and consumers want it verbatim.
    payload.pop_back();
    payload += ",\"content\":";
    payload += e.content_json;
    payload += '}';
    return payload;
}

}  // namespace

std::size_t default_verify_threads() {
    const std::size_t cores = std::thread::hardware_concurrency();
    return std::clamp<std::size_t>(cores, 1, 4);
}

class sync_engine::impl {
  public:
    impl(asio::any_io_executor executor, storage::store& store, http_client& http,
         engine_options options, log_function log)
        : executor_(std::move(executor)),
          store_(store),
          options_(std::move(options)),
          log_(std::move(log)),
          api_(http, parser_),
          tracker_(options_.user_id),
          random_(std::random_device{}()),
          keys_(store_, api_, options_, log_, status_.keys, committed_, [this] {
              auto r = commit_local([this](storage::sync_batch& batch) {
                  tracker_.mark_outdated({options_.user_id}, batch);
              });
              if (!r) {
                  this->log(log_level::error,
                            "could not mark the own user outdated: ", r.error().message());
              }
          }) {
        if (!options_.clock) options_.clock = system_now_ms;
        if (options_.verify_threads > 0) verify_pool_.emplace(options_.verify_threads);
        status_.user_id = options_.user_id;
    }

    asio::awaitable<result<void>> run();
    engine_status status() const {
        engine_status s = status_;
        s.tracked = tracker_.tracked_count();
        s.outdated = tracker_.outdated_count();
        s.users_in_flight = tracker_.in_flight_count();
        return s;
    }
    result<void> commit_local(const std::function<void(storage::sync_batch&)>& change);
    device_list_tracker& tracker() { return tracker_; }

  private:
    asio::awaitable<result<void>> start();
    asio::awaitable<result<void>> login();
    asio::awaitable<result<void>> sync_loop();
    asio::awaitable<void> query_worker();
    asio::awaitable<void> query_workers(std::size_t n);
    // `also` adds to the batch before it is committed (the marks of a catch-up).
    result<void> apply_sync(const sync_response& response, bool initial,
                            steady_clock::time_point sent,
                            const std::function<void(storage::sync_batch&)>& also = {});
    result<void> restore();
    asio::awaitable<void> sleep(milliseconds d);
    bool query_allowed(const std::string& user_id) const;
    void forget_repeated_events(storage::query_result& result);
    steady_clock::time_point next_retry_time() const;
    void record_sync_latency(milliseconds took) {
        std::size_t bucket = 0;
        while (bucket < std::size(sync_latency_bounds_ms) &&
               took.count() > sync_latency_bounds_ms[bucket])
            ++bucket;
        ++status_.sync_latency_buckets[bucket];
        status_.sync_latency_sum_ms += took.count();
    }

  public:
    wakeup& committed() { return committed_; }
    key_maintainer& keys() { return keys_; }
    result<std::optional<private_key_handout>> take_one_time_key(const std::string& which,
                                                                 bool by_public_key);
    result<std::vector<fallback_key_handout>> fallback_keys();

  private:
    template <class... Parts>
    void log(log_level level, const Parts&... parts) {
        if (!log_) return;
        std::string line;
        (line.append(parts), ...);
        log_(level, line);
    }

    asio::any_io_executor executor_;
    storage::store& store_;
    engine_options options_;
    log_function log_;
    parse_context parser_;
    matrix_api api_;
    device_list_tracker tracker_;
    std::mt19937_64 random_;
    wakeup work_;
    wakeup committed_;  // wait_for_change()
    engine_status status_;
    std::string filter_id_;
    std::optional<std::string> since_;
    std::optional<std::string> stored_device_id_;  // the device the database belongs to
    bool restored_ = false;                        // the tracker holds the store's state
    std::optional<error> fatal_;
    // Backoff of servers named in `failures` and of users missing from an answer, by key
    // ("server" or "@user"), as steady-clock deadlines.
    struct retry_state {
        std::int64_t failures = 0;
        steady_clock::time_point at;
    };
    std::unordered_map<std::string, retry_state> retry_;
    // Security events recorded in this run ("kind\ndetail"), so that a conflict that every
    // answer repeats is recorded once.
    std::unordered_set<std::string> reported_;
    std::optional<asio::thread_pool> verify_pool_;
    key_maintainer keys_;
};

asio::awaitable<void> sync_engine::impl::sleep(milliseconds d) {
    asio::steady_timer timer(executor_, d);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

result<void> sync_engine::impl::restore() {
    auto state = store_.sync().load_sync_state();
    if (!state) return state.error();
    auto rooms = store_.sync().load_rooms();
    if (!rooms) return rooms.error();
    // Members and tracked users are streamed into the tracker rather than loaded into vectors
    // first: with a hundred thousand of each, the copies cost more time and peak memory than
    // the tracker itself. A read failing halfway leaves the tracker half-built: restored_ stays
    // false, so the next local change restores again before deciding anything.
    restored_ = false;
    tracker_.begin_restore(state->generation);
    for (const auto& room : *rooms)
        tracker_.restore_room(room.room_id, room.encrypted, room.algorithm.value_or(""));
    auto members = store_.sync().for_each_membership(
        [&](const storage::room_member_view& m) { tracker_.restore_member(m); });
    if (!members) return members.error();
    auto users = store_.tracking().for_each_tracked_user(
        [&](const storage::tracked_user_view& u) { tracker_.restore_user(u); });
    if (!users) return users.error();
    restored_ = true;
    since_ = state->next_batch;
    if (state->filter_id) filter_id_ = *state->filter_id;
    stored_device_id_ = state->device_id;
    status_.next_batch = since_;
    return {};
}

result<void> sync_engine::impl::commit_local(
    const std::function<void(storage::sync_batch&)>& change) {
    // A local request may come before run() loaded the tracker (a bot that tracks a user
    // before it starts the engine): a change computed from an empty tracker would overwrite
    // the stored state.
    if (!restored_) {
        if (auto r = restore(); !r) return r.error();
    }
    storage::sync_batch batch;
    batch.at = options_.clock();
    change(batch);
    if (auto r = store_.sync().apply_sync_batch(batch); !r) {
        // Memory is ahead of the store now; go back to what the store holds.
        if (auto back = restore(); !back) return back.error();
        return r.error();
    }
    work_.notify_all();
    committed_.notify_all();
    return {};
}

asio::awaitable<result<void>> sync_engine::impl::login() {
    if (options_.access_token && !api_.has_access_token()) {
        api_.set_access_token(*options_.access_token);
        auto who = co_await api_.whoami();
        if (!who) {
            if (who.error().is_transient()) co_return error{errc::io_error, who.error().detail};
            co_return error{errc::invalid_argument,
                            "the access token was refused: " + who.error().detail +
                                " — check access_token_file"};
        }
        if (who->user_id != options_.user_id) {
            co_return error{errc::invalid_argument, "the access token belongs to " + who->user_id +
                                                        ", not to the configured user_id " +
                                                        options_.user_id};
        }
        if (!who->device_id.empty()) status_.device_id = who->device_id;
        co_return result<void>{};
    }
    if (!options_.password) {
        co_return error{errc::invalid_argument,
                        "the access token was refused and no password is configured to log in "
                        "again — put a valid token in access_token_file"};
    }
    std::optional<std::string> device = options_.device_id;
    if (!device && !status_.device_id.empty()) device = status_.device_id;
    auto r = co_await api_.login_with_password(options_.user_id, *options_.password, device,
                                               options_.device_display_name);
    if (!r) {
        if (r.error().is_transient()) co_return error{errc::io_error, r.error().detail};
        co_return error{errc::invalid_argument,
                        "password login failed: " + r.error().detail + " — check password_file"};
    }
    if (r->user_id != options_.user_id) {
        co_return error{errc::invalid_argument, "logged in as " + r->user_id +
                                                    ", not as the configured " + options_.user_id};
    }
    api_.set_access_token(r->access_token);
    if (status_.device_id != r->device_id) {
        status_.device_id = r->device_id;
        if (auto s = store_.sync().set_device_id(r->device_id); !s) co_return s.error();
    }
    log(log_level::notice, "logged in as ", r->user_id, " on device ", r->device_id);
    co_return result<void>{};
}

asio::awaitable<result<void>> sync_engine::impl::start() {
    if (auto r = restore(); !r) co_return r.error();
    if (stored_device_id_) status_.device_id = *stored_device_id_;
    if (options_.device_id && stored_device_id_ && *options_.device_id != *stored_device_id_) {
        co_return error{errc::invalid_argument,
                        std::string("the database belongs to device ") + *stored_device_id_ +
                            " but the configuration names device " + *options_.device_id +
                            " — use another database for another device"};
    }
    // Logging in and creating the filter are retried while the server is unreachable.
    for (std::int64_t failures = 1;; ++failures) {
        auto r = co_await login();
        if (r) break;
        if (!(r.error() == errc::io_error)) co_return r.error();
        status_.phase = engine_phase::backing_off;
        status_.last_error = r.error().detail;
        auto wait = options_.sync_backoff.delay(failures, random_());
        log(log_level::warning, "cannot log in: ", r.error().detail, "; retrying in ",
            std::to_string(wait.count()), " ms");
        co_await sleep(wait);
    }
    if (status_.device_id.empty() && options_.device_id) status_.device_id = *options_.device_id;
    if (status_.device_id.empty()) {
        co_return error{errc::invalid_argument,
                        "the server did not say which device the access token belongs to: set "
                        "device_id in the configuration"};
    }
    if (!stored_device_id_) {
        if (auto s = store_.sync().set_device_id(status_.device_id); !s) co_return s.error();
    }
    if (options_.sync_filter) filter_id_.clear();  // the stored ID is the built-in filter's
    if (filter_id_.empty()) {
        for (std::int64_t failures = 1;; ++failures) {
            auto f = co_await api_.create_filter(
                options_.user_id, options_.sync_filter.value_or(std::string(sync_filter)));
            if (f) {
                filter_id_ = *f;
                if (!options_.sync_filter) {
                    if (auto s = store_.sync().set_filter_id(filter_id_); !s) co_return s.error();
                }
                break;
            }
            if (!f.error().is_transient()) {
                // Not fatal: an unfiltered sync carries what devlistd needs, only more of it.
                log(log_level::warning, "could not create the sync filter (", f.error().detail,
                    "); syncing without one");
                break;
            }
            co_await sleep(options_.sync_backoff.delay(failures, random_()));
        }
    }
    if (auto k = co_await keys_.prepare(status_.device_id); !k) co_return k.error();
    storage::sync_batch own;
    own.at = options_.clock();
    tracker_.ensure_own_user(own);
    if (!own.tracked_users.empty()) {
        if (auto r = store_.sync().apply_sync_batch(own); !r) co_return r.error();
    }
    co_return result<void>{};
}

result<void> sync_engine::impl::apply_sync(const sync_response& response, bool initial,
                                           steady_clock::time_point sent,
                                           const std::function<void(storage::sync_batch&)>& also) {
    // A restore that failed after an earlier failed commit left the tracker half-built: never
    // decide from that.
    if (!restored_) {
        if (auto r = restore(); !r) return r.error();
    }
    storage::sync_batch batch;
    batch.at = options_.clock();
    batch.next_batch = response.next_batch;
    tracker_.apply_sync(response, initial, batch);
    if (also) also(batch);
    if (response.one_time_key_counts) {
        batch.one_time_key_counts.emplace(response.one_time_key_counts->begin(),
                                          response.one_time_key_counts->end());
    } else if (!initial) {
        // A missing field means every count is 0 (servers may leave out zero counts).
        batch.one_time_key_counts.emplace();
    }
    batch.unused_fallback_key_types = response.unused_fallback_key_types;
    for (const auto& e : response.to_device) {
        batch.outbox_events.push_back({0, batch.at, "to_device", to_device_payload(e)});
    }
    if (auto r = store_.sync().apply_sync_batch(batch); !r) {
        if (auto back = restore(); !back) return back.error();
        return r.error();
    }
    DEVLIST_FAILPOINT("sync.apply.after_commit");
    since_ = response.next_batch;
    status_.next_batch = since_;
    key_planner::sync_report report;
    if (response.one_time_key_counts) {
        report.one_time_key_counts.insert(response.one_time_key_counts->begin(),
                                          response.one_time_key_counts->end());
    }
    report.unused_fallback_key_types = response.unused_fallback_key_types;
    report.sent_at = sent;
    keys_.note_sync(report);
    ++status_.syncs;
    status_.last_sync_at = batch.at;
    log(log_level::info, "sync ", response.next_batch, initial ? " (initial)" : "", ": ",
        std::to_string(response.rooms.size()), " rooms, ",
        std::to_string(response.device_lists_changed.size()), " changed, ",
        std::to_string(response.device_lists_left.size()), " left, ",
        std::to_string(response.to_device.size()), " to-device; tracking ",
        std::to_string(tracker_.tracked_count()), " users, ",
        std::to_string(tracker_.outdated_count()), " outdated",
        response.dropped ? "; dropped " + std::to_string(response.dropped) +
                               " malformed entries (first: " + response.drop_reasons.front() + ")"
                         : std::string());
    work_.notify_all();
    committed_.notify_all();
    return {};
}

asio::awaitable<result<void>> sync_engine::impl::sync_loop() {
    std::int64_t failures = 0;
    std::int64_t hook_failures = 0;  // apart: `failures` restarts at every answer
    std::optional<std::string> rejected_token;
    for (;;) {
        bool initial = !since_;
        milliseconds timeout = initial ? 0ms : options_.sync_timeout;
        const auto sent = steady_clock::now();
        auto r = co_await api_.sync(since_.value_or(""), filter_id_, timeout);
        record_sync_latency(std::chrono::duration_cast<milliseconds>(steady_clock::now() - sent));
        if (r) {
            failures = 0;
            status_.phase = engine_phase::syncing;
            status_.last_error.clear();
            if (options_.on_sync_response) {
                auto taken =
                    options_.on_sync_response({since_.value_or(""), r->next_batch, r->body});
                if (!taken) {
                    // Not committed: since_ is unchanged, so the retry fetches this batch again.
                    status_.last_error =
                        "the sync hook refused a batch: " + taken.error().message();
                    status_.phase = engine_phase::backing_off;
                    ++hook_failures;
                    auto wait = options_.sync_backoff.delay(hook_failures, random_());
                    log(log_level::warning, status_.last_error, "; retrying in ",
                        std::to_string(wait.count()), " ms");
                    co_await sleep(wait);
                    continue;
                }
                hook_failures = 0;
            }
            // After a rejected token, /keys/changes between the old token and this initial
            // sync's is asked *before* the batch is committed, and its marks are committed
            // with it: a crash in between leaves the old token stored, so the server rejects
            // it again and the catch-up is done again. Nothing changed in the gap is lost.
            std::function<void(storage::sync_batch&)> catch_up;
            if (rejected_token) {
                auto changes = co_await api_.keys_changes(*rejected_token, r->next_batch);
                catch_up = [this, changes = std::move(changes)](storage::sync_batch& batch) {
                    if (changes) {
                        auto n = tracker_.mark_outdated(changes->changed, batch);
                        log(log_level::notice, "catch-up: /keys/changes marked ", std::to_string(n),
                            " users outdated");
                    } else {
                        auto n = tracker_.mark_all_outdated(batch);
                        log(log_level::warning, "catch-up: ", changes.error().detail,
                            "; marked all ", std::to_string(n), " tracked users outdated");
                    }
                };
            }
            if (auto a = apply_sync(*r, initial, sent, catch_up); !a) {
                status_.last_error = a.error().message();
                log(log_level::error, "could not store a sync batch: ", a.error().message());
                ++failures;
                co_await sleep(options_.sync_backoff.delay(failures, random_()));
                continue;
            }
            rejected_token.reset();
            continue;
        }
        const api_failure& f = r.error();
        if ((co_await asio::this_coro::cancellation_state).cancelled() !=
            asio::cancellation_type::none) {
            co_return result<void>{};  // stopping: not a failure of the server
        }
        status_.last_error = f.detail;
        ++status_.sync_failures;
        if (f.is_unknown_token()) {
            log(log_level::warning, "the homeserver revoked the access token: ", f.detail);
            options_.access_token.reset();
            auto relog = co_await login();
            if (!relog) {
                status_.phase = engine_phase::stopped;
                co_return relog.error();
            }
            continue;
        }
        if (!initial && f.what == api_failure::kind::http && f.status == 400) {
            // The server no longer accepts our since token: start over with an initial sync,
            // then ask /keys/changes what changed between the two tokens.
            log(log_level::warning, "the homeserver rejected sync token ", *since_, " (", f.detail,
                "); doing an initial sync and catching up");
            rejected_token = since_;
            since_.reset();
            continue;
        }
        if (initial && !filter_id_.empty() && f.what == api_failure::kind::http &&
            f.status == 400) {
            // The server forgot our filter (or never took it): sync without one; start()
            // creates a new one next time.
            log(log_level::warning, f.detail, "; syncing without filter ", filter_id_);
            filter_id_.clear();
            if (auto s = store_.sync().set_filter_id(""); !s) co_return s.error();
            continue;
        }
        ++failures;
        status_.phase = engine_phase::backing_off;
        milliseconds wait = options_.sync_backoff.delay(failures, random_());
        if (f.retry_after) wait = std::max(wait, *f.retry_after);
        log(log_level::warning, f.detail, "; retrying in ", std::to_string(wait.count()), " ms");
        co_await sleep(wait);
    }
}

void sync_engine::impl::forget_repeated_events(storage::query_result& result) {
    // A refused key stays refused, so every later answer for the user reports the same
    // conflict again. Each distinct event (kind and detail, which names user and device) is
    // recorded once per run; a restart records it once more.
    std::unordered_set<std::string> repeated;
    std::erase_if(result.security_events, [&](const storage::security_event& e) {
        std::string key = e.kind + '\n' + e.detail_json;
        if (reported_.size() >= 100000) reported_.clear();  // bounded: at worst one repeat
        if (reported_.insert(key).second) return false;
        repeated.insert(std::move(key));
        return true;
    });
    // The verifier pairs each security event with an outbox event of the same kind and payload.
    std::erase_if(result.outbox_events, [&](const storage::outbox_event& e) {
        return repeated.contains(e.type + '\n' + e.payload_json);
    });
}

bool sync_engine::impl::query_allowed(const std::string& user_id) const {
    auto now = steady_clock::now();
    auto user = retry_.find(user_id);
    if (user != retry_.end() && user->second.at > now) return false;
    auto server = retry_.find(std::string(server_name_of(user_id).value_or("")));
    return server == retry_.end() || server->second.at <= now;
}

steady_clock::time_point sync_engine::impl::next_retry_time() const {
    auto next = steady_clock::now() + 60s;
    for (const auto& [key, state] : retry_)
        next = std::min(next, state.at);
    return next;
}

asio::awaitable<void> sync_engine::impl::query_worker() {
    std::int64_t failures = 0;
    for (;;) {
        auto tickets = tracker_.take_outdated(
            options_.query_batch_size, [this](const std::string& u) { return query_allowed(u); });
        if (tickets.empty()) {
            co_await work_.wait_until(next_retry_time());
            continue;
        }
        std::vector<std::string> users;
        users.reserve(tickets.size());
        for (const auto& t : tickets)
            users.push_back(t.user_id);
        auto answer = co_await api_.keys_query(users, options_.query_server_timeout);
        ++status_.queries;
        if (!answer) {
            ++status_.query_failures;
            tracker_.finish_query(tickets, {});
            ++failures;
            milliseconds wait = options_.query_backoff.delay(failures, random_());
            if (answer.error().retry_after) wait = std::max(wait, *answer.error().retry_after);
            log(log_level::warning, answer.error().detail, "; ", std::to_string(tickets.size()),
                " users stay outdated, retrying in ", std::to_string(wait.count()), " ms");
            co_await sleep(wait);
            continue;
        }
        DEVLIST_FAILPOINT("query.answer.received");
        failures = 0;
        if (answer->dropped) {
            log(log_level::warning, "/keys/query: dropped ", std::to_string(answer->dropped),
                " malformed entries (first: ",
                answer->drop_reasons.empty() ? std::string() : answer->drop_reasons.front(), ")");
        }
        const auto now_ms = options_.clock();
        // Backoff for servers that failed and users that were missing; success clears it.
        auto steady_now = steady_clock::now();
        std::vector<storage::server_backoff> failed_servers;
        for (const auto& [server, detail] : answer->failures) {
            ++status_.query_failures_by_server[server];
            auto& state = retry_[server];
            ++state.failures;
            auto wait = options_.server_backoff.delay(state.failures, random_());
            state.at = steady_now + wait;
            failed_servers.push_back({server, state.failures, now_ms + wait.count()});
            log(log_level::warning, "/keys/query: server ", server, " failed (", detail,
                "); its users stay outdated, retrying in ", std::to_string(wait.count() / 1000),
                " s");
        }
        ingest_options how;
        how.slice_budget = options_.query_slice_budget;
        how.parser = &parser_;
        if (verify_pool_) {
            how.pool = &*verify_pool_;
            how.pool_threads = options_.verify_threads;
            how.pool_nice = options_.verify_threads_nice;
        }
        auto totals =
            co_await ingest_query_answer(store_, *answer, tickets, now_ms, how,
                                         [this, &failed_servers](storage::query_result& slice) {
                                             // The first slice carries the backoff of the servers
                                             // that failed.
                                             if (!failed_servers.empty())
                                                 slice.failed_servers = std::move(failed_servers);
                                             failed_servers.clear();
                                             forget_repeated_events(slice);
                                         });
        if (totals.refused) {
            // A user's part that does not parse makes the answer as unusable as a body that
            // does not: nothing of it was stored.
            ++status_.query_failures;
            tracker_.finish_query(tickets, {});
            ++failures;
            milliseconds wait = options_.query_backoff.delay(failures, random_());
            log(log_level::warning,
                "POST /keys/query: unusable answer: ", totals.refused->message(), "; ",
                std::to_string(tickets.size()), " users stay outdated, retrying in ",
                std::to_string(wait.count()), " ms");
            co_await sleep(wait);
            continue;
        }
        if (totals.dropped) {
            log(log_level::warning, "/keys/query: dropped ", std::to_string(totals.dropped),
                " malformed entries (first: ",
                totals.drop_reasons.empty() ? std::string() : totals.drop_reasons.front(), ")");
        }
        for (const auto& server : totals.answered_servers)
            retry_.erase(server);
        for (const auto& user_id : totals.absent) {
            auto& state = retry_[user_id];
            ++state.failures;
            state.at = steady_now + options_.server_backoff.delay(state.failures, random_());
        }
        const auto& outcome = totals.outcome;
        for (const auto* answered :
             {&outcome.cleared, &outcome.still_outdated, &outcome.not_tracked})
            for (const auto& u : *answered)
                retry_.erase(u);
        // Users of slices that were not committed (a store error, shutdown) stay outdated.
        tracker_.finish_query(tickets, outcome.cleared);
        committed_.notify_all();
        status_.devices_rejected += totals.stats.devices_rejected;
        for (const auto& e : totals.security_events) {
            log(log_level::warning, "security: ", e.kind, " ", e.user_id.value_or(""),
                e.device_id ? " device " + *e.device_id : std::string(), " ", e.detail_json);
        }
        if (totals.store_error) {
            log(log_level::error,
                "could not store a /keys/query answer: ", totals.store_error->message());
            ++failures;
            co_await sleep(options_.query_backoff.delay(failures, random_()));
            continue;
        }
        const auto& stats = totals.stats;
        std::size_t added = 0, changed = 0, removed = 0;
        for (const auto& c : outcome.device_changes) {
            const char* what = "";
            switch (c.kind) {
                case storage::device_change_kind::added:
                    ++added;
                    what = "added";
                    break;
                case storage::device_change_kind::changed:
                    ++changed;
                    what = "changed";
                    break;
                case storage::device_change_kind::removed:
                    ++removed;
                    what = "removed";
                    break;
            }
            // Every change is an outbox event; the log names the first few of a large answer.
            if (added + changed + removed <= max_device_lines) {
                log(log_level::info, "device ", what, ": ", c.user_id, " ", c.device_id);
            }
        }
        if (added + changed + removed > max_device_lines) {
            log(log_level::info,
                "device changes: ", std::to_string(added + changed + removed - max_device_lines),
                " more");
        }
        log(log_level::info, "/keys/query: ", std::to_string(tickets.size()), " users, ",
            std::to_string(stats.users_repeated), " repeating what is stored, ",
            std::to_string(stats.devices_accepted + stats.devices_unchanged), " devices (",
            std::to_string(added), " added, ", std::to_string(changed), " changed, ",
            std::to_string(removed), " removed), ", std::to_string(stats.devices_rejected),
            " rejected, ", std::to_string(stats.signatures_checked), " signatures checked; ",
            std::to_string(outcome.still_outdated.size()), " changed again meanwhile, ",
            std::to_string(tracker_.outdated_count()), " outdated");
    }
}

// True when `e` is the operation_aborted a cancelled coroutine resumes with, possibly inside
// the multiple_exceptions of an awaitable-operator group (nested for several query workers).
bool is_cancellation(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& error) {
        return error.code() == asio::error::operation_aborted;
    } catch (const asio::multiple_exceptions& many) {
        return is_cancellation(many.first_exception());
    } catch (...) {
        return false;
    }
}

asio::awaitable<result<void>> sync_engine::impl::run() {
    using namespace asio::experimental::awaitable_operators;
    status_.phase = engine_phase::starting;
    std::optional<result<void>> fatal;
    // A cancelled coroutine resumes with operation_aborted thrown at its next co_await: this
    // is the one place that turns that into a clean stop.
    try {
        auto started = co_await start();
        if (!started) {
            fatal = std::move(started);
        } else {
            log(log_level::notice, "tracking device lists for ", options_.user_id, " on device ",
                status_.device_id,
                since_ ? " from sync token " + *since_ : std::string(" (first sync)"));
            // The sync loop ends only with a fatal error; the query workers and key
            // maintenance never end. `||` cancels them when the sync loop stops, and
            // everything when run() itself is cancelled.
            auto ended =
                co_await (sync_loop() || query_workers(options_.queries_in_flight) || keys_.run());
            if (auto* r = std::get_if<0>(&ended); r && !*r) fatal = std::move(*r);
        }
    } catch (...) {
        if (!is_cancellation(std::current_exception())) throw;
    }
    status_.phase = engine_phase::stopped;
    if (fatal) {
        status_.last_error = fatal->error().message();
        co_return std::move(*fatal);
    }
    co_return result<void>{};
}

asio::awaitable<void> sync_engine::impl::query_workers(std::size_t n) {
    using namespace asio::experimental::awaitable_operators;
    if (n <= 1) {
        co_await query_worker();
    } else {
        co_await (query_worker() && query_workers(n - 1));
    }
}

sync_engine::sync_engine(asio::any_io_executor executor, storage::store& store, http_client& http,
                         engine_options options, log_function log)
    : impl_(std::make_unique<impl>(std::move(executor), store, http, std::move(options),
                                   std::move(log))) {}

sync_engine::~sync_engine() = default;

asio::awaitable<result<void>> sync_engine::run() {
    return impl_->run();
}

engine_status sync_engine::status() const {
    return impl_->status();
}

result<void> sync_engine::track_user(const std::string& user_id) {
    if (!is_valid_user_id(user_id)) {
        return error{errc::invalid_argument, "not a valid user ID: " + user_id};
    }
    return impl_->commit_local(
        [&](storage::sync_batch& batch) { impl_->tracker().track_explicitly(user_id, batch); });
}

result<bool> sync_engine::untrack_user(const std::string& user_id) {
    bool was = false;
    auto r = impl_->commit_local([&](storage::sync_batch& batch) {
        was = impl_->tracker().untrack_explicitly(user_id, batch);
    });
    if (!r) return r.error();
    return was;
}

std::string_view to_string(engine_phase p) {
    return name_of(to_public(p));
}

std::string_view to_string(cross_signing_state s) {
    return name_of(to_public(s));
}

void sync_engine::set_one_time_key_target(std::size_t target) {
    impl_->keys().set_one_time_key_target(target);
}

asio::awaitable<void> sync_engine::wait_for_change(steady_clock::time_point deadline) {
    return impl_->committed().wait_until(deadline);
}

result<void> sync_engine::refresh_user(const std::string& user_id) {
    std::size_t marked = 0;
    auto r = impl_->commit_local([&](storage::sync_batch& batch) {
        marked = impl_->tracker().mark_outdated({user_id}, batch);
    });
    if (!r) return r.error();
    if (marked == 0) return error{errc::invalid_argument, user_id + " is not tracked"};
    return {};
}

namespace {

result<private_key_handout> unseal_handout(const crypto::sealing_key* key, std::string key_id,
                                           std::string public_key,
                                           const storage::sealed_bytes& sealed,
                                           std::string_view context_prefix) {
    if (key == nullptr) return error{errc::invalid_argument, "no sealing key is configured"};
    auto secret = key->open(sealed, std::string(context_prefix) + public_key);
    if (!secret) {
        return error{secret.error().code,
                     "the private part of key " + key_id +
                         " does not open with the sealing key: " + secret.error().detail};
    }
    return private_key_handout{std::move(key_id), std::move(public_key),
                               crypto::base64_encode(secret->span())};
}

}  // namespace

result<std::optional<private_key_handout>> sync_engine::take_one_time_key(
    const std::string& key_id) {
    return impl_->take_one_time_key(key_id, false);
}

result<std::optional<private_key_handout>> sync_engine::take_one_time_key_by_public_key(
    const std::string& public_key) {
    return impl_->take_one_time_key(public_key, true);
}

result<std::optional<private_key_handout>> sync_engine::impl::take_one_time_key(
    const std::string& which, bool by_public_key) {
    auto& keys = store_.one_time_keys();
    // Opened before it is taken: a key whose private part does not open stays where it is.
    auto found = by_public_key ? keys.find_by_public_key(which) : keys.find(which);
    if (!found) return found.error();
    if (!*found) return std::optional<private_key_handout>{};
    auto handout =
        unseal_handout(options_.sealing_key.get(), (*found)->key_id, (*found)->public_key,
                       (*found)->sealed_private, seal_context::one_time_key);
    if (!handout) return handout.error();
    auto taken = keys.take((*found)->key_id);
    if (!taken) return taken.error();
    if (!*taken) return std::optional<private_key_handout>{};  // taken meanwhile
    committed_.notify_all();
    return std::optional<private_key_handout>(std::move(*handout));
}

result<std::vector<fallback_key_handout>> sync_engine::fallback_keys() {
    return impl_->fallback_keys();
}

result<std::vector<fallback_key_handout>> sync_engine::impl::fallback_keys() {
    auto& store = store_.fallback_keys();
    auto current = store.current();
    if (!current) return current.error();
    auto previous = store.previous();
    if (!previous) return previous.error();
    std::vector<storage::fallback_key> all;
    if (*current) all.push_back(std::move(**current));
    for (auto& k : *previous)
        all.push_back(std::move(k));
    std::vector<fallback_key_handout> out;
    for (auto& k : all) {
        auto handout = unseal_handout(options_.sealing_key.get(), k.key_id, k.public_key,
                                      k.sealed_private, seal_context::fallback_key);
        if (!handout) return handout.error();
        out.push_back({std::move(*handout), k.slot == storage::fallback_slot::current,
                       k.state == storage::key_state::published, k.used_at, k.erase_after});
    }
    return out;
}

}  // namespace devlist::sync
