#include "bench/socket_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace devlist::bench {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;
using clock_type = std::chrono::steady_clock;

std::string request_text(const lookup_request& r) {
    return "GET " + r.target + " HTTP/1.1\r\nHost: devlistd\r\n\r\n";
}

// Records a failed answer; false when the answer is as expected.
bool failed(const http::response<http::string_body>& res, const lookup_request& r,
            latency_stats* stats) {
    if (res.result_int() == 200 && res.body().find(r.expect) != std::string::npos) return false;
    ++stats->failures;
    if (stats->first_error.empty()) {
        stats->first_error = r.target + ": HTTP " + std::to_string(res.result_int()) + " " +
                             res.body().substr(0, 200);
    }
    return true;
}

double micros_since(clock_type::time_point t) {
    return std::chrono::duration<double, std::micro>(clock_type::now() - t).count();
}

}  // namespace

double latency_stats::quantile(double q) const {
    if (micros.empty()) return 0;
    std::vector<double> sorted = micros;
    std::sort(sorted.begin(), sorted.end());
    auto index = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    index = std::min(index == 0 ? 0 : index - 1, sorted.size() - 1);
    return sorted[index];
}

asio::awaitable<void> sequential_lookups(std::string socket_path,
                                         const std::vector<lookup_request>* requests,
                                         run_control control, latency_stats* stats) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    local::socket socket(co_await asio::this_coro::executor);
    auto [connect_error] = co_await socket.async_connect(local::endpoint(socket_path), tuple);
    if (connect_error) {
        ++stats->failures;
        stats->first_error = "connect: " + connect_error.message();
        co_return;
    }
    std::vector<std::string> texts;
    texts.reserve(requests->size());
    for (const auto& r : *requests)
        texts.push_back(request_text(r));
    boost::beast::flat_buffer buffer;
    const auto started = clock_type::now();
    for (std::size_t i = 0;; ++i) {
        if (control.stop_flag ? (i >= control.count && control.stop_flag->load())
                              : i >= control.count) {
            break;
        }
        const auto& r = (*requests)[i % requests->size()];
        const auto sent = clock_type::now();
        auto [write_error, written] =
            co_await asio::async_write(socket, asio::buffer(texts[i % texts.size()]), tuple);
        http::response<http::string_body> res;
        auto [read_error, read] = co_await http::async_read(socket, buffer, res, tuple);
        if (write_error || read_error) {
            ++stats->failures;
            stats->first_error = (write_error ? write_error : read_error).message();
            break;
        }
        if (!failed(res, r, stats)) stats->micros.push_back(micros_since(sent));
    }
    stats->seconds = std::chrono::duration<double>(clock_type::now() - started).count();
}

asio::awaitable<void> pipelined_lookups(std::string socket_path,
                                        const std::vector<lookup_request>* requests,
                                        std::size_t count, std::size_t depth,
                                        latency_stats* stats) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    local::socket socket(co_await asio::this_coro::executor);
    auto [connect_error] = co_await socket.async_connect(local::endpoint(socket_path), tuple);
    if (connect_error) {
        ++stats->failures;
        stats->first_error = "connect: " + connect_error.message();
        co_return;
    }
    boost::beast::flat_buffer buffer;
    std::string batch;
    const auto started = clock_type::now();
    for (std::size_t done = 0; done < count;) {
        const std::size_t n = std::min(depth, count - done);
        batch.clear();
        for (std::size_t k = 0; k < n; ++k)
            batch += request_text((*requests)[(done + k) % requests->size()]);
        const auto sent = clock_type::now();
        auto [write_error, written] =
            co_await asio::async_write(socket, asio::buffer(batch), tuple);
        if (write_error) {
            ++stats->failures;
            stats->first_error = write_error.message();
            break;
        }
        for (std::size_t k = 0; k < n; ++k) {
            http::response<http::string_body> res;
            auto [read_error, read] = co_await http::async_read(socket, buffer, res, tuple);
            if (read_error) {
                stats->failures += n - k;
                stats->first_error = read_error.message();
                stats->seconds = std::chrono::duration<double>(clock_type::now() - started).count();
                co_return;
            }
            if (!failed(res, (*requests)[(done + k) % requests->size()], stats)) {
                stats->micros.push_back(micros_since(sent));
            }
        }
        done += n;
    }
    stats->seconds = std::chrono::duration<double>(clock_type::now() - started).count();
}

}  // namespace devlist::bench
