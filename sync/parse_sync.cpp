#include "sync/parse_sync.hpp"

#include "sync/matrix_ids.hpp"
#include "sync/parse_json_detail.hpp"

namespace devlist::sync {
namespace {

using detail::drop_log;
using detail::for_each_string;
using simdjson::error_code;
using simdjson::SUCCESS;

std::optional<membership> membership_from(std::string_view s) {
    if (s == "join") return membership::join;
    if (s == "invite") return membership::invite;
    if (s == "leave") return membership::leave;
    if (s == "ban") return membership::ban;
    if (s == "knock") return membership::knock;
    return std::nullopt;
}

// The parts of a state event that matter here. Fields may come in any order, so the event is
// read in one pass and interpreted afterwards.
struct state_event_view {
    std::string_view type;
    std::optional<std::string_view> state_key;
    std::string_view membership;
    std::string_view algorithm;
    // Why the event cannot be used even if its type would make it matter; empty: usable.
    std::string problem;
};

error_code read_content(od::value v, state_event_view& ev) {
    od::object content;
    if (v.get_object().get(content)) return SUCCESS;  // not an object: nothing usable
    detail::key_set seen;
    for (auto f : content) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key) && ev.problem.empty()) {
            ev.problem = "duplicate key " + detail::quoted(key) + " in its content";
        }
        if (key == "membership") {
            detail::get_string(value, ev.membership);
        } else if (key == "algorithm") {
            detail::get_string(value, ev.algorithm);
        }
    }
    return SUCCESS;
}

// Applies one state event (from state, timeline or invite_state) to the room delta.
error_code read_state_event(od::value v, room_delta& room, drop_log& drops) {
    od::object obj;
    if (v.get_object().get(obj)) {
        drops.add("event in " + room.room_id + " is not an object");
        return SUCCESS;
    }
    state_event_view ev;
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key) && ev.problem.empty()) {
            ev.problem = "duplicate key " + detail::quoted(key);
        }
        if (key == "type") {
            if (!detail::get_string(value, ev.type) && ev.problem.empty()) {
                ev.problem = "type is not a string";
            }
        } else if (key == "state_key") {
            std::string_view sk;
            if (detail::get_string(value, sk)) {
                ev.state_key = sk;
            } else if (ev.problem.empty()) {
                ev.problem = "state_key is not a string";
            }
        } else if (key == "content") {
            if (auto e = read_content(value, ev)) return e;
        }
    }
    if (!ev.problem.empty()) {
        drops.add("event in " + room.room_id + ": " + ev.problem);
        return SUCCESS;
    }
    if (!ev.state_key) return SUCCESS;  // a message, not state
    if (ev.type == "m.room.member") {
        auto m = membership_from(ev.membership);
        if (!m || !is_valid_user_id(*ev.state_key)) {
            drops.add("bad m.room.member event in " + room.room_id);
            return SUCCESS;
        }
        room.members.push_back({std::string(*ev.state_key), *m});
    } else if (ev.type == "m.room.encryption" && ev.state_key->empty()) {
        if (ev.algorithm.empty()) {
            drops.add("m.room.encryption without algorithm in " + room.room_id);
            return SUCCESS;
        }
        room.encryption_algorithm = std::string(ev.algorithm);
    }
    return SUCCESS;
}

// Reads {"events": [...]} (state, timeline, invite_state).
error_code read_event_list(od::value v, std::string_view section, room_delta& room, drop_log& drops,
                           detail::refusal& why) {
    const std::string where = "rooms: " + room.room_id + " " + std::string(section);
    od::object obj;
    if (auto e = v.get_object().get(obj)) return detail::type_error(e, why, where, "an object");
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key)) return why.duplicate(key, where);
        if (key != "events") continue;
        od::array events;
        if (auto e = value.get_array().get(events))
            return detail::type_error(e, why, where + " events", "an array");
        for (auto item : events) {
            od::value ev;
            if (auto e = std::move(item).get(ev)) return e;
            if (auto e = read_state_event(ev, room, drops)) return e;
        }
    }
    return SUCCESS;
}

