#include "daemon/socket_api.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"
#include "daemon/request_target.hpp"
#include "devlist/json.hpp"
#include "sync/api_json.hpp"
#include "sync/api_model.hpp"
#include "sync/matrix_ids.hpp"

namespace devlist::daemon {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr std::string_view one_time_key_prefix = "signed_curve25519:";
// Request bodies are a few small fields; anything deeper is not ours.
constexpr json::limits body_limits{64 * 1024, 8};

api_response json_response(unsigned status, const json::value& v) {
    api_response r;
    r.status = status;
    r.body = json::to_canonical(v);
    return r;
}

// A 200 answer rendered by include/devlist/json.hpp, which the library answers with too.
api_response ok(std::string body) {
    api_response r;
    r.body = std::move(body);
    return r;
}

// A result's error as an answer: bad input is the client's, anything else is ours.
api_response from_error(const error& e) {
    if (e == errc::invalid_argument) {
        return socket_api::error_response(400, "M_INVALID_PARAM", e.detail);
    }
    if (e == errc::storage_busy) {
        return socket_api::error_response(503, "M_UNKNOWN", "the database is busy; retry");
    }
    return socket_api::error_response(500, "M_UNKNOWN", e.message());
}

api_response invalid_param(std::string_view message) {
    return socket_api::error_response(400, "M_INVALID_PARAM", message);
}

api_response not_found(std::string_view message) {
    return socket_api::error_response(404, "M_NOT_FOUND", message);
}

template <class T>
json::value nullable(const std::optional<T>& v) {
    if (!v) return nullptr;
    return json::value(*v);
}

// A decimal integer from 0 to max, nothing else (no sign, no spaces).
std::optional<std::int64_t> parse_count(std::string_view text, std::int64_t max) {
    std::int64_t v = 0;
    if (text.empty() || text.size() > 16) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v > max) {
        return std::nullopt;
    }
    return v;
}

result<std::optional<std::int64_t>> count_param(const request_target& t, std::string_view name,
                                                std::int64_t max) {
    const std::string* text = t.param(name);
    if (!text) return std::optional<std::int64_t>{};
    auto v = parse_count(*text, max);
    if (!v) {
        return error{errc::invalid_argument, "query parameter '" + std::string(name) +
                                                 "' must be an integer from 0 to " +
                                                 std::to_string(max)};
    }
    return std::optional<std::int64_t>{*v};
}

result<bool> bool_param(const request_target& t, std::string_view name) {
    const std::string* text = t.param(name);
    if (!text || *text == "false") return false;
    if (*text == "true") return true;
    return error{errc::invalid_argument,
                 "query parameter '" + std::string(name) + "' must be true or false"};
}

// The body of a request that must be a JSON object.
result<json::value> object_body(const std::string& body) {
    if (body.empty()) return error{errc::json_syntax, "the request needs a JSON object body"};
    auto v = json::parse(body, body_limits);
    if (!v) return v.error();
    if (!v->is_object()) return error{errc::json_type, "the request body must be a JSON object"};
    return v;
}

api_response body_error(const error& e) {
    if (e == errc::json_type) return socket_api::error_response(400, "M_BAD_JSON", e.detail);
    return socket_api::error_response(400, "M_NOT_JSON",
                                      "the request body is not valid JSON: " + e.message());
}

// A string member of a request body: absent is nullopt, another type is an error.
result<std::optional<std::string>> string_member(const json::value& body, std::string_view name) {
    const json::value* v = body.find(name);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) {
        return error{errc::json_type, "'" + std::string(name) + "' must be a string"};
    }
    return std::optional<std::string>{v->as_string()};
}

}  // namespace

// The handlers, one per endpoint; a friend so that socket_api.hpp stays a short list.
struct api_handlers {
    socket_api& api;

