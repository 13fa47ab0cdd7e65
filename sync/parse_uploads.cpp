#include "sync/parse_uploads.hpp"

#include "crypto/json_value.hpp"

namespace devlist::sync {

namespace {

const json::value* member(const json::value& v, std::string_view key) {
    return v.is_object() ? v.find(key) : nullptr;
}

std::optional<std::vector<std::string>> string_array(const json::value* v) {
    if (!v || !v->is_array()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& e : v->as_array()) {
        if (!e.is_string()) return std::nullopt;
        out.push_back(e.as_string());
    }
    return out;
}

}  // namespace

result<std::map<std::string, std::int64_t>> parse_keys_upload_response(std::string_view body) {
    auto doc = json::parse(body);
    if (!doc) return doc.error();
    const json::value* counts = member(*doc, "one_time_key_counts");
    if (!counts || !counts->is_object()) {
        return error{errc::json_type, "one_time_key_counts is missing or not an object"};
    }
    std::map<std::string, std::int64_t> out;
    for (const auto& [algorithm, count] : counts->as_object()) {
        if (!count.is_integer() || count.as_integer() < 0) {
            return error{errc::json_type,
                         "one_time_key_counts." + algorithm + " is not a non-negative integer"};
        }
        out.emplace(algorithm, count.as_integer());
    }
    return out;
}

std::optional<uia_challenge> parse_uia_challenge(std::string_view body) {
    auto doc = json::parse(body);
    if (!doc || !doc->is_object()) return std::nullopt;
    const json::value* flows = member(*doc, "flows");
    if (!flows || !flows->is_array()) return std::nullopt;
    uia_challenge c;
    for (const auto& flow : flows->as_array()) {
        auto stages = string_array(member(flow, "stages"));
        if (!stages) return std::nullopt;
        c.flows.push_back(std::move(*stages));
    }
    if (const auto* s = member(*doc, "session"); s && s->is_string()) c.session = s->as_string();
    if (auto done = string_array(member(*doc, "completed"))) c.completed = std::move(*done);
    if (const auto* e = member(*doc, "errcode"); e && e->is_string()) c.errcode = e->as_string();
    if (const auto* e = member(*doc, "error"); e && e->is_string()) c.error = e->as_string();
    return c;
}

result<std::vector<std::string>> parse_signatures_upload_response(std::string_view body) {
    auto doc = json::parse(body);
    if (!doc) return doc.error();
    if (!doc->is_object()) return error{errc::json_type, "the answer is not an object"};
    std::vector<std::string> out;
    const json::value* failures = member(*doc, "failures");
    if (!failures) return out;
    if (!failures->is_object()) return error{errc::json_type, "failures is not an object"};
    for (const auto& [user_id, by_key] : failures->as_object()) {
        if (!by_key.is_object()) {
            out.push_back(user_id + ": " + json::to_canonical(by_key));
            continue;
        }
        for (const auto& [key_id, reason] : by_key.as_object())
            out.push_back(user_id + "/" + key_id + ": " + json::to_canonical(reason));
    }
    return out;
}

std::optional<std::string> one_time_key_conflict_id(std::string_view message) {
    constexpr std::string_view head = "One time key ";
    const auto start = message.find(head);
    if (start == std::string_view::npos) return std::nullopt;
    auto rest = message.substr(start + head.size());
    const auto end = rest.find(' ');
    if (end == std::string_view::npos || !rest.substr(end).starts_with(" already exists")) {
        return std::nullopt;
    }
    auto full = rest.substr(0, end);
    const auto colon = full.find(':');
    if (colon == std::string_view::npos || colon + 1 == full.size()) return std::nullopt;
    return std::string(full.substr(colon + 1));
}

}  // namespace devlist::sync