error_code read_room(std::string_view room_id, od::value v, room_section section,
                     std::vector<room_delta>& rooms, drop_log& drops, detail::refusal& why) {
    if (!is_valid_room_id(room_id)) {
        drops.add("invalid room entry");
        return SUCCESS;
    }
    od::object obj;
    if (auto e = v.get_object().get(obj))
        return detail::type_error(e, why, "rooms: " + std::string(room_id), "an object");
    room_delta room;
    room.room_id = std::string(room_id);
    room.section = section;
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key)) return why.duplicate(key, "rooms: " + room.room_id);
        // "state" comes before "timeline" in time; both are read in arrival order and the
        // consumer lets later member entries win, so a field order that puts timeline first
        // could misorder them. Synapse and the spec's examples order state first.
        if (key == "state" || key == "timeline" || key == "invite_state") {
            if (auto e = read_event_list(value, key, room, drops, why)) return e;
        }
    }
    rooms.push_back(std::move(room));
    return SUCCESS;
}

error_code read_rooms(od::value v, std::vector<room_delta>& rooms, drop_log& drops,
                      detail::refusal& why) {
    od::object obj;
    if (auto e = v.get_object().get(obj)) return detail::type_error(e, why, "rooms", "an object");
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key)) return why.duplicate(key, "rooms");
        room_section section;
        if (key == "join") {
            section = room_section::join;
        } else if (key == "invite") {
            section = room_section::invite;
        } else if (key == "leave") {
            section = room_section::leave;
        } else {
            continue;  // knock and future sections do not affect tracking
        }
        const std::string where = "rooms." + std::string(key);
        od::object by_id;
        if (auto e = value.get_object().get(by_id))
            return detail::type_error(e, why, where, "an object");
        detail::key_set room_ids;
        for (auto r : by_id) {
            std::string_view room_id;
            od::value room_value;
            if (auto e = detail::read_member(std::move(r), room_id, room_value)) return e;
            if (!room_ids.insert(room_id)) return why.duplicate(room_id, where);
            if (auto e = read_room(room_id, room_value, section, rooms, drops, why)) return e;
        }
    }
    return SUCCESS;
}

error_code read_user_list(od::value v, std::vector<std::string>& out, drop_log& drops,
                          std::string_view what) {
    return for_each_string(
        v,
        [&](std::string_view s) {
            if (is_valid_user_id(s)) {
                out.emplace_back(s);
            } else {
                drops.add(std::string(what) + ": invalid user ID");
            }
        },
        [&] { drops.add(std::string(what) + ": non-string entry"); });
}

// A list that is not an array would lose every change it names: the body is refused.
error_code read_device_lists(od::value v, sync_response& out, drop_log& drops,
                             detail::refusal& why) {
    return detail::for_each_unique_member(
        v, "device_lists", why, [&](std::string_view key, od::value value) -> error_code {
            error_code e = SUCCESS;
            if (key == "changed") {
                e = read_user_list(value, out.device_lists_changed, drops, "device_lists.changed");
            } else if (key == "left") {
                e = read_user_list(value, out.device_lists_left, drops, "device_lists.left");
            }
            if (e == simdjson::INCORRECT_TYPE) {
                return why.wrong_type("device_lists." + std::string(key), "an array");
            }
            return e;
        });
}

// A count that cannot be read refuses the body: dropping it would make it 0 (a missing count
// means 0), and a server that kept sending it would have devlistd upload keys at every sync.
error_code read_key_counts(od::value v, sync_response& out, detail::refusal& why) {
    constexpr std::string_view where = "device_one_time_keys_count";
    od::object obj;
    if (auto e = v.get_object().get(obj)) return detail::type_error(e, why, where, "an object");
    auto& counts = out.one_time_key_counts.emplace();
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view algorithm;
        od::value value;
        if (auto e = detail::read_member(std::move(f), algorithm, value)) return e;
        if (!seen.insert(algorithm)) return why.duplicate(algorithm, where);
        std::int64_t n = 0;
        od::json_type type{};
        std::string_view raw;
        if (value.type().get(type) || type != od::json_type::number || value.get_int64().get(n) ||
            n < 0) {
            raw = detail::trim_json(value.raw_json_token());
            return why.refuse(errc::json_number,
                              std::string(where) + " " + detail::quoted(algorithm) + " is " +
                                  detail::body_start(raw) + ", not a non-negative integer");
        }
        counts.insert_or_assign(std::string(algorithm), n);
    }
    return SUCCESS;
}

