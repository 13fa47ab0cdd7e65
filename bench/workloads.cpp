// The workload benchmarks of issue 8 (docs/BENCHMARKS.md): W1 … W7 on data made here with real
// signatures, each printed with the ceiling it is measured against in the same run.
//
//   devlist_bench_workloads [--scale full|small|tiny] [--only W2[,W3…]] [--runs N] [--threads 1|2]
//                           [--w2-users N] [--write-answers DIR] [--json] [--keep]
//
// --threads 1 pins the whole process (and the daemons it starts) to one core; --threads 2 allows
// two and hands verification a second thread where the engine can use one. Exit status 1 when a
// workload failed (nothing stored, a lookup answered wrongly…): the test suite runs the tiny
// scale for that, never for its times.
// GCC 12 at -O3 reports impossible overlaps in inlined std::string concatenation (GCC bug
// 105329); the Release build of this file would fail on them with -Werror.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/ceilings.hpp"
#include "bench/socket_client.hpp"
#include "bench/workload_data.hpp"
#include "crypto/seal.hpp"
#include "daemon/peer_access.hpp"
#include "daemon/socket_api.hpp"
#include "daemon/socket_server.hpp"
#include "storage/store.hpp"
#include "sync/device_list_tracker.hpp"
#include "sync/http_client.hpp"
#include "sync/key_verifier.hpp"
#include "sync/own_keys.hpp"
#include "sync/parse_context.hpp"
#include "sync/parse_keys.hpp"
#include "sync/parse_sync.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"
#if DEVLIST_BENCH_HAVE_INGEST
#include "sync/query_ingest.hpp"
#endif
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define DEVLIST_BENCH_CALLGRIND 1
#endif

namespace devlist::bench {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using local = asio::local::stream_protocol;

constexpr const char* own_user = "@devlistd-bench:hs0.example.org";
constexpr std::int64_t now_ms = 1700000000000;

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

// CPU time of the whole process (every thread), in seconds: steadier than wall time on a
// loaded machine, and comparable with the rust machine's process.cpuUsage().
double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what);
}

template <class T>
T need(result<T> r, const std::string& what) {
    if (!r) fail(what + ": " + r.error().message());
    return std::move(*r);
}
void need(result<void> r, const std::string& what) {
    if (!r) fail(what + ": " + r.error().message());
}

// ---- sizes ----

struct scale {
    std::size_t tracked;       // tracked users (W1, W5, W6, W7)
    std::size_t device_users;  // of them, users with 3 stored devices
    std::size_t w2_users;      // the W2/W2r answer (outdated in the base store)
    std::size_t w3_users;      // the W3 batch (outdated in the base store)
    std::size_t w1_changed;
    std::size_t w1_bytes;
    std::size_t lookups;  // W5 requests per measurement
};

constexpr scale full_scale{100000, 33334, 5000, 250, 50000, 5u << 20, 20000};
constexpr scale small_scale{10000, 3334, 1000, 250, 5000, 512u << 10, 2000};  // for profiling
constexpr scale tiny_scale{1000, 334, 50, 25, 500, 64u << 10, 300};

struct options {
    scale size = full_scale;
    std::string scale_name = "full";
    std::set<std::string> only;
    int runs = 3;
    unsigned threads = 1;
    std::optional<std::size_t> w2_users;
    std::optional<fs::path> write_answers;
    bool json = false;
    bool keep = false;

    std::string profile;  // --callgrind ID: instrument (or sample, see profile_scope) only that
                          // workload's timed part

    bool wants(const std::string& id) const { return only.empty() || only.count(id) > 0; }
};

// Under `valgrind --tool=callgrind --instr-atstart=no`, instruments the scope's work only. Under
// `perf record -D -1 --control fifo:CTL`, with DEVLIST_BENCH_PERF_CTL=CTL in the environment,
// samples the scope's work only (perf's control FIFO takes "enable" and "disable").
class profile_scope {
  public:
    explicit profile_scope(bool on) : on_(on) {
        if (!on_) return;
#ifdef DEVLIST_BENCH_CALLGRIND
        CALLGRIND_START_INSTRUMENTATION;
#endif
        perf_control("enable\n");
    }
    ~profile_scope() {
        if (!on_) return;
#ifdef DEVLIST_BENCH_CALLGRIND
        CALLGRIND_STOP_INSTRUMENTATION;
#endif
        perf_control("disable\n");
    }
    profile_scope(const profile_scope&) = delete;
    profile_scope& operator=(const profile_scope&) = delete;

  private:
    static void perf_control(const char* command) {
        const char* fifo = std::getenv("DEVLIST_BENCH_PERF_CTL");
        if (fifo == nullptr || *fifo == '\0') return;
        // Non-blocking: without perf reading the FIFO, the open fails instead of waiting forever.
        const int fd = ::open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            std::fprintf(stderr,
                         "DEVLIST_BENCH_PERF_CTL: cannot open %s: %s (is perf reading it?)\n", fifo,
                         std::strerror(errno));
            return;
        }
        const std::size_t length = std::strlen(command);
        if (::write(fd, command, length) != static_cast<ssize_t>(length)) {
            std::fprintf(stderr, "DEVLIST_BENCH_PERF_CTL: cannot write to %s\n", fifo);
        }
        ::close(fd);
    }

    bool on_;
};

// ---- results ----

struct figure {
    std::string id;
    std::string name;
    std::string text;  // the printed line after "ID name: "
    std::map<std::string, double> values;
};

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// "1.71 s", "35.2 ms", "850 µs".
std::string duration_text(double seconds) {
    if (seconds >= 1) return fmt("%.2f s", seconds);
    if (seconds >= 0.01) return fmt("%.1f ms", seconds * 1e3);
    if (seconds >= 0.001) return fmt("%.2f ms", seconds * 1e3);
    return fmt("%.0f µs", seconds * 1e6);
}

std::string rate_text(double per_second) {
    std::string digits = fmt("%.0f", per_second);
    for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3)
        digits.insert(static_cast<std::size_t>(i), ",");
    return digits + "/s";
}

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        out += c;
    }
    return out;
}

// ---- the store and the tracker ----

struct population {
    std::vector<std::string> users;  // user i = bench_user_id(i)
    struct device_ref {
        std::string user_id, device_id, curve25519;
    };
    std::vector<device_ref> sample;  // stored devices to look up (W5)
};

sync::device_list_tracker load_tracker(storage::store& store) {
    sync::device_list_tracker tracker(own_user);
    auto state = need(store.sync().load_sync_state(), "load sync state");
    tracker.restore(state.generation, need(store.sync().load_rooms(), "load rooms"),
                    need(store.sync().load_memberships(), "load memberships"),
                    need(store.tracking().load_tracked_users(), "load tracked users"));
    return tracker;
}

void copy_database(const fs::path& from, const fs::path& to) {
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
        fs::remove(to.string() + suffix);
    }
    fs::copy_file(from, to);
    if (fs::exists(from.string() + "-wal"))
        fs::copy_file(from.string() + "-wal", to.string() + "-wal");
}

