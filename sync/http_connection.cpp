#include "sync/http_connection.hpp"

#include "sync/http_retry_after.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace devlist::sync::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// simdjson's SIMDJSON_PADDING: spare capacity behind a body lets the parser read it in place.
constexpr std::size_t json_padding = 64;

// A step of a request, as error details name it: what failed ("connect to 127.0.0.1:8448",
// which error::message() completes with the reason), and what was under way when a timeout or
// a cancellation struck ("waiting for the response headers from 127.0.0.1:8448").
struct step {
    const char* failed;
    const char* doing;
};
constexpr step resolve_step{"resolve", "resolving"};
constexpr step connect_step{"connect to", "connecting to"};
constexpr step tls_handshake_step{"TLS handshake with", "in the TLS handshake with"};
constexpr step send_step{"send the request to", "sending the request to"};
constexpr step read_header_step{"read the response headers from",
                                "waiting for the response headers from"};
constexpr step read_body_step{"read the response body from", "reading the response body from"};

error step_error(error_code ec, const step& s, const std::string& peer,
                 std::chrono::milliseconds budget) {
    if (ec == beast::error::timeout) {
        return {ec, "timed out after " + std::to_string(budget.count()) + " ms " + s.doing + " " +
                        peer};
    }
    if (ec == asio::error::operation_aborted) {
        return {ec, std::string("request cancelled while ") + s.doing + " " + peer};
    }
    return {ec, std::string(s.failed) + " " + peer};
}

bool is_timeout_or_cancel(error_code ec) {
    return ec == beast::error::timeout || ec == asio::error::operation_aborted;
}

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// Asio runs getaddrinfo on a helper thread that nothing can interrupt, so a lookup that
// overruns the deadline or is cancelled is abandoned instead: its late completion only touches
// this shared state, and wakes nobody.
struct pending_lookup {
    explicit pending_lookup(const asio::any_io_executor& executor)
        : resolver(executor), done(executor) {}
    tcp::resolver resolver;
    asio::steady_timer done;  // cancelled when the lookup completes
    bool finished = false;
    error_code ec;
    std::vector<tcp::endpoint> endpoints;
};

asio::awaitable<result<std::vector<tcp::endpoint>>> resolve(std::string host, std::uint16_t port,
                                                            request_deadline deadline,
                                                            std::string peer) {
    error_code not_literal;
    const auto address = asio::ip::make_address(host, not_literal);
    if (!not_literal) co_return std::vector<tcp::endpoint>{{address, port}};

    auto lookup = std::make_shared<pending_lookup>(co_await asio::this_coro::executor);
    lookup->done.expires_at(deadline.at);
    lookup->resolver.async_resolve(
        host, std::to_string(port),
        [lookup](error_code ec, const tcp::resolver::results_type& results) {
            lookup->finished = true;
            lookup->ec = ec;
            for (const auto& entry : results) {
                lookup->endpoints.push_back(entry.endpoint());
            }
            lookup->done.cancel();
        });
    auto [wait_ec] = co_await lookup->done.async_wait(use_tuple);
    if (!lookup->finished) {
        // The timer either expired (the deadline) or was cancelled (the request).
        co_return step_error(wait_ec ? wait_ec : error_code{beast::error::timeout}, resolve_step,
                             peer, deadline.budget);
    }
    if (lookup->ec) co_return step_error(lookup->ec, resolve_step, peer, deadline.budget);
    co_return std::move(lookup->endpoints);
}

error openssl_error(std::string detail) {
    const auto code = static_cast<int>(ERR_get_error());
    return {error_code{code, asio::error::get_ssl_category()}, std::move(detail)};
}

// Sets SNI and the identity the certificate must prove. An IP literal gets no SNI (RFC 6066)
// and is matched against the certificate's IP address entries.
result<void> expect_identity(tls_stream& stream, const std::string& host) {
    SSL* ssl = stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_literal(host)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
            return openssl_error("TLS: cannot expect IP address " + host);
        }
        return {};
    }
    // SSL_set_tlsext_host_name() spelled out: the macro's C-style cast trips -Wold-style-cast.
    if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) != 1 ||
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str())) != 1) {
        return openssl_error("TLS: cannot expect host name " + host);
    }
    return {};
}

error handshake_error(tls_stream& stream, error_code ec, const std::string& host,
                      const std::string& peer, std::chrono::milliseconds budget) {
    const long verify_result = SSL_get_verify_result(stream.native_handle());
    if (!is_timeout_or_cancel(ec) && verify_result != X509_V_OK) {
        return {ec, "TLS: certificate verify failed for host " + host + ": " +
                        X509_verify_cert_error_string(verify_result)};
    }
    return step_error(ec, tls_handshake_step, peer, budget);
}

http::verb to_verb(http_method method) {
    switch (method) {
        case http_method::get:
            return http::verb::get;
        case http_method::post:
            return http::verb::post;
        case http_method::put:
            return http::verb::put;
        case http_method::delete_:
            return http::verb::delete_;
    }
    return http::verb::unknown;
}

http::request<http::string_body> make_message(http_request req,
                                              const connection_settings& settings) {
    http::request<http::string_body> message{to_verb(req.method),
                                             settings.base.base_path + req.target, 11};
    message.set(http::field::host, settings.host_header);
    message.set(http::field::user_agent, settings.user_agent);
    message.set(http::field::accept, "application/json");
    if (req.bearer_token) message.set(http::field::authorization, "Bearer " + *req.bearer_token);
    if (!req.body.empty()) message.set(http::field::content_type, req.content_type);
    message.body() = std::move(req.body);
    message.prepare_payload();
    return message;
}