    template <class... Parts>
    void log(sync::log_level level, const Parts&... parts) const {
        if (!api.log_) return;
        std::string line = "socket API: ";
        (line.append(parts), ...);
        api.log_(level, line);
    }

    storage::store& store() const { return api.store_; }
    sync::sync_engine& engine() const { return api.engine_; }
    const socket_api_options& options() const { return api.options_; }

    steady_clock::time_point deadline_after(std::int64_t timeout_ms) const {
        auto wait = std::min(milliseconds(timeout_ms), options().max_wait);
        return steady_clock::now() + wait;
    }

    api_response status() const {
        auto last_cursor = store().outbox().last_cursor();
        if (!last_cursor) return from_error(last_cursor.error());
        return ok(to_json(sync::to_public(engine().status(), *last_cursor, options().version)));
    }

    api_response devices_now(const std::string& user_id) const {
        auto answer = sync::read_user_devices(store(), user_id);
        if (!answer) return from_error(answer.error());
        return ok(to_json(*answer));
    }

    asio::awaitable<api_response> fresh_devices(std::string user_id, std::int64_t timeout_ms) {
        auto answer = co_await sync::read_fresh_user_devices(engine(), store(), user_id,
                                                             deadline_after(timeout_ms));
        if (!answer) co_return from_error(answer.error());
        co_return ok(to_json(*answer));
    }

    api_response by_curve25519(const std::string& key) const {
        if (!crypto::curve25519_public_key::from_base64(key)) {
            return invalid_param(
                "not a Curve25519 key (43 characters of unpadded base64; '/' as %2F)");
        }
        auto d = sync::read_device_by_curve25519(store(), key);
        if (!d) return from_error(d.error());
        if (!*d) return not_found("no known device has this Curve25519 key");
        return ok(to_json(**d));
    }

    api_response tracked() const {
        auto users = sync::read_tracked_users(store());
        if (!users) return from_error(users.error());
        return ok(to_json(*users));
    }

    api_response tracking_answer(const std::string& user_id, unsigned status,
                                 json::object extra) const {
        auto t = store().tracking().find(user_id);
        if (!t) return from_error(t.error());
        json::object o = std::move(extra);
        o["user_id"] = user_id;
        o["tracked"] = t->has_value();
        o["outdated"] = !*t || (*t)->outdated;
        o["reasons"] =
            *t ? sync::reasons_value(sync::to_public((*t)->reasons)) : json::value(json::array{});
        return json_response(status, o);
    }

    api_response track(const std::string& user_id) {
        if (!sync::is_valid_user_id(user_id)) return invalid_param("not a valid user ID");
        if (auto r = engine().track_user(user_id); !r) return from_error(r.error());
        log(sync::log_level::info, "tracking ", user_id, " on request");
        return tracking_answer(user_id, 200, {});
    }

    api_response untrack(const std::string& user_id) {
        if (!sync::is_valid_user_id(user_id)) return invalid_param("not a valid user ID");
        auto was = engine().untrack_user(user_id);
        if (!was) return from_error(was.error());
        if (*was) log(sync::log_level::info, "no longer tracking ", user_id, " on request");
        // Still tracked afterwards when the user shares an encrypted room (or is the own user).
        return tracking_answer(user_id, 200, json::object{{"was_explicit", *was}});
    }

    api_response refresh(const std::string& user_id) {
        if (!sync::is_valid_user_id(user_id)) return invalid_param("not a valid user ID");
        auto t = store().tracking().find(user_id);
        if (!t) return from_error(t.error());
        if (!*t) return not_found(user_id + " is not tracked (PUT /v1/tracked/{user_id} first)");
        if (auto r = engine().refresh_user(user_id); !r) return from_error(r.error());
        // Accepted: the query runs in the background; GET .../devices?fresh=true waits for it.
        return tracking_answer(user_id, 202, {});
    }

