// Issue 7, load (bounded, loopback only): the real devlistd against the test homeserver with
// many rooms, many users, many devices and many socket clients at once.
//
// Each test asserts correctness and bounds only — counts, equality of devlistd's store with the
// homeserver, no error, peak memory under a generous bound — never a duration: the figures
// (durations, memory, request counts) are printed to stdout, lines starting with "[load]", for
// the issue's notes. Nothing waits by sleeping: devlistd's log (read through a pipe) says what
// it committed, the homeserver's request log says what it answered, and every wait has a
// deadline. The log is followed incrementally: with tens of thousands of lines, scanning all
// of it at every new chunk would cost more than devlistd's own work.
//
// Sizes: the 50,000-user case gives each user one device without one-time or fallback keys
// (test_homeserver::add_devices): devlistd only reads device keys, and the homeserver's real
// key generation and signing is then the part of the set-up that costs the most.
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "crypto/json_value.hpp"
#include "storage/store.hpp"
#include "sync/url.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/client_api.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using testing::request_record;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

constexpr const char* bot = "@bot:localhost";
constexpr const char* bot_device = "BOTDEVICE";
// Every wait is bounded by this. Generous: two cores shared with other builds and tests; a
// healthy run needs a small fraction of it.
constexpr auto patience = 150s;
// The bound asserted on devlistd's peak resident memory (VmHWM) in every test.
constexpr long rss_bound_kb = 256 * 1024;

double seconds_since(clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
}
double seconds_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}
double megabytes(long kilobytes) {
    return static_cast<double>(kilobytes) / 1024.0;
}

// "@<prefix>00042:localhost"
std::string numbered_user(std::string_view prefix, std::size_t i) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%05zu", i);
    return "@" + std::string(prefix) + digits + ":localhost";
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// A field of /proc/<pid>/status in kB (VmRSS, VmHWM), or -1.
long proc_status_kb(pid_t pid, std::string_view field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
            return std::atol(line.c_str() + field.size() + 1);
        }
    }
    return -1;
}

// What a process has used so far: CPU time (user and system) and bytes it caused to be written
// to storage (/proc/<pid>/io; -1 where the kernel does not tell).
// Also how long its main thread (the io thread) waited for a CPU while it could run
// (/proc/<pid>/schedstat): on a machine shared with others, that is where much of the time goes.
struct process_usage {
    double cpu_seconds = 0;
    double run_queue_seconds = 0;
    long long written_bytes = -1;

    process_usage operator-(const process_usage& before) const {
        process_usage d;
        d.cpu_seconds = cpu_seconds - before.cpu_seconds;
        d.run_queue_seconds = run_queue_seconds - before.run_queue_seconds;
        if (written_bytes >= 0 && before.written_bytes >= 0) {
            d.written_bytes = written_bytes - before.written_bytes;
        }
        return d;
    }
};

process_usage usage_of(pid_t pid) {
    process_usage u;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    // The fields after the command's name, which ends with the last ')': state is field 3,
    // utime 14 and stime 15 (in clock ticks).
    if (auto close = line.rfind(')'); close != std::string::npos && close + 2 < line.size()) {
        std::istringstream fields(line.substr(close + 2));
        std::vector<std::string> f;
        for (std::string x; fields >> x;)
            f.push_back(x);
        if (f.size() > 12) {
            const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
            u.cpu_seconds =
                static_cast<double>(std::atoll(f[11].c_str()) + std::atoll(f[12].c_str())) / ticks;
        }
    }
    std::ifstream schedstat("/proc/" + std::to_string(pid) + "/schedstat");
    long long on_cpu_ns = 0, waiting_ns = 0;
    if (schedstat >> on_cpu_ns >> waiting_ns) {
        u.run_queue_seconds = static_cast<double>(waiting_ns) / 1e9;
    }
    std::ifstream io("/proc/" + std::to_string(pid) + "/io");
    while (std::getline(io, line)) {
        if (line.starts_with("write_bytes:")) u.written_bytes = std::atoll(line.c_str() + 12);
    }
    return u;
}

std::string describe(const process_usage& u) {
    char text[128];
    std::snprintf(text, sizeof text, "%.2f s CPU, %.2f s waiting for a CPU, %.1f MB written",
                  u.cpu_seconds, u.run_queue_seconds, static_cast<double>(u.written_bytes) / 1e6);
    return text;
}

// The number right before `label` in `line` ("... 250 users, ..." → 250 for " users"), or -1.
std::int64_t number_before(std::string_view line, std::string_view label) {
    const auto at = line.find(label);
    if (at == std::string_view::npos || at == 0) return -1;
    std::size_t begin = at;
    while (begin > 0 && line[begin - 1] >= '0' && line[begin - 1] <= '9')
        --begin;
    std::int64_t n = -1;
    std::from_chars(line.data() + begin, line.data() + at, n);
    return n;
}

std::optional<json::value> parse_json(std::string_view body) {
    auto v = json::parse(body);
    if (!v) return std::nullopt;
    return std::move(*v);
}

const std::string* string_at(const json::value& v, std::string_view key) {
    const json::value* m = v.is_object() ? v.find(key) : nullptr;
    return m && m->is_string() ? &m->as_string() : nullptr;
}

std::optional<std::int64_t> integer_at(const json::value& v, std::string_view key) {
    const json::value* m = v.is_object() ? v.find(key) : nullptr;
    if (!m || !m->is_integer()) return std::nullopt;
    return m->as_integer();
}

std::optional<bool> bool_at(const json::value& v, std::string_view key) {
    const json::value* m = v.is_object() ? v.find(key) : nullptr;
    if (!m || !m->is_bool()) return std::nullopt;
    return m->as_bool();
}

