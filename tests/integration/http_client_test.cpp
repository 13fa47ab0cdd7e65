// The HTTP client against a scripted Beast server on the loopback interface. Server and client
// share one io_context; deadlines come from running it for bounded time, never from sleeps.
#include "sync/http_client.hpp"
#include "sync/http_retry_after.hpp"
#include "sync/parse_matrix_error.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace devlist::sync {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// ---- certificates, made at test time ----

using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

key_ptr new_key() {
    char curve[] = "P-256";
    key_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), EVP_PKEY_free);
    EXPECT_NE(key, nullptr);
    return key;
}

void add_extension(X509* cert, X509V3_CTX& context, int nid, const char* value) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    ASSERT_NE(extension, nullptr) << value;
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
}

// A certificate for `key`, signed by `issuer` (self-signed when null). `alt_names` is an
// OpenSSL subjectAltName value ("DNS:localhost,IP:127.0.0.1"); empty makes a CA.
cert_ptr new_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                         EVP_PKEY* issuer_key, const std::string& alt_names) {
    static long serial = 1;
    cert_ptr cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);

    X509V3_CTX context{};
    X509V3_set_ctx(&context, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    const bool is_ca = alt_names.empty();
    add_extension(cert.get(), context, NID_basic_constraints,
                  is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert.get(), context, NID_key_usage,
                  is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_extension(cert.get(), context, NID_subject_key_identifier, "hash");
    if (!is_ca) {
        add_extension(cert.get(), context, NID_authority_key_identifier, "keyid:always");
        add_extension(cert.get(), context, NID_ext_key_usage, "serverAuth");
        add_extension(cert.get(), context, NID_subject_alt_name, alt_names.c_str());
    }
    EXPECT_GT(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()), 0);
    return cert;
}

template <class Write>
std::string to_pem(Write write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    EXPECT_EQ(write(bio.get()), 1);
    std::string pem(BIO_ctrl_pending(bio.get()), '\0');
    BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size()));
    return pem;
}

