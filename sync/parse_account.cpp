#include "sync/parse_account.hpp"

#include <initializer_list>
#include <utility>

#include "sync/matrix_ids.hpp"
#include "sync/parse_json_detail.hpp"

namespace devlist::sync {
namespace {

// Reads the named top-level string members of a small object answer.
result<void> read_strings(parse_context& ctx, const std::string& body, std::string_view what,
                          std::initializer_list<std::pair<std::string_view, std::string*>> wanted) {
    auto& impl = ctx.get();
    auto doc =
        detail::iterate(impl.parser, impl.copy, body.data(), body.size(), body.capacity(), what);
    if (!doc) return doc.error();
    od::object root;
    if (auto e = detail::root_object(*doc, body, what, root)) return std::move(*e);
    // A key named twice (two access tokens) would leave the choice to the reader: refused.
    detail::key_set seen;
    detail::refusal why;
    for (auto f : root) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value))
            return detail::json_error(e, what);
        if (!seen.insert(key)) {
            why.duplicate(key, "the " + std::string(what));
            return why.take(detail::refused, what);
        }
        for (const auto& [name, out] : wanted) {
            std::string_view s;
            if (key == name && detail::get_string(value, s)) *out = s;
        }
    }
    if (detail::has_trailing_content(*doc)) {
        return detail::json_error(simdjson::TRAILING_CONTENT, what);
    }
    return {};
}

}  // namespace

result<account_answer> parse_login_response(parse_context& ctx, const std::string& body) {
    account_answer a;
    auto r = read_strings(
        ctx, body, "/login response",
        {{"user_id", &a.user_id}, {"access_token", &a.access_token}, {"device_id", &a.device_id}});
    if (!r) return r.error();
    if (!is_valid_user_id(a.user_id) || a.access_token.empty() ||
        !is_valid_device_id(a.device_id)) {
        return error{errc::json_type,
                     "/login response lacks a valid user_id, access_token or device_id"};
    }
    return a;
}

result<account_answer> parse_whoami_response(parse_context& ctx, const std::string& body) {
    account_answer a;
    auto r = read_strings(ctx, body, "/account/whoami response",
                          {{"user_id", &a.user_id}, {"device_id", &a.device_id}});
    if (!r) return r.error();
    if (!is_valid_user_id(a.user_id)) {
        return error{errc::json_type, "/account/whoami response lacks a valid user_id"};
    }
    return a;
}

result<std::string> parse_filter_response(parse_context& ctx, const std::string& body) {
    std::string filter_id;
    auto r = read_strings(ctx, body, "filter response", {{"filter_id", &filter_id}});
    if (!r) return r.error();
    if (filter_id.empty()) return error{errc::json_type, "filter response lacks filter_id"};
    return filter_id;
}

}  // namespace devlist::sync