// ---- following devlistd's log ----

// Reads devlistd's log line by line as it comes, remembering where it stopped, and keeps the
// figures of its "sync ..." and "/keys/query: ..." lines.
class log_follower {
  public:
    explicit log_follower(const daemon_process& d) : d_(d) {}

    struct sync_line {
        std::int64_t position = -1;
        std::int64_t rooms = -1, changed = -1, left = -1, tracking = -1, outdated = -1;
    };

    // Waits until devlistd has applied a /sync batch at or past stream position `target` and,
    // at that line or later, had no outdated user left: then its store holds every change up
    // to `target` (a user stops being outdated only once its /keys/query answer is committed).
    bool wait_converged(testing::stream_position target, clock::time_point deadline) {
        return wait([&] { return converged_at_ >= target; }, deadline);
    }

    // Waits for a sync line that names at least `changed` users in device_lists.changed.
    std::optional<sync_line> wait_for_sync_with_changed(std::int64_t changed,
                                                        clock::time_point deadline) {
        std::optional<sync_line> found;
        wait(
            [&] {
                for (const auto& s : syncs_) {
                    if (s.changed >= changed) found = s;
                }
                return found.has_value();
            },
            deadline);
        return found;
    }

    // Waits for a line that contains `needle`, past what was read so far.
    bool wait_for_line(std::string_view needle, clock::time_point deadline) {
        bool seen = false;
        return d_.wait_for_output(
            [&](std::string_view out) {
                read_lines(out, [&](std::string_view line) {
                    if (line.find(needle) != std::string_view::npos) seen = true;
                    return seen;
                });
                return seen;
            },
            deadline);
    }

    // Figures of the /keys/query lines read so far (since reset_queries()).
    std::int64_t queries = 0, users_queried = 0, devices_added = 0, devices_rejected = 0;
    std::int64_t signatures_checked = 0;
    void reset_queries() { queries = users_queried = devices_added = signatures_checked = 0; }
    // Lines at warning or error level, and the first of them.
    std::int64_t warnings = 0, errors = 0;
    std::string first_problem;

  private:
    bool wait(const std::function<bool()>& done, clock::time_point deadline) {
        return d_.wait_for_output(
            [&](std::string_view out) {
                read_lines(out, [&](std::string_view) { return done(); });
                return done();
            },
            deadline);
    }

    // Hands each new complete line to `stop_after`, which ends the reading by returning true.
    void read_lines(std::string_view out, const std::function<bool(std::string_view)>& stop_after) {
        for (;;) {
            const auto end = out.find('\n', offset_);
            if (end == std::string_view::npos) return;
            const std::string_view line = out.substr(offset_, end - offset_);
            offset_ = end + 1;
            note(line);
            if (stop_after(line)) return;
        }
    }

    void note(std::string_view line) {
        const bool warning = line.find(" warning: ") != std::string_view::npos;
        const bool error = line.find(" error: ") != std::string_view::npos;
        if (warning) ++warnings;
        if (error) ++errors;
        if ((warning || error) && first_problem.empty()) first_problem = std::string(line);
        std::int64_t outdated = -1;
        // "info: sync s<position>[ (initial)]: R rooms, C changed, L left, T to-device;
        //  tracking N users, M outdated"
        if (auto at = line.find("info: sync s"); at != std::string_view::npos) {
            std::string_view token = line.substr(at + 11);
            token = token.substr(0, token.find_first_of(" :"));
            sync_line s;
            s.position = testing::parse_sync_token(token).value_or(-1);
            s.rooms = number_before(line, " rooms, ");
            s.changed = number_before(line, " changed, ");
            s.left = number_before(line, " left, ");
            s.tracking = number_before(line, " users, ");
            s.outdated = outdated = number_before(line, " outdated");
            if (s.position >= 0) last_sync_ = std::max(last_sync_, s.position);
            syncs_.push_back(s);
        }
        // "info: /keys/query: U users, D devices (A added, C changed, R removed), X rejected,
        //  S signatures checked; G changed again meanwhile, M outdated"
        if (line.find("info: /keys/query: ") != std::string_view::npos) {
            ++queries;
            users_queried += std::max<std::int64_t>(0, number_before(line, " users, "));
            devices_added += std::max<std::int64_t>(0, number_before(line, " added, "));
            devices_rejected += std::max<std::int64_t>(0, number_before(line, " rejected, "));
            signatures_checked +=
                std::max<std::int64_t>(0, number_before(line, " signatures checked"));
            outdated = number_before(line, " outdated");
        }
        if (outdated == 0) converged_at_ = last_sync_;
    }

    const daemon_process& d_;
    std::size_t offset_ = 0;
    std::int64_t last_sync_ = -1;     // the highest stream position applied so far
    std::int64_t converged_at_ = -1;  // last_sync_ when nobody was outdated last
    std::vector<sync_line> syncs_;
};

// The devices devlistd logged as added: `n`, or one more when the own device came in too (it
// does when devlistd had uploaded its keys before it queried its own user).
void expect_devices_added(const log_follower& follow, std::size_t n) {
    EXPECT_GE(follow.devices_added, static_cast<std::int64_t>(n));
    EXPECT_LE(follow.devices_added, static_cast<std::int64_t>(n + 1));
}

// ---- a blocking HTTP client for the socket, for the test's own few requests ----

struct http_answer {
    unsigned status = 0;
    std::string body;
    json::value json;  // null unless the body parses
};