std::string pem_of(X509* cert) {
    return to_pem([cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

std::string pem_of(EVP_PKEY* key) {
    return to_pem([key](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    });
}

// A private CA in a temporary folder, and server identities it signs.
class test_ca {
  public:
    test_ca()
        : key_(new_key()),
          cert_(new_certificate(key_.get(), "devlist test CA", nullptr, nullptr, "")) {
        dir_ = std::filesystem::temp_directory_path() /
               ("devlist-http-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        std::ofstream(ca_file()) << pem_of(cert_.get());
    }
    ~test_ca() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    std::filesystem::path ca_file() const { return dir_ / "ca.pem"; }

    // A server TLS context whose certificate names `alt_names`.
    std::unique_ptr<asio::ssl::context> server_context(const std::string& alt_names) const {
        auto server_key = new_key();
        auto server_cert = new_certificate(server_key.get(), "devlist test server", cert_.get(),
                                           key_.get(), alt_names);
        auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
        const auto chain = pem_of(server_cert.get());
        const auto key = pem_of(server_key.get());
        context->use_certificate_chain(asio::buffer(chain));
        context->use_private_key(asio::buffer(key), asio::ssl::context::pem);
        return context;
    }

  private:
    key_ptr key_;
    cert_ptr cert_;
    std::filesystem::path dir_;
};

// ---- the scripted server ----

std::string reply(unsigned status, std::string_view body, std::string_view extra_headers = {}) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " Scripted\r\n";
    out += "Content-Type: application/json\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
    return out;
}

std::string chunked(const std::vector<std::string>& chunks) {
    std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const auto& chunk : chunks) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        out += size + chunk + "\r\n";
    }
    return out + "0\r\n\r\n";
}

// What the server does once its reply is written.
enum class then { keep_alive, close, reset, stall, drop_next_request };

struct scripted_reply {
    std::string bytes;
    then after = then::keep_alive;
};

// Answers by target:
//   /json, /echo, /status/<n>, /chunked, /big, /big-chunked, /big-header, /rate-limited
//   /close-after        answers, then closes the idle connection
//   /drop-next          answers; the next request on the connection is read, then dropped
//   /reset-mid-body     half a body, then a TCP reset
//   /stall, /stall-body nothing, or half a body, until the client closes the connection
scripted_reply script(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const std::string big(4096, 'x');
    if (target == "/json") return {reply(200, R"({"ok":true})")};
    if (target.starts_with("/status/")) {
        return {reply(static_cast<unsigned>(std::stoul(target.substr(8))), R"({"errcode":"M_X"})")};
    }
    if (target == "/chunked") return {chunked({R"({"chunks":)", "[1,2", ",3]}"})};
    if (target == "/big") return {reply(200, big)};
    if (target == "/big-chunked") return {chunked({big.substr(0, 1000), big.substr(1000)})};
    if (target == "/big-header") return {reply(200, "{}", "X-Padding: " + big + "\r\n")};
    if (target == "/rate-limited") {
        return {reply(
            429,
            R"({"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":3000})",
            "Retry-After: 3\r\n")};
    }
    if (target == "/close-after") return {reply(200, "{}"), then::close};
    if (target == "/drop-next") return {reply(200, "{}"), then::drop_next_request};
    if (target == "/reset-mid-body") {
        return {reply(200, big).substr(0, 200), then::reset};
    }
    if (target == "/stall") return {"", then::stall};
    if (target == "/stall-body") return {reply(200, big).substr(0, 200), then::stall};
    if (target.ends_with("/echo")) {
        std::string body = std::string(req.method_string()) + " " + target + "\n";
        for (const auto field :
             {http::field::host, http::field::user_agent, http::field::authorization,
              http::field::content_type, http::field::accept}) {
            if (const auto it = req.find(field); it != req.end()) {
                body += std::string(it->name_string()) + ": " + std::string(it->value()) + "\n";
            }
        }
        return {reply(200, body + req.body())};
    }
    return {reply(404, R"({"errcode":"M_UNRECOGNIZED"})")};
}

class test_server {
  public:
    // Listens on `address` (port chosen by the system); TLS when `tls` is given.
    test_server(asio::io_context& ioc, std::unique_ptr<asio::ssl::context> tls = nullptr,
                const asio::ip::address& address = asio::ip::address_v4::loopback())
        : ioc_(ioc),
          acceptor_(ioc, {address, 0}),
          tls_(std::move(tls)),
          stopped_(ioc, asio::steady_timer::time_point::max()) {
        asio::co_spawn(ioc_, accept_loop(), rethrow);
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int accepted() const { return accepted_; }
    int connections_ended() const { return connections_ended_; }
    int tls_handshake_failures() const { return tls_handshake_failures_; }
    const std::vector<std::string>& targets() const { return targets_; }
    const std::string& last_server_name() const { return last_server_name_; }

    // Stops accepting and ends every connection.
    void stop() {
        acceptor_.close();
        stopped_.cancel();
    }

  private:
    // A test server's coroutine that throws has a bug: fail the test loudly.
    static constexpr auto rethrow = [](const std::exception_ptr& e) {
        if (e) std::rethrow_exception(e);
    };

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (ec) co_return;
            ++accepted_;
            asio::co_spawn(ioc_, connection(std::move(socket)), rethrow);
        }
    }

    asio::awaitable<void> connection(tcp::socket socket) {
        co_await (serve_connection(std::move(socket)) || until_stopped());
        ++connections_ended_;
    }

    asio::awaitable<void> serve_connection(tcp::socket socket) {
        beast::tcp_stream plain(std::move(socket));
        if (!tls_) {
            co_await serve(plain);
            co_return;
        }
        beast::ssl_stream<beast::tcp_stream> stream(std::move(plain), *tls_);
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
        if (ec) {
            ++tls_handshake_failures_;
            co_return;
        }
        const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        last_server_name_ = name ? name : "";
        co_await serve(stream);
    }

    template <class Stream>
    asio::awaitable<void> serve(Stream& stream) {
        beast::flat_buffer buffer;
        bool drop_next = false;
        for (;;) {
            http::request<http::string_body> req;
            auto [read_ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
            if (read_ec) co_return;
            targets_.emplace_back(req.target());
            if (drop_next) co_return;
            const auto answer = script(req);
            auto [write_ec, written] =
                co_await asio::async_write(stream, asio::buffer(answer.bytes), use_tuple);
            if (write_ec) co_return;
            auto& socket = beast::get_lowest_layer(stream).socket();
            switch (answer.after) {
                case then::keep_alive:
                    break;
                case then::drop_next_request:
                    drop_next = true;
                    break;
                case then::close:
                    co_return;
                case then::reset:
                    socket.set_option(tcp::socket::linger(true, 0));
                    co_return;
                case then::stall:
                    co_await read_until_closed(stream);
                    co_return;
            }
        }
    }

    // Reads and ignores whatever comes until the peer closes the connection.
    template <class Stream>
    static asio::awaitable<void> read_until_closed(Stream& stream) {
        char ignored[512];
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(ignored), use_tuple);
            if (ec) co_return;
        }
    }

    asio::awaitable<void> until_stopped() { co_await stopped_.async_wait(use_tuple); }

    asio::io_context& ioc_;
    tcp::acceptor acceptor_;
    std::unique_ptr<asio::ssl::context> tls_;
    asio::steady_timer stopped_;  // never expires; stop() cancels it
    int accepted_ = 0;
    int connections_ended_ = 0;
    int tls_handshake_failures_ = 0;
    std::vector<std::string> targets_;
    std::string last_server_name_;
};

