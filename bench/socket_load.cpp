// Load on devlistd's socket API: N clients at once, each sending M requests on one kept-alive
// connection, one at a time; prints requests per second and latency percentiles. The clients
// share one thread, as the daemon's requests do.
//
//   devlist_socket_load --socket /run/devlistd/devlistd.sock --clients 200 --requests 50
//                       --target /v1/status
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using clock_type = std::chrono::steady_clock;

struct client_stats {
    std::vector<double> latencies_ms;
    std::size_t failures = 0;
    std::string first_error;
};

asio::awaitable<void> client(std::string path, std::size_t requests, std::string target,
                             client_stats* stats) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    local::socket socket(co_await asio::this_coro::executor);
    auto [connect_error] = co_await socket.async_connect(local::endpoint(path), tuple);
    if (connect_error) {
        stats->failures += requests;
        stats->first_error = "connect: " + connect_error.message();
        co_return;
    }
    beast::flat_buffer buffer;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "devlistd");
    for (std::size_t i = 0; i < requests; ++i) {
        auto started = clock_type::now();
        auto [write_error, written] = co_await http::async_write(socket, req, tuple);
        http::response<http::string_body> res;
        auto [read_error, read] = co_await http::async_read(socket, buffer, res, tuple);
        if (write_error || read_error || res.result_int() >= 300) {
            stats->failures += requests - i;
            stats->first_error = write_error  ? write_error.message()
                                 : read_error ? read_error.message()
                                              : "HTTP " + std::to_string(res.result_int());
            co_return;
        }
        stats->latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(clock_type::now() - started).count());
    }
}

int usage() {
    std::fputs(
        "usage: devlist_socket_load --socket PATH [--clients N] [--requests M] [--target PATH]\n",
        stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket;
    std::string target = "/v1/status";
    std::size_t clients = 200;
    std::size_t requests = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view name = argv[i];
        std::string value = argv[i + 1];
        if (name == "--socket") {
            socket = value;
        } else if (name == "--target") {
            target = value;
        } else if (name == "--clients") {
            clients = std::strtoul(value.c_str(), nullptr, 10);
        } else if (name == "--requests") {
            requests = std::strtoul(value.c_str(), nullptr, 10);
        } else {
            return usage();
        }
    }
    if (socket.empty() || clients == 0 || requests == 0 || argc % 2 == 0) return usage();

    asio::io_context io(1);
    std::vector<client_stats> stats(clients);
    bool crashed = false;
    for (auto& s : stats) {
        asio::co_spawn(io, client(socket, requests, target, &s),
                       [&crashed](std::exception_ptr e) { crashed = crashed || e != nullptr; });
    }
    auto started = clock_type::now();
    io.run();
    double seconds = std::chrono::duration<double>(clock_type::now() - started).count();

    std::vector<double> all;
    std::size_t failures = 0;
    std::string first_error;
    for (const auto& s : stats) {
        all.insert(all.end(), s.latencies_ms.begin(), s.latencies_ms.end());
        failures += s.failures;
        if (first_error.empty()) first_error = s.first_error;
    }
    if (all.empty() || crashed) {
        std::fprintf(stderr, "devlist_socket_load: no request succeeded (%s)\n",
                     first_error.c_str());
        return 1;
    }
    std::sort(all.begin(), all.end());
    auto at = [&](double q) {
        return all[static_cast<std::size_t>(q * static_cast<double>(all.size() - 1))];
    };
    std::printf(
        "%zu clients x %zu requests of %s: %zu ok, %zu failed in %.2f s = %.0f requests/s\n"
        "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
        clients, requests, target.c_str(), all.size(), failures, seconds,
        static_cast<double>(all.size()) / seconds, at(0.5), at(0.9), at(0.99), all.back());
    if (failures) std::printf("first error: %s\n", first_error.c_str());
    return failures ? 1 : 0;
}
