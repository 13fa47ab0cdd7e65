#include "tests/homeserver/client_api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace devlist::testing {

namespace {

template <class... Ts>
struct overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX decoding; a malformed escape is kept as it is.
std::string percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%' && i + 2 < text.size()) {
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                out += static_cast<char>(high * 16 + low);
                i += 2;
                continue;
            }
        }
        out += (plus_is_space && c == '+') ? ' ' : c;
    }
    return out;
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> segments;
    std::size_t start = 0;
    if (path.starts_with('/')) start = 1;
    while (start <= path.size()) {
        const auto slash = path.find('/', start);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        segments.push_back(percent_decode(path.substr(start, end - start), false));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return segments;
}

std::map<std::string, std::string, std::less<>> parse_query(std::string_view query) {
    std::map<std::string, std::string, std::less<>> params;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        params[percent_decode(pair.substr(0, eq), true)] =
            eq == std::string_view::npos ? std::string{}
                                         : percent_decode(pair.substr(eq + 1), true);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return params;
}

std::string bearer_token(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
    }
    return std::string(authorization.substr(scheme.size()));
}

const std::string* string_member(const json::value& object, std::string_view key) {
    const json::value* member = object.find(key);
    return member && member->is_string() ? &member->as_string() : nullptr;
}

}  // namespace

reply::answer matrix_error(unsigned status, std::string_view errcode, std::string_view message) {
    return json_answer(status, json::object{{"errcode", errcode}, {"error", message}});
}

reply::answer json_answer(unsigned status, const json::value& body) {
    return {.status = status, .body = json::to_canonical(body)};
}

const std::string* api_request::query_param(std::string_view name) const {
    const auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
}

std::optional<stream_position> parse_sync_token(std::string_view token) {
    if (!token.starts_with('s') || token.size() < 2) return std::nullopt;
    stream_position position = 0;
    const auto* first = token.data() + 1;
    const auto* last = token.data() + token.size();
    const auto [end, ec] = std::from_chars(first, last, position);
    if (ec != std::errc{} || end != last || position < 0) return std::nullopt;
    return position;
}

std::string make_sync_token(stream_position position) {
    return "s" + std::to_string(position);
}

// ---- routing ----

struct client_api::route {
    std::string_view method;
    std::string_view pattern;  // below /_matrix/client/<version>/; "{}" is a path parameter
    endpoint handler;
    bool needs_auth = true;
    bool json_body = false;
};

const std::vector<client_api::route>& client_api::routes() {
    static const std::vector<route> table{
        {"GET", "login", &client_api::login_flows, false, false},
        {"POST", "login", &client_api::login, false, true},
        {"POST", "logout", &client_api::logout},
        {"GET", "account/whoami", &client_api::whoami},
        {"POST", "user/{}/filter", &client_api::create_filter, true, true},
        {"GET", "user/{}/filter/{}", &client_api::get_filter},
        {"GET", "rooms/{}/members", &client_api::room_members},
        {"GET", "sync", &client_api::sync},
        {"POST", "keys/upload", &client_api::keys_upload, true, true},
        {"POST", "keys/query", &client_api::keys_query, true, true},
        {"POST", "keys/claim", &client_api::keys_claim, true, true},
        {"GET", "keys/changes", &client_api::keys_changes},
        {"POST", "keys/device_signing/upload", &client_api::device_signing_upload, true, true},
        {"POST", "keys/signatures/upload", &client_api::signatures_upload, true, true},
        {"PUT", "sendToDevice/{}/{}", &client_api::send_to_device, true, true},
    };
    return table;
}

client_api::client_api(server_model& model, fault_queue& faults, server_behaviour behaviour)
    : model_(model), faults_(faults), behaviour_(behaviour) {}

std::string client_api::decoded_path(std::string_view target) {
    const std::string_view path = target.substr(0, target.find('?'));
    std::string decoded;
    for (const auto& segment : split_path(path)) {
        decoded += "/" + segment;
    }
    return decoded;
}

std::string client_api::user_of(const http_request& request) {
    const auto* record = model_.find_access_token(bearer_token(request.authorization));
    return record ? record->user_id : std::string{};
}

http_reply client_api::handle(const http_request& request, bool first_attempt) {
    if (first_attempt) {
        if (auto fault = faults_.take(request.method, decoded_path(request.target))) {
            if (auto reply = apply_fault(*fault, request)) return std::move(*reply);
        }
    }
    return dispatch(request, true);
}

