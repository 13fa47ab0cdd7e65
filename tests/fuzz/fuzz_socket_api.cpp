// libFuzzer target: the socket API as any local peer reaches it. The input is the byte stream of
// one connection — one or more HTTP/1.1 requests, pipelined, malformed or cut short — written to
// the real socket_server (Beast's request parser with devlistd's limits), which routes each
// request to socket_api's handlers on a real in-memory store with a tracked user, a device and
// private keys to take. Only a Unix socket in a private temporary folder is used; the engine is
// never run, so nothing leaves the process.
//
// Besides memory safety, a finding is: the server never closing the connection once the peer
// has sent everything (a hang), an answer that is not HTTP, or a 5xx answer (bad input must be
// the client's error, never the server's).
//
// Every input gets a fresh store, engine and server, so that a finding reproduces on its own.
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/seal.hpp"
#include "daemon/socket_api.hpp"
#include "daemon/socket_server.hpp"
#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/own_keys.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"

namespace {

namespace asio = boost::asio;
using namespace devlist;
using local = asio::local::stream_protocol;
using namespace std::chrono_literals;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_socket_api: %s\n", what);
    std::abort();
}

template <class T>
T value_or_die(result<T> r, const char* what) {
    if (!r) fail(what);
    return std::move(*r);
}

void check(const result<void>& r, const char* what) {
    if (!r) fail(what);
}

// The private folder of the socket, made once and removed at exit.
const std::filesystem::path& socket_dir() {
    static const std::filesystem::path dir = [] {
        std::string pattern = "/tmp/dl-fuzz-XXXXXX";  // short: a socket path has 107 bytes
        if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp");
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(socket_dir(), ignored);
        });
        return std::filesystem::path(pattern);
    }();
    return dir;
}

constexpr const char* bot = "@bot:example.org";
constexpr const char* alice = "@alice:example.org";

// What handlers find: alice tracked with one verified device, one one-time key and a fallback
// key with their sealed private parts, and the bot's own device.
void fill(storage::store& store, sync::sync_engine& engine, const crypto::sealing_key& sealing) {
    check(engine.track_user(alice), "track");
    auto tracked = value_or_die(store.tracking().find(alice), "find");
    if (!tracked) fail("alice is not tracked");

    storage::device_record d;
    d.user_id = alice;
    d.device_id = "ALICEPHONE";
    d.ed25519 = crypto::ed25519_key_pair::generate().public_key().to_base64();
    d.curve25519 = crypto::curve25519_key_pair::generate().public_key().to_base64();
    d.display_name = "phone";
    d.signed_json = "{}";
    storage::query_result answer;
    answer.at = 1700000001000;
    storage::user_query_result u;
    u.user_id = alice;
    u.generation_at_send = tracked->generation;
    u.devices.push_back(std::move(d));
    answer.users.push_back(std::move(u));
    value_or_die(store.devices().apply_query_result(answer), "apply_query_result");

    auto one_time = crypto::curve25519_key_pair::generate();
    storage::new_key k;
    k.public_key = one_time.public_key().to_base64();
    k.sealed_private = sealing.seal(one_time.secret().span(),
                                    std::string(sync::seal_context::one_time_key) + k.public_key);
    k.signed_json = "{\"key\":\"" + k.public_key + "\"}";
    value_or_die(store.one_time_keys().add_pending(
                     std::span<const storage::new_key>(&k, 1), 1700000000000,
                     [](std::int64_t v) { return "AAAA" + std::to_string(v); }),
                 "add_pending");

    auto fallback = crypto::curve25519_key_pair::generate();
    storage::new_key f;
    f.public_key = fallback.public_key().to_base64();
    f.sealed_private = sealing.seal(fallback.secret().span(),
                                    std::string(sync::seal_context::fallback_key) + f.public_key);
    f.signed_json = "{\"key\":\"" + f.public_key + "\",\"fallback\":true}";
    value_or_die(store.fallback_keys().add_pending_current(
                     f, 1700000000000, [](std::int64_t v) { return "FB" + std::to_string(v); }),
                 "add_pending_current");
}

