#include "tests/homeserver/http_server.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <cstdio>
#include <exception>
#include <map>
#include <set>
#include <tuple>

namespace devlist::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using error_code = boost::system::error_code;

asio::awaitable<bool> cancelled() {
    auto state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

// A coroutine's end is reported here, so that no exception vanishes; cancellation is the
// normal way for connections to end when the server stops.
void report_exit(std::exception_ptr failure, const char* what) {
    if (!failure) return;
    try {
        std::rethrow_exception(failure);
    } catch (const boost::system::system_error& e) {
        if (e.code() != asio::error::operation_aborted) {
            std::fprintf(stderr, "test homeserver: %s failed: %s\n", what, e.what());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "test homeserver: %s failed: %s\n", what, e.what());
    }
}

// One stream type for plain and TLS connections, so that Beast's HTTP algorithms and the
// connection coroutines are compiled once rather than once per transport (the approach of
// Asio's type_erasure example). A read or write moves one buffer at a time, which the stream
// concepts allow: composed operations loop until done. Writes gather up to 64 KiB of a buffer
// sequence first, so that a response header made of many small buffers leaves in one segment.
class byte_stream {
  public:
    using executor_type = asio::any_io_executor;
    using io_handler = asio::any_completion_handler<void(error_code, std::size_t)>;
    using done_handler = asio::any_completion_handler<void(error_code)>;

    virtual ~byte_stream() = default;
    virtual executor_type get_executor() = 0;
    virtual void expires_after(std::chrono::seconds timeout) = 0;
    virtual void expires_never() = 0;
    virtual void close() = 0;  // abruptly: no TLS close_notify, no FIN handshake awaited
    virtual bool is_open() = 0;

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        asio::mutable_buffer first;
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers) && first.size() == 0; ++it) {
            first = *it;
        }
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this](io_handler handler, asio::mutable_buffer buffer) {
                start_read_some(buffer, std::move(handler));
            },
            token, first);
    }
    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        constexpr std::size_t gather_limit = std::size_t{64} * 1024;
        gathered_.clear();
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers) && gathered_.size() < gather_limit; ++it) {
            const asio::const_buffer buffer = *it;
            const std::size_t n = std::min(buffer.size(), gather_limit - gathered_.size());
            gathered_.append(static_cast<const char*>(buffer.data()), n);
        }
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this](io_handler handler) {
                start_write_some(asio::buffer(gathered_), std::move(handler));
            },
            token);
    }
    // TLS handshake and close_notify; plain TCP has no handshake and half-closes.
    template <class Token>
    auto async_handshake(Token&& token) {
        return asio::async_initiate<Token, void(error_code)>(
            [this](done_handler handler) { start_handshake(std::move(handler)); }, token);
    }
    template <class Token>
    auto async_shutdown(Token&& token) {
        return asio::async_initiate<Token, void(error_code)>(
            [this](done_handler handler) { start_shutdown(std::move(handler)); }, token);
    }

  private:
    virtual void start_read_some(asio::mutable_buffer buffer, io_handler handler) = 0;
    virtual void start_write_some(asio::const_buffer buffer, io_handler handler) = 0;
    virtual void start_handshake(done_handler handler) = 0;
    virtual void start_shutdown(done_handler handler) = 0;

    std::string gathered_;  // the bytes of the one write in flight
};

template <class Stream>
class erased_stream final : public byte_stream {
  public:
    template <class... Args>
    explicit erased_stream(Args&&... args) : stream_(std::forward<Args>(args)...) {}

    executor_type get_executor() override { return stream_.get_executor(); }
    void expires_after(std::chrono::seconds timeout) override {
        beast::get_lowest_layer(stream_).expires_after(timeout);
    }
    void expires_never() override { beast::get_lowest_layer(stream_).expires_never(); }
    void close() override { beast::get_lowest_layer(stream_).close(); }
    bool is_open() override { return beast::get_lowest_layer(stream_).socket().is_open(); }

  private:
    static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