http_answer socket_get(const std::filesystem::path& socket, const std::string& target) {
    asio::io_context io;
    local::socket s(io);
    s.connect(local::endpoint(socket.string()));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "devlistd");
    http::write(s, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(s, buffer, parser);
    http_answer a;
    a.status = parser.get().result_int();
    a.body = parser.get().body();
    if (auto v = parse_json(a.body)) a.json = std::move(*v);
    return a;
}

// ---- the fixture ----

class load_test : public ::testing::Test {
  protected:
    testing::test_homeserver hs;
    temp_dir dir{"dl-load"};  // short: a socket path has at most 107 bytes
    std::filesystem::path config;
    std::filesystem::path socket;
    std::vector<std::unique_ptr<daemon_process>> runs;
    std::vector<clock::time_point> run_started;

    void SetUp() override {
        std::setvbuf(stdout, nullptr, _IOLBF, 0);  // the figures as they come, even into a file
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, "bot-password");
        dir.write_file("password", "bot-password\n");
        socket = dir / "devlistd.sock";
        config = dir.write_file("devlistd.toml", "homeserver = \"" + hs.base_url() + "\"\n" +
                                                     R"(user_id = "@bot:localhost"
device_id = "BOTDEVICE"
password_file = "password"
database = "devlistd.db"
socket = "devlistd.sock"
sync_timeout_ms = 2000
log_level = "info"
)");
        std::printf("[load] %s: load average at start %s\n",
                    ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                    load_average().c_str());
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                // The end of the log: the whole of it can be tens of thousands of lines.
                const std::string out = runs[i]->output();
                const std::size_t tail = std::min<std::size_t>(out.size(), 20000);
                std::fprintf(stderr, "---- devlistd run %zu (pid %d), last %zu bytes ----\n%s",
                             i + 1, runs[i]->pid(), tail, out.substr(out.size() - tail).c_str());
            }
            dir.keep();
            std::fprintf(stderr, "---- configuration, database and logs kept in %s\n",
                         dir.path().c_str());
        }
        runs.clear();
        hs.stop();
    }

    daemon_process& start_devlistd() {
        process_options o =
            devlistd_options(DEVLISTD_PATH, config.string(),
                             dir / ("devlistd-" + std::to_string(runs.size() + 1) + ".log"));
        run_started.push_back(clock::now());
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        return *runs.back();
    }

    void stop_devlistd(daemon_process& d) {
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not stop on SIGTERM";
        EXPECT_TRUE(e->exited_with(0)) << *e;
    }

    // Peak and current resident memory of devlistd, in kB; asserts the peak bound.
    long expect_peak_rss_bounded(const daemon_process& d, const char* when) {
        const long hwm = proc_status_kb(d.pid(), "VmHWM");
        const long rss = proc_status_kb(d.pid(), "VmRSS");
        std::printf("[load]   devlistd memory %s: peak (VmHWM) %.1f MB, now (VmRSS) %.1f MB\n",
                    when, megabytes(hwm), megabytes(rss));
        EXPECT_GT(hwm, 0);
        EXPECT_LT(hwm, rss_bound_kb) << "devlistd's peak resident memory";
        return hwm;
    }

    std::vector<request_record> requests_to(std::string_view endpoint,
                                            clock::time_point since) const {
        std::vector<request_record> out;
        for (auto& r : hs.requests()) {
            if (r.received >= since && r.path.ends_with(endpoint)) out.push_back(std::move(r));
        }
        return out;
    }

    // The store equals the homeserver for these users (run while no devlistd runs): exactly
    // them and the bot are tracked, nobody is outdated, each has exactly `devices` live, with
    // the keys the homeserver serves; with `cross_signed`, each device is cross-signed and
    // the user's master and self-signing keys are verified and equal the homeserver's.
    void expect_store_matches(const std::map<std::string, std::set<std::string>>& devices,
                              bool cross_signed = false) {
        auto s = storage::store::open(dir / "devlistd.db");
        ASSERT_TRUE(s) << s.error().message();
        auto users = s->tracking().load_tracked_users();
        ASSERT_TRUE(users) << users.error().message();
        std::set<std::string> tracked;
        std::size_t outdated = 0;
        for (const auto& u : *users) {
            tracked.insert(u.user_id);
            if (u.outdated) ++outdated;
        }
        std::set<std::string> expected{bot};
        for (const auto& [user, ids] : devices)
            expected.insert(user);
        EXPECT_EQ(tracked.size(), expected.size());
        EXPECT_TRUE(tracked == expected) << "the tracked set differs from the users sharing an "
                                            "encrypted room with the bot";
        EXPECT_EQ(outdated, 0u);

        std::size_t wrong_lists = 0, wrong_keys = 0, not_cross_signed = 0, wrong_identity = 0;
        std::string first;
        auto note = [&](std::size_t& counter, const std::string& what) {
            if (counter++ == 0 && first.empty()) first = what;
        };
        for (const auto& [user, ids] : devices) {
            auto stored = s->devices().devices_of(user);
            ASSERT_TRUE(stored) << stored.error().message();
            std::set<std::string> stored_ids;
            for (const auto& d : *stored) {
                stored_ids.insert(d.device_id);
                auto served = hs.served_device_keys(user, d.device_id);
                const json::value* keys = served ? served->find("keys") : nullptr;
                const std::string* ed = keys ? string_at(*keys, "ed25519:" + d.device_id) : nullptr;
                const std::string* curve =
                    keys ? string_at(*keys, "curve25519:" + d.device_id) : nullptr;
                if (!ed || !curve || *ed != d.ed25519 || *curve != d.curve25519) {
                    note(wrong_keys, user + " " + d.device_id + ": keys differ");
                }
                if (cross_signed && !d.cross_signed) {
                    note(not_cross_signed, user + " " + d.device_id + " is not cross-signed");
                }
            }
            if (stored_ids != ids) note(wrong_lists, user + ": device IDs differ");
            if (!cross_signed) continue;
            auto keys = s->devices().cross_signing_keys_of(user);
            ASSERT_TRUE(keys) << keys.error().message();
            std::map<storage::key_usage, const storage::cross_signing_key*> by_usage;
            for (const auto& k : *keys)
                by_usage[k.usage] = &k;
            for (auto [usage, kind] :
                 {std::pair{storage::key_usage::master, testing::cross_signing_key_kind::master},
                  std::pair{storage::key_usage::self_signing,
                            testing::cross_signing_key_kind::self_signing}}) {
                auto truth = hs.cross_signing_key(user, kind);
                const auto it = by_usage.find(usage);
                const json::value* k = truth ? truth->find("keys") : nullptr;
                const bool same =
                    it != by_usage.end() && k && k->is_object() && k->as_object().size() == 1 &&
                    k->as_object().begin()->second == json::value(it->second->public_key) &&
                    it->second->verified;
                if (!same) note(wrong_identity, user + ": a cross-signing key differs");
            }
        }
        EXPECT_EQ(wrong_lists, 0u) << first;
        EXPECT_EQ(wrong_keys, 0u) << first;
        EXPECT_EQ(not_cross_signed, 0u) << first;
        EXPECT_EQ(wrong_identity, 0u) << first;
    }

    // /keys/query requests received since `since`: none asked for more than 250 users, and
    // together they asked for every user of `users`. Prints their count and server time.
    void expect_queries_covered(clock::time_point since, const std::set<std::string>& users) {
        std::set<std::string> asked;
        std::size_t largest = 0, count = 0;
        double server_seconds = 0;
        for (const auto& r : requests_to("/keys/query", since)) {
            if (r.status != 200) continue;
            ++count;
            server_seconds += seconds_between(r.received, r.answered);
            auto body = parse_json(r.request_body);
            const json::value* wanted = body ? body->find("device_keys") : nullptr;
            if (!wanted || !wanted->is_object()) continue;
            largest = std::max(largest, wanted->as_object().size());
            for (const auto& [user, ids] : wanted->as_object())
                asked.insert(user);
        }
        EXPECT_LE(largest, 250u);
        std::size_t missing = 0;
        for (const auto& u : users)
            missing += asked.contains(u) ? 0u : 1u;
        EXPECT_EQ(missing, 0u) << "users never asked for with /keys/query";
        std::printf(
            "[load]   %zu /keys/query requests answered (at most %zu users each); the "
            "homeserver spent %.2f s answering them\n",
            count, largest, server_seconds);
    }
};