// ---- the fixture ----

http_request get(std::string target) {
    http_request req;
    req.target = std::move(target);
    req.timeout = 5s;
    return req;
}

http_request post(std::string target, std::string body = "{}") {
    http_request req = get(std::move(target));
    req.method = http_method::post;
    req.body = std::move(body);
    return req;
}

class HttpClientTest : public ::testing::Test {
  protected:
    void TearDown() override {
        if (server_) server_->stop();
        // Every coroutine must finish: what is still running after this would be a leak.
        ioc_.restart();
        ioc_.run_for(2s);
        EXPECT_TRUE(ioc_.stopped()) << "operations still pending after the test";
    }

    test_server& start_server(std::unique_ptr<asio::ssl::context> tls = nullptr) {
        server_ = std::make_unique<test_server>(ioc_, std::move(tls));
        return *server_;
    }

    // How error details name the server.
    std::string peer() const { return "127.0.0.1:" + std::to_string(server_->port()); }

    url base(std::string scheme = "http", std::string host = "127.0.0.1", std::string path = "") {
        return url{std::move(scheme), std::move(host), server_->port(), std::move(path)};
    }

    std::unique_ptr<http_client> client(http_client_options options = {}, url at = {}) {
        if (at.host.empty()) at = base();
        return std::make_unique<http_client>(ioc_.get_executor(), std::move(at),
                                             std::move(options));
    }

    // Starts a request; outcomes_[index] holds its outcome once it completes.
    std::size_t start(http_client& c, http_request req) {
        const auto index = outcomes_.size();
        outcomes_.emplace_back();
        asio::co_spawn(ioc_, c.request(std::move(req)),
                       [this, index](const std::exception_ptr& e, result<http_response> r) {
                           if (e) std::rethrow_exception(e);
                           outcomes_[index] = std::move(r);
                       });
        return index;
    }

    bool done(std::size_t index) const { return outcomes_[index].has_value(); }

    // Runs the io_context until `condition` holds; false if it did not within `limit`.
    bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        ioc_.restart();
        while (!condition()) {
            if (ioc_.run_one_until(deadline) == 0) return condition();
        }
        return true;
    }

    result<http_response> fetch(http_client& c, http_request req,
                                std::chrono::milliseconds limit = 5s) {
        const auto index = start(c, std::move(req));
        if (!run_until([&] { return done(index); }, limit)) {
            ADD_FAILURE() << "request did not complete within " << limit.count() << " ms";
            return error{asio::error::timed_out, "test gave up"};
        }
        // Moved, not copied: a copy would lose the body's spare capacity.
        return std::move(*outcomes_[index]);
    }

    asio::io_context ioc_;
    std::unique_ptr<test_server> server_;
    std::deque<std::optional<result<http_response>>> outcomes_;
};