struct client_result {
    std::string received;
    bool done = false;
};

// Writes the whole input, half-closes, and reads until the server closes. A write error is
// expected: the server closes a connection after a malformed request.
asio::awaitable<void> talk(local::socket socket, std::string bytes,
                           std::shared_ptr<client_result> out) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(bytes), tuple);
    boost::system::error_code ignored;
    if (!wec) socket.shutdown(local::socket::shutdown_send, ignored);
    char chunk[4096];
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), tuple);
        out->received.append(chunk, n);
        if (ec) break;
    }
    out->done = true;
}

// Each answer the server wrote starts with a status line; none may be a 5xx.
void check_answers(std::string_view received) {
    constexpr std::string_view start = "HTTP/1.";
    if (received.empty()) return;
    if (received.substr(0, start.size()) != start) fail("an answer that is not HTTP");
    for (std::size_t at = received.find(start); at != std::string_view::npos;
         at = received.find(start, at + 1)) {
        // "HTTP/1.1 500 ..." — only status lines start a line with "HTTP/1." and a digit.
        if (at != 0 && received[at - 1] != '\n') continue;
        if (received.size() > at + 9 && received[at + 9] == '5' && received[at + 8] == ' ') {
            std::fprintf(stderr, "%.*s\n",
                         static_cast<int>(std::min<std::size_t>(received.size() - at, 300)),
                         received.data() + at);
            fail("a 5xx answer");
        }
    }
}

void run_one(std::string bytes) {
    asio::io_context io{1};
    auto store = value_or_die(storage::store::open(":memory:"), "store");
    auto base = value_or_die(sync::parse_url("http://127.0.0.1:9"), "url");
    sync::http_client http(io.get_executor(), base, sync::http_client_options{});
    static const auto sealing =
        std::make_shared<const crypto::sealing_key>(crypto::sealing_key::generate());
    sync::engine_options options;
    options.user_id = bot;
    options.device_id = "BOTDEVICE";
    options.sealing_key = sealing;
    options.clock = [] { return std::int64_t{1700000000000}; };
    sync::sync_engine engine(io.get_executor(), store, http, options, sync::log_function{});
    fill(store, engine, *sealing);

    daemon::socket_api_options api_options;
    api_options.access =
        daemon::make_access_policy(::geteuid(), {}, {}, std::nullopt, std::nullopt);
    api_options.version = "fuzz";
    // Requests that wait (fresh device lists, the event long-poll) wait this long at most.
    api_options.max_wait = 20ms;
    api_options.default_fresh_wait = 20ms;
    daemon::socket_api api(engine, store, api_options, sync::log_function{});

    daemon::socket_server_limits limits;
    limits.idle_timeout = 500ms;
    limits.request_timeout = 500ms;
    limits.write_timeout = 500ms;
    daemon::socket_server server(io.get_executor(), api, limits, sync::log_function{});
    const auto path = socket_dir() / "s";
    std::filesystem::remove(path);
    check(server.bind(daemon::socket_file_options{path}), "bind");

    asio::cancellation_signal stop;
    bool server_ended = false;
    asio::co_spawn(io, server.run(),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       if (e) fail("the server ended with an exception");
                       server_ended = true;
                   }));

    local::socket socket(io);
    boost::system::error_code ec;
    socket.connect(local::endpoint(path.string()), ec);
    if (ec) fail("connect");
    auto result = std::make_shared<client_result>();
    asio::co_spawn(io, talk(std::move(socket), std::move(bytes), result), [](std::exception_ptr e) {
        if (e) fail("the client threw");
    });

    // Far beyond every limit above: only a server that never ends the connection gets here.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!result->done) {
        if (std::chrono::steady_clock::now() >= deadline) fail("the connection never ended");
        io.run_one_until(deadline);
    }
    check_answers(result->received);

    stop.emit(asio::cancellation_type::terminal);
    while (!server_ended) {
        if (std::chrono::steady_clock::now() >= deadline + 5s) fail("the server did not stop");
        io.run_one_until(deadline + 5s);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    run_one(std::string(reinterpret_cast<const char*>(data), size));
    return 0;
}