template <class Stream>
class stream_connection final : public http_connection {
  public:
    template <class... StreamArgs>
    explicit stream_connection(const connection_settings* settings, StreamArgs&&... stream_args)
        : settings_(settings), stream_(std::forward<StreamArgs>(stream_args)...) {}

    Stream& stream() { return stream_; }

    asio::awaitable<exchange_result> exchange(http_request req, request_deadline deadline) override;
    bool ready_for_reuse() override;

  private:
    beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }
    error read_error(error_code ec, const step& s, std::chrono::milliseconds budget) const;

    const connection_settings* settings_;
    Stream stream_;
    beast::flat_buffer buffer_;  // read from the socket, not yet parsed
};

template <class Stream>
asio::awaitable<exchange_result> stream_connection<Stream>::exchange(http_request req,
                                                                     request_deadline deadline) {
    exchange_result out;
    const auto message = make_message(std::move(req), *settings_);

    tcp().expires_at(deadline.at);
    auto [send_ec, sent] = co_await http::async_write(stream_, message, use_tuple);
    if (send_ec) {
        out.response = step_error(send_ec, send_step, settings_->peer, deadline.budget);
        out.failed_before_response = !is_timeout_or_cancel(send_ec);
        co_return out;
    }

    http::response_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        settings_->max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(settings_->max_body_bytes);

    tcp().expires_at(deadline.at);
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(stream_, buffer_, parser, use_tuple);
    if (header_ec) {
        out.response = read_error(header_ec, read_header_step, deadline.budget);
        out.failed_before_response =
            !is_timeout_or_cancel(header_ec) && !parser.got_some() && buffer_.size() == 0;
        co_return out;
    }
    // Room for the whole body and the padding now, so that adding the padding never copies it.
    if (const auto length = parser.content_length()) {
        parser.get().body().reserve(static_cast<std::size_t>(*length) + json_padding);
    }

    tcp().expires_at(deadline.at);
    auto [body_ec, body_bytes] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
    if (body_ec) {
        out.response = read_error(body_ec, read_body_step, deadline.budget);
        co_return out;
    }

    auto& received = parser.get();
    http_response response;
    response.status = received.result_int();
    response.body = std::move(received.body());
    response.body.reserve(response.body.size() + json_padding);
    if (const auto it = received.find(http::field::retry_after); it != received.end()) {
        const auto value = it->value();
        response.retry_after = parse_retry_after(std::string_view(value.data(), value.size()),
                                                 std::chrono::system_clock::now());
    }
    // Bytes after the response would be a reply to a request never sent: drop such a server.
    out.reusable = parser.keep_alive() && buffer_.size() == 0;
    out.response = std::move(response);
    co_return out;
}

template <class Stream>
error stream_connection<Stream>::read_error(error_code ec, const step& s,
                                            std::chrono::milliseconds budget) const {
    if (ec == http::error::body_limit) {
        return {ec,
                "response body exceeds " + std::to_string(settings_->max_body_bytes) + " bytes"};
    }
    if (ec == http::error::header_limit) {
        return {ec, "response header exceeds " + std::to_string(settings_->max_header_bytes) +
                        " bytes"};
    }
    return step_error(ec, s, settings_->peer, budget);
}

template <class Stream>
bool stream_connection<Stream>::ready_for_reuse() {
    if (buffer_.size() != 0 || !tcp().socket().is_open()) return false;
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        if (SSL_pending(stream_.native_handle()) > 0) return false;
    }
    // Nothing to read, without blocking, is the only sign of a live idle connection.
    char byte = 0;
    const auto n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

asio::awaitable<result<std::unique_ptr<http_connection>>> open_connection(
    const connection_settings* settings, request_deadline deadline) {
    const auto& peer = settings->peer;
    // Setting up a connection gets the connect timeout, within the request's own budget.
    request_deadline setup = deadline;
    if (const auto by = clock::now() + settings->connect_timeout; by < deadline.at) {
        setup = {by, settings->connect_timeout};
    }

    auto endpoints = co_await resolve(settings->base.host, settings->base.port, setup, peer);
    if (!endpoints) co_return endpoints.error();

    plain_stream tcp_stream(co_await asio::this_coro::executor);
    tcp_stream.expires_at(setup.at);
    auto [connect_ec, endpoint] = co_await tcp_stream.async_connect(*endpoints, use_tuple);
    if (connect_ec) co_return step_error(connect_ec, connect_step, peer, setup.budget);
    // Requests are written in one go; waiting to coalesce them only adds latency. Best effort.
    error_code no_delay_ec;
    tcp_stream.socket().set_option(tcp::no_delay(true), no_delay_ec);

    if (settings->tls == nullptr) {
        co_return std::make_unique<stream_connection<plain_stream>>(settings,
                                                                    std::move(tcp_stream));
    }

    auto connection = std::make_unique<stream_connection<tls_stream>>(
        settings, std::move(tcp_stream), *settings->tls);
    auto& tls = connection->stream();
    if (auto expected = expect_identity(tls, settings->base.host); !expected) {
        co_return expected.error();
    }
    beast::get_lowest_layer(tls).expires_at(setup.at);
    auto [handshake_ec] = co_await tls.async_handshake(tls_stream::client, use_tuple);
    if (handshake_ec) {
        co_return handshake_error(tls, handshake_ec, settings->base.host, peer, setup.budget);
    }
    co_return std::move(connection);
}

}  // namespace devlist::sync::detail
