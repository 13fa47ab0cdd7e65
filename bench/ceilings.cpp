#include "bench/ceilings.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <sqlite3.h>

#include <time.h>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <thread>
#include <vector>

#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"

namespace devlist::bench {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;

double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string("raw SQLite ceiling: ") + what + ": " +
                                 sqlite3_errmsg(db));
    }
}

void exec(sqlite3* db, const char* sql) {
    check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), db, sql);
}

asio::awaitable<void> echo_connection(asio::local::stream_protocol::socket socket,
                                      std::string body) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    boost::beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        auto [read_error, n] = co_await http::async_read(socket, buffer, req, tuple);
        if (read_error) co_return;
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = body;
        res.prepare_payload();
        auto [write_error, w] = co_await http::async_write(socket, res, tuple);
        if (write_error) co_return;
    }
}

}  // namespace

verify_ceiling raw_verify(std::span<const signed_message> signatures, unsigned threads) {
    verify_ceiling out;
    std::vector<std::size_t> failures(threads, 0);
    auto work = [&](unsigned part) {
        const std::size_t from = signatures.size() * part / threads;
        const std::size_t to = signatures.size() * (part + 1) / threads;
        for (std::size_t i = from; i < to; ++i) {
            const auto& s = signatures[i];
            if (!crypto::ed25519_verify(s.key, s.message, s.signature)) ++failures[part];
        }
    };
    const double cpu_start = process_cpu_seconds();
    auto start = clock_type::now();
    if (threads <= 1) {
        work(0);
    } else {
        std::vector<std::thread> pool;
        for (unsigned t = 1; t < threads; ++t)
            pool.emplace_back(work, t);
        work(0);
        for (auto& t : pool)
            t.join();
    }
    out.seconds = seconds_since(start);
    out.cpu_seconds = process_cpu_seconds() - cpu_start;
    for (auto f : failures)
        out.failures += f;
    return out;
}

double raw_sqlite_upsert(const std::filesystem::path& dir, std::size_t rows,
                         std::size_t payload_bytes, bool full) {
    const auto path = dir / "raw-ceiling.sqlite";
    std::filesystem::remove(path);
    std::filesystem::remove(path.string() + "-wal");
    std::filesystem::remove(path.string() + "-shm");
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
        sqlite3_close(db);
        throw std::runtime_error("raw SQLite ceiling: cannot open " + path.string());
    }
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec(db,
         "CREATE TABLE rows (key TEXT NOT NULL PRIMARY KEY, flag INTEGER NOT NULL, "
         "generation INTEGER NOT NULL, payload TEXT NOT NULL) STRICT");
    exec(db, "CREATE TABLE position (id INTEGER PRIMARY KEY, token TEXT NOT NULL) STRICT");
    exec(db, "INSERT INTO position VALUES (1, 's0')");
    sqlite3_stmt* upsert = nullptr;
    sqlite3_stmt* position = nullptr;
    check(
        sqlite3_prepare_v2(db,
                           "INSERT INTO rows (key, flag, generation, payload) VALUES (?, 1, ?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET flag = 1, generation = "
                           "excluded.generation, payload = excluded.payload",
                           -1, &upsert, nullptr),
        db, "prepare upsert");
    check(sqlite3_prepare_v2(db, "UPDATE position SET token = ? WHERE id = 1", -1, &position,
                             nullptr),
          db, "prepare position");
    std::vector<std::string> keys;
    keys.reserve(rows);
    for (std::size_t i = 0; i < rows; ++i)
        keys.push_back(bench_user_id(i));
    const std::string payload(payload_bytes, 'x');

    auto start = clock_type::now();
    exec(db, "BEGIN IMMEDIATE");
    for (std::size_t i = 0; i < rows; ++i) {
        sqlite3_bind_text(upsert, 1, keys[i].data(), static_cast<int>(keys[i].size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(upsert, 2, static_cast<sqlite3_int64>(i + 1));
        sqlite3_bind_text(upsert, 3, payload.data(), static_cast<int>(payload.size()),
                          SQLITE_STATIC);
        check(sqlite3_step(upsert), db, "upsert");
        sqlite3_reset(upsert);
    }
    sqlite3_bind_text(position, 1, "s1_next", -1, SQLITE_STATIC);
    check(sqlite3_step(position), db, "position");
    sqlite3_reset(position);
    exec(db, "COMMIT");
    const double seconds = seconds_since(start);

    sqlite3_finalize(upsert);
    sqlite3_finalize(position);
    sqlite3_close(db);
    std::filesystem::remove(path);
    std::filesystem::remove(path.string() + "-wal");
    std::filesystem::remove(path.string() + "-shm");
    return seconds;
}

double raw_one_time_keys(std::size_t count) {
    auto device = crypto::ed25519_key_pair::generate();
    std::size_t sink = 0;
    auto start = clock_type::now();
    for (std::size_t i = 0; i < count; ++i) {
        auto pair = crypto::curve25519_key_pair::generate();
        json::value key;
        key["key"] = pair.public_key().to_base64();
        auto signature = device.sign(std::string_view(json::to_canonical(key)));
        sink += signature.to_base64().size();
    }
    const double seconds = seconds_since(start);
    if (sink == 0) throw std::runtime_error("raw one-time keys: nothing signed");
    return seconds;
}

asio::awaitable<void> echo_server(asio::local::stream_protocol::acceptor* acceptor,
                                  std::string body) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    for (;;) {
        auto [error, socket] = co_await acceptor->async_accept(tuple);
        if (error) co_return;  // the acceptor was closed
        asio::co_spawn(acceptor->get_executor(), echo_connection(std::move(socket), body),
                       [](std::exception_ptr e) {
                           if (e) std::rethrow_exception(e);
                       });
    }
}

}  // namespace devlist::bench
