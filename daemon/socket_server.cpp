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
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <list>
#include <string>
#include <variant>

#include "daemon/http_answer.hpp"

namespace devlist::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using clock_type = std::chrono::steady_clock;

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

    // One connection's state, shared by its conversation and its watchdog.
    struct conversation {
        conversation(local::socket s, peer_credentials p, std::size_t max_input)
            : socket(std::move(s)), peer(std::move(p)), input(max_input) {}

        local::socket socket;
        peer_credentials peer;
        beast::flat_buffer input;
        std::string output;  // answers not written yet, in the order of their requests
        // When the peer has taken too long (to start or finish a request, or to take the
        // answers); max while a request is being answered.
        clock_type::time_point deadline = clock_type::time_point::max();
    };

    asio::awaitable<void> serve(local::socket socket, peer_credentials peer);
    asio::awaitable<void> converse(conversation& c);
    asio::awaitable<void> watchdog(conversation& c);
    asio::awaitable<bool> flush(conversation& c);
    asio::awaitable<void> watch_peer(local::socket& socket);
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
asio::awaitable<void> socket_server::impl::watch_peer(local::socket& socket) {
    auto [ec] = co_await socket.async_wait(local::socket::wait_read, use_tuple);
    if (!ec) {
        pollfd p{socket.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0) co_return;
    } else if (ec == asio::error::operation_aborted) {
        co_return;
    }
    asio::steady_timer forever(executor_, clock_type::time_point::max());
    co_await forever.async_wait(use_tuple);
}

// Writes the answers waiting in c.output; false when the peer is gone or too slow to take them.
asio::awaitable<bool> socket_server::impl::flush(conversation& c) {
    c.deadline = clock_type::now() + limits_.write_timeout;
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(c.output), use_tuple);
    c.output.clear();
    co_return !ec;
}

// Ends first (which ends the conversation) once c.deadline has passed. The timer is never set
// further ahead than the shortest limit, and every deadline is at least that far from when it
// is set: so a new deadline never comes before the timer, and setting one, several times a
// request, costs no timer call.
asio::awaitable<void> socket_server::impl::watchdog(conversation& c) {
    const auto step =
        std::max(std::min({limits_.idle_timeout, limits_.request_timeout, limits_.write_timeout}),
                 std::chrono::milliseconds(1));
    asio::steady_timer timer(executor_);
    for (;;) {
        const auto now = clock_type::now();
        if (c.deadline <= now) co_return;
        if (c.deadline - now < step) {
            timer.expires_at(c.deadline);
        } else {
            timer.expires_at(now + step);
        }
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) co_return;  // cancelled: the conversation is over
    }
}

asio::awaitable<void> socket_server::impl::serve(local::socket socket, peer_credentials peer) {
    using namespace asio::experimental::awaitable_operators;
    // Room for one whole request and the start of a pipelined one.
    conversation c(std::move(socket), std::move(peer),
                   limits_.max_header_bytes + limits_.max_body_bytes + 4096);
    // A peer too slow for a limit is closed: nobody is left to answer.
    co_await (converse(c) || watchdog(c));
}

// Reads requests and answers them until the peer goes, a request ends the connection, or the
// watchdog ends it. The requests already in the buffer are parsed and answered before anything
// is written, so pipelined requests get their answers (in order) with one write; before it
// waits for the peer or for a change, the peer gets every answer it is owed.
asio::awaitable<void> socket_server::impl::converse(conversation& c) {
    using namespace asio::experimental::awaitable_operators;
    // Beyond this, answers are written even if more requests are waiting in the buffer.
    constexpr std::size_t output_batch_bytes = 64 * 1024;
    boost::system::error_code ignored;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
        parser.body_limit(limits_.max_body_bytes);
        boost::system::error_code ec;
        bool continue_sent = false;
        for (;;) {
            if (c.input.size() != 0) {
                const auto used = parser.put(c.input.data(), ec);
                c.input.consume(used);
                if (ec == http::error::need_more) {
                    ec = {};
                } else if (ec || parser.is_done()) {
                    break;
                } else if (used != 0) {
                    continue;  // the header is done; its body may be in the buffer too
                }
            }
            if (parser.is_header_done() && !continue_sent &&
                beast::iequals(parser.get()[http::field::expect], "100-continue")) {
                // curl asks before sending a larger body; answering saves it a second's wait.
                c.output += "HTTP/1.1 100 Continue\r\n\r\n";
                continue_sent = true;
            }
            if (!c.output.empty()) {
                const bool written = co_await flush(c);
                if (!written) co_return;
            }
            // Idle between requests: the idle timeout, not the request timeout, applies until
            // a request starts.
            const bool started = parser.got_some() || c.input.size() != 0;
            c.deadline =
                clock_type::now() + (started ? limits_.request_timeout : limits_.idle_timeout);
            // Reads of a few kB take a batch of pipelined requests at once; the buffer grows
            // only as a request needs it.
            const auto room =
                std::min(c.input.max_size() - c.input.size(),
                         std::max<std::size_t>(4096, c.input.capacity() - c.input.size()));
            if (room == 0) {
                ec = http::error::buffer_overflow;
                break;
            }
            auto [read_ec, n] = co_await c.socket.async_read_some(c.input.prepare(room), use_tuple);
            // Gone, reset or cut off mid-request: there is nobody to answer.
            if (read_ec) co_return;
            c.input.commit(n);
        }
        if (ec) {
            auto failure = classify(ec);
            if (failure.status != 0) {
                api_.count_response(failure.status);
                // The rest of the stream cannot be trusted to start a request: answer, close.
                append_http_answer(
                    c.output,
                    socket_api::error_response(failure.status, failure.errcode, failure.message),
                    11, false);
            }
            if (!c.output.empty()) {
                const bool written = co_await flush(c);
                if (written) c.socket.shutdown(local::socket::shutdown_send, ignored);
            }
            co_return;
        }

        auto& req = parser.get();
        const unsigned version = req.version();
        const bool keep_alive = req.keep_alive();
        api_request request{std::string(req.method_string()), std::string(req.target()),
                            std::move(req.body()), c.peer};
        if (auto now = api_.answer_now(request)) {
            append_http_answer(c.output, *now, version, keep_alive);
        } else {
            // A request that may wait: the answers before it are not held back by its wait,
            // and a peer that goes away ends it.
            if (!c.output.empty()) {
                const bool written = co_await flush(c);
                if (!written) co_return;
            }
            c.deadline = clock_type::time_point::max();
            auto outcome = co_await (api_.handle(std::move(request)) || watch_peer(c.socket));
            if (outcome.index() == 1) co_return;  // the peer is gone; nobody to answer
            append_http_answer(c.output, std::get<0>(outcome), version, keep_alive);
        }
        if (!keep_alive) {
            const bool written = co_await flush(c);
            if (written) c.socket.shutdown(local::socket::shutdown_send, ignored);
            co_return;
        }
        if (c.output.size() >= output_batch_bytes) {
            const bool written = co_await flush(c);
            if (!written) co_return;
        }
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