#define ASSERT_RESPONSE(r) ASSERT_TRUE((r).has_value()) << (r).error().message()

TEST_F(HttpClientTest, AnswersJsonWithPaddingCapacity) {
    start_server();
    auto c = client();
    const auto r = fetch(*c, get("/json"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->body, R"({"ok":true})");
    EXPECT_GE(r->body.capacity(), r->body.size() + 64);
    EXPECT_FALSE(r->retry_after.has_value());
}

TEST_F(HttpClientTest, SendsHeadersBodyAndBasePath) {
    start_server();
    auto c = client({}, base("http", "127.0.0.1", "/prefix"));
    auto req = post("/echo", R"({"a":1})");
    req.bearer_token = "secret-token";
    const auto r = fetch(*c, std::move(req));
    ASSERT_RESPONSE(r);
    const auto port = std::to_string(server_->port());
    EXPECT_EQ(r->body,
              "POST /prefix/echo\n"
              "Host: 127.0.0.1:" +
                  port +
                  "\n"
                  "User-Agent: devlistd\n"
                  "Authorization: Bearer secret-token\n"
                  "Content-Type: application/json\n"
                  "Accept: application/json\n"
                  R"({"a":1})");
}

TEST_F(HttpClientTest, GetWithoutBodyHasNoContentType) {
    start_server();
    auto c = client();
    const auto r = fetch(*c, get("/echo"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(r->body.find("Content-Type"), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("Authorization"), std::string::npos) << r->body;
}

TEST_F(HttpClientTest, HttpErrorStatusIsAResponse) {
    start_server();
    auto c = client();
    for (const unsigned status : {400u, 404u, 500u, 503u}) {
        const auto r = fetch(*c, get("/status/" + std::to_string(status)));
        ASSERT_RESPONSE(r);
        EXPECT_EQ(r->status, status);
        EXPECT_EQ(r->body, R"({"errcode":"M_X"})");
    }
    EXPECT_EQ(server_->accepted(), 1);
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneConnection) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    ASSERT_RESPONSE(fetch(*c, post("/json")));
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    EXPECT_EQ(server_->accepted(), 1);
    EXPECT_EQ(server_->targets().size(), 3u);
}

TEST_F(HttpClientTest, ReadsChunkedBodyAndKeepsTheConnection) {
    start_server();
    auto c = client();
    const auto r = fetch(*c, get("/chunked"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(r->body, R"({"chunks":[1,2,3]})");
    EXPECT_GE(r->body.capacity(), r->body.size() + 64);
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    EXPECT_EQ(server_->accepted(), 1);
}

TEST_F(HttpClientTest, ReplacesConnectionTheServerClosedWhileIdle) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/close-after")));
    ASSERT_TRUE(run_until([&] { return server_->connections_ended() == 1; }));
    // A POST is never resent, so its success shows the closed connection was noticed before
    // anything was sent on it.
    const auto r = fetch(*c, post("/json"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(server_->accepted(), 2);
    EXPECT_EQ(server_->targets(), (std::vector<std::string>{"/close-after", "/json"}));
}

TEST_F(HttpClientTest, ResendsIdempotentRequestOnceWhenReusedConnectionDies) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/drop-next")));
    const auto r = fetch(*c, get("/json"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(r->body, R"({"ok":true})");
    EXPECT_EQ(server_->accepted(), 2);
    EXPECT_EQ(server_->targets(), (std::vector<std::string>{"/drop-next", "/json", "/json"}));
}

TEST_F(HttpClientTest, ResendsPostMarkedIdempotent) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/drop-next")));
    auto req = post("/json");
    req.idempotent = true;
    ASSERT_RESPONSE(fetch(*c, std::move(req)));
    EXPECT_EQ(server_->accepted(), 2);
}

TEST_F(HttpClientTest, NeverResendsPostWhenReusedConnectionDies) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/drop-next")));
    const auto r = fetch(*c, post("/json"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, http::error::end_of_stream) << r.error().message();
    EXPECT_EQ(r.error().detail, "read the response headers from " + peer());
    EXPECT_EQ(server_->accepted(), 1);
    EXPECT_EQ(server_->targets().size(), 2u);
}

TEST_F(HttpClientTest, ResetMidBodyIsAnErrorAndNotResent) {
    start_server();
    auto c = client();
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    // On a reused connection, idempotent, but bytes of the response had arrived.
    const auto r = fetch(*c, get("/reset-mid-body"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, asio::error::connection_reset) << r.error().message();
    EXPECT_EQ(r.error().detail, "read the response body from " + peer());
    EXPECT_EQ(server_->accepted(), 1);
    EXPECT_EQ(server_->targets().size(), 2u);
}

TEST_F(HttpClientTest, BodyOverTheLimitIsAnError) {
    start_server();
    auto c = client({.max_response_bytes = 1024});
    for (const auto* target : {"/big", "/big-chunked"}) {
        const auto r = fetch(*c, get(target));
        ASSERT_FALSE(r.has_value()) << target;
        EXPECT_EQ(r.error().code, http::error::body_limit) << target;
        EXPECT_EQ(r.error().detail, "response body exceeds 1024 bytes") << target;
    }
    // The limit is exclusive of what fits: a small body still passes, on a new connection.
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    EXPECT_EQ(server_->accepted(), 3);
}

TEST_F(HttpClientTest, HeaderOverTheLimitIsAnError) {
    start_server();
    auto c = client({.max_header_bytes = 1024});
    const auto r = fetch(*c, get("/big-header"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, http::error::header_limit);
    EXPECT_EQ(r.error().detail, "response header exceeds 1024 bytes");
}

TEST_F(HttpClientTest, TimesOutWaitingForTheHeaders) {
    start_server();
    auto c = client();
    auto req = get("/stall");
    req.timeout = 200ms;
    const auto started = std::chrono::steady_clock::now();
    const auto r = fetch(*c, std::move(req), 2s);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, beast::error::timeout);
    EXPECT_EQ(r.error().detail,
              "timed out after 200 ms waiting for the response headers from "
              "127.0.0.1:" +
                  std::to_string(server_->port()));
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 1500ms);
}

TEST_F(HttpClientTest, TimesOutReadingTheBody) {
    start_server();
    auto c = client();
    auto req = get("/stall-body");
    req.timeout = 200ms;
    const auto r = fetch(*c, std::move(req), 2s);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, beast::error::timeout);
    EXPECT_EQ(r.error().detail.rfind("timed out after 200 ms reading the response body from", 0),
              0u)
        << r.error().detail;
}

TEST_F(HttpClientTest, ConnectionRefusedNamesThePeer) {
    std::uint16_t closed_port = 0;
    {
        tcp::acceptor probe(ioc_, {asio::ip::address_v4::loopback(), 0});
        closed_port = probe.local_endpoint().port();
    }
    auto c = client({}, url{"http", "127.0.0.1", closed_port, ""});
    const auto r = fetch(*c, get("/json"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, asio::error::connection_refused);
    EXPECT_EQ(r.error().detail, "connect to 127.0.0.1:" + std::to_string(closed_port));
}

TEST_F(HttpClientTest, RetryAfterHeaderAndMatrixErrorBody) {
    start_server();
    auto c = client();
    const auto r = fetch(*c, get("/rate-limited"));
    ASSERT_RESPONSE(r);
    EXPECT_EQ(r->status, 429u);
    EXPECT_EQ(r->retry_after, std::chrono::milliseconds{3000});
    const auto e = parse_matrix_error(r->body);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->errcode, "M_LIMIT_EXCEEDED");
    EXPECT_EQ(e->error, "Too many requests");
    EXPECT_EQ(e->retry_after_ms, 3000);
}

TEST_F(HttpClientTest, RefusesMalformedRequestsWithoutConnecting) {
    start_server();
    auto c = client();
    for (auto req : {get("relative"), get("/with space"), get("/a\r\nX-Injected: 1")}) {
        const auto r = fetch(*c, std::move(req));
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error(), errc::invalid_argument);
    }
    auto req = get("/json");
    req.bearer_token = "token\r\nX-Injected: 1";
    const auto r = fetch(*c, std::move(req));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_EQ(server_->accepted(), 0);
}

TEST_F(HttpClientTest, LongPollAndParallelRequestsUseSeparateConnections) {
    start_server();
    auto c = client();
    auto long_poll = get("/stall");
    long_poll.timeout = 30s;
    const auto hanging = start(*c, std::move(long_poll));
    std::vector<std::size_t> parallel;
    for (int i = 0; i < 10; ++i)
        parallel.push_back(start(*c, get("/json")));

    ASSERT_TRUE(run_until([&] {
        for (const auto index : parallel) {
            if (!done(index)) return false;
        }
        return true;
    }));
    for (const auto index : parallel)
        ASSERT_RESPONSE(*outcomes_[index]);
    EXPECT_FALSE(done(hanging));
    EXPECT_EQ(server_->accepted(), 11);
    // Four idle connections are kept (the default); the client closes the other six.
    EXPECT_TRUE(run_until([&] { return server_->connections_ended() == 6; }));

    c->close();
    ASSERT_TRUE(run_until([&] { return done(hanging); }, 1s));
    ASSERT_FALSE(outcomes_[hanging]->has_value());
    EXPECT_EQ(outcomes_[hanging]->error().code, asio::error::operation_aborted);
    EXPECT_TRUE(run_until([&] { return server_->connections_ended() == 11; }));
}

TEST_F(HttpClientTest, CloseAbortsAHangingRequestPromptly) {
    start_server();
    auto c = client();
    auto req = get("/stall");
    req.timeout = 30s;
    const auto hanging = start(*c, std::move(req));
    ASSERT_TRUE(run_until([&] { return server_->targets().size() == 1; }));

    const auto closed_at = std::chrono::steady_clock::now();
    c->close();
    ASSERT_TRUE(run_until([&] { return done(hanging); }, 1s));
    EXPECT_LT(std::chrono::steady_clock::now() - closed_at, 500ms);
    ASSERT_FALSE(outcomes_[hanging]->has_value());
    EXPECT_EQ(outcomes_[hanging]->error().code, asio::error::operation_aborted);

    const auto after = fetch(*c, get("/json"));
    ASSERT_FALSE(after.has_value());
    EXPECT_EQ(after.error().code, asio::error::operation_aborted);
    EXPECT_EQ(server_->accepted(), 1);
}

TEST_F(HttpClientTest, DestroyingTheClientAbortsRequestsInFlight) {
    start_server();
    auto c = client();
    const auto hanging = start(*c, get("/stall"));
    ASSERT_TRUE(run_until([&] { return server_->targets().size() == 1; }));
    c.reset();
    ASSERT_TRUE(run_until([&] { return done(hanging); }, 1s));
    ASSERT_FALSE(outcomes_[hanging]->has_value());
    EXPECT_EQ(outcomes_[hanging]->error().code, asio::error::operation_aborted);
}

// Gives up on `req` after `patience`: true if the request lost the race.
asio::awaitable<bool> request_with_patience(http_client* c, http_request req,
                                            std::chrono::milliseconds patience) {
    asio::steady_timer timer(co_await asio::this_coro::executor, patience);
    const auto winner = co_await (c->request(std::move(req)) || timer.async_wait(use_tuple));
    co_return winner.index() == 1;
}

TEST_F(HttpClientTest, CallerCancellationClosesTheConnection) {
    start_server();
    auto c = client();
    bool gave_up = false;
    bool finished = false;
    asio::co_spawn(ioc_, request_with_patience(c.get(), get("/stall"), 100ms),
                   [&](const std::exception_ptr& e, bool lost) {
                       if (e) std::rethrow_exception(e);
                       gave_up = lost;
                       finished = true;
                   });
    ASSERT_TRUE(run_until([&] { return finished; }, 2s));
    EXPECT_TRUE(gave_up);
    // The connection is closed, not pooled: the server sees it end, and the next request
    // opens another.
    EXPECT_TRUE(run_until([&] { return server_->connections_ended() == 1; }, 1s));
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    EXPECT_EQ(server_->accepted(), 2);
}

TEST_F(HttpClientTest, ServesOverIpv6Loopback) {
    try {
        server_ = std::make_unique<test_server>(ioc_, nullptr, asio::ip::address_v6::loopback());
    } catch (const boost::system::system_error& e) {
        GTEST_SKIP() << "no IPv6 loopback: " << e.what();
    }
    auto c = client({}, base("http", "::1"));
    const auto r = fetch(*c, get("/echo"));
    ASSERT_RESPONSE(r);
    EXPECT_NE(r->body.find("Host: [::1]:" + std::to_string(server_->port())), std::string::npos);
}

// ---- TLS ----

class HttpClientTlsTest : public HttpClientTest {
  protected:
    http_client_options trusting_options() const {
        http_client_options options;
        options.extra_ca_file = ca_.ca_file();
        return options;
    }

    test_ca ca_;
};

TEST_F(HttpClientTlsTest, TrustsTheExtraCaAndKeepsTheConnection) {
    start_server(ca_.server_context("DNS:localhost,IP:127.0.0.1"));
    auto c = client(trusting_options(), base("https"));
    const auto first = fetch(*c, get("/json"));
    ASSERT_RESPONSE(first);
    EXPECT_EQ(first->body, R"({"ok":true})");
    ASSERT_RESPONSE(fetch(*c, get("/chunked")));
    EXPECT_EQ(server_->accepted(), 1);
    // No SNI for an IP address (RFC 6066).
    EXPECT_EQ(server_->last_server_name(), "");
}

TEST_F(HttpClientTlsTest, VerifiesAHostNameAndSendsSni) {
    start_server(ca_.server_context("DNS:localhost"));
    auto c = client(trusting_options(), base("https", "localhost"));
    ASSERT_RESPONSE(fetch(*c, get("/json")));
    EXPECT_EQ(server_->last_server_name(), "localhost");
}

TEST_F(HttpClientTlsTest, ReplacesTlsConnectionClosedWhileIdle) {
    start_server(ca_.server_context("IP:127.0.0.1"));
    auto c = client(trusting_options(), base("https"));
    ASSERT_RESPONSE(fetch(*c, get("/close-after")));
    ASSERT_TRUE(run_until([&] { return server_->connections_ended() == 1; }));
    ASSERT_RESPONSE(fetch(*c, post("/json")));
    EXPECT_EQ(server_->accepted(), 2);
}

TEST_F(HttpClientTlsTest, RefusesAnUnknownCa) {
    start_server(ca_.server_context("DNS:localhost,IP:127.0.0.1"));
    auto c = client({}, base("https"));
    const auto r = fetch(*c, get("/json"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail.rfind("TLS: certificate verify failed for host 127.0.0.1: ", 0), 0u)
        << r.error().message();
    EXPECT_TRUE(run_until([&] { return server_->tls_handshake_failures() == 1; }));
    EXPECT_TRUE(server_->targets().empty());
}

TEST_F(HttpClientTlsTest, RefusesACertificateForAnotherIpAddress) {
    start_server(ca_.server_context("DNS:example.org,IP:127.0.0.2"));
    auto c = client(trusting_options(), base("https"));
    const auto r = fetch(*c, get("/json"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail,
              "TLS: certificate verify failed for host 127.0.0.1: IP address mismatch")
        << r.error().message();
    EXPECT_TRUE(server_->targets().empty());
}

TEST_F(HttpClientTlsTest, RefusesACertificateForAnotherHostName) {
    start_server(ca_.server_context("DNS:example.org,IP:127.0.0.1"));
    auto c = client(trusting_options(), base("https", "localhost"));
    const auto r = fetch(*c, get("/json"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail,
              "TLS: certificate verify failed for host localhost: hostname mismatch")
        << r.error().message();
}

TEST_F(HttpClientTlsTest, VerificationCanBeTurnedOffExplicitly) {
    start_server(ca_.server_context("DNS:example.org"));
    http_client_options options;
    options.verify_tls = false;
    auto c = client(options, base("https"));
    ASSERT_RESPONSE(fetch(*c, get("/json")));
}

TEST_F(HttpClientTlsTest, AnUnreadableCaFileFailsConstruction) {
    http_client_options options;
    options.extra_ca_file = ca_.ca_file().parent_path() / "missing.pem";
    EXPECT_THROW(http_client(ioc_.get_executor(), url{"https", "localhost", 443, ""}, options),
                 boost::system::system_error);
}

// ---- Retry-After values ----

TEST(ParseRetryAfter, DelaySeconds) {
    const auto now = std::chrono::system_clock::now();
    EXPECT_EQ(parse_retry_after("120", now), std::chrono::milliseconds{120000});
    EXPECT_EQ(parse_retry_after(" 0 ", now), std::chrono::milliseconds{0});
    for (const auto* bad : {"", "-1", "1.5", "12a", "+3", "99999999999999999999999"}) {
        EXPECT_FALSE(parse_retry_after(bad, now).has_value()) << bad;
    }
}

TEST(ParseRetryAfter, HttpDate) {
    // 1994-11-06 08:49:37 UTC.
    const std::chrono::system_clock::time_point date{std::chrono::seconds{784111777}};
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 90s),
              std::chrono::milliseconds{90000});
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 1500ms),
              std::chrono::milliseconds{1500});
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 1h),
              std::chrono::milliseconds{0});
    for (const auto* bad : {"Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                            "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                            "Sun, 06 Nov 1994 08:49:37 UTC", "Xyz, 06 Nov 1994 08:49:37 GMT",
                            // Beyond what system_clock holds (found by fuzz_account_answers).
                            "Wed, 15 Nov 4046 00:00:00 GMT", "Sat, 01 Jan 1000 00:00:00 GMT"}) {
        EXPECT_FALSE(parse_retry_after(bad, date).has_value()) << bad;
    }
}