std::optional<http_reply> client_api::apply_fault(const fault_kind& fault,
                                                  const http_request& request) {
    const auto now = std::chrono::steady_clock::now();
    return std::visit(
        overloaded{
            [&](const fault_action::delay& f) -> http_reply {
                return reply::delay{now + f.duration};
            },
            [&](const fault_action::rate_limit& f) -> http_reply {
                const auto ms = f.retry_after.count();
                reply::answer answer = json_answer(429, json::object{
                                                            {"errcode", "M_LIMIT_EXCEEDED"},
                                                            {"error", "Too Many Requests"},
                                                            {"retry_after_ms", ms},
                                                        });
                answer.extra_headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
                return answer;
            },
            [&](const fault_action::server_error& f) -> http_reply {
                return matrix_error(f.status, "M_UNKNOWN", "Internal server error");
            },
            [&](const fault_action::drop_connection&) -> http_reply { return reply::drop{}; },
            [&](const fault_action::truncate_body&) -> http_reply {
                http_reply normal = dispatch(request, false);
                if (auto* answer = std::get_if<reply::answer>(&normal)) {
                    return reply::truncated{std::move(*answer)};
                }
                return normal;
            },
            [&](const fault_action::raw_response& f) -> http_reply {
                return reply::answer{
                    .status = f.status, .body = f.body, .content_type = f.content_type};
            },
            [&](const fault_action::hang&) -> http_reply { return reply::hang{}; },
            [&](const fault_action::lose_answer&) -> http_reply {
                dispatch(request, false);
                return reply::drop{};
            },
            [&](const fault_action::reject_sync_token&) -> http_reply {
                return matrix_error(400, "M_UNKNOWN", "Invalid stream token");
            },
            [&](const fault_action::revoke_access_token&) -> http_reply {
                model_.revoke_access_token(bearer_token(request.authorization));
                return matrix_error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token");
            },
        },
        fault);
}

http_reply client_api::dispatch(const http_request& request, bool may_long_poll) {
    const std::string_view target = request.target;
    const auto question = target.find('?');
    const std::vector<std::string> segments = split_path(target.substr(0, question));

    if (segments.size() < 3 || segments[0] != "_matrix" || segments[1] != "client") {
        return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request");
    }
    if (segments.size() == 3 && segments[2] == "versions") {
        if (request.method != "GET") {
            return matrix_error(405, "M_UNRECOGNIZED", "Unrecognized request");
        }
        return versions(api_request{.http = request});
    }
    if (segments[2] != "v3" && segments[2] != "r0") {
        return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request");
    }

    bool path_known = false;
    for (const route& r : routes()) {
        std::vector<std::string> params;
        std::size_t i = 3;
        bool matches = true;
        std::string_view pattern = r.pattern;
        while (matches && !pattern.empty()) {
            const auto slash = pattern.find('/');
            const std::string_view part = pattern.substr(0, slash);
            if (i >= segments.size()) {
                matches = false;
            } else if (part == "{}") {
                params.push_back(segments[i]);
            } else {
                matches = part == segments[i];
            }
            ++i;
            pattern =
                slash == std::string_view::npos ? std::string_view{} : pattern.substr(slash + 1);
        }
        if (!matches || i != segments.size()) continue;
        path_known = true;
        if (r.method != request.method) continue;

        api_request call{.http = request,
                         .params = std::move(params),
                         .query = question == std::string_view::npos
                                      ? decltype(api_request::query){}
                                      : parse_query(target.substr(question + 1)),
                         .may_long_poll = may_long_poll};
        if (r.needs_auth) {
            call.access_token = bearer_token(request.authorization);
            if (call.access_token.empty()) {
                return matrix_error(401, "M_MISSING_TOKEN", "Missing access token");
            }
            const auto* record = model_.find_access_token(call.access_token);
            if (!record || record->revoked) {
                return json_answer(401, json::object{{"errcode", "M_UNKNOWN_TOKEN"},
                                                     {"error", "Unrecognised access token"},
                                                     {"soft_logout", false}});
            }
            call.auth = record;
        }
        if (r.json_body) {
            auto body = json::parse(request.body);
            if (!body) return matrix_error(400, "M_NOT_JSON", "Content not JSON.");
            if (!body->is_object()) {
                return matrix_error(400, "M_BAD_JSON", "Content must be a JSON object.");
            }
            call.body = std::move(*body);
        }
        return (this->*r.handler)(call);
    }
    if (path_known) return matrix_error(405, "M_UNRECOGNIZED", "Unrecognized request");
    return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request");
}

// ---- endpoints ----

http_reply client_api::versions(const api_request&) {
    json::array versions;
    for (const char* v : {"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8",
                          "v1.9", "v1.10", "v1.11"}) {
        versions.emplace_back(v);
    }
    return json_answer(200, json::object{{"versions", std::move(versions)},
                                         {"unstable_features", json::object{}}});
}

http_reply client_api::login_flows(const api_request&) {
    return json_answer(
        200, json::object{{"flows", json::array{json::object{{"type", "m.login.password"}}}}});
}

