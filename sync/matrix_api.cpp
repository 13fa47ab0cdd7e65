#include "sync/matrix_api.hpp"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include "crypto/json_value.hpp"
#include "sync/parse_account.hpp"
#include "sync/parse_keys.hpp"
#include "sync/parse_sync.hpp"
#include "sync/url.hpp"

namespace devlist::sync {
namespace {

constexpr std::string_view client_v3 = "/_matrix/client/v3";
// Slack on top of a long-poll's server-side timeout before the client gives up on it.
constexpr std::chrono::milliseconds long_poll_slack{15000};
constexpr std::chrono::milliseconds default_timeout{30000};

const char* method_name(http_method m) {
    switch (m) {
        case http_method::get:
            return "GET";
        case http_method::post:
            return "POST";
        case http_method::put:
            return "PUT";
        case http_method::delete_:
            return "DELETE";
    }
    return "?";
}

// The path without its query string, for log lines (query strings may carry tokens).
std::string_view path_only(std::string_view target) {
    return target.substr(0, target.find('?'));
}

template <class T>
api_result<T> malformed(std::string_view endpoint, const error& e) {
    api_failure f;
    f.what = api_failure::kind::malformed;
    f.status = 200;
    f.detail = std::string(endpoint) + ": unusable answer: " + e.message();
    return f;
}

}  // namespace

void throw_exception_from_error(const api_failure& f, const boost::source_location& loc) {
    boost::throw_exception(std::runtime_error(f.detail), loc);
}

boost::asio::awaitable<api_result<http_response>> matrix_api::call(
    http_method method, std::string path, std::string body, std::chrono::milliseconds timeout,
    bool idempotent, bool auth) {
    http_request req;
    req.method = method;
    req.target = std::string(client_v3) + path;
    req.body = std::move(body);
    req.timeout = timeout;
    req.idempotent = idempotent;
    if (auth) req.bearer_token = token_;
    std::string what = std::string(method_name(method)) + " " + std::string(path_only(req.target));

    auto r = co_await http_.request(std::move(req));
    if (!r) {
        api_failure f;
        f.what = api_failure::kind::transport;
        f.detail = what + ": " + r.error().message();
        co_return f;
    }
    if (r->status >= 200 && r->status < 300) co_return std::move(*r);

    api_failure f;
    f.what = api_failure::kind::http;
    f.status = r->status;
    f.matrix = parse_matrix_error(r->body);
    f.retry_after = r->retry_after;
    if (f.matrix && f.matrix->retry_after_ms) {
        f.retry_after = std::chrono::milliseconds(*f.matrix->retry_after_ms);
    }
    if (r->status == 401) f.uia = parse_uia_challenge(r->body);
    f.detail = what + ": HTTP " + std::to_string(r->status);
    if (f.matrix) {
        f.detail += " " + f.matrix->errcode;
        if (!f.matrix->error.empty()) f.detail += " (" + f.matrix->error + ")";
    }
    co_return f;
}

boost::asio::awaitable<api_result<login_response>> matrix_api::login_with_password(
    std::string user_id, std::string password, std::optional<std::string> device_id,
    std::string display_name) {
    json::value body =
        json::object{{"type", "m.login.password"},
                     {"identifier", json::object{{"type", "m.id.user"}, {"user", user_id}}},
                     {"password", std::move(password)},
                     {"initial_device_display_name", std::move(display_name)}};
    if (device_id) body["device_id"] = *device_id;
    auto r = co_await call(http_method::post, "/login", json::to_canonical(body), default_timeout,
                           false, false);
    if (!r) co_return r.error();
    auto parsed = parse_login_response(parser_, r->body);
    if (!parsed) co_return malformed<login_response>("POST /login", parsed.error());
    co_return login_response{parsed->user_id, parsed->access_token, parsed->device_id};
}

boost::asio::awaitable<api_result<login_response>> matrix_api::whoami() {
    auto r = co_await call(http_method::get, "/account/whoami", {}, default_timeout, true, true);
    if (!r) co_return r.error();
    auto parsed = parse_whoami_response(parser_, r->body);
    if (!parsed) co_return malformed<login_response>("GET /account/whoami", parsed.error());
    co_return login_response{parsed->user_id, {}, parsed->device_id};
}

boost::asio::awaitable<api_result<std::string>> matrix_api::create_filter(std::string user_id,
                                                                          std::string filter_json) {
    auto r = co_await call(http_method::post,
                           "/user/" + percent_encode_path_segment(user_id) + "/filter",
                           std::move(filter_json), default_timeout, true, true);
    if (!r) co_return r.error();
    auto parsed = parse_filter_response(parser_, r->body);
    if (!parsed) co_return malformed<std::string>("POST /user/…/filter", parsed.error());
    co_return std::move(*parsed);
}

boost::asio::awaitable<api_result<sync_response>> matrix_api::sync(
    std::string since, std::string filter_id, std::chrono::milliseconds timeout) {
    std::string path = "/sync?timeout=" + std::to_string(timeout.count());
    if (!filter_id.empty()) path += "&filter=" + percent_encode_query_value(filter_id);
    if (!since.empty()) path += "&since=" + percent_encode_query_value(since);
    auto r =
        co_await call(http_method::get, std::move(path), {}, timeout + long_poll_slack, true, true);
    if (!r) co_return r.error();
    auto parsed = parse_sync_response(parser_, r->body);
    if (!parsed) co_return malformed<sync_response>("GET /sync", parsed.error());
    parsed->body = std::move(r->body);
    co_return std::move(*parsed);
}

boost::asio::awaitable<api_result<keys_query_answer>> matrix_api::keys_query(
    std::vector<std::string> user_ids, std::chrono::milliseconds server_timeout) {
    json::object users;
    for (auto& u : user_ids)
        users.emplace(std::move(u), json::array{});
    json::value body =
        json::object{{"device_keys", std::move(users)}, {"timeout", server_timeout.count()}};
    auto r = co_await call(http_method::post, "/keys/query", json::to_canonical(body),
                           server_timeout + default_timeout, true, true);
    if (!r) co_return r.error();
    auto answer = index_keys_query_answer(parser_, std::move(r->body));
    if (!answer) co_return malformed<keys_query_answer>("POST /keys/query", answer.error());
    co_return std::move(*answer);
}

boost::asio::awaitable<api_result<keys_query_response>> matrix_api::keys_query_parsed(
    std::vector<std::string> user_ids, std::chrono::milliseconds server_timeout) {
    auto answer = co_await keys_query(std::move(user_ids), server_timeout);
    if (!answer) co_return answer.error();
    std::vector<const user_section*> users;
    for (const auto& user : answer->users)
        users.push_back(&user);
    auto parsed = parse_user_parts(parser_, *answer, users);
    if (!parsed) co_return malformed<keys_query_response>("POST /keys/query", parsed.error());
    parsed->failures = std::move(answer->failures);
    parsed->dropped += answer->dropped;
    co_return std::move(*parsed);
}

boost::asio::awaitable<api_result<keys_changes_response>> matrix_api::keys_changes(std::string from,
                                                                                   std::string to) {
    auto r = co_await call(http_method::get,
                           "/keys/changes?from=" + percent_encode_query_value(from) +
                               "&to=" + percent_encode_query_value(to),
                           {}, default_timeout, true, true);
    if (!r) co_return r.error();
    auto parsed = parse_keys_changes_response(parser_, r->body);
    if (!parsed) co_return malformed<keys_changes_response>("GET /keys/changes", parsed.error());
    co_return std::move(*parsed);
}

boost::asio::awaitable<api_result<std::map<std::string, std::int64_t>>> matrix_api::keys_upload(
    std::string body) {
    // Idempotent: the body is the same bytes on every try, and the server takes a key it
    // already has again without complaint.
    auto r = co_await call(http_method::post, "/keys/upload", std::move(body), default_timeout,
                           true, true);
    if (!r) co_return r.error();
    auto counts = parse_keys_upload_response(r->body);
    if (!counts) {
        co_return malformed<std::map<std::string, std::int64_t>>("POST /keys/upload",
                                                                 counts.error());
    }
    co_return std::move(*counts);
}

boost::asio::awaitable<api_result<void>> matrix_api::device_signing_upload(
    std::string body, std::optional<std::string> auth) {
    if (auth) {
        // The body is a canonical object: splice "auth" in as its first member.
        std::string rest = body.size() > 2 ? "," + body.substr(1) : "}";
        body = "{\"auth\":" + *auth + rest;
    }
    auto r = co_await call(http_method::post, "/keys/device_signing/upload", std::move(body),
                           default_timeout, true, true);
    if (!r) co_return r.error();
    co_return api_result<void>{};
}

boost::asio::awaitable<api_result<std::vector<std::string>>> matrix_api::signatures_upload(
    std::string body) {
    auto r = co_await call(http_method::post, "/keys/signatures/upload", std::move(body),
                           default_timeout, true, true);
    if (!r) co_return r.error();
    auto failures = parse_signatures_upload_response(r->body);
    if (!failures) {
        co_return malformed<std::vector<std::string>>("POST /keys/signatures/upload",
                                                      failures.error());
    }
    co_return std::move(*failures);
}

}  // namespace devlist::sync