// The base store: `tracked` users in encrypted rooms of 10,000 members, the first device_users
// with 3 devices (synthetic keys: nothing verifies them) and cross-signing keys, every user fresh
// except the W2 and W3 users, who are outdated and have never been fetched.
population make_base_store(const fs::path& path, const scale& size, key_factory& keys) {
    population pop;
    auto store = need(storage::store::open(path), "open base store");
    sync::device_list_tracker tracker(own_user);
    {
        storage::sync_batch own;
        own.at = now_ms;
        tracker.ensure_own_user(own);
        need(store.sync().apply_sync_batch(own), "track own user");
    }
    pop.users.reserve(size.tracked);
    for (std::size_t i = 0; i < size.tracked; ++i)
        pop.users.push_back(bench_user_id(i));
    sync::sync_response initial;
    initial.next_batch = "s0_base";
    const std::size_t per_room = 10000;
    for (std::size_t from = 0; from < size.tracked; from += per_room) {
        sync::room_delta room;
        room.room_id = "!big" + std::to_string(from / per_room) + ":hs0.example.org";
        room.encryption_algorithm = "m.megolm.v1.aes-sha2";
        room.members.push_back({own_user, sync::membership::join});
        for (std::size_t i = from; i < std::min(size.tracked, from + per_room); ++i)
            room.members.push_back({pop.users[i], sync::membership::join});
        initial.rooms.push_back(std::move(room));
    }
    storage::sync_batch batch;
    batch.at = now_ms;
    batch.next_batch = initial.next_batch;
    tracker.apply_sync(initial, true, batch);
    need(store.sync().apply_sync_batch(batch), "track the users");

    // Everyone but the W2/W3 users fetched once, 5,000 users a transaction.
    const std::size_t w2_from = size.tracked / 2;
    const std::size_t w3_from = w2_from + size.w2_users;
    std::vector<std::string> fresh{own_user};
    for (std::size_t i = 0; i < size.tracked; ++i) {
        if (i >= w2_from && i < w3_from + size.w3_users) continue;
        fresh.push_back(pop.users[i]);
    }
    std::uniform_int_distribution<std::size_t> pick(0, 99);
    for (std::size_t from = 0; from < fresh.size(); from += 5000) {
        storage::query_result result;
        result.at = now_ms;
        for (std::size_t k = from; k < std::min(fresh.size(), from + 5000); ++k) {
            storage::user_query_result u;
            u.user_id = fresh[k];
            u.generation_at_send = tracker.find(u.user_id)->generation;
            const bool holder = k >= 1 && k - 1 < size.device_users;
            if (holder) {
                for (int d = 0; d < 3; ++d) {
                    storage::device_record r;
                    r.user_id = u.user_id;
                    r.device_id = keys.device_id();
                    r.ed25519 = keys.random_base64(32);
                    r.curve25519 = keys.random_base64(32);
                    r.display_name = "Element Desktop (Linux)";
                    r.signed_json = synthetic_device_json(r.user_id, r.device_id, r.ed25519,
                                                          r.curve25519, keys);
                    r.cross_signed = true;
                    if (pick(keys.random()) < 3 || pop.sample.size() < 64) {
                        pop.sample.push_back({r.user_id, r.device_id, r.curve25519});
                    }
                    u.devices.push_back(std::move(r));
                }
                std::vector<storage::cross_signing_key> cs;
                for (auto usage : {storage::key_usage::master, storage::key_usage::self_signing}) {
                    storage::cross_signing_key c;
                    c.user_id = u.user_id;
                    c.usage = usage;
                    c.public_key = keys.random_base64(32);
                    c.signed_json = "{\"user_id\":\"" + u.user_id + "\",\"usage\":[\"" +
                                    std::string(sync::usage_name(usage)) +
                                    "\"],\"keys\":{\"ed25519:" + c.public_key + "\":\"" +
                                    c.public_key + "\"}}";
                    c.verified = true;
                    cs.push_back(std::move(c));
                }
                u.cross_signing_keys = std::move(cs);
            } else {
                u.cross_signing_keys.emplace();
            }
            result.users.push_back(std::move(u));
        }
        auto outcome = need(store.devices().apply_query_result(result), "store base devices");
        if (outcome.cleared.size() != result.users.size()) fail("base store: users not cleared");
    }
    return pop;
}

std::vector<sync::query_ticket> tickets_for(storage::store& store,
                                            const std::vector<std::string>& users) {
    std::vector<sync::query_ticket> tickets;
    tickets.reserve(users.size());
    for (const auto& u : users) {
        auto t = need(store.tracking().find(u), "find tracked user");
        if (!t) fail("not tracked: " + u);
        if (!t->outdated) fail("not outdated before the query: " + u);
        tickets.push_back({u, t->generation});
    }
    return tickets;
}

void mark_outdated(storage::store& store, const std::vector<std::string>& users) {
    auto tracker = load_tracker(store);
    storage::sync_batch batch;
    batch.at = now_ms;
    if (tracker.mark_outdated(users, batch) != users.size()) fail("mark outdated: not all tracked");
    need(store.sync().apply_sync_batch(batch), "mark outdated");
}

// ---- /keys/query ingestion: the engine's path ----

struct ingest_figures {
    double parse_seconds = 0;
    double seconds = 0;  // parse + verify + store
    double cpu_seconds = 0;
    sync::verification_stats stats;
    std::size_t cleared = 0;
    std::size_t added = 0;
    std::size_t slices = 0;
    std::string error;
};

struct ingest_setup {
    storage::store* store;
    sync::parse_context* parser;
    const std::string* body;
    std::vector<sync::query_ticket> tickets;
    asio::thread_pool* pool;
    unsigned pool_threads;
    // Set: the body is moved into the answer, as the engine's HTTP client hands it over (W7's
    // peak must not count a copy the daemon never makes); otherwise it is copied first.
    std::string* handed_over = nullptr;
};

asio::awaitable<ingest_figures> ingest(ingest_setup setup) {
    ingest_figures f;
#if DEVLIST_BENCH_HAVE_INGEST
    // The body as the HTTP client hands it over: owned, with room for the parser's padding.
    std::string body;
    if (setup.handed_over) {
        body = std::move(*setup.handed_over);
    } else {
        body.reserve(setup.body->size() + sync::json_padding());
        body = *setup.body;
    }
    const double cpu_start = process_cpu_seconds();
    const auto start = clock_type::now();
    // As the engine does: the answer is located and digested here, and the parts that do not
    // repeat what is stored are parsed inside ingest_query_answer (and timed with it).
    auto answer = sync::index_keys_query_answer(*setup.parser, std::move(body));
    f.parse_seconds = seconds_since(start);
    if (!answer) {
        f.error = "parse: " + answer.error().message();
        co_return f;
    }
    sync::ingest_options options;
    options.parser = setup.parser;
    options.pool = setup.pool;
    options.pool_threads = setup.pool ? setup.pool_threads : 0;
    options.pool_nice = sync::engine_options{}.verify_threads_nice;
    auto totals =
        co_await sync::ingest_query_answer(*setup.store, *answer, setup.tickets, now_ms, options);
    f.seconds = seconds_since(start);
    f.cpu_seconds = process_cpu_seconds() - cpu_start;
    f.stats = totals.stats;
    f.cleared = totals.outcome.cleared.size();
    for (const auto& c : totals.outcome.device_changes)
        f.added += c.kind == storage::device_change_kind::added;
    f.slices = totals.slices;
    if (totals.store_error) f.error = "store: " + totals.store_error->message();
    if (totals.refused) f.error = "refused: " + totals.refused->message();
#else
    const double cpu_start = process_cpu_seconds();
    const auto start = clock_type::now();
    auto answer = sync::parse_keys_query_response(*setup.parser, *setup.body);
    f.parse_seconds = seconds_since(start);
    if (!answer) {
        f.error = "parse: " + answer.error().message();
        co_return f;
    }
    (void)setup.pool;
    auto& store = *setup.store;
    std::vector<std::string> absent;
    auto result = sync::verify_query_answer(
        *answer, setup.tickets,
        [&store](const std::string& user_id) {
            sync::known_keys k;
            if (auto d = store.devices().devices_of(user_id)) k.devices = std::move(*d);
            if (auto c = store.devices().cross_signing_keys_of(user_id)) {
                k.cross_signing = std::move(*c);
            }
            return k;
        },
        now_ms, f.stats, absent);
    auto outcome = store.devices().apply_query_result(result);
    f.seconds = seconds_since(start);
    f.cpu_seconds = process_cpu_seconds() - cpu_start;
    f.slices = 1;
    if (!outcome) {
        f.error = "store: " + outcome.error().message();
        co_return f;
    }
    f.cleared = outcome->cleared.size();
    for (const auto& c : outcome->device_changes)
        f.added += c.kind == storage::device_change_kind::added;
#endif
    co_return f;
}