// ---- 1,000 encrypted rooms ----

TEST_F(load_test, a_thousand_encrypted_rooms_converge_and_a_membership_change_is_followed) {
    constexpr std::size_t people = 300;
    constexpr std::size_t rooms = 1000;
    const std::string late = "@late:localhost";  // joins one room later
    const std::string solo = "@solo:localhost";  // in one room only, leaves it later
    auto setup_started = clock::now();
    std::map<std::string, std::set<std::string>> expected;
    std::vector<std::string> users;
    for (std::size_t i = 0; i < people; ++i) {
        users.push_back(numbered_user("p", i));
        hs.add_user(users.back());
        hs.add_device(users.back(), "P" + std::to_string(i), {}, 0);
        expected[users.back()] = {"P" + std::to_string(i)};
    }
    for (const auto& u : {late, solo}) {
        hs.add_user(u);
        hs.add_device(u, "DEVICE", {}, 0);
    }
    expected[solo] = {"DEVICE"};
    // Each person is in ten rooms, with two others and the bot.
    std::vector<std::string> room_ids;
    for (std::size_t i = 0; i < rooms; ++i) {
        room_ids.push_back(hs.create_room(users[i % people], true));
        hs.join(room_ids.back(), users[(i + 100) % people]);
        hs.join(room_ids.back(), users[(i + 200) % people]);
        hs.join(room_ids.back(), bot);
    }
    hs.join(room_ids[rooms - 1], solo);
    std::printf("[load]   homeserver set-up (%zu users, %zu encrypted rooms): %.2f s\n", people + 2,
                rooms, seconds_since(setup_started));

    auto target = hs.stream_position();
    auto& d = start_devlistd();
    log_follower follow(d);
    ASSERT_TRUE(follow.wait_converged(target, clock::now() + patience))
        << "devlistd did not converge on " << rooms << " rooms";
    std::printf(
        "[load]   devlistd start to converged (%zu rooms, %zu users tracked): %.2f s, "
        "%lld /keys/query, %lld devices added\n",
        rooms, expected.size() + 1, seconds_since(run_started.back()),
        static_cast<long long>(follow.queries), static_cast<long long>(follow.devices_added));
    expect_devices_added(follow, people + 1);
    std::printf("[load]   devlistd used %s\n", describe(usage_of(d.pid())).c_str());
    expect_peak_rss_bounded(d, "after converging on 1,000 rooms");

    // One more membership change in each direction, while devlistd long-polls: the late user
    // joins one of the thousand rooms, the solo user leaves the only room they shared.
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + patience));
    const auto changed_at = clock::now();
    hs.join(room_ids[rooms / 2], late);
    hs.leave(room_ids[rooms - 1], solo);
    expected.erase(solo);
    expected[late] = {"DEVICE"};
    target = hs.stream_position();
    ASSERT_TRUE(follow.wait_converged(target, clock::now() + patience))
        << "devlistd did not follow a membership change among " << rooms << " rooms";
    std::printf("[load]   a join and a leave among %zu rooms followed in %.2f s\n", rooms,
                seconds_since(changed_at));
    EXPECT_EQ(follow.errors, 0) << follow.first_problem;
    EXPECT_EQ(follow.devices_rejected, 0);
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
    expect_store_matches(expected);
}