// ---- Matrix error bodies ----

TEST(ParseMatrixError, FullBody) {
    const auto e = parse_matrix_error(
        R"({"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":2000})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->errcode, "M_LIMIT_EXCEEDED");
    EXPECT_EQ(e->error, "Too many requests");
    EXPECT_EQ(e->retry_after_ms, 2000);
}

TEST(ParseMatrixError, PartialBodyAndUnknownMembers) {
    const auto e = parse_matrix_error(R"( {"soft_logout":true,"errcode":"M_UNKNOWN_TOKEN"} )");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->errcode, "M_UNKNOWN_TOKEN");
    EXPECT_EQ(e->error, "");
    EXPECT_FALSE(e->retry_after_ms.has_value());
}

TEST(ParseMatrixError, IgnoresAnUnusableRetryAfter) {
    for (const auto* body :
         {R"({"errcode":"M_X","retry_after_ms":-5})", R"({"errcode":"M_X","retry_after_ms":1.5})",
          R"({"errcode":"M_X","retry_after_ms":"10"})",
          R"({"errcode":"M_X","retry_after_ms":99999999999999999999})"}) {
        const auto e = parse_matrix_error(body);
        ASSERT_TRUE(e.has_value()) << body;
        EXPECT_FALSE(e->retry_after_ms.has_value()) << body;
    }
}

