// A small blocking HTTP/1.1 client for the homeserver's own tests: one keep-alive connection to
// 127.0.0.1 (plain, or TLS verified against a given CA file and host name), reconnected after an
// error. Each exchange runs a coroutine on a private io_context bounded by run_for, so that a
// server that never answers costs a test its timeout, not its life.
//
// The Beast code lives in http_test_client.cpp, compiled once, apart from the tests.
#pragma once

#include "crypto/json_value.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace devlist::testing {

struct http_response {
    boost::system::error_code error{};  // set when no complete response arrived
    unsigned status = 0;
    std::string body{};
    std::string retry_after{};      // the Retry-After header, if any
    bool connection_close = false;  // the server closes the connection after this response

    // The body as JSON (null if it is not JSON).
    json::value json() const {
        auto parsed = json::parse(body);
        return parsed ? std::move(*parsed) : json::value{};
    }
};

struct tls_client_options {
    std::filesystem::path ca_file;  // trust only this; empty: the system's default paths
    std::string host_name;          // checked against the certificate
};

class http_test_client {
  public:
    explicit http_test_client(std::uint16_t port, std::optional<tls_client_options> tls = {});
    ~http_test_client();
    http_test_client(http_test_client&&) noexcept;
    http_test_client& operator=(http_test_client&&) noexcept;

    http_response get(const std::string& target, const std::string& access_token = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
    http_response post(const std::string& target, const json::value& body,
                       const std::string& access_token = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
    http_response put(const std::string& target, const json::value& body,
                      const std::string& access_token = {});
    http_response send(const std::string& method, const std::string& target, std::string body,
                       const std::string& access_token, std::chrono::milliseconds timeout);

    // Closes the connection; the next request opens a new one.
    void disconnect();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::testing
