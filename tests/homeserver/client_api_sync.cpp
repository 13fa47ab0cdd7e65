// GET /sync: rooms (join, invite, leave), device_lists, one-time and fallback key state, and
// to-device messages, all computed for the window (since, now] from the model's history.
#include "tests/homeserver/client_api.hpp"

#include <algorithm>
#include <charconv>

namespace devlist::testing {

namespace {

constexpr std::size_t default_timeline_limit = 10;  // Synapse's default
constexpr std::size_t to_device_limit = 100;        // the spec's recommendation
constexpr std::int64_t longest_poll_ms = std::int64_t{10} * 60 * 1000;

std::optional<std::int64_t> parse_integer(std::string_view text) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// room.timeline.limit of a filter, if it has a usable one.
std::optional<std::size_t> timeline_limit_of(const json::value& filter) {
    const json::value* room = filter.is_object() ? filter.find("room") : nullptr;
    const json::value* timeline = room && room->is_object() ? room->find("timeline") : nullptr;
    const json::value* limit =
        timeline && timeline->is_object() ? timeline->find("limit") : nullptr;
    if (!limit || !limit->is_integer() || limit->as_integer() < 1) return std::nullopt;
    return static_cast<std::size_t>(limit->as_integer());
}

json::value events_object(json::array events) {
    return json::object{{"events", std::move(events)}};
}

// The room entry for events in (from, to]: the last `limit` of them as the timeline, and as
// state either everything before the timeline (a room new to the client) or the state events
// skipped between `from` and the timeline (a limited timeline). nullopt: nothing to say.
std::optional<json::object> room_entry(const room_record& room, stream_position from,
                                       stream_position to, std::size_t limit, bool full_state) {
    std::vector<const room_event*> window;
    for (const auto& event : room.events) {
        if (event.position > from && event.position <= to) window.push_back(&event);
    }
    if (window.empty() && !full_state) return std::nullopt;
    const std::size_t skipped = window.size() > limit ? window.size() - limit : 0;
    const stream_position timeline_start =
        skipped < window.size() ? window[skipped]->position : to + 1;

    json::array timeline;
    for (std::size_t i = skipped; i < window.size(); ++i) {
        timeline.push_back(window[i]->event);
    }
    // The latest event of each (type, state key) before the timeline, in stream order.
    std::map<std::pair<std::string, std::string>, const room_event*> latest;
    for (const auto& event : room.events) {
        if (event.position >= timeline_start) break;
        if (event.is_state && (full_state || event.position > from)) {
            latest[{event.type, event.state_key}] = &event;
        }
    }
    std::vector<const room_event*> state_events;
    for (const auto& [key, event] : latest) {
        state_events.push_back(event);
    }
    std::sort(state_events.begin(), state_events.end(),
              [](const room_event* a, const room_event* b) { return a->position < b->position; });
    json::array state;
    for (const room_event* event : state_events) {
        state.push_back(event->event);
    }

    return json::object{
        {"timeline", json::object{{"events", std::move(timeline)},
                                  {"limited", skipped > 0},
                                  {"prev_batch", make_sync_token(timeline_start - 1)}}},
        {"state", events_object(std::move(state))},
        {"account_data", events_object({})},
    };
}

// What an invitee sees of a room: stripped state plus the invite itself.
json::value invite_state(const room_record& room, std::string_view user_id, stream_position at) {
    std::map<std::string, const room_event*> stripped;  // by type
    const room_event* invite = nullptr;
    for (const auto& event : room.events) {
        if (event.position > at) break;
        if (event.type == "m.room.create" || event.type == "m.room.join_rules" ||
            event.type == "m.room.encryption" || event.type == "m.room.name") {
            stripped[event.type] = &event;
        }
        if (event.type == "m.room.member" && event.state_key == user_id) invite = &event;
    }
    json::array events;
    for (const auto& [type, event] : stripped) {
        const json::value& full = event->event;
        events.emplace_back(json::object{{"type", type},
                                         {"state_key", event->state_key},
                                         {"sender", *full.find("sender")},
                                         {"content", *full.find("content")}});
    }
    if (invite) events.push_back(invite->event);
    return json::object{{"invite_state", events_object(std::move(events))}};
}

}  // namespace

http_reply client_api::sync(const api_request& request) {
    const std::string& user_id = request.auth->user_id;
    const std::string& device_id = request.auth->device_id;

    std::optional<stream_position> since;
    if (const std::string* token = request.query_param("since")) {
        since = parse_sync_token(*token);
        // Synapse's answer to a token it cannot parse.
        if (!since) return matrix_error(400, "M_UNKNOWN", "Invalid stream token");
        since = std::min(*since, model_.position());  // a token from the future: clamp it
    }
    std::int64_t timeout_ms = 0;
    if (const std::string* timeout = request.query_param("timeout")) {
        const auto parsed = parse_integer(*timeout);
        if (!parsed || *parsed < 0) {
            return matrix_error(400, "M_INVALID_PARAM",
                                "Query parameter 'timeout' must be an integer");
        }
        timeout_ms = std::min(*parsed, longest_poll_ms);
    }
    const std::string* full_state_param = request.query_param("full_state");
    const bool full_state = full_state_param && *full_state_param == "true";
    std::size_t timeline_limit = default_timeline_limit;
    if (const std::string* filter = request.query_param("filter")) {
        std::optional<json::value> definition;
        if (filter->starts_with('{')) {
            auto parsed = json::parse(*filter);
            if (!parsed) return matrix_error(400, "M_NOT_JSON", "Invalid filter JSON");
            definition = std::move(*parsed);
        } else {
            const user_record* user = model_.find_user(user_id);
            const auto index = parse_integer(*filter);
            if (!index || *index < 0 || static_cast<std::size_t>(*index) >= user->filters.size()) {
                return matrix_error(400, "M_INVALID_PARAM", "No such filter");
            }
            definition = user->filters[static_cast<std::size_t>(*index)];
        }
        timeline_limit = timeline_limit_of(*definition).value_or(default_timeline_limit);
    }

    // To-device messages up to `since` were delivered: the client came back with that token.
    device_record* device = model_.find_device(user_id, device_id);
    if (!device) return matrix_error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token");
    auto& inbox = device->inbox;
    if (since) {
        while (!inbox.empty() && inbox.front().position <= *since)
            inbox.pop_front();
    }
    // At most to_device_limit messages; the window then ends at the last one handed out, so
    // that the rest comes with the next sync and everything else stays consistent with it.
    stream_position to = model_.position();
    json::array to_device;
    for (const auto& message : inbox) {
        if (to_device.size() == to_device_limit) {
            to = message.position - 1;
            break;
        }
        to_device.push_back(message.event);
    }

    json::object joined, invited, left;
    for (const auto& [room_id, room] : model_.rooms()) {
        const auto now = server_model::membership_at(room, user_id, to);
        // Never a member counts as having left: neither is news in an incremental sync.
        const membership then =
            since ? server_model::membership_at(room, user_id, *since).value_or(membership::leave)
                  : membership::leave;
        if (now == membership::join) {
            // A room new to the client comes with all its state (full_state asks for that too).
            const bool already_known = since && then == membership::join;
            auto entry = room_entry(room, already_known ? *since : 0, to, timeline_limit,
                                    !already_known || full_state);
            if (!entry) continue;
            (*entry)["ephemeral"] = events_object({});
            (*entry)["unread_notifications"] = json::object{};
            (*entry)["summary"] = json::object{};
            joined[room_id] = std::move(*entry);
        } else if (now == membership::invite) {
            if (!since || then != membership::invite) {
                invited[room_id] = invite_state(room, user_id, to);
            }
        } else if (now == membership::leave && since && then != membership::leave) {
            // The room as it was until the user left; nothing after.
            const stream_position left_at = server_model::membership_since(room, user_id, to);
            if (auto entry = room_entry(room, *since, left_at, timeline_limit, false)) {
                left[room_id] = std::move(*entry);
            }
        }
    }

    json::object response{{"next_batch", make_sync_token(to)}};
    bool news = !to_device.empty() || !joined.empty() || !invited.empty() || !left.empty() ||
                (since && device->last_claimed_at > *since);
    if (since) {
        const auto delta = model_.device_lists(user_id, device_id, *since, to);
        json::object device_lists;
        if (!delta.changed.empty()) {
            device_lists["changed"] = json::array(delta.changed.begin(), delta.changed.end());
        }
        if (!delta.left.empty()) {
            device_lists["left"] = json::array(delta.left.begin(), delta.left.end());
        }
        if (!device_lists.empty()) {
            news = true;
            response["device_lists"] = std::move(device_lists);
        }
    }
    if (since && !news && !full_state && request.may_long_poll) {
        const auto deadline = request.http.received + std::chrono::milliseconds(timeout_ms);
        if (std::chrono::steady_clock::now() < deadline) return reply::wait_for_change{deadline};
    }

    if (!to_device.empty()) response["to_device"] = events_object(std::move(to_device));
    json::object counts = one_time_key_counts(user_id, device_id);
    if (!counts.empty() || !behaviour_.omit_zero_one_time_key_counts) {
        response["device_one_time_keys_count"] = std::move(counts);
    }
    const auto unused = model_.unused_fallback_key_types(user_id, device_id);
    const json::array fallback_types(unused.begin(), unused.end());
    const auto field = behaviour_.fallback_key_types;
    if (field == fallback_key_types_field::both || field == fallback_key_types_field::stable) {
        response["device_unused_fallback_key_types"] = fallback_types;
    }
    if (field == fallback_key_types_field::both || field == fallback_key_types_field::unstable) {
        response["org.matrix.msc2732.device_unused_fallback_key_types"] = fallback_types;
    }
    json::object rooms;
    if (!joined.empty()) rooms["join"] = std::move(joined);
    if (!invited.empty()) rooms["invite"] = std::move(invited);
    if (!left.empty()) rooms["leave"] = std::move(left);
    if (!rooms.empty()) response["rooms"] = std::move(rooms);
    return json_answer(200, response);
}

}  // namespace devlist::testing
