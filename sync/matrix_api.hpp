// The homeserver endpoints devlistd calls, typed: each call returns the parsed answer or an
// api_failure that says what went wrong in terms the loops act on (retry later, back off,
// stop with a clear status).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/http_client.hpp"
#include "sync/keys_query_response.hpp"
#include "sync/parse_context.hpp"
#include "sync/parse_matrix_error.hpp"
#include "sync/parse_uploads.hpp"
#include "sync/sync_response.hpp"

namespace devlist::sync {

struct api_failure {
    enum class kind {
        transport,  // no answer: refused, reset, timed out, TLS…
        http,       // an error status
        malformed,  // a 2xx whose body could not be used
    };
    kind what = kind::transport;
    unsigned status = 0;
    std::optional<matrix_error> matrix;
    // From Retry-After or retry_after_ms, whichever the server gave.
    std::optional<std::chrono::milliseconds> retry_after;
    // A 401 that asks for User-Interactive Auth (flows, session).
    std::optional<uia_challenge> uia;
    std::string detail;  // for the log: endpoint and what happened

    bool is_rate_limited() const { return status == 429; }
    bool is_unknown_token() const { return matrix && matrix->errcode == "M_UNKNOWN_TOKEN"; }
    // Worth retrying after a backoff: no answer, a 5xx, a 429, or a garbled body.
    bool is_transient() const { return what != kind::http || status == 429 || status >= 500; }
    std::string message() const { return detail; }
};

[[noreturn]] void throw_exception_from_error(const api_failure& f,
                                             const boost::source_location& loc);

template <class T>
using api_result = boost::system::result<T, api_failure>;

struct login_response {
    std::string user_id;
    std::string access_token;
    std::string device_id;
};

class matrix_api {
  public:
    // Both must outlive the api object; neither is owned.
    matrix_api(http_client& http, parse_context& parser) : http_(http), parser_(parser) {}

    void set_access_token(std::string token) { token_ = std::move(token); }
    bool has_access_token() const { return !token_.empty(); }

    boost::asio::awaitable<api_result<login_response>> login_with_password(
        std::string user_id, std::string password, std::optional<std::string> device_id,
        std::string display_name);
    // The user ID the access token belongs to (and the device ID, when the server says).
    boost::asio::awaitable<api_result<login_response>> whoami();
    boost::asio::awaitable<api_result<std::string>> create_filter(std::string user_id,
                                                                  std::string filter_json);
    // `since` empty: an initial sync. `timeout` is the long-poll time the server may wait.
    boost::asio::awaitable<api_result<sync_response>> sync(std::string since, std::string filter_id,
                                                           std::chrono::milliseconds timeout);
    // The answer checked as a whole and each user's part located and digested; the parts
    // themselves are parsed later, where needed (sync/query_ingest).
    boost::asio::awaitable<api_result<keys_query_answer>> keys_query(
        std::vector<std::string> user_ids, std::chrono::milliseconds server_timeout);
    // The answer with every user's part parsed (for a few users, e.g. the own one).
    boost::asio::awaitable<api_result<keys_query_response>> keys_query_parsed(
        std::vector<std::string> user_ids, std::chrono::milliseconds server_timeout);
    boost::asio::awaitable<api_result<keys_changes_response>> keys_changes(std::string from,
                                                                           std::string to);
    // POST /keys/upload with a prepared body (the same bytes on every retry); the answer's
    // one_time_key_counts.
    boost::asio::awaitable<api_result<std::map<std::string, std::int64_t>>> keys_upload(
        std::string body);
    // POST /keys/device_signing/upload; `auth` (a JSON object) is added to the body when given.
    boost::asio::awaitable<api_result<void>> device_signing_upload(std::string body,
                                                                   std::optional<std::string> auth);
    // POST /keys/signatures/upload; the failures the server reported (empty: all accepted).
    boost::asio::awaitable<api_result<std::vector<std::string>>> signatures_upload(
        std::string body);

  private:
    boost::asio::awaitable<api_result<http_response>> call(http_method method, std::string path,
                                                           std::string body,
                                                           std::chrono::milliseconds timeout,
                                                           bool idempotent, bool auth);

    http_client& http_;
    parse_context& parser_;
    std::string token_;
};

}  // namespace devlist::sync