http_reply client_api::login(const api_request& request) {
    const json::value& body = request.body;
    const std::string* type = string_member(body, "type");
    if (!type || *type != "m.login.password") {
        return matrix_error(400, "M_UNKNOWN",
                            "Unknown login type " + (type ? *type : std::string("(none)")));
    }
    const std::string* name = string_member(body, "user");  // the legacy form
    if (const json::value* identifier = body.find("identifier")) {
        const std::string* id_type =
            identifier->is_object() ? string_member(*identifier, "type") : nullptr;
        if (!id_type || *id_type != "m.id.user") {
            return matrix_error(400, "M_UNKNOWN", "Unknown login identifier type");
        }
        name = string_member(*identifier, "user");
    }
    if (!name) return matrix_error(400, "M_INVALID_PARAM", "User identifier is missing 'user'");
    const std::string* password = string_member(body, "password");
    if (!password) return matrix_error(400, "M_MISSING_PARAM", "Missing parameter: password");

    const std::string user_id = model_.qualify_user_id(*name);
    const user_record* user = model_.find_user(user_id);
    if (!user || server_name_of(user_id) != model_.server_name() || user->password.empty() ||
        user->password != *password) {
        return matrix_error(403, "M_FORBIDDEN", "Invalid username or password");
    }
    const std::string* requested_device = string_member(body, "device_id");
    const std::string device_id = requested_device && !requested_device->empty()
                                      ? *requested_device
                                      : model_.random_device_id();
    const std::string* display_name = string_member(body, "initial_device_display_name");
    model_.ensure_device(user_id, device_id, display_name ? *display_name : std::string{});
    const std::string token = model_.issue_access_token(user_id, device_id);
    return json_answer(200, json::object{{"user_id", user_id},
                                         {"access_token", token},
                                         {"device_id", device_id},
                                         {"home_server", model_.server_name()}});
}

http_reply client_api::logout(const api_request& request) {
    model_.revoke_access_token(request.access_token);
    return json_answer(200, json::object{});
}

http_reply client_api::whoami(const api_request& request) {
    return json_answer(200, json::object{{"user_id", request.auth->user_id},
                                         {"device_id", request.auth->device_id},
                                         {"is_guest", false}});
}

http_reply client_api::create_filter(const api_request& request) {
    if (request.params[0] != request.auth->user_id) {
        return matrix_error(403, "M_FORBIDDEN", "Cannot create filters for other users");
    }
    user_record* user = model_.find_user(request.auth->user_id);
    user->filters.push_back(request.body);
    return json_answer(200, json::object{{"filter_id", std::to_string(user->filters.size() - 1)}});
}

http_reply client_api::get_filter(const api_request& request) {
    if (request.params[0] != request.auth->user_id) {
        return matrix_error(403, "M_FORBIDDEN", "Cannot get filters for other users");
    }
    const user_record* user = model_.find_user(request.auth->user_id);
    std::size_t index = 0;
    const std::string& id = request.params[1];
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), index);
    if (ec != std::errc{} || end != id.data() + id.size() || index >= user->filters.size()) {
        return matrix_error(404, "M_NOT_FOUND", "No such filter");
    }
    return json_answer(200, user->filters[index]);
}

http_reply client_api::room_members(const api_request& request) {
    const std::string& room_id = request.params[0];
    const std::string& user_id = request.auth->user_id;
    const room_record* room = model_.find_room(room_id);
    const auto not_in_room = [&] {
        return matrix_error(
            403, "M_FORBIDDEN",
            "User " + user_id + " not in room " + room_id + ", and room previews are disabled");
    };
    if (!room) return not_in_room();
    // A member sees the present; someone who left sees the room as it was when they left.
    stream_position at = model_.position();
    const auto m = server_model::membership_at(*room, user_id, at);
    if (m != membership::join) {
        if (m != membership::leave) return not_in_room();
        at = server_model::membership_since(*room, user_id, at);
    }
    const std::string* only = request.query_param("membership");
    const std::string* except = request.query_param("not_membership");
    std::map<std::string, const room_event*> latest;  // by state key
    for (const auto& event : room->events) {
        if (event.position > at) break;
        if (event.type == "m.room.member") latest[event.state_key] = &event;
    }
    json::array chunk;
    for (const auto& [member, event] : latest) {
        const std::string& value = event->event.find("content")->find("membership")->as_string();
        if ((only && value != *only) || (except && value == *except)) continue;
        json::value with_room = event->event;
        with_room["room_id"] = room_id;
        chunk.push_back(std::move(with_room));
    }
    return json_answer(200, json::object{{"chunk", std::move(chunk)}});
}

http_reply client_api::send_to_device(const api_request& request) {
    const std::string& type = request.params[0];
    const std::string& txn_id = request.params[1];
    const json::value* messages = request.body.find("messages");
    if (!messages || !messages->is_object()) {
        return matrix_error(400, "M_BAD_JSON", "'messages' must be an object");
    }
    if (model_.seen_transaction(request.access_token, txn_id)) {
        return json_answer(200, json::object{});  // a retry: delivered the first time
    }
    for (const auto& [user_id, by_device] : messages->as_object()) {
        if (!by_device.is_object()) continue;
        for (const auto& [device_id, content] : by_device.as_object()) {
            model_.send_to_device(request.auth->user_id, user_id, device_id, type, content);
        }
    }
    return json_answer(200, json::object{});
}

}  // namespace devlist::testing
