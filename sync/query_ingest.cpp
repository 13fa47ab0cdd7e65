#include "sync/query_ingest.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "storage/store.hpp"
#include "sync/matrix_ids.hpp"
#include "sync/parse_keys.hpp"

namespace devlist::sync {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

known_keys load_known_keys(storage::store& store, const std::string& user_id) {
    known_keys k;
    if (auto d = store.devices().devices_of(user_id)) k.devices = std::move(*d);
    if (auto c = store.devices().cross_signing_keys_of(user_id)) k.cross_signing = std::move(*c);
    return k;
}

void add(verification_stats& into, const verification_stats& s) {
    into.signatures_checked += s.signatures_checked;
    into.devices_unchanged += s.devices_unchanged;
    into.devices_accepted += s.devices_accepted;
    into.devices_rejected += s.devices_rejected;
    into.cross_signing_rejected += s.cross_signing_rejected;
}

void merge(storage::query_outcome& into, storage::query_outcome&& o) {
    auto append = [](auto& to, auto&& from) {
        to.insert(to.end(), std::make_move_iterator(from.begin()),
                  std::make_move_iterator(from.end()));
    };
    append(into.cleared, std::move(o.cleared));
    append(into.still_outdated, std::move(o.still_outdated));
    append(into.not_tracked, std::move(o.not_tracked));
    append(into.device_changes, std::move(o.device_changes));
}

// One slice verified on the pool: its users' stored keys were read beforehand on the calling
// thread (the store is not thread-safe), the verdicts come back in `result`.
struct pool_job {
    std::span<const query_ticket> tickets;
    std::vector<known_keys> known;
    verification_stats stats{};
    storage::query_result result{};
};

// Verification competes with the io thread for the CPU; where they share a core (one core, or a
// busy machine), the io thread must win, or local clients and the sync loop wait for whole
// slices of signature checks. Linux gives each thread its own nice value.
void lower_this_thread_priority(int by) {
    thread_local bool lowered = false;
    if (lowered || by <= 0) return;
    lowered = true;
    const auto self = static_cast<id_t>(::gettid());
    errno = 0;
    const int now = ::getpriority(PRIO_PROCESS, self);
    if (now == -1 && errno != 0) return;
    // Failing leaves the thread as it is: slower answers under load, nothing wrong.
    (void)::setpriority(PRIO_PROCESS, self, std::min(now + by, 19));
}

// Runs `job` on `pool` and resumes the coroutine on its own executor. Not cancellable: the
// job reads the answer and writes the job, which outlive it because the caller awaits every
// job (hence pointers, not copies, as parameters).
asio::awaitable<void> verify_on_pool(asio::thread_pool* pool, const query_answer_index* index,
                                     pool_job* job, storage::timestamp_ms now, int nice) {
    auto initiate = [pool, index, job, now, nice](auto handler) {
        asio::post(*pool, [index, job, now, nice, handler = std::move(handler)]() mutable {
            lower_this_thread_priority(nice);
            // verify_query_users asks for each ticket's stored keys once, in ticket order.
            std::size_t next = 0;
            verify_query_users(
                *index, job->tickets,
                [job, &next](const std::string&) { return std::move(job->known[next++]); }, now,
                job->stats, job->result);
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, std::move(handler));
        });
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiate,
                                                                         asio::use_awaitable);
}

// Every job of a round at once, one pool thread each.
asio::awaitable<void> verify_round(asio::thread_pool* pool, const query_answer_index* index,
                                   std::span<pool_job> jobs, storage::timestamp_ms now, int nice) {
    if (jobs.empty()) co_return;
    if (jobs.size() == 1) {
        co_await verify_on_pool(pool, index, &jobs.front(), now, nice);
        co_return;
    }
    co_await (verify_on_pool(pool, index, &jobs.front(), now, nice) &&
              verify_round(pool, index, jobs.subspan(1), now, nice));
}

constexpr std::size_t pool_slice_users = 32;

// Lets the sync loop and the socket server in before the next slice; true when the ingest was
// cancelled meanwhile.
asio::awaitable<bool> let_others_in() {
    auto executor = co_await asio::this_coro::executor;
    co_await asio::post(executor, asio::use_awaitable);
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

}  // namespace

