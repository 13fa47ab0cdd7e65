#include "daemon/socket_server.hpp"

#include <poll.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <list>
#include <string>
#include <variant>

namespace devlist::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using stream_type = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_cancellation(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& s) {
        return s.code() == asio::error::operation_aborted;
    } catch (...) {
        return false;
    }
}

// What a request that could not be read gets: nothing when the client went away or was idle,
// else the status and message for it.
struct read_failure {
    unsigned status = 0;  // 0: close without an answer
    std::string_view errcode;
    std::string message;
};

read_failure classify(const boost::system::error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == http::error::partial_message) {
        return {};
    }
    // A timed-out basic_stream is closed already: there is nobody left to answer.
    if (ec == beast::error::timeout) return {};
    if (ec == http::error::header_limit) {
        return {431, "M_TOO_LARGE", "the request header is too large"};
    }
    if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
        return {413, "M_TOO_LARGE", "the request body is too large"};
    }
    if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
        return {400, "M_UNRECOGNIZED", "malformed HTTP request: " + ec.message()};
    }
    return {};
}

}  // namespace

class socket_server::impl {
  public:
    impl(asio::any_io_executor executor, socket_api& api, socket_server_limits limits,
         sync::log_function log)
        : executor_(std::move(executor)),
          api_(api),
          limits_(limits),
          log_(std::move(log)),
          acceptor_(executor_),
          drained_(executor_) {}

    ~impl() {
        // run() removes the file on the normal way out; this covers a server never run.
        if (bound_) remove_socket_file(*bound_);
    }

    result<void> bind(const socket_file_options& options) {
        auto bound = bind_socket_file(options);
        if (!bound) return bound.error();
        boost::system::error_code ec;
        acceptor_.assign(local(), bound->fd, ec);
        if (ec) {
            ::close(bound->fd);
            remove_socket_file(*bound);
            return error{errc::io_error,
                         "cannot use the socket " + options.path.string() + ": " + ec.message()};
        }
        bound_ = std::move(*bound);
        return {};
    }

    result<void> adopt(int fd) {
        if (auto r = check_listening_unix_socket(fd); !r) return r.error();
        boost::system::error_code ec;
        acceptor_.assign(local(), fd, ec);
        if (ec) {
            return error{errc::io_error, "cannot use the socket handed over (fd " +
                                             std::to_string(fd) + "): " + ec.message()};
        }
        return {};
    }

    std::optional<std::filesystem::path> path() const {
        if (!bound_) return std::nullopt;
        return bound_->path;
    }
    std::size_t connection_count() const noexcept { return connections_.size(); }

    asio::awaitable<void> run();

  private:
    struct connection {
        asio::cancellation_signal stop;
    };

    asio::awaitable<void> serve(local::socket socket, peer_credentials peer);
    asio::awaitable<void> watch_peer(stream_type& stream);
    asio::awaitable<void> answer(stream_type& stream, const api_response& response,
                                 unsigned version, bool keep_alive);
    void start(local::socket socket, peer_credentials peer);
    void finished(std::list<connection>::iterator it, std::exception_ptr e);

    template <class... Parts>
    void log(sync::log_level level, const Parts&... parts) const {
        if (!log_) return;
        std::string line = "socket API: ";
        (line.append(parts), ...);
        log_(level, line);
    }

    asio::any_io_executor executor_;
    socket_api& api_;
    socket_server_limits limits_;
    sync::log_function log_;
    local::acceptor acceptor_;
    std::optional<bound_socket> bound_;
    std::list<connection> connections_;
    bool draining_ = false;
    bool at_limit_logged_ = false;
    asio::steady_timer drained_;  // cancelled when the last connection is gone
};

asio::awaitable<void> socket_server::impl::run() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted) break;
        if (ec) {
            // Usually EMFILE: wait a little instead of spinning on a failing accept.
            log(sync::log_level::warning, "accept failed: ", ec.message());
            asio::steady_timer pause(executor_, std::chrono::milliseconds(100));
            auto [wait_ec] = co_await pause.async_wait(use_tuple);
            if (wait_ec == asio::error::operation_aborted) break;
            continue;
        }
        if (connections_.size() >= limits_.max_connections) {
            if (!at_limit_logged_) {
                log(sync::log_level::warning, "too many connections (",
                    std::to_string(limits_.max_connections), "); closing new ones");
                at_limit_logged_ = true;
            }
            continue;  // the socket closes as it goes out of scope
        }
        at_limit_logged_ = false;
        auto peer = read_peer_credentials(socket.native_handle());
        if (!peer) {
            log(sync::log_level::warning, "closing a connection: ", peer.error().message());
            continue;
        }
        start(std::move(socket), std::move(*peer));
    }

    // Stopping: the cancellation that ended the loop would also end the waits below at once.
    co_await asio::this_coro::reset_cancellation_state();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    if (bound_) {
        remove_socket_file(*bound_);
        bound_.reset();
    }
    draining_ = true;
    for (auto& c : connections_)
        c.stop.emit(asio::cancellation_type::terminal);
    while (!connections_.empty()) {
        drained_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await drained_.async_wait(use_tuple);
    }
    draining_ = false;
}

