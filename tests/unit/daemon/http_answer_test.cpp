// The server's own answer writer against Beast's serializer: the bytes on the wire must not
// change when the server writes several answers at once.
#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <string>

#include "daemon/http_answer.hpp"
#include "daemon/metrics_text.hpp"

namespace devlist::daemon::test {
namespace {

namespace http = boost::beast::http;

// What the server wrote before it had its own writer: the response built field by field as
// below and serialized by Beast.
std::string as_beast_writes_it(const api_response& response, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    res.set(http::field::server, "devlistd");
    res.set(http::field::content_type, response.content_type);
    if (!response.allow.empty()) res.set(http::field::allow, response.allow);
    res.keep_alive(keep_alive);
    res.body() = response.body;
    res.prepare_payload();
    http::response_serializer<http::string_body> serializer(res);
    std::string out;
    boost::system::error_code ec;
    while (!serializer.is_done()) {
        serializer.next(ec, [&](boost::system::error_code&, const auto& buffers) {
            std::size_t n = 0;
            for (auto b : boost::beast::buffers_range_ref(buffers)) {
                out.append(static_cast<const char*>(b.data()), b.size());
                n += b.size();
            }
            serializer.consume(n);
        });
        if (ec) ADD_FAILURE() << ec.message();
    }
    return out;
}

TEST(http_answer_test, writes_what_beast_writes_for_every_kind_of_answer) {
    std::vector<api_response> answers;
    answers.push_back({200, "application/json", R"({"user_id":"@a:b","devices":[]})", ""});
    answers.push_back({202, "application/json", R"({"tracked":true})", ""});
    answers.push_back({200, std::string(metrics_content_type), "devlist_up 1\n", ""});
    answers.push_back({200, "application/json", "", ""});
    for (unsigned status : {400u, 403u, 404u, 408u, 413u, 431u, 500u, 503u}) {
        answers.push_back(socket_api::error_response(status, "M_UNKNOWN", "why"));
    }
    auto not_allowed = socket_api::error_response(405, "M_UNRECOGNIZED", "use PUT, DELETE");
    not_allowed.allow = "PUT, DELETE";
    answers.push_back(not_allowed);
    answers.push_back({200, "application/json", std::string(100000, 'x'), ""});
    for (const auto& a : answers) {
        for (unsigned version : {10u, 11u}) {
            for (bool keep_alive : {true, false}) {
                std::string ours;
                append_http_answer(ours, a, version, keep_alive);
                EXPECT_EQ(ours, as_beast_writes_it(a, version, keep_alive))
                    << a.status << " HTTP " << version << " keep-alive " << keep_alive;
            }
        }
    }
}

TEST(http_answer_test, answers_are_appended_in_order) {
    std::string out = "before";
    append_http_answer(out, {200, "application/json", "{}", ""}, 11, true);
    append_http_answer(out, socket_api::error_response(404, "M_NOT_FOUND", "no"), 11, false);
    EXPECT_EQ(out.rfind("before", 0), 0u);
    const auto first = out.find("HTTP/1.1 200 OK\r\n");
    const auto second = out.find("HTTP/1.1 404 Not Found\r\n");
    ASSERT_NE(first, std::string::npos);
    ASSERT_NE(second, std::string::npos);
    EXPECT_LT(first, second);
    EXPECT_NE(out.find("Connection: close\r\n", second), std::string::npos);
    EXPECT_EQ(out.find("Connection:"), out.find("Connection: close"));
}

}  // namespace
}  // namespace devlist::daemon::test