// ---- 50,000 changed users in one /sync ----

TEST_F(load_test, fifty_thousand_changed_users_in_one_sync) {
    constexpr std::size_t count = 50000;
    auto setup_started = clock::now();
    std::vector<std::string> users;
    users.reserve(count);
    const std::string room = hs.create_room(bot, true);
    for (std::size_t i = 0; i < count; ++i) {
        users.push_back(numbered_user("m", i));
        hs.add_user(users.back());
        hs.join(room, users.back());
    }
    std::printf("[load]   homeserver set-up (%zu users in one encrypted room): %.2f s\n", count,
                seconds_since(setup_started));

    // First they have no device: devlistd tracks all of them and learns their empty lists.
    auto target = hs.stream_position();
    auto& d = start_devlistd();
    log_follower follow(d);
    ASSERT_TRUE(follow.wait_converged(target, clock::now() + patience));
    std::printf(
        "[load]   devlistd start to converged (%zu users tracked, no devices): %.2f s, "
        "%lld /keys/query\n",
        count + 1, seconds_since(run_started.back()), static_cast<long long>(follow.queries));

    // Then each of them adds a device, all in one change while devlistd long-polls: the next
    // /sync names all of them in device_lists.changed.
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + patience));
    std::vector<std::pair<std::string, std::string>> new_devices;
    std::map<std::string, std::set<std::string>> expected;
    for (const auto& u : users) {
        new_devices.emplace_back(u, "PHONE");
        expected[u] = {"PHONE"};
    }
    follow.reset_queries();
    const auto usage_before_change = usage_of(d.pid());
    std::printf("[load]   devlistd used %s until then\n", describe(usage_before_change).c_str());
    const auto keys_started = clock::now();
    hs.add_devices(new_devices);
    const auto changed_at = clock::now();
    target = hs.stream_position();
    std::printf("[load]   homeserver made and signed %zu device keys in %.2f s\n", count,
                seconds_between(keys_started, changed_at));

    auto big = follow.wait_for_sync_with_changed(count, clock::now() + patience);
    ASSERT_TRUE(big) << "no /sync named " << count << " changed users";
    const auto applied_at = clock::now();
    ASSERT_TRUE(follow.wait_converged(target, clock::now() + patience))
        << "devlistd did not query every changed user";
    const auto converged_at = clock::now();
    const auto catch_up_usage = usage_of(d.pid()) - usage_before_change;
    const long hwm = expect_peak_rss_bounded(d, "after the 50,000-user sync");

    // The homeserver's side: one answered /sync carried all of them.
    // It was parked before the change: it is told apart by when it was answered.
    std::optional<request_record> carrier;
    for (auto& r : hs.requests()) {
        if (r.answered < keys_started || !r.path.ends_with("/sync") || r.status != 200 ||
            r.response_body.size() < count * 10) {
            continue;
        }
        carrier = std::move(r);
        break;
    }
    ASSERT_TRUE(carrier) << "the homeserver answered no /sync with the change";
    std::size_t named = 0;
    {
        auto body = parse_json(carrier->response_body);
        ASSERT_TRUE(body);
        const json::value* lists = body->find("device_lists");
        const json::value* changed = lists ? lists->find("changed") : nullptr;
        ASSERT_TRUE(changed && changed->is_array());
        std::set<std::string> in_sync;
        for (const auto& u : changed->as_array())
            if (u.is_string()) in_sync.insert(u.as_string());
        for (const auto& u : users)
            named += in_sync.contains(u) ? 1u : 0u;
    }
    EXPECT_EQ(named, count);
    EXPECT_GE(big->changed, static_cast<std::int64_t>(count));
    EXPECT_EQ(big->outdated, static_cast<std::int64_t>(count))
        << "the batch did not mark every changed user outdated at once";
    expect_devices_added(follow, count);
    EXPECT_EQ(follow.devices_rejected, 0);
    EXPECT_EQ(follow.errors, 0) << follow.first_problem;
    std::printf(
        "[load]   /sync with %lld changed: %.1f MB body, sent by the homeserver (a parked "
        "long-poll) %.2f s after the change; devlistd logged it applied (all %lld outdated) "
        "%.2f s after it was sent\n",
        static_cast<long long>(big->changed),
        static_cast<double>(carrier->response_body.size()) / 1e6,
        seconds_between(changed_at, carrier->answered), static_cast<long long>(big->outdated),
        seconds_between(carrier->answered, applied_at));
    std::printf(
        "[load]   catch-up: %lld /keys/query (%lld users, %lld devices added, %lld "
        "signatures checked) until nobody was outdated: %.2f s after the sync was "
        "applied, %.2f s after the change; devlistd used %s meanwhile; peak RSS %.1f MB\n",
        static_cast<long long>(follow.queries), static_cast<long long>(follow.users_queried),
        static_cast<long long>(follow.devices_added),
        static_cast<long long>(follow.signatures_checked),
        seconds_between(applied_at, converged_at), seconds_between(changed_at, converged_at),
        describe(catch_up_usage).c_str(), megabytes(hwm));
    expect_queries_covered(changed_at, std::set<std::string>(users.begin(), users.end()));
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
    const auto check_started = clock::now();
    expect_store_matches(expected);
    std::printf("[load]   store compared with the homeserver in %.2f s\n",
                seconds_since(check_started));
}