void socket_server::impl::start(local::socket socket, peer_credentials peer) {
    auto it = connections_.emplace(connections_.end());
    asio::co_spawn(executor_, serve(std::move(socket), std::move(peer)),
                   asio::bind_cancellation_slot(
                       it->stop.slot(), [this, it](std::exception_ptr e) { finished(it, e); }));
}

void socket_server::impl::finished(std::list<connection>::iterator it, std::exception_ptr e) {
    if (e && !is_cancellation(e)) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log(sync::log_level::error, "a connection failed: ", ex.what());
        }
    }
    // The entry holds the cancellation slot that co_spawn is still using while it calls this
    // handler; it goes once co_spawn is done with it.
    asio::post(executor_, [this, it] {
        connections_.erase(it);
        if (draining_ && connections_.empty()) drained_.cancel();
    });
}

// Returns when the peer closed its end entirely, so that a waiting request ends with it.
// Readable data (a pipelined request) or a half-close (the peer still reads) is not that: the
// request goes on, and this waits until cancelled.
asio::awaitable<void> socket_server::impl::watch_peer(stream_type& stream) {
    auto& socket = stream.socket();
    auto [ec] = co_await socket.async_wait(local::socket::wait_read, use_tuple);
    if (!ec) {
        pollfd p{socket.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0) co_return;
    } else if (ec == asio::error::operation_aborted) {
        co_return;
    }
    asio::steady_timer forever(executor_, std::chrono::steady_clock::time_point::max());
    co_await forever.async_wait(use_tuple);
}

asio::awaitable<void> socket_server::impl::answer(stream_type& stream, const api_response& response,
                                                  unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    res.set(http::field::server, "devlistd");
    res.set(http::field::content_type, response.content_type);
    if (!response.allow.empty()) res.set(http::field::allow, response.allow);
    res.keep_alive(keep_alive);
    res.body() = response.body;
    res.prepare_payload();
    stream.expires_after(limits_.write_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (ec) throw boost::system::system_error(ec);
}

asio::awaitable<void> socket_server::impl::serve(local::socket socket, peer_credentials peer) {
    using namespace asio::experimental::awaitable_operators;
    stream_type stream(std::move(socket));
    // Room for one whole request and the start of a pipelined one.
    beast::flat_buffer buffer(limits_.max_header_bytes + limits_.max_body_bytes + 4096);
    try {
        for (;;) {
            if (buffer.size() == 0) {
                // Idle between requests: the idle timeout, not the request timeout, applies
                // until a request starts.
                stream.expires_after(limits_.idle_timeout);
                auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024), use_tuple);
                if (ec) co_return;
                buffer.commit(n);
            }
            stream.expires_after(limits_.request_timeout);
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
            parser.body_limit(limits_.max_body_bytes);
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
            boost::system::error_code ec = hec;
            if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue") &&
                !parser.is_done()) {
                // curl asks before sending a larger body; answering saves it a second's wait.
                static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
                auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(go_on), use_tuple);
                if (wec) co_return;
            }
            if (!ec) {
                auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
                ec = rec;
            }
            if (ec) {
                auto failure = classify(ec);
                if (failure.status == 0) co_return;
                api_.count_response(failure.status);
                // The rest of the stream cannot be trusted to start a request: answer, close.
                co_await answer(
                    stream,
                    socket_api::error_response(failure.status, failure.errcode, failure.message),
                    11, false);
                stream.socket().shutdown(local::socket::shutdown_send, ec);
                co_return;
            }

            auto& req = parser.get();
            const unsigned version = req.version();
            const bool keep_alive = req.keep_alive();
            api_request request{std::string(req.method_string()), std::string(req.target()),
                                std::move(req.body()), peer};
            stream.expires_never();
            auto outcome = co_await (api_.handle(std::move(request)) || watch_peer(stream));
            if (outcome.index() == 1) co_return;  // the peer is gone; nobody to answer
            co_await answer(stream, std::get<0>(outcome), version, keep_alive);
            if (!keep_alive) {
                stream.socket().shutdown(local::socket::shutdown_send, ec);
                co_return;
            }
        }
    } catch (const boost::system::system_error& e) {
        // A failed or timed-out write: the client is gone or does not read.
        if (e.code() == asio::error::operation_aborted) throw;
    }
}

socket_server::socket_server(asio::any_io_executor executor, socket_api& api,
                             socket_server_limits limits, sync::log_function log)
    : impl_(std::make_unique<impl>(std::move(executor), api, limits, std::move(log))) {}

socket_server::~socket_server() = default;

result<void> socket_server::bind(const socket_file_options& options) {
    return impl_->bind(options);
}

result<void> socket_server::adopt(int fd) {
    return impl_->adopt(fd);
}

std::optional<std::filesystem::path> socket_server::path() const {
    return impl_->path();
}

std::size_t socket_server::connection_count() const noexcept {
    return impl_->connection_count();
}

asio::awaitable<void> socket_server::run() {
    return impl_->run();
}

}  // namespace devlist::daemon