ingest_figures ingest_now(ingest_setup setup) {
    asio::io_context io(1);
    ingest_figures out;
    std::exception_ptr failure;
    asio::co_spawn(io, ingest(std::move(setup)), [&](std::exception_ptr e, ingest_figures f) {
        failure = e;
        out = std::move(f);
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return out;
}

ingest_figures profiled_ingest(bool profiled, ingest_setup setup) {
    profile_scope scope(profiled);
    return ingest_now(std::move(setup));
}

void expect_ingest(const ingest_figures& f, std::size_t users, std::size_t added,
                   const std::string& what) {
    if (!f.error.empty()) fail(what + ": " + f.error);
    if (f.cleared != users) {
        fail(what + ": " + std::to_string(f.cleared) + " of " + std::to_string(users) +
             " users cleared");
    }
    if (f.stats.devices_rejected || f.stats.cross_signing_rejected) {
        fail(what + ": " + std::to_string(f.stats.devices_rejected) + " devices rejected");
    }
    if (f.added != added) {
        fail(what + ": " + std::to_string(f.added) + " devices added, expected " +
             std::to_string(added));
    }
}

// ---- running the socket API in process, as devlistd does: one io thread ----

class api_host {
  public:
    api_host(storage::store& store, const fs::path& socket_path) : store_(store) {
        http_.emplace(io_.get_executor(), need(sync::parse_url("http://127.0.0.1:9"), "url"),
                      sync::http_client_options{});
        sync::engine_options options;
        options.user_id = own_user;
        options.device_id = "BENCHDEVICE";
        options.sealing_key =
            std::make_shared<const crypto::sealing_key>(crypto::sealing_key::generate());
        options.clock = [] { return now_ms; };
        engine_.emplace(io_.get_executor(), store, *http_, options, sync::log_function{});
        daemon::socket_api_options api_options;
        api_options.access =
            daemon::make_access_policy(::geteuid(), {}, {}, std::nullopt, std::nullopt);
        api_options.version = "bench";
        api_.emplace(*engine_, store, api_options, sync::log_function{});
        server_.emplace(io_.get_executor(), *api_, daemon::socket_server_limits{},
                        sync::log_function{});
        need(server_->bind({socket_path, 0600, std::nullopt, 4096}), "bind the API socket");
        asio::co_spawn(io_, server_->run(),
                       asio::bind_cancellation_slot(stop_.slot(), [](std::exception_ptr) {}));
        thread_ = std::thread([this] { io_.run(); });
    }
    ~api_host() {
        asio::post(io_, [this] {
            stop_.emit(asio::cancellation_type::terminal);
            if (echo_) echo_->close();
            http_->close();
        });
        thread_.join();
    }

    asio::io_context& io() { return io_; }
    storage::store& store() { return store_; }

    // An echo server on the same io thread (the socket ceiling), until stop_echo().
    void start_echo(const fs::path& path, std::string body) {
        fs::remove(path);
        std::promise<void> ready;
        asio::post(io_, [&] {
            echo_.emplace(io_, local::endpoint(path.string()));
            asio::co_spawn(io_, echo_server(&*echo_, std::move(body)), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
            ready.set_value();
        });
        ready.get_future().wait();
    }
    void stop_echo() {
        std::promise<void> done;
        asio::post(io_, [&] {
            echo_->close();
            done.set_value();
        });
        done.get_future().wait();
    }

  private:
    storage::store& store_;
    asio::io_context io_{1};
    std::optional<sync::http_client> http_;
    std::optional<sync::sync_engine> engine_;
    std::optional<daemon::socket_api> api_;
    std::optional<daemon::socket_server> server_;
    std::optional<local::acceptor> echo_;
    asio::cancellation_signal stop_;
    std::thread thread_;
};

// ---- child processes: devlistd (W6, W7) and this program's helpers ----

long status_kb(pid_t pid, const char* field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    const std::string prefix = std::string(field) + ":";
    while (std::getline(in, line)) {
        if (line.rfind(prefix, 0) == 0)
            return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
    }
    return -1;
}

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
    pid_t pid = ::fork();
    if (pid < 0) fail("fork failed");
    if (pid == 0) {
        FILE* out = std::fopen(log.c_str(), "a");
        if (out) {
            ::dup2(::fileno(out), 1);
            ::dup2(::fileno(out), 2);
        }
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        std::_Exit(127);
    }
    return pid;
}

int stop_child(pid_t pid) {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

// One GET on a new connection; true when answered 200.
bool answers(const fs::path& socket_path, const std::string& target) {
    boost::system::error_code ec;
    asio::io_context io(1);
    local::socket socket(io);
    socket.connect(local::endpoint(socket_path.string()), ec);
    if (ec) return false;
    namespace http = boost::beast::http;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "devlistd");
    http::write(socket, req, ec);
    if (ec) return false;
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res, ec);
    return !ec && res.result_int() == 200;
}

// Seconds from fork to the first 200 answer on `socket_path`; the child is left running.
double start_until_answering(const std::vector<std::string>& argv, const fs::path& socket_path,
                             const fs::path& log, pid_t& pid) {
    fs::remove(socket_path);
    const auto start = clock_type::now();
    pid = spawn(argv, log);
    for (;;) {
        if (answers(socket_path, "/v1/status")) return seconds_since(start);
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            fail(argv[0] + " ended before its socket answered (see " + log.string() + ")");
        }
        if (seconds_since(start) > 60) {
            stop_child(pid);
            fail(argv[0] + " did not answer within 60 s (see " + log.string() + ")");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

// ---- the benchmark ----

class bench_run {
  public:
    bench_run(options opts, fs::path self) : opts_(std::move(opts)), self_(std::move(self)) {
        std::string pattern = (fs::temp_directory_path() / "devlist-bench.XXXXXX").string();
        if (!::mkdtemp(pattern.data())) fail("mkdtemp failed");
        dir_ = pattern;
    }
    ~bench_run() {
        if (!opts_.keep) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    int run() {
        const auto& size = opts_.size;
        const std::size_t w2_users = opts_.w2_users.value_or(size.w2_users);
        if (w2_users > size.w2_users) fail("--w2-users: at most " + std::to_string(size.w2_users));
        note("data: " + std::to_string(size.tracked) + " tracked users, " +
             std::to_string(size.device_users * 3) + " stored devices; W2 " +
             std::to_string(w2_users) + " users x 3 devices; work dir " + dir_.string());

        const bool need_answers = opts_.wants("W2") || opts_.wants("W2r") || opts_.wants("W3") ||
                                  opts_.wants("W5b") || opts_.wants("W7") ||
                                  opts_.write_answers.has_value();
        const bool need_base = need_answers || opts_.wants("W1") || opts_.wants("W1b") ||
                               opts_.wants("W5") || opts_.wants("W6");
        auto t = clock_type::now();
        if (need_base) {
            population_ = make_base_store(base_path(), size, keys_);
            note("base store made in " + duration_text(seconds_since(t)));
        }
        const std::size_t w2_from = size.tracked / 2;
        for (std::size_t i = 0; i < w2_users; ++i)
            w2_ids_.push_back(bench_user_id(w2_from + i));
        for (std::size_t i = 0; i < size.w3_users; ++i)
            w3_ids_.push_back(bench_user_id(w2_from + size.w2_users + i));
        if (need_answers) make_answers();

        run_guarded("W1", [&] {
            w1("W1", "sync-" + std::to_string(size.w1_changed) + "-changed", size.w1_changed,
               size.w1_bytes, 10);
        });
        run_guarded("W1b", [&] { w1("W1b", "sync-ordinary", 100, 24 << 10, 3); });
        if (opts_.wants("W2") || opts_.wants("W2r") || opts_.wants("W3")) {
            run_guarded("W2", [&] { w2_w2r_w3(); });
        }
        run_guarded("W4", [&] { w4(); });
        if (opts_.wants("W5") || opts_.wants("W5b")) run_guarded("W5", [&] { w5(); });
        if (opts_.wants("W6") || opts_.wants("W7")) run_guarded("W6", [&] { w6_w7(); });
        if (opts_.wants("W7")) run_guarded("W7", [&] { w7_peak(); });

        if (opts_.json) print_json();
        if (!errors_.empty()) {
            for (const auto& e : errors_)
                std::fprintf(stderr, "FAILED %s\n", e.c_str());
            return 1;
        }
        return 0;
    }

  private:
    fs::path base_path() const { return dir_ / "base.sqlite"; }
    std::string users_label(std::size_t users) const { return std::to_string(users) + "x3"; }

    void note(const std::string& text) { std::fprintf(stderr, "# %s\n", text.c_str()); }

    void run_guarded(const std::string& id, const std::function<void()>& body) {
        if (id != "W2" && id != "W5" && id != "W6" && !opts_.wants(id)) return;
        try {
            body();
        } catch (const std::exception& e) {
            errors_.push_back(id + ": " + e.what());
            std::fprintf(opts_.json ? stderr : stdout, "%s FAILED: %s\n", id.c_str(), e.what());
            std::fflush(opts_.json ? stderr : stdout);
        }
    }

    // The lines go to standard output, or to standard error when --json takes the former.
    void emit(figure f) {
        FILE* out = opts_.json ? stderr : stdout;
        std::fprintf(out, "%s %s: %s\n", f.id.c_str(), f.name.c_str(), f.text.c_str());
        std::fflush(out);
        figures_.push_back(std::move(f));
    }

    void print_json() {
        std::string out = "{\"scale\":\"" + opts_.scale_name +
                          "\",\"threads\":" + std::to_string(opts_.threads) +
                          ",\"runs\":" + std::to_string(opts_.runs) + ",\"figures\":[";
        for (std::size_t i = 0; i < figures_.size(); ++i) {
            const auto& f = figures_[i];
            if (i) out += ',';
            out += "{\"id\":\"" + f.id + "\",\"name\":\"" + json_escape(f.name) + "\",\"line\":\"" +
                   json_escape(f.id + " " + f.name + ": " + f.text) + "\"";
            for (const auto& [k, v] : f.values)
                out += ",\"" + k + "\":" + fmt("%.9g", v);
            out += '}';
        }
        out += "],\"errors\":[";
        for (std::size_t i = 0; i < errors_.size(); ++i)
            out += (i ? ",\"" : "\"") + json_escape(errors_[i]) + "\"";
        out += "]}\n";
        std::fputs(out.c_str(), stdout);
    }

    // The W2 answer, the W2r answer (1% of the devices new: users who each added one) and W3's,
    // with every signature they carry.
    void make_answers() {
        auto t = clock_type::now();
        std::vector<bench_user> users;
        users.reserve(w2_ids_.size());
        for (const auto& id : w2_ids_)
            users.push_back(keys_.make_user(id, 3, &w2_signatures_));
        w2_body_ = keys_query_answer(users);
        const std::size_t changed = std::max<std::size_t>(1, w2_ids_.size() * 3 / 100);
        for (std::size_t k = 0; k < changed; ++k)
            keys_.add_device(users[k * users.size() / changed], &w2r_signatures_);
        w2r_added_ = changed;
        w2r_body_ = keys_query_answer(users);
        std::vector<bench_user> w3;
        for (const auto& id : w3_ids_)
            w3.push_back(keys_.make_user(id, 3, &w3_signatures_));
        w3_body_ = keys_query_answer(w3);
        note("answers made in " + duration_text(seconds_since(t)) + ": W2 " +
             fmt("%.1f MB", static_cast<double>(w2_body_.size()) / 1e6) + ", " +
             std::to_string(w2_signatures_.size()) + " signatures; W3 " +
             fmt("%.2f MB", static_cast<double>(w3_body_.size()) / 1e6));
        if (opts_.write_answers) {
            fs::create_directories(*opts_.write_answers);
            const std::string n = std::to_string(w2_ids_.size());
            std::ofstream(*opts_.write_answers / ("w2-" + n + ".json")) << w2_body_;
            std::ofstream(*opts_.write_answers / ("w2r-" + n + ".json")) << w2r_body_;
        }
    }

    // As the engine has it: a verification thread per core allowed, at a lower priority.
    asio::thread_pool* pool() {
        if (!pool_) pool_.emplace(opts_.threads);
        return &*pool_;
    }

    // ---- W1, W1b: a /sync applied with next_batch in one transaction ----
    void w1(const std::string& id, const std::string& name, std::size_t changed_count,
            std::size_t bytes, std::size_t rooms) {
        const auto db = dir_ / (id + ".sqlite");
        copy_database(base_path(), db);
        auto store = need(storage::store::open(db), "open store");
        auto tracker = load_tracker(store);
        std::vector<std::string> changed;
        const std::size_t step = std::max<std::size_t>(1, opts_.size.tracked / changed_count);
        for (std::size_t i = 0; i < opts_.size.tracked && changed.size() < changed_count; i += step)
            changed.push_back(population_.users[i]);
        sync::parse_context parser;
        std::vector<double> times, parse_times, tracker_times;
        std::size_t body_size = 0;
        for (int run = 0; run <= opts_.runs; ++run) {
            std::string body =
                sync_body(changed, bytes, rooms, "s" + std::to_string(run + 1) + "_" + id, keys_);
            body_size = body.size();
            body.reserve(body.size() + sync::json_padding());
            profile_scope profiled(opts_.profile == id && run == 1);
            const auto start = clock_type::now();
            auto response = need(sync::parse_sync_response(parser, body), "parse /sync");
            const double parsed = seconds_since(start);
            storage::sync_batch batch;
            batch.at = now_ms;
            batch.next_batch = response.next_batch;
            tracker.apply_sync(response, false, batch);
            const double decided = seconds_since(start);
            if (response.one_time_key_counts) {
                batch.one_time_key_counts.emplace(response.one_time_key_counts->begin(),
                                                  response.one_time_key_counts->end());
            }
            batch.unused_fallback_key_types = response.unused_fallback_key_types;
            need(store.sync().apply_sync_batch(batch), "apply the /sync batch");
            const double total = seconds_since(start);
            if (response.device_lists_changed.size() != changed.size()) fail("changed users lost");
            auto state = need(store.sync().load_sync_state(), "load sync state");
            if (state.next_batch != response.next_batch) fail("next_batch not stored");
            auto outdated = need(store.tracking().find(changed.back()), "find");
            if (!outdated || !outdated->outdated) fail("a changed user is not outdated");
            if (run == 0) continue;  // warms the parser and the page cache
            times.push_back(total);
            parse_times.push_back(parsed);
            tracker_times.push_back(decided - parsed);
        }
        const double ceiling = raw_sqlite_upsert(dir_, changed.size(), 0, false);
        const double t = median(times);
        figure f{id, name, "", {}};
        f.text = duration_text(t) + " (" + fmt("%.1f MB", static_cast<double>(body_size) / 1e6) +
                 ", parse " + duration_text(median(parse_times)) + ", tracker " +
                 duration_text(median(tracker_times)) + ", commit " +
                 duration_text(t - median(parse_times) - median(tracker_times)) +
                 "; raw SQLite upsert ceiling " + duration_text(ceiling) + ", ratio " +
                 fmt("%.2f", t / ceiling) + ")";
        f.values = {{"seconds", t},
                    {"parse_seconds", median(parse_times)},
                    {"tracker_seconds", median(tracker_times)},
                    {"ceiling_seconds", ceiling},
                    {"ratio", t / ceiling},
                    {"body_bytes", static_cast<double>(body_size)},
                    {"changed", static_cast<double>(changed.size())}};
        emit(std::move(f));
    }

    // ---- W2, W2r, W3: /keys/query answers verified and stored ----
    void w2_w2r_w3() {
        const std::string n = std::to_string(w2_ids_.size());
        std::vector<double> w2_times, w2_parse, w3_times, w2r_times, w2r_parse, w2_cpu, w2r_cpu;
        sync::verification_stats w2_stats, w2r_stats;
        std::size_t w2_slices = 0;
        const auto after_w2 = dir_ / "after-w2.sqlite";
        sync::parse_context parser;
        for (int run = 0; run < std::max(1, opts_.runs); ++run) {
            const auto db = dir_ / "w2.sqlite";
            copy_database(base_path(), db);
            {
                auto store = need(storage::store::open(db), "open store");
                if (run == 0) {  // a warm parser, as the loop's is after its first answers
                    auto warm = sync::parse_keys_query_response(parser, w2_body_);
                    if (!warm) fail("W2 answer does not parse: " + warm.error().message());
                }
                if (opts_.wants("W3")) {
                    profile_scope profiled(opts_.profile == "W3" && run == 0);
                    auto f = ingest_now({&store, &parser, &w3_body_, tickets_for(store, w3_ids_),
                                         pool(), opts_.threads});
                    expect_ingest(f, w3_ids_.size(), w3_ids_.size() * 3, "W3");
                    w3_times.push_back(f.seconds);
                }
                auto tickets = tickets_for(store, w2_ids_);
                auto f = profiled_ingest(
                    opts_.profile == "W2" && run == 0,
                    {&store, &parser, &w2_body_, std::move(tickets), pool(), opts_.threads});
                expect_ingest(f, w2_ids_.size(), w2_ids_.size() * 3, "W2");
                w2_times.push_back(f.seconds);
                w2_cpu.push_back(f.cpu_seconds);
                w2_parse.push_back(f.parse_seconds);
                w2_stats = f.stats;
                w2_slices = f.slices;
            }
            if (run == 0) copy_database(db, after_w2);
        }
        if (opts_.wants("W2r")) {
            for (int run = 0; run < std::max(1, opts_.runs); ++run) {
                const auto db = dir_ / "w2r.sqlite";
                copy_database(after_w2, db);
                auto store = need(storage::store::open(db), "open store");
                mark_outdated(store, w2_ids_);
                auto tickets = tickets_for(store, w2_ids_);
                auto f = profiled_ingest(
                    opts_.profile == "W2r" && run == 0,
                    {&store, &parser, &w2r_body_, std::move(tickets), pool(), opts_.threads});
                expect_ingest(f, w2_ids_.size(), w2r_added_, "W2r");
                w2r_times.push_back(f.seconds);
                w2r_cpu.push_back(f.cpu_seconds);
                w2r_parse.push_back(f.parse_seconds);
                w2r_stats = f.stats;
            }
        }
        const auto ceiling1 = raw_verify(w2_signatures_, 1);
        const auto ceiling2 = raw_verify(w2_signatures_, 2);
        if (ceiling1.failures) fail("generated signatures do not verify");
        const double store_ceiling = raw_sqlite_upsert(
            dir_, w2_ids_.size() * 3, w2_body_.size() / (w2_ids_.size() * 3), false);
        const double w2 = median(w2_times);
        const double ceiling = opts_.threads >= 2 ? ceiling2.seconds : ceiling1.seconds;
        if (opts_.wants("W2")) {
            figure f{"W2", "keys-query-" + users_label(w2_ids_.size()), "", {}};
            f.text = duration_text(w2) + " (verify ceiling " + duration_text(ceiling) + ", ratio " +
                     fmt("%.2f", w2 / ceiling) + "; " +
                     fmt("%.1f MB", static_cast<double>(w2_body_.size()) / 1e6) + ", " +
                     std::to_string(w2_signatures_.size()) + " signatures, " +
                     std::to_string(w2_stats.signatures_checked) + " checked, cpu " +
                     duration_text(median(w2_cpu)) + " against a cpu ceiling of " +
                     duration_text(ceiling1.cpu_seconds) + ", cpu ratio " +
                     fmt("%.2f", median(w2_cpu) / ceiling1.cpu_seconds) + ", parse " +
                     duration_text(median(w2_parse)) + ", raw SQLite upsert " +
                     duration_text(store_ceiling) + ", " + std::to_string(opts_.threads) +
                     (opts_.threads == 1 ? " core)" : " cores)");
            f.values = {{"seconds", w2},
                        {"cpu_seconds", median(w2_cpu)},
                        {"users", static_cast<double>(w2_ids_.size())},
                        {"ceiling_seconds", ceiling},
                        {"verify_1core_seconds", ceiling1.seconds},
                        {"verify_cpu_seconds", ceiling1.cpu_seconds},
                        {"cpu_ratio", median(w2_cpu) / ceiling1.cpu_seconds},
                        {"verify_2core_seconds", ceiling2.seconds},
                        {"ratio", w2 / ceiling},
                        {"parse_seconds", median(w2_parse)},
                        {"store_ceiling_seconds", store_ceiling},
                        {"signatures", static_cast<double>(w2_signatures_.size())},
                        {"checked", static_cast<double>(w2_stats.signatures_checked)},
                        {"slices", static_cast<double>(w2_slices)},
                        {"body_bytes", static_cast<double>(w2_body_.size())}};
            emit(std::move(f));
        }
        if (opts_.wants("W2r")) {
            const double w2r = median(w2r_times);
            const auto changed_ceiling = raw_verify(w2r_signatures_, 1);
            figure f{"W2r", "keys-query-" + users_label(w2_ids_.size()) + "-1pct-changed", "", {}};
            f.text = duration_text(w2r) + " (W2 " + duration_text(w2) + ", " +
                     fmt("%.1fx", w2 / w2r) + " faster; verify ceiling of the " +
                     std::to_string(w2r_added_) + " changed devices " +
                     duration_text(changed_ceiling.seconds) + ", ratio " +
                     fmt("%.2f", w2r / changed_ceiling.seconds) + "; " +
                     std::to_string(w2r_stats.signatures_checked) + " signatures checked, " +
                     std::to_string(w2r_stats.devices_unchanged) + " devices unchanged, " +
                     std::to_string(w2r_stats.users_repeated) +
                     " users repeating what is stored, cpu " + duration_text(median(w2r_cpu)) +
                     ", parse " + duration_text(median(w2r_parse)) + ")";
            f.values = {{"seconds", w2r},
                        {"cpu_seconds", median(w2r_cpu)},
                        {"users", static_cast<double>(w2_ids_.size())},
                        {"w2_seconds", w2},
                        {"speedup", w2 / w2r},
                        {"ceiling_seconds", changed_ceiling.seconds},
                        {"checked", static_cast<double>(w2r_stats.signatures_checked)},
                        {"unchanged", static_cast<double>(w2r_stats.devices_unchanged)},
                        {"users_repeated", static_cast<double>(w2r_stats.users_repeated)},
                        {"parse_seconds", median(w2r_parse)}};
            emit(std::move(f));
        }
        if (opts_.wants("W3")) {
            const double w3 = median(w3_times);
            const auto c = raw_verify(w3_signatures_, opts_.threads >= 2 ? 2 : 1);
            figure f{"W3", "keys-query-" + users_label(w3_ids_.size()), "", {}};
            f.text = duration_text(w3) + " (verify ceiling " + duration_text(c.seconds) +
                     ", ratio " + fmt("%.2f", w3 / c.seconds) + ")";
            f.values = {{"seconds", w3}, {"ceiling_seconds", c.seconds}, {"ratio", w3 / c.seconds}};
            emit(std::move(f));
        }
    }

    // ---- W4: 50 one-time keys generated, signed and committed durably ----
    void w4() {
        const auto db = dir_ / "w4.sqlite";
        auto store = need(storage::store::open(db), "open store");
        const auto sealing = crypto::sealing_key::generate();
        auto identity = sync::create_identity(own_user, "BENCHDEVICE", sealing, now_ms);
        std::vector<double> times;
        std::int64_t expected = 0;
        for (int run = 0; run <= opts_.runs; ++run) {
            const auto start = clock_type::now();
            std::vector<storage::new_key> made;
            made.reserve(50);
            for (int i = 0; i < 50; ++i)
                made.push_back(sync::make_signed_curve25519_key(identity.keys, false, sealing));
            auto added = need(store.one_time_keys().add_pending(made, now_ms, sync::format_key_id),
                              "add pending one-time keys");
            const double t = seconds_since(start);
            expected += 50;
            if (added.size() != 50) fail("one-time keys not stored");
            if (run > 0) times.push_back(t);
        }
        if (need(store.one_time_keys().count(storage::key_state::pending), "count") != expected) {
            fail("one-time key count wrong");
        }
        const double keys_ceiling = raw_one_time_keys(50);
        const double commit_ceiling = raw_sqlite_upsert(dir_, 50, 400, true);
        const double t = median(times);
        figure f{"W4", "one-time-keys-50", "", {}};
        f.text = duration_text(t) + " (ceiling " + duration_text(keys_ceiling + commit_ceiling) +
                 " = keys " + duration_text(keys_ceiling) + " + raw durable commit " +
                 duration_text(commit_ceiling) + ", ratio " +
                 fmt("%.2f", t / (keys_ceiling + commit_ceiling)) + ")";
        f.values = {{"seconds", t},
                    {"ceiling_seconds", keys_ceiling + commit_ceiling},
                    {"keys_ceiling_seconds", keys_ceiling},
                    {"commit_ceiling_seconds", commit_ceiling}};
        emit(std::move(f));
    }

    // ---- W5, W5b: socket lookups at the base store's devices ----
    std::vector<lookup_request> lookup_requests() {
        std::vector<lookup_request> out;
        auto encode = [](const std::string& s) {
            std::string e;
            for (char c : s) {
                if (c == '@')
                    e += "%40";
                else if (c == ':')
                    e += "%3A";
                else if (c == '/')
                    e += "%2F";
                else if (c == '+')
                    e += "%2B";
                else
                    e += c;
            }
            return e;
        };
        for (const auto& d : population_.sample) {
            out.push_back(
                {"/v1/users/" + encode(d.user_id) + "/devices", "\"" + d.device_id + "\""});
            out.push_back(
                {"/v1/devices/by-curve25519/" + encode(d.curve25519), "\"" + d.device_id + "\""});
        }
        std::shuffle(out.begin(), out.end(), keys_.random());
        return out;
    }

    latency_stats client_run(const std::function<asio::awaitable<void>(latency_stats*)>& body) {
        latency_stats stats;
        asio::io_context io(1);
        std::exception_ptr failure;
        asio::co_spawn(io, body(&stats), [&](std::exception_ptr e) { failure = e; });
        io.run();
        if (failure) std::rethrow_exception(failure);
        return stats;
    }

    static void expect_lookups(const latency_stats& s, const std::string& what) {
        if (s.failures)
            fail(what + ": " + std::to_string(s.failures) + " failed (" + s.first_error + ")");
        if (s.micros.empty()) fail(what + ": nothing answered");
    }

    std::string latency_text(const latency_stats& s) {
        return rate_text(s.rate()) + ", p50 " + fmt("%.0f µs", s.quantile(0.5)) + ", p99 " +
               fmt("%.0f µs", s.quantile(0.99)) + ", p99.9 " + fmt("%.0f µs", s.quantile(0.999));
    }

    void w5() {
        const auto db = dir_ / "w5.sqlite";
        copy_database(base_path(), db);
        auto store = need(storage::store::open(db), "open store");
        const auto api_path = dir_ / "api.sock";
        const auto echo_path = dir_ / "echo.sock";
        const auto requests = lookup_requests();
        const std::size_t count = opts_.size.lookups;
        api_host host(store, api_path);
        // Warm: the page cache and the statement caches.
        client_run([&](latency_stats* s) {
            return sequential_lookups(api_path.string(), &requests, {requests.size(), nullptr}, s);
        });
        std::vector<latency_stats> one, piped, echo_one, echo_piped;
        const std::string echo_body(1400, 'x');
        host.start_echo(echo_path, echo_body);
        for (int run = 0; run < std::max(1, opts_.runs); ++run) {
            {
                profile_scope profiled(opts_.profile == "W5" && run == 0);
                one.push_back(client_run([&](latency_stats* s) {
                    return sequential_lookups(api_path.string(), &requests, {count, nullptr}, s);
                }));
            }
            expect_lookups(one.back(), "W5 one client");
            {
                profile_scope profiled(opts_.profile == "W5p" && run == 0);
                piped.push_back(client_run([&](latency_stats* s) {
                    return pipelined_lookups(api_path.string(), &requests, count * 2, 32, s);
                }));
            }
            expect_lookups(piped.back(), "W5 pipelined");
            std::vector<lookup_request> echo_requests{{"/echo", "x"}};
            echo_one.push_back(client_run([&](latency_stats* s) {
                return sequential_lookups(echo_path.string(), &echo_requests, {count, nullptr}, s);
            }));
            echo_piped.push_back(client_run([&](latency_stats* s) {
                return pipelined_lookups(echo_path.string(), &echo_requests, count * 2, 32, s);
            }));
        }
        host.stop_echo();
        auto pick = [](std::vector<latency_stats>& v) -> latency_stats& {
            std::sort(v.begin(), v.end(),
                      [](const auto& a, const auto& b) { return a.rate() < b.rate(); });
            return v[v.size() / 2];
        };
        auto& o = pick(one);
        auto& p = pick(piped);
        auto& eo = pick(echo_one);
        auto& ep = pick(echo_piped);
        if (opts_.wants("W5")) {
            figure f{"W5", "lookups-1-client", "", {}};
            f.text = latency_text(o) + " (echo ceiling " + latency_text(eo) + ", ratio " +
                     fmt("%.2f", o.rate() / eo.rate()) + "; " +
                     std::to_string(opts_.size.device_users * 3) + " devices)";
            f.values = {{"rate", o.rate()},           {"p50_us", o.quantile(0.5)},
                        {"p99_us", o.quantile(0.99)}, {"p999_us", o.quantile(0.999)},
                        {"ceiling_rate", eo.rate()},  {"ratio", o.rate() / eo.rate()}};
            emit(std::move(f));
            figure g{"W5p", "lookups-32-pipelined", "", {}};
            g.text = latency_text(p) + " (echo ceiling " + latency_text(ep) + ", ratio " +
                     fmt("%.2f", p.rate() / ep.rate()) + ")";
            g.values = {{"rate", p.rate()},           {"p50_us", p.quantile(0.5)},
                        {"p99_us", p.quantile(0.99)}, {"p999_us", p.quantile(0.999)},
                        {"ceiling_rate", ep.rate()},  {"ratio", p.rate() / ep.rate()}};
            emit(std::move(g));
        }
        if (opts_.wants("W5b")) w5b(host, requests, o);
    }

    // Lookups, one client, while W2's answer is verified and stored on the same io thread.
    void w5b(api_host& host, const std::vector<lookup_request>& requests,
             const latency_stats& quiet) {
        sync::parse_context parser;
        auto tickets = tickets_for(host.store(), w2_ids_);
        std::atomic<bool> done{false};
        std::promise<ingest_figures> ingested;
        auto figures = ingested.get_future();
        latency_stats stats;
        {
            asio::io_context io(1);
            std::exception_ptr client_failure;
            asio::co_spawn(
                io, sequential_lookups((dir_ / "api.sock").string(), &requests, {1, &done}, &stats),
                [&](std::exception_ptr e) { client_failure = e; });
            std::thread client([&] { io.run(); });
            // Let the client start before the answer arrives.
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            asio::co_spawn(host.io(),
                           ingest({&host.store(), &parser, &w2_body_, std::move(tickets), pool(),
                                   opts_.threads}),
                           [&](std::exception_ptr e, ingest_figures f) {
                               if (e) {
                                   ingested.set_exception(e);
                               } else {
                                   ingested.set_value(std::move(f));
                               }
                               done = true;
                           });
            client.join();
            if (client_failure) std::rethrow_exception(client_failure);
        }
        auto f = figures.get();
        expect_ingest(f, w2_ids_.size(), w2_ids_.size() * 3, "W5b's W2");
        expect_lookups(stats, "W5b");
        const double max_us =
            stats.micros.empty() ? 0 : *std::max_element(stats.micros.begin(), stats.micros.end());
        figure g{"W5b", "lookups-1-client-during-W2", "", {}};
        g.text = latency_text(stats) + ", max " + duration_text(max_us / 1e6) + ", " +
                 std::to_string(stats.micros.size()) + " answered while W2 took " +
                 duration_text(f.seconds) + " (quiet p99 " + fmt("%.0f µs", quiet.quantile(0.99)) +
                 ")";
        g.values = {{"rate", stats.rate()},
                    {"p50_us", stats.quantile(0.5)},
                    {"p99_us", stats.quantile(0.99)},
                    {"p999_us", stats.quantile(0.999)},
                    {"max_us", max_us},
                    {"w2_seconds", f.seconds},
                    {"answered", static_cast<double>(stats.micros.size())}};
        emit(std::move(g));
    }

    // ---- W6, W7 (steady): the real devlistd on a copy of the base store ----
    void w6_w7() {
#ifndef DEVLIST_BENCH_DAEMON
        fail("built without the path of devlistd");
#else
        const auto home = dir_ / "w6";
        fs::create_directories(home);
        const auto db = home / "devlistd.sqlite";
        copy_database(base_path(), db);
        std::ofstream(home / "token") << "bench-token-not-used";
        const auto socket_path = home / "devlistd.sock";
        // The homeserver: a loopback port that takes connections and never answers, so the
        // engine waits on its first request while the socket serves the store (the restart
        // figure is the daemon's own start, not the network's).
        asio::io_context silent_io(1);
        asio::ip::tcp::acceptor silent(silent_io, {asio::ip::make_address("127.0.0.1"), 0});
        const auto port = silent.local_endpoint().port();
        {
            std::ofstream config(home / "devlistd.toml");
            config << "homeserver = \"http://127.0.0.1:" << port << "\"\n"
                   << "user_id = \"" << own_user << "\"\n"
                   << "device_id = \"BENCHDEVICE\"\n"
                   << "access_token_file = \"token\"\n"
                   << "database = \"devlistd.sqlite\"\n"
                   << "socket = \"" << socket_path.string() << "\"\n"
                   << "socket_mode = \"0600\"\n"
                   << "log_level = \"warning\"\n";
        }
        const std::vector<std::string> daemon{DEVLIST_BENCH_DAEMON, "--config",
                                              (home / "devlistd.toml").string()};
        const auto log = home / "devlistd.log";
        std::vector<double> starts;
        long steady_rss_kb = -1, steady_hwm_kb = -1;
        const auto requests = lookup_requests();
        for (int run = 0; run <= opts_.runs; ++run) {
            pid_t pid = 0;
            const double t = start_until_answering(daemon, socket_path, log, pid);
            if (run == 0) {
                // The first start makes the sealing key; W7's steady state is measured after
                // lookups over every sampled device.
                auto s = client_run([&](latency_stats* st) {
                    return sequential_lookups(
                        socket_path.string(), &requests,
                        {std::max<std::size_t>(requests.size(), 2000), nullptr}, st);
                });
                expect_lookups(s, "W7 lookups on devlistd");
                steady_rss_kb = status_kb(pid, "VmRSS");
                steady_hwm_kb = status_kb(pid, "VmHWM");
            } else {
                starts.push_back(t);
            }
            const int status = stop_child(pid);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fail("devlistd did not stop cleanly (see " + log.string() + ")");
            }
        }
        // Ceiling: this program started as a bare echo server on the same kind of socket.
        std::vector<double> echo_starts;
        const auto echo_path = home / "echo.sock";
        for (int run = 0; run <= opts_.runs; ++run) {
            pid_t pid = 0;
            const double t =
                start_until_answering({self_.string(), "--child-echo", echo_path.string()},
                                      echo_path, home / "echo.log", pid);
            stop_child(pid);
            if (run > 0) echo_starts.push_back(t);
        }
        const double w6 = median(starts);
        const double ceiling = median(echo_starts);
        if (opts_.wants("W6")) {
            figure f{"W6",
                     "restart-" + std::to_string(opts_.size.device_users * 3) + "-devices",
                     "",
                     {}};
            f.text = duration_text(w6) + " (process + echo socket ceiling " +
                     duration_text(ceiling) + ", ratio " + fmt("%.1f", w6 / ceiling) + "; " +
                     std::to_string(opts_.size.tracked) + " tracked users)";
            f.values = {{"seconds", w6}, {"ceiling_seconds", ceiling}, {"ratio", w6 / ceiling}};
            emit(std::move(f));
        }
        steady_rss_kb_ = steady_rss_kb;
        steady_hwm_kb_ = steady_hwm_kb;
#endif
    }

    // ---- W7: peak during W2, in a fresh process of this program ----
    void w7_peak() {
        if (steady_rss_kb_ < 0) fail("the steady figure is missing (W6 did not run)");
        const auto db = dir_ / "w7.sqlite";
        copy_database(base_path(), db);
        const auto answer = dir_ / "w7-answer.json";
        std::ofstream(answer) << w2_body_;
        const std::string command = self_.string() + " --child-w2-peak " + db.string() + " " +
                                    answer.string() + " --threads " +
                                    std::to_string(opts_.threads) + " 2>&1";
        FILE* child = ::popen(command.c_str(), "r");
        if (!child) fail("cannot start the W7 child");
        std::string output;
        char buf[512];
        while (std::fgets(buf, sizeof buf, child))
            output += buf;
        const int status = ::pclose(child);
        long before = -1, hwm = -1, stored = -1;
        std::istringstream in(output);
        std::string word;
        while (in >> word) {
            if (word == "rss_before_kb") in >> before;
            if (word == "hwm_kb") in >> hwm;
            if (word == "devices") in >> stored;
        }
        if (status != 0 || hwm < 0) fail("W7 child failed: " + output);
        if (stored != static_cast<long>(w2_ids_.size() * 3))
            fail("W7 child stored " + std::to_string(stored) + " devices");
        figure f{"W7", "memory", "", {}};
        f.text = fmt("steady %.1f MB", static_cast<double>(steady_rss_kb_) / 1024) +
                 " (devlistd at " + std::to_string(opts_.size.device_users * 3) + " devices, " +
                 std::to_string(opts_.size.tracked) + " tracked users; its peak " +
                 fmt("%.1f MB", static_cast<double>(steady_hwm_kb_) / 1024) + "), " +
                 fmt("peak during W2 %.1f MB", static_cast<double>(hwm) / 1024) +
                 fmt(" (%.1f MB before it; answer ", static_cast<double>(before) / 1024) +
                 fmt("%.1f MB)", static_cast<double>(w2_body_.size()) / 1e6);
        f.values = {{"steady_mb", static_cast<double>(steady_rss_kb_) / 1024},
                    {"steady_hwm_mb", static_cast<double>(steady_hwm_kb_) / 1024},
                    {"peak_w2_mb", static_cast<double>(hwm) / 1024},
                    {"before_w2_mb", static_cast<double>(before) / 1024}};
        emit(std::move(f));
    }

    options opts_;
    fs::path self_;
    fs::path dir_;
    key_factory keys_{20261123};
    population population_;
    std::vector<std::string> w2_ids_, w3_ids_;
    std::vector<signed_message> w2_signatures_, w2r_signatures_, w3_signatures_;
    std::string w2_body_, w2r_body_, w3_body_;
    std::size_t w2r_added_ = 0;
    std::optional<asio::thread_pool> pool_;
    long steady_rss_kb_ = -1, steady_hwm_kb_ = -1;
    std::vector<figure> figures_;
    std::vector<std::string> errors_;
};

// --child-echo PATH: an echo server until SIGTERM.
int child_echo(const std::string& path) {
    asio::io_context io(1);
    fs::remove(path);
    local::acceptor acceptor(io, local::endpoint(path));
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int) {
        acceptor.close();
        io.stop();
    });
    asio::co_spawn(io, echo_server(&acceptor, std::string(1400, 'x')), [](std::exception_ptr) {});
    io.run();
    return 0;
}

// --child-w2-peak DB ANSWER: W2 in a fresh process; prints its memory.
int child_w2_peak(const std::string& db, const std::string& answer_path, unsigned threads) {
    auto store = need(storage::store::open(db), "open store");
    const long before = status_kb(::getpid(), "VmRSS");
    std::string body;
    {
        std::ifstream in(answer_path, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        body = ss.str();
    }
    body.reserve(body.size() + sync::json_padding());
    sync::parse_context parser;
    std::vector<std::string> users;
    for (auto& user : need(sync::index_keys_query_answer(parser, body), "parse").users)
        users.push_back(std::move(user.user_id));
    asio::thread_pool pool(threads);
    auto f = ingest_now({&store, &parser, &body, tickets_for(store, users), &pool, threads, &body});
    if (!f.error.empty()) fail(f.error);
    std::printf("rss_before_kb %ld hwm_kb %ld devices %zu\n", before,
                status_kb(::getpid(), "VmHWM"),
                f.stats.devices_accepted + f.stats.devices_unchanged);
    return 0;
}

int usage() {
    std::fputs(
        "usage: devlist_bench_workloads [--scale full|small|tiny] [--only W1,W2,...] [--runs N]\n"
        "                               [--threads 1|2] [--w2-users N] [--write-answers DIR]\n"
        "                               [--json] [--keep]\n",
        stderr);
    return 2;
}

void pin_to_cores(unsigned cores) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) fail("sched_getaffinity failed");
    cpu_set_t chosen;
    CPU_ZERO(&chosen);
    unsigned taken = 0;
    for (std::size_t cpu = 0; cpu < std::size_t{CPU_SETSIZE} && taken < cores; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &chosen);
            ++taken;
        }
    }
    if (taken < cores) {
        std::fprintf(stderr, "# only %u cores available\n", taken);
    }
    if (::sched_setaffinity(0, sizeof chosen, &chosen) != 0) fail("sched_setaffinity failed");
}

}  // namespace
}  // namespace devlist::bench