// ---- 5,000 users × 3 devices with cross-signing ----

TEST_F(load_test, five_thousand_cross_signed_users_with_three_devices_each) {
    constexpr std::size_t count = 5000;
    auto setup_started = clock::now();
    const std::string room = hs.create_room(bot, true);
    std::vector<std::pair<std::string, std::string>> devices;
    std::map<std::string, std::set<std::string>> expected;
    std::set<std::string> users;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string u = numbered_user("x", i);
        users.insert(u);
        hs.add_user(u);
        // Before its devices: add_devices then signs each with the self-signing key.
        hs.bootstrap_cross_signing(u);
        hs.join(room, u);
        for (const char* id : {"LAPTOP", "PHONE", "TABLET"}) {
            devices.emplace_back(u, id);
            expected[u].insert(id);
        }
    }
    hs.add_devices(devices);
    std::printf("[load]   homeserver set-up (%zu cross-signed users, %zu devices): %.2f s\n", count,
                devices.size(), seconds_since(setup_started));

    const auto target = hs.stream_position();
    auto& d = start_devlistd();
    log_follower follow(d);
    ASSERT_TRUE(follow.wait_converged(target, clock::now() + patience));
    const double took = seconds_since(run_started.back());
    std::printf("[load]   devlistd used %s\n", describe(usage_of(d.pid())).c_str());
    const long hwm = expect_peak_rss_bounded(d, "after 5,000 users x 3 devices");
    expect_devices_added(follow, devices.size());
    EXPECT_EQ(follow.devices_rejected, 0);
    EXPECT_EQ(follow.errors, 0) << follow.first_problem;
    std::printf(
        "[load]   devlistd start to converged: %.2f s for %lld /keys/query (%lld users, "
        "%lld devices, %lld signatures checked); peak RSS %.1f MB\n",
        took, static_cast<long long>(follow.queries), static_cast<long long>(follow.users_queried),
        static_cast<long long>(follow.devices_added),
        static_cast<long long>(follow.signatures_checked), megabytes(hwm));
    expect_queries_covered(run_started.back(), users);
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
    expect_store_matches(expected, true);
}

// ---- 500 concurrent socket clients ----

// What the clients know to be true.
struct socket_truth {
    std::int64_t tracked = 0;  // users devlistd tracks, the bot included
    // Users whose devices do not change during the run, and their devices.
    std::vector<std::string> stable_users;
    std::map<std::string, std::map<std::string, testing::device_identity>> devices;
    std::vector<std::pair<std::string, testing::device_identity>> all_devices;
    std::set<std::string> churn_users;  // who gains devices during the run
    std::int64_t start_cursor = 0;      // the event cursor before the run
};

struct event_seen {
    std::int64_t cursor = 0;
    std::string type, user_id, device_id;
    friend bool operator==(const event_seen&, const event_seen&) = default;
};

struct client_report {
    std::size_t requests = 0;
    std::size_t connect_failures = 0;
    std::size_t transport_errors = 0;
    std::size_t wrong_answers = 0;
    std::string first_problem;
    std::vector<event_seen> events;
    bool finished = false;

    void problem(std::size_t& counter, std::string what) {
        ++counter;
        if (first_problem.empty()) first_problem = std::move(what);
    }
};

enum class client_kind { status, devices, by_curve25519, events };

// Whether an answer is right; empty if it is, else what is wrong.
std::string check_status(const json::value& v, const socket_truth& t) {
    if (!string_at(v, "user_id") || *string_at(v, "user_id") != bot) return "status: user_id";
    if (!string_at(v, "device_id") || *string_at(v, "device_id") != bot_device) {
        return "status: device_id";
    }
    if (integer_at(v, "tracked") != t.tracked) return "status: tracked count";
    if (!string_at(v, "phase") || *string_at(v, "phase") != "syncing") return "status: phase";
    return {};
}

std::string check_devices(const json::value& v, const std::string& user, const socket_truth& t) {
    if (!string_at(v, "user_id") || *string_at(v, "user_id") != user) return "devices: user_id";
    if (bool_at(v, "tracked") != true || bool_at(v, "outdated") != false) {
        return "devices: tracking state of " + user;
    }
    const json::value* list = v.find("devices");
    if (!list || !list->is_array()) return "devices: no list";
    const auto& want = t.devices.at(user);
    if (list->as_array().size() != want.size()) return "devices: count for " + user;
    for (const auto& d : list->as_array()) {
        const std::string* id = string_at(d, "device_id");
        auto w = id ? want.find(*id) : want.end();
        if (w == want.end()) return "devices: unknown device of " + user;
        if (!string_at(d, "ed25519") || *string_at(d, "ed25519") != w->second.ed25519 ||
            !string_at(d, "curve25519") || *string_at(d, "curve25519") != w->second.curve25519) {
            return "devices: keys of " + user + " " + *id;
        }
    }
    return {};
}

std::string check_owner(const json::value& v, const std::string& user,
                        const testing::device_identity& device) {
    if (!string_at(v, "user_id") || *string_at(v, "user_id") != user ||
        !string_at(v, "device_id") || *string_at(v, "device_id") != device.device_id ||
        !string_at(v, "ed25519") || *string_at(v, "ed25519") != device.ed25519 ||
        bool_at(v, "deleted") != false) {
        return "by-curve25519: wrong device for " + device.curve25519;
    }
    return {};
}