    result<std::string> consumer_param(const request_target& t) {
        const std::string* name = t.param("consumer");
        if (!name) return std::string(storage::event_outbox::default_consumer);
        if (!sync::is_valid_consumer_name(*name)) {
            return error{errc::invalid_argument, "a consumer name is 1 to 64 of A-Z a-z 0-9 . _ -"};
        }
        return *name;
    }

    std::optional<std::int64_t> acknowledged_by(const std::string& consumer,
                                                std::optional<error>& failure) {
        auto all = store().outbox().consumers();
        if (!all) {
            failure = all.error();
            return std::nullopt;
        }
        for (const auto& c : *all) {
            if (c.name == consumer) return c.acknowledged;
        }
        return std::nullopt;
    }

    asio::awaitable<api_response> events(request_target target) {
        auto consumer = consumer_param(target);
        if (!consumer) co_return from_error(consumer.error());
        auto after = count_param(target, "after", json::max_safe_integer);
        if (!after) co_return from_error(after.error());
        auto timeout = count_param(target, "timeout_ms", json::max_safe_integer);
        if (!timeout) co_return from_error(timeout.error());
        auto limit =
            count_param(target, "limit", static_cast<std::int64_t>(options().max_event_limit));
        if (!limit) co_return from_error(limit.error());
        if (*limit && **limit == 0) co_return invalid_param("'limit' must be at least 1");
        const auto max_events =
            *limit ? static_cast<std::size_t>(**limit) : options().default_event_limit;

        auto& outbox = store().outbox();
        std::int64_t start = 0;
        if (*after) {
            auto last = outbox.last_cursor();
            if (!last) co_return from_error(last.error());
            // A cursor from another database (or a typo) would wait for events that never come.
            if (**after > *last) {
                co_return invalid_param("'after' is beyond the last event (" +
                                        std::to_string(*last) + ")");
            }
            start = **after;
        } else {
            // Naming a consumer registers it: it starts after the last event so far.
            if (auto r = outbox.add_consumer(*consumer); !r) co_return from_error(r.error());
            std::optional<error> failure;
            auto acknowledged = acknowledged_by(*consumer, failure);
            if (failure) co_return from_error(*failure);
            start = acknowledged.value_or(0);
        }

        // Reading after `start` rather than after the consumer's acknowledgement keeps one
        // request consistent even if another client acknowledges meanwhile.
        auto batch = co_await sync::read_events(engine(), store(), start, max_events,
                                                deadline_after(timeout->value_or(0)));
        if (!batch) co_return from_error(batch.error());
        co_return ok(to_json(*batch));
    }

    api_response acknowledge(const std::string& body_text) {
        auto body = object_body(body_text);
        if (!body) return body_error(body.error());
        const json::value* cursor = body->find("cursor");
        if (!cursor)
            return socket_api::error_response(400, "M_MISSING_PARAM", "'cursor' is required");
        if (!cursor->is_integer() || cursor->as_integer() < 0) {
            return socket_api::error_response(400, "M_BAD_JSON",
                                              "'cursor' must be a non-negative integer");
        }
        auto name = string_member(*body, "consumer");
        if (!name) return body_error(name.error());
        std::string consumer = name->value_or(std::string(storage::event_outbox::default_consumer));
        if (!sync::is_valid_consumer_name(consumer)) {
            return invalid_param("a consumer name is 1 to 64 of A-Z a-z 0-9 . _ -");
        }
        auto& outbox = store().outbox();
        std::optional<error> failure;
        // Acknowledging does not register a consumer: a misspelt name would otherwise hold
        // back pruning forever.
        if (!acknowledged_by(consumer, failure)) {
            if (failure) return from_error(*failure);
            return not_found("unknown consumer '" + consumer +
                             "' (GET /v1/events?consumer=NAME registers one)");
        }
        auto last = outbox.last_cursor();
        if (!last) return from_error(last.error());
        if (cursor->as_integer() > *last) {
            return invalid_param("'cursor' is beyond the last event (" + std::to_string(*last) +
                                 ")");
        }
        auto acknowledged = outbox.acknowledge(consumer, cursor->as_integer());
        if (!acknowledged) return from_error(acknowledged.error());
        // Events every consumer has handled are of no more use.
        if (auto pruned = outbox.prune(); !pruned) {
            log(sync::log_level::warning,
                "pruning acknowledged events failed: ", pruned.error().message());
        }
        return json_response(200,
                             json::object{{"consumer", consumer}, {"acknowledged", *acknowledged}});
    }