    // Asio 1.81's any_completion_executor cannot be `require`d to never block, which Beast
    // needs when it posts a completion; every handler is therefore bound to the stream's own
    // executor (the one thread of the server, where the coroutine runs anyway).
    template <class Handler>
    auto on_stream_executor(Handler handler) {
        return asio::bind_executor(stream_.get_executor(), std::move(handler));
    }

    void start_read_some(asio::mutable_buffer buffer, io_handler handler) override {
        stream_.async_read_some(buffer, on_stream_executor(std::move(handler)));
    }
    void start_write_some(asio::const_buffer buffer, io_handler handler) override {
        stream_.async_write_some(buffer, on_stream_executor(std::move(handler)));
    }
    void start_handshake(done_handler handler) override {
        if constexpr (is_tls) {
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    on_stream_executor(std::move(handler)));
        } else {
            asio::post(on_stream_executor(asio::append(std::move(handler), error_code{})));
        }
    }
    void start_shutdown(done_handler handler) override {
        if constexpr (is_tls) {
            stream_.async_shutdown(on_stream_executor(std::move(handler)));
        } else {
            error_code ec;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
            asio::post(on_stream_executor(asio::append(std::move(handler), ec)));
        }
    }

    Stream stream_;
};

http_request to_request(http::request<http::string_body>&& message) {
    return {.method = std::string(message.method_string()),
            .target = std::string(message.target()),
            .authorization = std::string(message[http::field::authorization]),
            .body = std::move(message.body()),
            .received = std::chrono::steady_clock::now()};
}

// The wire form of a response whose Content-Length promises more than follows it.
std::string truncated_head(const reply::answer& full, std::size_t announced_length) {
    const auto status = http::int_to_status(full.status);
    std::string head = "HTTP/1.1 " + std::to_string(full.status) + " " +
                       std::string(http::obsolete_reason(status)) + "\r\n";
    head += "Content-Type: " + full.content_type + "\r\n";
    for (const auto& [name, value] : full.extra_headers) {
        head += name + ": " + value + "\r\n";
    }
    head += "Content-Length: " + std::to_string(announced_length) + "\r\n\r\n";
    return head;
}

}  // namespace

struct http_server::impl {
    asio::io_context& io;
    http_handler& handler;
    http_server_limits limits;
    tcp::acceptor acceptor{io};
    std::optional<asio::ssl::context> tls;
    asio::cancellation_signal stop_accepting;
    struct connection {
        asio::cancellation_signal cancel;
        bool finished = false;  // no cancellation may be emitted once the coroutine is done
    };
    std::map<std::uint64_t, std::unique_ptr<connection>> connections;
    std::uint64_t next_connection_id = 0;
    std::set<asio::steady_timer*> long_polls;

    impl(asio::io_context& context, http_handler& h, http_server_limits l)
        : io(context), handler(h), limits(l) {}

    asio::awaitable<void> accept_connections();
    void spawn_connection(tcp::socket socket);
    asio::awaitable<void> run_connection(tcp::socket socket);
    asio::awaitable<void> serve(byte_stream& stream);
    asio::awaitable<bool> respond(byte_stream& stream, http_request request, bool keep_alive);
    asio::awaitable<bool> write_answer(byte_stream& stream, const reply::answer& answer,
                                       bool keep_alive);
    asio::awaitable<void> write_truncated(byte_stream& stream, const reply::answer& full);
    asio::awaitable<void> read_until_closed(byte_stream& stream);
    asio::awaitable<void> wait_for_change(time_point deadline);
};

asio::awaitable<void> http_server::impl::accept_connections() {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) continue;  // e.g. the peer gave up before accept, or out of descriptors
        socket.set_option(tcp::no_delay(true), ec);  // small answers, no Nagle delay
        spawn_connection(std::move(socket));
    }
}