// Reads an events answer into `seen`; empty if it is well-formed and goes on from `after`.
std::string take_events(const json::value& v, std::int64_t& after, std::vector<event_seen>& seen) {
    const json::value* list = v.find("events");
    const auto next = integer_at(v, "next");
    if (!list || !list->is_array() || !next) return "events: shape";
    std::int64_t last = after;
    for (const auto& e : list->as_array()) {
        const auto cursor = integer_at(e, "cursor");
        const std::string* type = string_at(e, "type");
        const json::value* data = e.find("data");
        if (!cursor || !type || !data || *cursor <= last) return "events: cursor order";
        last = *cursor;
        const std::string* u = string_at(*data, "user_id");
        const std::string* id = string_at(*data, "device_id");
        seen.push_back({*cursor, *type, u ? *u : std::string(), id ? *id : std::string()});
    }
    if (*next < last) return "events: next behind the last event";
    after = *next;
    return {};
}

asio::awaitable<void> socket_client(std::string path, client_kind kind, std::size_t index,
                                    const socket_truth* truth, clock::time_point until,
                                    client_report* report) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    local::socket s(co_await asio::this_coro::executor);
    auto [connect_error] = co_await s.async_connect(local::endpoint(path), tuple);
    if (connect_error) {
        report->problem(report->connect_failures, "connect: " + connect_error.message());
        report->finished = true;
        co_return;
    }
    beast::flat_buffer buffer;
    std::int64_t after = truth->start_cursor;
    for (std::size_t n = index; clock::now() < until; n += 7) {
        std::string target;
        const std::string& user = truth->stable_users[n % truth->stable_users.size()];
        const auto& owned = truth->all_devices[n % truth->all_devices.size()];
        switch (kind) {
            case client_kind::status:
                target = "/v1/status";
                break;
            case client_kind::devices:
                target = "/v1/users/" + sync::percent_encode_path_segment(user) + "/devices";
                break;
            case client_kind::by_curve25519:
                target = "/v1/devices/by-curve25519/" +
                         sync::percent_encode_path_segment(owned.second.curve25519);
                break;
            case client_kind::events:
                target = "/v1/events?after=" + std::to_string(after) + "&timeout_ms=1000";
                break;
        }
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "devlistd");
        auto [write_error, written] = co_await http::async_write(s, req, tuple);
        http::response_parser<http::string_body> parser;
        parser.body_limit(16u << 20);
        auto [read_error, read] = co_await http::async_read(s, buffer, parser, tuple);
        if (write_error || read_error) {
            report->problem(report->transport_errors,
                            target + ": " + (write_error ? write_error : read_error).message());
            break;  // the connection is unusable
        }
        ++report->requests;
        const auto& res = parser.get();
        auto v = parse_json(res.body());
        std::string wrong;
        if (res.result_int() != 200) {
            wrong = target + ": HTTP " + std::to_string(res.result_int()) + " " + res.body();
        } else if (!v) {
            wrong = target + ": not JSON";
        } else {
            switch (kind) {
                case client_kind::status:
                    wrong = check_status(*v, *truth);
                    break;
                case client_kind::devices:
                    wrong = check_devices(*v, user, *truth);
                    break;
                case client_kind::by_curve25519:
                    wrong = check_owner(*v, owned.first, owned.second);
                    break;
                case client_kind::events:
                    wrong = take_events(*v, after, report->events);
                    break;
            }
        }
        if (!wrong.empty()) report->problem(report->wrong_answers, std::move(wrong));
    }
    report->finished = true;
}