// Like the counts: a type left out of a garbled list would read as "used" and rotate the key.
error_code read_fallback_types(od::value v, std::string_view where, std::vector<std::string>& out,
                               detail::refusal& why) {
    bool non_string = false;
    error_code e = for_each_string(
        v, [&](std::string_view s) { out.emplace_back(s); }, [&] { non_string = true; });
    if (e == simdjson::INCORRECT_TYPE) return why.wrong_type(where, "an array");
    if (e) return e;
    if (non_string) return why.refuse(errc::json_type, std::string(where) + " has a non-string");
    return SUCCESS;
}

error_code read_to_device(od::value v, sync_response& out, drop_log& drops, detail::refusal& why) {
    od::object obj;
    if (auto e = v.get_object().get(obj))
        return detail::type_error(e, why, "to_device", "an object");
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key)) return why.duplicate(key, "to_device");
        if (key != "events") continue;
        od::array events;
        if (auto e = value.get_array().get(events))
            return detail::type_error(e, why, "to_device.events", "an array");
        for (auto item : events) {
            od::object ev;
            if (auto e = std::move(item).get_object().get(ev)) {
                if (e != simdjson::INCORRECT_TYPE) return e;
                drops.add("to_device event is not an object");
                continue;
            }
            to_device_event event;
            bool has_content = false;
            bool duplicate = false;
            detail::key_set event_keys;
            for (auto ef : ev) {
                std::string_view k;
                od::value event_value;
                if (auto e = detail::read_member(std::move(ef), k, event_value)) return e;
                if (!event_keys.insert(k)) duplicate = true;
                std::string_view s;
                if (k == "type") {
                    if (!event_value.get_string().get(s)) event.type = s;
                } else if (k == "sender") {
                    if (!event_value.get_string().get(s)) event.sender = s;
                } else if (k == "content") {
                    od::object content;
                    if (!event_value.get_object().get(content) && !content.raw_json().get(s)) {
                        event.content_json = detail::trim_json(s);
                        has_content = true;
                    }
                }
            }
            if (duplicate) {
                drops.add("to_device event with a duplicate key");
                continue;
            }
            if (event.type.empty() || !is_valid_user_id(event.sender) || !has_content) {
                drops.add("to_device event without type, sender or content");
                continue;
            }
            out.to_device.push_back(std::move(event));
        }
    }
    return SUCCESS;
}

}  // namespace

result<sync_response> parse_sync_response(parse_context& ctx, const std::string& body) {
    auto& impl = ctx.get();
    auto doc = detail::iterate(impl.parser, impl.copy, body.data(), body.size(), body.capacity(),
                               "/sync response");
    if (!doc) return doc.error();
    od::object root;
    if (auto e = detail::root_object(*doc, body, "/sync response", root)) return std::move(*e);

    sync_response out;
    drop_log drops{out.dropped, out.drop_reasons};
    detail::refusal why;
    detail::key_set seen;
    std::optional<std::vector<std::string>> stable_fallback, unstable_fallback;
    for (auto f : root) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value))
            return detail::json_error(e, "/sync response");
        if (!seen.insert(key)) {
            why.duplicate(key, "the /sync response");
            return why.take(detail::refused, "/sync response");
        }
        error_code e = SUCCESS;
        if (key == "next_batch") {
            std::string_view s;
            if (value.get_string().get(s)) {
                return error{errc::json_type, "/sync next_batch is not a string"};
            }
            out.next_batch = s;
        } else if (key == "rooms") {
            e = read_rooms(value, out.rooms, drops, why);
        } else if (key == "device_lists") {
            e = read_device_lists(value, out, drops, why);
        } else if (key == "device_one_time_keys_count") {
            e = read_key_counts(value, out, why);
        } else if (key == "device_unused_fallback_key_types" ||
                   key == "org.matrix.msc2732.device_unused_fallback_key_types") {
            auto& list =
                key == "device_unused_fallback_key_types" ? stable_fallback : unstable_fallback;
            e = read_fallback_types(value, key, list.emplace(), why);
        } else if (key == "to_device") {
            e = read_to_device(value, out, drops, why);
        }
        if (e) return why.take(e, std::string("/sync ") + std::string(key));
    }
    if (detail::has_trailing_content(*doc))
        return detail::json_error(simdjson::TRAILING_CONTENT, "/sync response");
    if (out.next_batch.empty()) {
        return error{errc::json_type, "/sync response has no next_batch, or an empty one"};
    }
    if (stable_fallback) {
        out.unused_fallback_key_types = std::move(stable_fallback);
    } else if (unstable_fallback) {
        out.unused_fallback_key_types = std::move(unstable_fallback);
    }
    return out;
}

}  // namespace devlist::sync
