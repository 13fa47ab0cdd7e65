#include "tests/homeserver/http_test_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace devlist::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using request_type = http::request<http::string_body>;
using response_parser = http::response_parser<http::string_body>;
}  // namespace

struct http_test_client::impl {
    impl(std::uint16_t p, std::optional<tls_client_options> t)
        : port(p), tls_options(std::move(t)) {
        if (tls_options) {
            tls_context.emplace(asio::ssl::context::tls_client);
            tls_context->set_verify_mode(asio::ssl::verify_peer);
            if (tls_options->ca_file.empty()) {
                tls_context->set_default_verify_paths();
            } else {
                tls_context->load_verify_file(tls_options->ca_file.string());
            }
        }
    }

    // Cancels what is in flight; the streams stay until the exchange has unwound.
    void close_sockets() {
        boost::system::error_code ignored;
        if (plain) plain->socket().close(ignored);
        if (tls) tls->next_layer().socket().close(ignored);
    }

    void disconnect() {
        close_sockets();
        plain.reset();
        tls.reset();
        buffer.clear();
    }

    asio::awaitable<http_response> exchange(request_type request);
    template <class Stream>
    asio::awaitable<void> exchange_on(Stream& stream, request_type& request,
                                      response_parser& parser, http_response& response);

    asio::io_context io;
    std::uint16_t port;
    std::optional<tls_client_options> tls_options;
    std::optional<asio::ssl::context> tls_context;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
};

asio::awaitable<http_response> http_test_client::impl::exchange(request_type request) {
    if (!plain && !tls) {
        asio::ip::tcp::socket socket(io);
        const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
        auto [ec] = co_await socket.async_connect(server, use_tuple);
        if (ec) co_return http_response{.error = ec};
        if (tls_options) {
            tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(socket),
                                                                         *tls_context);
            tls->set_verify_callback(asio::ssl::host_name_verification(tls_options->host_name));
            auto [handshake_error] =
                co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
            if (handshake_error) co_return http_response{.error = handshake_error};
        } else {
            plain = std::make_unique<beast::tcp_stream>(std::move(socket));
        }
    }
    http_response response;
    response_parser parser;
    parser.body_limit(std::uint64_t{64} * 1024 * 1024);
    if (plain) {
        co_await exchange_on(*plain, request, parser, response);
    } else {
        co_await exchange_on(*tls, request, parser, response);
    }
    co_return response;
}

template <class Stream>
asio::awaitable<void> http_test_client::impl::exchange_on(Stream& stream, request_type& request,
                                                          response_parser& parser,
                                                          http_response& response) {
    auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
    if (write_error) {
        response.error = write_error;
        co_return;
    }
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (read_error) {
        response.error = read_error;
        co_return;
    }
    auto message = parser.release();
    response.status = message.result_int();
    response.body = std::move(message.body());
    response.retry_after = std::string(message[http::field::retry_after]);
    response.connection_close = !message.keep_alive();
}

http_test_client::http_test_client(std::uint16_t port, std::optional<tls_client_options> tls)
    : impl_(std::make_unique<impl>(port, std::move(tls))) {}
http_test_client::~http_test_client() = default;
http_test_client::http_test_client(http_test_client&&) noexcept = default;
http_test_client& http_test_client::operator=(http_test_client&&) noexcept = default;

http_response http_test_client::get(const std::string& target, const std::string& access_token,
                                    std::chrono::milliseconds timeout) {
    return send("GET", target, {}, access_token, timeout);
}

http_response http_test_client::post(const std::string& target, const json::value& body,
                                     const std::string& access_token,
                                     std::chrono::milliseconds timeout) {
    return send("POST", target, json::to_canonical(body), access_token, timeout);
}

http_response http_test_client::put(const std::string& target, const json::value& body,
                                    const std::string& access_token) {
    return send("PUT", target, json::to_canonical(body), access_token, std::chrono::seconds(10));
}

http_response http_test_client::send(const std::string& method, const std::string& target,
                                     std::string body, const std::string& access_token,
                                     std::chrono::milliseconds timeout) {
    request_type request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!access_token.empty()) request.set(http::field::authorization, "Bearer " + access_token);
    if (!body.empty() || method != "GET") {
        request.set(http::field::content_type, "application/json");
        request.body() = std::move(body);
    }
    request.prepare_payload();

    std::optional<http_response> outcome;
    asio::co_spawn(impl_->io, impl_->exchange(std::move(request)),
                   [&outcome](std::exception_ptr failure, http_response response) {
                       if (failure) response.error = asio::error::fault;
                       outcome = std::move(response);
                   });
    impl_->io.restart();
    impl_->io.run_for(timeout);
    if (!outcome) {  // timed out: close the connection and let the exchange unwind
        impl_->close_sockets();
        impl_->io.restart();
        impl_->io.run();
        outcome->error = asio::error::timed_out;
    }
    if (outcome->error || outcome->connection_close) disconnect();
    return std::move(*outcome);
}

void http_test_client::disconnect() {
    impl_->disconnect();
}

}  // namespace devlist::testing