TEST_F(load_test, five_hundred_concurrent_socket_clients) {
    constexpr std::size_t clients = 500;
    constexpr std::size_t stable = 200;
    constexpr std::size_t churning = 10;
    constexpr auto load_time = 4s;
    socket_truth truth;
    const std::string room = hs.create_room(bot, true);
    std::vector<std::pair<std::string, std::string>> wanted;
    for (std::size_t i = 0; i < stable; ++i) {
        truth.stable_users.push_back(numbered_user("s", i));
        hs.add_user(truth.stable_users.back());
        hs.join(room, truth.stable_users.back());
        wanted.emplace_back(truth.stable_users.back(), "ONE");
        wanted.emplace_back(truth.stable_users.back(), "TWO");
    }
    auto made = hs.add_devices(wanted);
    for (std::size_t i = 0; i < made.size(); ++i) {
        truth.devices[wanted[i].first][made[i].device_id] = made[i];
        truth.all_devices.emplace_back(wanted[i].first, made[i]);
    }
    std::vector<std::string> churn;
    for (std::size_t i = 0; i < churning; ++i) {
        churn.push_back(numbered_user("c", i));
        truth.churn_users.insert(churn.back());
        hs.add_user(churn.back());
        hs.join(room, churn.back());
    }
    truth.tracked = static_cast<std::int64_t>(1 + stable + churning);

    auto& d = start_devlistd();
    log_follower follow(d);
    ASSERT_TRUE(follow.wait_converged(hs.stream_position(), clock::now() + patience));
    ASSERT_TRUE(std::filesystem::exists(socket));
    auto status = socket_get(socket, "/v1/status");
    ASSERT_EQ(status.status, 200u) << status.body;
    ASSERT_TRUE(integer_at(status.json, "last_event_cursor"));
    truth.start_cursor = *integer_at(status.json, "last_event_cursor");
    const long rss_before = proc_status_kb(d.pid(), "VmRSS");

    // The clients run on their own thread, each on its own kept-alive connection; a quarter
    // each asks for the status, a user's devices, a device by its Curve25519 key, and the
    // event stream (long-polling).
    asio::io_context io(1);
    std::vector<client_report> reports(clients);
    const auto started = clock::now();
    const auto until = started + load_time;
    for (std::size_t i = 0; i < clients; ++i) {
        asio::co_spawn(io,
                       socket_client(socket.string(), static_cast<client_kind>(i % 4), i, &truth,
                                     until, &reports[i]),
                       [&reports, i](std::exception_ptr e) {
                           if (e) reports[i].first_problem = "the client threw";
                       });
    }
    std::thread client_thread([&io, run_time = load_time + patience] { io.run_for(run_time); });

    // Meanwhile devices appear, one at a time, each once devlistd has taken the previous one:
    // the long-polls of the event stream have something to deliver.
    std::vector<std::pair<std::string, std::string>> churned;
    long rss_peak_seen = rss_before;
    bool kept_up = true;
    while (clock::now() < until && kept_up) {
        const std::string& user = churn[churned.size() % churning];
        const std::string id = "NEW" + std::to_string(churned.size());
        hs.add_device(user, id, {}, 0);
        churned.emplace_back(user, id);
        kept_up = follow.wait_for_line("device added: " + user + " " + id, clock::now() + patience);
        rss_peak_seen = std::max(rss_peak_seen, proc_status_kb(d.pid(), "VmRSS"));
    }
    client_thread.join();
    const double elapsed = seconds_since(started);
    ASSERT_TRUE(kept_up) << "devlistd did not take device " << churned.back().second
                         << " while serving the clients";
    const long hwm = expect_peak_rss_bounded(d, "after 500 concurrent clients");

    std::size_t requests = 0, unfinished = 0, connect_failures = 0, transport_errors = 0;
    std::size_t wrong = 0;
    std::map<client_kind, std::size_t> by_kind;
    std::string first;
    for (std::size_t i = 0; i < clients; ++i) {
        const auto& r = reports[i];
        requests += r.requests;
        by_kind[static_cast<client_kind>(i % 4)] += r.requests;
        unfinished += r.finished ? 0u : 1u;
        connect_failures += r.connect_failures;
        transport_errors += r.transport_errors;
        wrong += r.wrong_answers;
        if (first.empty()) first = r.first_problem;
    }
    EXPECT_EQ(unfinished, 0u) << "clients still waiting for an answer";
    EXPECT_EQ(connect_failures, 0u) << first;
    EXPECT_EQ(transport_errors, 0u) << first;
    EXPECT_EQ(wrong, 0u) << first;
    for (std::size_t k = 0; k < 4; ++k)
        EXPECT_GT(by_kind[static_cast<client_kind>(k)], 0u) << "kind " << k;

    // The event stream as it is now; each long-polling client saw a prefix of it, in order,
    // nothing twice, nothing left out.
    std::vector<event_seen> all;
    for (std::int64_t after = truth.start_cursor;;) {
        auto page = socket_get(socket, "/v1/events?limit=1000&after=" + std::to_string(after));
        ASSERT_EQ(page.status, 200u) << page.body;
        const auto before = all.size();
        ASSERT_EQ(take_events(page.json, after, all), "");
        if (all.size() == before) break;
    }
    std::vector<std::pair<std::string, std::string>> announced;
    for (const auto& e : all) {
        if (e.type == "device_added" && truth.churn_users.contains(e.user_id)) {
            announced.emplace_back(e.user_id, e.device_id);
        }
    }
    EXPECT_EQ(announced, churned) << "the event stream differs from the devices added";
    std::size_t delivered = 0, not_a_prefix = 0;
    for (std::size_t i = 3; i < clients; i += 4) {
        const auto& seen = reports[i].events;
        delivered += seen.size();
        const bool prefix =
            seen.size() <= all.size() && std::equal(seen.begin(), seen.end(), all.begin());
        not_a_prefix += prefix ? 0u : 1u;
    }
    EXPECT_EQ(not_a_prefix, 0u) << "long-polling clients saw events out of order or missing";

    // devlistd's own count: every answer it gave was a 200, and none was refused.
    auto metrics = socket_get(socket, "/metrics");
    ASSERT_EQ(metrics.status, 200u);
    std::int64_t answered_200 = 0, answered_other = 0;
    std::istringstream lines(metrics.body);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("devlistd_socket_responses_total{code=\"")) continue;
        const std::int64_t n = std::atoll(line.c_str() + line.rfind(' ') + 1);
        (line.find("code=\"200\"") != std::string::npos ? answered_200 : answered_other) += n;
    }
    EXPECT_EQ(answered_other, 0) << metrics.body;
    EXPECT_GE(answered_200, static_cast<std::int64_t>(requests));
    EXPECT_NE(metrics.body.find("devlistd_socket_denied_total 0\n"), std::string::npos);
    EXPECT_EQ(d.output().find("closing new ones"), std::string::npos)
        << "devlistd refused connections";
    EXPECT_EQ(follow.errors, 0) << follow.first_problem;

    std::printf(
        "[load]   %zu clients for %.2f s: %zu requests (%zu status, %zu devices, %zu "
        "by-curve25519, %zu events long-polls), %.0f requests/s, all answered right; %zu "
        "devices added meanwhile, %zu events delivered to the long-polling clients\n",
        clients, elapsed, requests, by_kind[client_kind::status], by_kind[client_kind::devices],
        by_kind[client_kind::by_curve25519], by_kind[client_kind::events],
        static_cast<double>(requests) / elapsed, churned.size(), delivered);
    std::printf(
        "[load]   devlistd RSS before %.1f MB, highest sampled during the run %.1f MB, "
        "peak (VmHWM) %.1f MB, bound asserted %.0f MB\n",
        megabytes(rss_before), megabytes(rss_peak_seen), megabytes(hwm), megabytes(rss_bound_kb));
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
}

}  // namespace
}  // namespace devlist::test