    api_response consumers() {
        auto all = store().outbox().consumers();
        if (!all) return from_error(all.error());
        json::array list;
        // Built member by member, not from initializer lists: GCC 12 at -O2 reports a false
        // maybe-uninitialized inside std::variant for those here.
        for (const auto& c : *all) {
            json::object entry;
            entry.emplace("name", c.name);
            entry.emplace("acknowledged", c.acknowledged);
            list.emplace_back(std::move(entry));
        }
        json::object o;
        o.emplace("consumers", std::move(list));
        return json_response(200, o);
    }

    api_response remove_consumer(const std::string& name) {
        if (!sync::is_valid_consumer_name(name)) {
            return invalid_param("a consumer name is 1 to 64 of A-Z a-z 0-9 . _ -");
        }
        if (name == storage::event_outbox::default_consumer) {
            return invalid_param("the default consumer cannot be removed");
        }
        std::optional<error> failure;
        if (!acknowledged_by(name, failure)) {
            if (failure) return from_error(*failure);
            return not_found("unknown consumer '" + name + "'");
        }
        if (auto r = store().outbox().remove_consumer(name); !r) return from_error(r.error());
        if (auto pruned = store().outbox().prune(); !pruned) {
            log(sync::log_level::warning,
                "pruning acknowledged events failed: ", pruned.error().message());
        }
        return json_response(200, json::object{{"removed", name}});
    }

    api_response security_events(const request_target& target) {
        auto limit =
            count_param(target, "limit", static_cast<std::int64_t>(options().max_security_events));
        if (!limit) return from_error(limit.error());
        auto n = static_cast<std::size_t>(limit->value_or(100));
        const std::string* user = target.param("user_id");
        if (user && !sync::is_valid_user_id(*user)) return invalid_param("not a valid user ID");
        auto events =
            user ? store().security().recent_of_user(*user, n) : store().security().recent(n);
        if (!events) return from_error(events.error());
        std::string body = "{\"events\":[";
        bool first = true;
        for (const auto& e : *events) {
            if (!first) body += ',';
            first = false;
            json::value head = json::object{{"id", e.id},
                                            {"at", e.at},
                                            {"kind", e.kind},
                                            {"user_id", nullable(e.user_id)},
                                            {"device_id", nullable(e.device_id)}};
            json::append_canonical(head, body);
            body.pop_back();
            body += ",\"detail\":";
            body += e.detail_json;
            body += '}';
        }
        body += "]}";
        api_response r;
        r.body = std::move(body);
        return r;
    }

    api_response take_one_time_key(const api_request& request) {
        auto body = object_body(request.body);
        if (!body) return body_error(body.error());
        auto key_id = string_member(*body, "key_id");
        if (!key_id) return body_error(key_id.error());
        auto public_key = string_member(*body, "public_key");
        if (!public_key) return body_error(public_key.error());
        if (key_id->has_value() == public_key->has_value()) {
            return socket_api::error_response(400, "M_BAD_JSON",
                                              "give exactly one of 'key_id' and 'public_key'");
        }
        result<std::optional<sync::private_key_handout>> taken =
            std::optional<sync::private_key_handout>{};
        if (*key_id) {
            std::string id = **key_id;
            if (id.starts_with(one_time_key_prefix)) id.erase(0, one_time_key_prefix.size());
            taken = engine().take_one_time_key(id);
        } else {
            taken = engine().take_one_time_key_by_public_key(**public_key);
        }
        if (!taken) return from_error(taken.error());
        if (!*taken) return not_found("no such one-time key (taken already, or never ours)");
        ++api.counters_.private_keys_handed_out;
        log(sync::log_level::notice, "one-time key ", (*taken)->key_id, " handed to ",
            describe(request.peer));
        return ok(to_json(sync::to_public(**taken)));
    }

