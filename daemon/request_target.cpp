#include "daemon/request_target.hpp"

namespace devlist::daemon {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const std::string* request_target::param(std::string_view name) const {
    for (const auto& [key, value] : query) {
        if (key == name) return &value;
    }
    return nullptr;
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        int high = hex_value(text[i + 1]);
        int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) return std::nullopt;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return out;
}

result<request_target> parse_request_target(std::string_view target) {
    if (target.empty() || target.front() != '/') {
        return error{errc::invalid_argument, "the request target must be a path starting with '/'"};
    }
    request_target out;
    std::string_view path = target;
    std::string_view query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    // A fragment is never sent by HTTP clients; refusing it keeps '#' from hiding in a value.
    if (target.find('#') != std::string_view::npos) {
        return error{errc::invalid_argument, "the request target must not hold a fragment ('#')"};
    }
    path.remove_prefix(1);
    for (;;) {
        auto slash = path.find('/');
        auto segment = percent_decode(path.substr(0, slash));
        if (!segment) {
            return error{errc::invalid_argument, "bad percent-encoding in the request path"};
        }
        out.segments.push_back(std::move(*segment));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq));
        auto value =
            percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!key || !value) {
            return error{errc::invalid_argument, "bad percent-encoding in the query"};
        }
        if (out.param(*key)) {
            return error{errc::invalid_argument, "query parameter '" + *key + "' is given twice"};
        }
        out.query.emplace_back(std::move(*key), std::move(*value));
    }
    return out;
}

}  // namespace devlist::daemon