asio::awaitable<ingest_totals> ingest_query_answer(
    storage::store& store, const keys_query_answer& answer, std::vector<query_ticket> tickets,
    storage::timestamp_ms now, ingest_options options,
    std::function<void(storage::query_result&)> prepare) {
    ingest_totals totals;
    std::unordered_map<std::string_view, const user_section*> sections;
    sections.reserve(answer.users.size());
    for (const auto& user : answer.users)
        sections.emplace(user.user_id, &user);

    // A user's part whose digest is the stored one repeats what was verified and stored then:
    // it becomes an unchanged result at once. The others are parsed (all of them before anything
    // is committed: a part that does not parse refuses the answer as a whole) and verified.
    std::vector<query_ticket> covered;
    covered.reserve(tickets.size());
    std::vector<const user_section*> to_parse;
    std::vector<storage::user_query_result> repeated;
    std::set<std::string, std::less<>> answered;
    {
        // One read lock for all the digests, not one a statement (no write begins meanwhile:
        // nothing here suspends). Without it, the reads only cost more.
        const auto snapshot = store.begin_read();
        for (auto& ticket : tickets) {
            const std::string_view server = server_name_of(ticket.user_id).value_or("");
            if (answer.failures.contains(server)) continue;
            // Thousands of tickets, a few dozen servers: a name is copied once.
            if (!answered.contains(server)) answered.emplace(server);
            auto section = sections.find(ticket.user_id);
            if (section == sections.end()) {
                totals.absent.push_back(std::move(ticket.user_id));
                continue;
            }
            const user_section& part = *section->second;
            if (part.digest) {
                // A store that cannot answer only costs the shortcut.
                auto stored = store.devices().answer_digest_of(ticket.user_id);
                if (stored && *stored == part.digest) {
                    storage::user_query_result same;
                    same.user_id = std::move(ticket.user_id);
                    same.generation_at_send = ticket.generation;
                    same.unchanged = true;
                    same.digest = part.digest;
                    same.same_digest = true;
                    repeated.push_back(std::move(same));
                    continue;
                }
            }
            to_parse.push_back(&part);
            covered.push_back(std::move(ticket));
        }
    }
    totals.answered_servers.assign(answered.begin(), answered.end());
    totals.stats.users_repeated = repeated.size();

    // A part is a few kilobytes: a context of its own needs no large buffers.
    std::optional<parse_context> own_parser;
    if (!options.parser) own_parser.emplace(parse_context::default_max_depth, 1u << 16);
    auto parts = parse_user_parts(options.parser ? *options.parser : *own_parser, answer, to_parse);
    if (!parts) {
        totals.refused = parts.error();
        co_return totals;
    }
    totals.dropped = parts->dropped;
    totals.drop_reasons = std::move(parts->drop_reasons);
    const query_answer_index index(*parts);

    auto commit = [&](storage::query_result& slice) -> bool {
        if (totals.slices == 0) slice.answered_servers = totals.answered_servers;
        if (prepare) prepare(slice);
        ++totals.slices;
        auto outcome = store.devices().apply_query_result(slice);
        if (!outcome) {
            totals.store_error = outcome.error();
            return false;
        }
        totals.security_events.insert(totals.security_events.end(),
                                      std::make_move_iterator(slice.security_events.begin()),
                                      std::make_move_iterator(slice.security_events.end()));
        merge(totals.outcome, std::move(*outcome));
        return true;
    };

    // The repeated parts first, many to a commit: each is one statement.
    for (std::size_t done = 0; done < repeated.size();) {
        storage::query_result slice;
        slice.at = now;
        const std::size_t n = std::min(options.repeated_commit_users, repeated.size() - done);
        slice.users.assign(
            std::make_move_iterator(repeated.begin() + static_cast<std::ptrdiff_t>(done)),
            std::make_move_iterator(repeated.begin() + static_cast<std::ptrdiff_t>(done + n)));
        done += n;
        if (!commit(slice)) co_return totals;
        if (done == repeated.size() && covered.empty()) co_return totals;
        if (co_await let_others_in()) co_return totals;
    }

    const bool on_pool = options.pool && options.pool_threads > 0;
    storage::query_result pending;  // verified on this thread, not yet committed
    pending.at = now;
    std::span<const query_ticket> rest(covered);
    do {
        if (on_pool) {
            std::vector<pool_job> jobs;
            while (!rest.empty() && jobs.size() < options.pool_threads) {
                auto& job = jobs.emplace_back();
                job.tickets = rest.first(std::min(pool_slice_users, rest.size()));
                rest = rest.subspan(job.tickets.size());
                auto job_snapshot = store.begin_read();  // one read lock for its users
                for (const auto& t : job.tickets)
                    job.known.push_back(load_known_keys(store, t.user_id));
            }
            co_await verify_round(options.pool, &index, jobs, now, options.pool_nice);
            // An empty answer still commits once: the answered servers' backoff is cleared.
            if (jobs.empty()) jobs.emplace_back();
            for (auto& job : jobs) {
                add(totals.stats, job.stats);
                job.result.at = now;
                if (!commit(job.result)) co_return totals;
            }
        } else {
            const auto started = std::chrono::steady_clock::now();
            auto known = [&store](const std::string& user_id) {
                return load_known_keys(store, user_id);
            };
            while (!rest.empty()) {
                verify_query_users(index, rest.first(1), known, now, totals.stats, pending);
                rest = rest.subspan(1);
                if (std::chrono::steady_clock::now() - started >= options.slice_budget) break;
            }
            // Every commit writes its pages to the WAL: slices are gathered into commits of a
            // few users each, and the last one commits whatever is left.
            if (rest.empty() || pending.users.size() >= options.commit_users) {
                if (!commit(pending)) co_return totals;
                pending = storage::query_result{};
                pending.at = now;
            }
        }
        if (rest.empty()) break;
        if (co_await let_others_in()) break;
    } while (!rest.empty());
    co_return totals;
}

}  // namespace devlist::sync