void http_server::impl::spawn_connection(tcp::socket socket) {
    const std::uint64_t id = next_connection_id++;
    connection& c = *connections.emplace(id, std::make_unique<connection>()).first->second;
    asio::co_spawn(io, run_connection(std::move(socket)),
                   asio::bind_cancellation_slot(c.cancel.slot(), [this, id](std::exception_ptr e) {
                       report_exit(e, "connection");
                       connections.at(id)->finished = true;
                       // Not erased here: the signal's slot still holds co_spawn's handler.
                       asio::post(io, [this, id] { connections.erase(id); });
                   }));
}

asio::awaitable<void> http_server::impl::run_connection(tcp::socket socket) {
    std::unique_ptr<byte_stream> stream;
    if (tls) {
        stream = std::make_unique<erased_stream<beast::ssl_stream<beast::tcp_stream>>>(
            std::move(socket), *tls);
    } else {
        stream = std::make_unique<erased_stream<beast::tcp_stream>>(std::move(socket));
    }
    stream->expires_after(limits.write_timeout);
    auto [handshake_error] = co_await stream->async_handshake(use_tuple);
    if (handshake_error) co_return;  // e.g. a client that refused our certificate
    co_await serve(*stream);
    if (!stream->is_open()) co_return;
    stream->expires_after(limits.write_timeout);
    co_await stream->async_shutdown(use_tuple);
}

asio::awaitable<void> http_server::impl::serve(byte_stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(limits.max_request_body_bytes);
        stream.expires_after(limits.idle_timeout);
        error_code ec;
        std::size_t bytes = 0;
        std::tie(ec, bytes) = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        // curl, among others, waits for this before it sends a larger body.
        if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
            static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
            std::tie(ec, bytes) =
                co_await asio::async_write(stream, asio::buffer(go_on), use_tuple);
        }
        if (!ec) std::tie(ec, bytes) = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec == http::error::body_limit) {
            const reply::answer too_large{
                .status = 413,
                .body = R"({"errcode":"M_TOO_LARGE","error":"Request body too large"})"};
            http_request request{.method = std::string(parser.get().method_string()),
                                 .target = std::string(parser.get().target()),
                                 .received = std::chrono::steady_clock::now()};
            handler.record(request, too_large.status, too_large.body);
            co_await write_answer(stream, too_large, false);
            co_return;
        }
        if (ec) co_return;  // closed by the client, idle too long, cancelled, or not HTTP
        const bool keep_alive = parser.get().keep_alive();
        const bool can_go_on = co_await respond(stream, to_request(parser.release()), keep_alive);
        if (!can_go_on || !keep_alive) co_return;
    }
}

// Returns whether the connection can carry another request.
asio::awaitable<bool> http_server::impl::respond(byte_stream& stream, http_request request,
                                                 bool keep_alive) {
    http_reply next = handler.handle(request, true);
    for (;;) {
        if (const auto* delay = std::get_if<reply::delay>(&next)) {
            asio::steady_timer timer(io, delay->until);
            co_await timer.async_wait(use_tuple);
        } else if (const auto* poll = std::get_if<reply::wait_for_change>(&next)) {
            co_await wait_for_change(poll->deadline);
        } else {
            break;
        }
        if (co_await cancelled()) {
            handler.record(request, 0, {});
            co_return false;
        }
        next = handler.handle(request, false);
    }

    if (const auto* answer = std::get_if<reply::answer>(&next)) {
        handler.record(request, answer->status, answer->body);
        co_return co_await write_answer(stream, *answer, keep_alive);
    }
    if (const auto* truncated = std::get_if<reply::truncated>(&next)) {
        handler.record(request, truncated->full.status, truncated->full.body);
        co_await write_truncated(stream, truncated->full);
        co_return false;
    }
    handler.record(request, 0, {});
    if (std::holds_alternative<reply::hang>(next)) co_await read_until_closed(stream);
    stream.close();  // reply::drop, or the end of a hang
    co_return false;
}