TEST(ParseMatrixError, MalformedBodies) {
    for (const auto* body :
         {"", "not json", "<html>502 Bad Gateway</html>", "[]", "\"M_X\"", "{}",
          R"({"errcode":42})", R"({"errcode":"M_X")", R"({"errcode":"M_X","error":)",
          R"({"errcode":"M_X"} trailing)", R"({"errcode":"M_X","errcode":"M_Y"})",
          R"({"error":"no code"})", "{\"errcode\":\"M_\xff\"}"}) {
        EXPECT_FALSE(parse_matrix_error(body).has_value()) << body;
    }
}

TEST(ParseMatrixError, BoundsLengths) {
    EXPECT_FALSE(parse_matrix_error(R"({"errcode":")" + std::string(200, 'M') + R"("})"));
    // A long message is cut, without splitting the two-byte 'é' at the boundary.
    const std::string message = std::string(1023, 'a') + "\xC3\xA9" + std::string(100, 'b');
    const auto e = parse_matrix_error(R"({"errcode":"M_X","error":")" + message + R"("})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->error, std::string(1023, 'a'));
    EXPECT_FALSE(
        parse_matrix_error(R"({"errcode":"M_X","error":")" + std::string(70000, 'a') + R"("})"));
}

}  // namespace
}  // namespace devlist::sync
