#include "daemon/http_answer.hpp"

#include <boost/beast/http/status.hpp>

#include <charconv>

namespace devlist::daemon {

namespace {

void append_number(std::string& out, std::size_t n) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
}

}  // namespace

void append_http_answer(std::string& out, const api_response& response, unsigned version,
                        bool keep_alive) {
    namespace http = boost::beast::http;
    out += "HTTP/";
    out += static_cast<char>('0' + version / 10);
    out += '.';
    out += static_cast<char>('0' + version % 10);
    out += ' ';
    append_number(out, response.status);
    out += ' ';
    // The reason phrase Beast writes for the status; every status this API answers has one.
    auto reason = http::obsolete_reason(static_cast<http::status>(response.status));
    out.append(reason.data(), reason.size());
    out += "\r\nServer: devlistd\r\nContent-Type: ";
    out += response.content_type;
    if (!response.allow.empty()) {
        out += "\r\nAllow: ";
        out += response.allow;
    }
    // What Beast's keep_alive() leaves in a response without a Connection field before.
    if (version < 11 && keep_alive) out += "\r\nConnection: keep-alive";
    if (version >= 11 && !keep_alive) out += "\r\nConnection: close";
    out += "\r\nContent-Length: ";
    append_number(out, response.body.size());
    out += "\r\n\r\n";
    out += response.body;
}

}  // namespace devlist::daemon