asio::awaitable<bool> http_server::impl::write_answer(byte_stream& stream,
                                                      const reply::answer& answer,
                                                      bool keep_alive) {
    http::response<http::string_body> response;
    response.version(11);
    response.result(answer.status);
    response.set(http::field::server, "devlist-test-homeserver");
    response.set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.extra_headers) {
        response.set(name, value);
    }
    response.keep_alive(keep_alive);
    response.body() = answer.body;
    response.prepare_payload();
    stream.expires_after(limits.write_timeout);
    auto [ec, ignored] = co_await http::async_write(stream, response, use_tuple);
    co_return !ec;
}

asio::awaitable<void> http_server::impl::write_truncated(byte_stream& stream,
                                                         const reply::answer& full) {
    // At least one byte short, so that even an empty body is announced but not delivered.
    const std::size_t announced = std::max<std::size_t>(full.body.size(), 1);
    const std::string head = truncated_head(full, announced);
    const std::string_view sent = std::string_view(full.body).substr(0, full.body.size() / 2);
    stream.expires_after(limits.write_timeout);
    const std::array buffers{asio::buffer(head), asio::buffer(sent)};
    co_await asio::async_write(stream, buffers, use_tuple);
    stream.close();
}

asio::awaitable<void> http_server::impl::read_until_closed(byte_stream& stream) {
    stream.expires_never();
    std::array<char, 512> discarded{};
    for (;;) {
        auto [ec, ignored] = co_await stream.async_read_some(asio::buffer(discarded), use_tuple);
        if (ec) co_return;
    }
}

asio::awaitable<void> http_server::impl::wait_for_change(time_point deadline) {
    asio::steady_timer timer(io, deadline);
    // Unregisters on every way out, including an exception thrown at a cancelled co_await.
    struct registration {
        std::set<asio::steady_timer*>& set;
        asio::steady_timer* timer;
        ~registration() { set.erase(timer); }
    } registered{long_polls, &timer};
    long_polls.insert(&timer);
    co_await timer.async_wait(use_tuple);
}

http_server::http_server(asio::io_context& io, http_handler& handler, http_server_limits limits)
    : impl_(std::make_unique<impl>(io, handler, limits)) {}

http_server::~http_server() = default;

result<std::uint16_t> http_server::listen(const std::string& address, std::uint16_t port,
                                          const std::optional<tls_files>& tls) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) return error(errc::invalid_argument, "bind address '" + address + "' is not an IP");
    if (tls) {
        asio::ssl::context context(asio::ssl::context::tls_server);
        context.use_certificate_chain_file(tls->certificate_chain.string(), ec);
        if (ec) return error(ec, "TLS certificate " + tls->certificate_chain.string());
        context.use_private_key_file(tls->private_key.string(), asio::ssl::context::pem, ec);
        if (ec) return error(ec, "TLS private key " + tls->private_key.string());
        impl_->tls.emplace(std::move(context));
    }
    const tcp::endpoint endpoint(ip, port);
    auto& acceptor = impl_->acceptor;
    const std::string where = address + ":" + std::to_string(port);
    if (acceptor.open(endpoint.protocol(), ec); ec) return error(ec, "socket for " + where);
    if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
        return error(ec, "SO_REUSEADDR on " + where);
    }
    if (acceptor.bind(endpoint, ec); ec) return error(ec, "binding " + where);
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
        return error(ec, "listening on " + where);
    }
    return acceptor.local_endpoint().port();
}

void http_server::start() {
    asio::co_spawn(
        impl_->io, impl_->accept_connections(),
        asio::bind_cancellation_slot(impl_->stop_accepting.slot(),
                                     [](std::exception_ptr e) { report_exit(e, "accept loop"); }));
}

void http_server::stop() {
    impl_->stop_accepting.emit(asio::cancellation_type::terminal);
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto& [id, c] : impl_->connections) {
        if (!c->finished) c->cancel.emit(asio::cancellation_type::terminal);
    }
}

void http_server::wake_long_polls() {
    for (auto* timer : impl_->long_polls) {
        timer->cancel();
    }
}

}  // namespace devlist::testing
