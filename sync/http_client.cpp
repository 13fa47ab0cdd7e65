#include "sync/http_client.hpp"

#include "sync/http_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/ssl.h>

#include <exception>
#include <utility>
#include <vector>

namespace devlist::sync {
namespace {

namespace asio = boost::asio;

asio::ssl::context make_tls_context(const http_client_options& options) {
    asio::ssl::context context{asio::ssl::context::tls_client};
    SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
    if (!options.verify_tls) {
        context.set_verify_mode(asio::ssl::verify_none);
        return context;
    }
    context.set_verify_mode(asio::ssl::verify_peer);
    context.set_default_verify_paths();
    if (options.extra_ca_file) {
        boost::system::error_code ec;
        context.load_verify_file(options.extra_ca_file->string(), ec);
        if (ec) {
            throw boost::system::system_error(
                ec, "cannot load CA file " + options.extra_ca_file->string());
        }
    }
    return context;
}

// Header values come from callers; a CR or LF would let one split the request.
bool is_header_safe(std::string_view value) {
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\t') || byte == 0x7f) return false;
    }
    return true;
}

std::optional<error> invalid_request(const http_request& req) {
    if (req.target.empty() || req.target.front() != '/') {
        return error{errc::invalid_argument, "request target must start with '/'"};
    }
    for (const char c : req.target) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f) {
            return error{errc::invalid_argument,
                         "request target must be percent-encoded (no spaces or controls)"};
        }
    }
    if (!is_header_safe(req.content_type) ||
        (req.bearer_token && !is_header_safe(*req.bearer_token))) {
        return error{errc::invalid_argument, "request header value holds a control character"};
    }
    return std::nullopt;
}

}  // namespace

class http_client::impl {
  public:
    impl(asio::any_io_executor executor, url base, http_client_options options)
        : executor_(std::move(executor)),
          closing_(executor_, asio::steady_timer::time_point::max()),
          max_idle_connections_(options.max_idle_connections) {
        if (!is_header_safe(options.user_agent)) {
            throw boost::system::system_error(make_error_code(errc::invalid_argument),
                                              "user_agent holds a control character");
        }
        if (base.scheme == "https") tls_.emplace(make_tls_context(options));
        settings_.peer = host_and_port(base);
        settings_.host_header = host_header(base);
        settings_.base = std::move(base);
        settings_.tls = tls_ ? &*tls_ : nullptr;
        settings_.connect_timeout = options.connect_timeout;
        settings_.max_header_bytes = options.max_header_bytes;
        settings_.max_body_bytes = options.max_response_bytes;
        settings_.user_agent = std::move(options.user_agent);
    }

    // Static, so that the coroutine frame owns `self` and the state outlives the client.
    static asio::awaitable<result<http_response>> request(std::shared_ptr<impl> self,
                                                          http_request req);

    // Cancelling a valid timer cannot fail.
    void close() noexcept {
        closed_ = true;
        idle_.clear();
        closing_.cancel();
    }

  private:
    asio::awaitable<result<http_response>> perform(http_request req);
    std::unique_ptr<detail::http_connection> take_idle_connection();
    void keep_idle(std::unique_ptr<detail::http_connection> connection);

    asio::any_io_executor executor_;
    std::optional<asio::ssl::context> tls_;  // https only
    detail::connection_settings settings_;
    // Never expires: close() cancels the waits on it, and so every request in flight.
    asio::steady_timer closing_;
    bool closed_ = false;
    std::size_t max_idle_connections_;
    std::vector<std::unique_ptr<detail::http_connection>> idle_;  // most recently used last
};

asio::awaitable<result<http_response>> http_client::impl::request(std::shared_ptr<impl> self,
                                                                  http_request req) {
    if (auto invalid = invalid_request(req)) co_return std::move(*invalid);
    if (self->closed_) co_return error{asio::error::operation_aborted, "the HTTP client is closed"};
    try {
        // The request runs beside a wait for close(): whichever ends first cancels the other.
        // The caller's cancellation reaches both through the group.
        auto [order, failure, response, closing_ec] =
            co_await asio::experimental::make_parallel_group(
                asio::co_spawn(self->executor_, self->perform(std::move(req)), asio::deferred),
                self->closing_.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        if (order[0] == 1 && self->closed_) {
            co_return error{asio::error::operation_aborted, "the HTTP client was closed"};
        }
        if (failure) std::rethrow_exception(failure);
        co_return std::move(response);
    } catch (const boost::system::system_error& e) {
        // Asio throws operation_aborted from a co_await in a coroutine already cancelled.
        co_return error{e.code(), "request cancelled"};
    }
}

asio::awaitable<result<http_response>> http_client::impl::perform(http_request req) {
    const detail::request_deadline deadline{std::chrono::steady_clock::now() + req.timeout,
                                            req.timeout};
    const bool idempotent = req.idempotent.value_or(req.method != http_method::post);

    auto connection = take_idle_connection();
    bool reused = connection != nullptr;
    for (;;) {
        if (!connection) {
            auto opened = co_await detail::open_connection(&settings_, deadline);
            if (!opened) co_return opened.error();
            connection = std::move(*opened);
        }
        auto outcome = co_await connection->exchange(req, deadline);
        if (outcome.response) {
            if (outcome.reusable) keep_idle(std::move(connection));
            co_return std::move(outcome.response);
        }
        // A server may close an idle connection just as we send on it. If nothing of a
        // response came back it did not act on the request, and a request that is harmless to
        // repeat goes once more, on a new connection.
        if (!reused || !idempotent || !outcome.failed_before_response) {
            co_return std::move(outcome.response);
        }
        connection.reset();
        reused = false;
    }
}

std::unique_ptr<detail::http_connection> http_client::impl::take_idle_connection() {
    while (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        if (connection->ready_for_reuse()) return connection;
    }
    return nullptr;
}

void http_client::impl::keep_idle(std::unique_ptr<detail::http_connection> connection) {
    if (!closed_ && idle_.size() < max_idle_connections_) idle_.push_back(std::move(connection));
}

http_client::http_client(asio::any_io_executor executor, url base, http_client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(base), std::move(options))) {}

http_client::~http_client() {
    impl_->close();
}

asio::awaitable<result<http_response>> http_client::request(http_request req) {
    return impl::request(impl_, std::move(req));
}

void http_client::close() noexcept {
    impl_->close();
}

}  // namespace devlist::sync