    api_response fallback_keys(const api_request& request) {
        auto keys = engine().fallback_keys();
        if (!keys) return from_error(keys.error());
        std::vector<devlist::fallback_key> list;
        for (const auto& k : *keys)
            list.push_back(sync::to_public(k));
        api.counters_.private_keys_handed_out += keys->size();
        if (!keys->empty()) {
            log(sync::log_level::notice, std::to_string(keys->size()),
                " fallback private key(s) handed to ", describe(request.peer));
        }
        return ok(to_json(list));
    }

    api_response metrics() const {
        api_response r;
        r.content_type = std::string(metrics_content_type);
        r.body = render_metrics(engine().status(), api.counters_);
        return r;
    }
};

namespace {

api_response method_not_allowed(std::string allow) {
    auto r =
        socket_api::error_response(405, "M_UNRECOGNIZED", "method not allowed here; use " + allow);
    r.allow = std::move(allow);
    return r;
}

// Segments equal to pattern, where "{}" matches any one segment.
bool matches(const std::vector<std::string>& segments,
             std::initializer_list<std::string_view> pattern) {
    if (segments.size() != pattern.size()) return false;
    auto it = segments.begin();
    for (std::string_view p : pattern) {
        if (p != "{}" && *it != p) return false;
        ++it;
    }
    return true;
}

bool is_key_endpoint(const std::vector<std::string>& s) {
    return matches(s, {"v1", "keys", "one-time", "take"}) || matches(s, {"v1", "keys", "fallback"});
}

}  // namespace

socket_api::socket_api(sync::sync_engine& engine, storage::store& store, socket_api_options options,
                       sync::log_function log)
    : engine_(engine), store_(store), options_(std::move(options)), log_(std::move(log)) {}

api_response socket_api::error_response(unsigned status, std::string_view errcode,
                                        std::string_view message) {
    return json_response(status, json::object{{"errcode", errcode}, {"error", message}});
}

void socket_api::count_response(unsigned status) {
    ++counters_.responses[status];
}

asio::awaitable<api_response> socket_api::handle(api_request request) {
    if (auto now = answer_now(request)) co_return std::move(*now);
    // Kept for the log line: the request itself goes to the handler.
    api_request head{request.method, request.target, {}, request.peer};
    api_response r = co_await route_waiting(std::move(request));
    finish(head, r);
    co_return r;
}

std::optional<api_response> socket_api::answer_now(const api_request& request) {
    auto r = route_now(request);
    if (r) finish(request, *r);
    return r;
}

void socket_api::finish(const api_request& request, const api_response& response) {
    count_response(response.status);
    // A failure of ours must be visible on the daemon's side too.
    if (response.status >= 500 && log_) {
        log_(sync::log_level::warning, "socket API: " + request.method + " " +
                                           request.target.substr(0, 200) + ": " +
                                           std::to_string(response.status) + " " + response.body);
    }
}

namespace {

// The path without the query, for log lines: the path says what was asked for.
std::string logged_path(const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    if (path.size() > 200) path = path.substr(0, 200) + "...";
    return path;
}

}  // namespace