int main(int argc, char** argv) {
    using namespace devlist::bench;
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        unsigned child_threads = 1;
        for (std::size_t i = 0; i + 1 < args.size(); ++i) {
            if (args[i] == "--threads")
                child_threads = static_cast<unsigned>(std::stoul(args[i + 1]));
        }
        if (args.size() >= 2 && args[0] == "--child-echo") return child_echo(args[1]);
        if (args.size() >= 3 && args[0] == "--child-w2-peak") {
            return child_w2_peak(args[1], args[2], child_threads);
        }
        options opts;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const auto& a = args[i];
            auto value = [&]() -> const std::string& {
                if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
                return args[++i];
            };
            if (a == "--scale") {
                opts.scale_name = value();
                if (opts.scale_name == "tiny")
                    opts.size = tiny_scale;
                else if (opts.scale_name == "small")
                    opts.size = small_scale;
                else if (opts.scale_name == "full")
                    opts.size = full_scale;
                else
                    return usage();
            } else if (a == "--only") {
                std::stringstream list(value());
                std::string id;
                while (std::getline(list, id, ','))
                    opts.only.insert(id);
            } else if (a == "--runs") {
                opts.runs = std::max(1, std::stoi(value()));
            } else if (a == "--threads") {
                opts.threads = static_cast<unsigned>(std::stoul(value()));
                if (opts.threads < 1 || opts.threads > 2) return usage();
            } else if (a == "--w2-users") {
                opts.w2_users = std::stoul(value());
            } else if (a == "--write-answers") {
                opts.write_answers = value();
            } else if (a == "--json") {
                opts.json = true;
            } else if (a == "--callgrind") {
                opts.profile = value();
            } else if (a == "--keep") {
                opts.keep = true;
            } else {
                return usage();
            }
        }
        pin_to_cores(opts.threads);
        bench_run run(opts, std::filesystem::canonical("/proc/self/exe"));
        return run.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "devlist_bench_workloads: %s\n", e.what());
        return 1;
    }
}