std::optional<api_response> socket_api::route_now(const api_request& request) {
    api_handlers h{*this};
    const std::string& m = request.method;
    if (!may_use(options_.access, request.peer)) {
        ++counters_.denied;
        h.log(sync::log_level::warning, "denied ", describe(request.peer), ": ", m, " ",
              logged_path(request.target));
        return error_response(403, "M_FORBIDDEN",
                              "this user may not use devlistd's socket (allowed_uids, "
                              "allowed_gids)");
    }
    auto target = parse_request_target(request.target);
    if (!target) return invalid_param(target.error().detail);
    const auto& s = target->segments;
    if (is_key_endpoint(s) && !may_take_keys(options_.access, request.peer)) {
        ++counters_.denied;
        h.log(sync::log_level::warning, "denied private keys to ", describe(request.peer), ": ", m,
              " ", logged_path(request.target));
        return error_response(403, "M_FORBIDDEN",
                              "this user may not take private keys (key_access_uids, "
                              "key_access_gids)");
    }

    if (matches(s, {"metrics"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.metrics();
    }
    if (s.empty() || s[0] != "v1") {
        return error_response(404, "M_UNRECOGNIZED", "no such endpoint");
    }
    if (matches(s, {"v1", "status"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.status();
    }
    if (matches(s, {"v1", "users", "{}", "devices"})) {
        if (m != "GET") return method_not_allowed("GET");
        auto fresh = bool_param(*target, "fresh");
        if (!fresh) return from_error(fresh.error());
        auto timeout = count_param(*target, "timeout_ms", json::max_safe_integer);
        if (!timeout) return from_error(timeout.error());
        if (!sync::is_valid_user_id(s[2])) return invalid_param("not a valid user ID");
        if (*fresh) return std::nullopt;  // waits for the list to be fresh
        return h.devices_now(s[2]);
    }
    if (matches(s, {"v1", "users", "{}", "refresh"})) {
        if (m != "POST") return method_not_allowed("POST");
        return h.refresh(s[2]);
    }
    if (matches(s, {"v1", "devices", "by-curve25519", "{}"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.by_curve25519(s[3]);
    }
    if (matches(s, {"v1", "tracked"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.tracked();
    }
    if (matches(s, {"v1", "tracked", "{}"})) {
        if (m == "PUT") return h.track(s[2]);
        if (m == "DELETE") return h.untrack(s[2]);
        return method_not_allowed("PUT, DELETE");
    }
    if (matches(s, {"v1", "events"})) {
        if (m != "GET") return method_not_allowed("GET");
        return std::nullopt;  // a long-poll
    }
    if (matches(s, {"v1", "events", "ack"})) {
        if (m != "POST") return method_not_allowed("POST");
        return h.acknowledge(request.body);
    }
    if (matches(s, {"v1", "events", "consumers"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.consumers();
    }
    if (matches(s, {"v1", "events", "consumers", "{}"})) {
        if (m != "DELETE") return method_not_allowed("DELETE");
        return h.remove_consumer(s[3]);
    }
    if (matches(s, {"v1", "security-events"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.security_events(*target);
    }
    if (matches(s, {"v1", "keys", "one-time", "take"})) {
        if (m != "POST") return method_not_allowed("POST");
        return h.take_one_time_key(request);
    }
    if (matches(s, {"v1", "keys", "fallback"})) {
        if (m != "GET") return method_not_allowed("GET");
        return h.fallback_keys(request);
    }
    return error_response(404, "M_UNRECOGNIZED", "no such endpoint");
}

// The requests that route_now left: it has checked access, method and parameters already.
asio::awaitable<api_response> socket_api::route_waiting(api_request request) {
    api_handlers h{*this};
    auto target = parse_request_target(request.target);
    if (!target) co_return invalid_param(target.error().detail);
    const auto& s = target->segments;
    if (matches(s, {"v1", "events"})) co_return co_await h.events(std::move(*target));
    auto timeout = count_param(*target, "timeout_ms", json::max_safe_integer);
    if (!timeout) co_return from_error(timeout.error());
    co_return co_await h.fresh_devices(s[2],
                                       timeout->value_or(options_.default_fresh_wait.count()));
}

}  // namespace devlist::daemon
