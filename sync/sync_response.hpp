// What devlistd takes from a /sync response, as owned values (the parser is sync/parse_sync).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace devlist::sync {

enum class membership { join, invite, leave, ban, knock };

struct member_change {
    std::string user_id;
    membership state = membership::leave;
};

enum class room_section { join, invite, leave };

// One room's part of a /sync response: what changed about its encryption and its members.
struct room_delta {
    std::string room_id;
    room_section section = room_section::join;
    // Set when an m.room.encryption state event arrived in this response.
    std::optional<std::string> encryption_algorithm;
    // Member state in arrival order (state block first, then timeline); later entries win.
    std::vector<member_change> members;
    // The timeline skipped events: the member list may be incomplete and should be refetched.
    bool limited = false;
};

struct to_device_event {
    std::string type;
    std::string sender;
    std::string content_json;  // the content object as received
};

struct sync_response {
    std::string next_batch;
    std::vector<room_delta> rooms;
    std::vector<std::string> device_lists_changed;
    std::vector<std::string> device_lists_left;
    // Absent when the server sent no device_one_time_keys_count at all. An algorithm that is
    // missing from a present map counts as 0 (servers may omit zero counts).
    std::optional<std::map<std::string, std::int64_t, std::less<>>> one_time_key_counts;
    // Absent when the server advertises no fallback-key support in this response. The stable
    // field wins over org.matrix.msc2732.device_unused_fallback_key_types when both are sent.
    std::optional<std::vector<std::string>> unused_fallback_key_types;
    std::vector<to_device_event> to_device;
    // The body as received, for the engine's sync hook (engine_options::on_sync_response);
    // matrix_api moves it here after parsing, so keeping it costs no copy.
    std::string body;
    // Entries dropped because they were malformed (an invalid user ID in device_lists, a
    // member event without a state_key…), with the first few reasons for the log.
    std::size_t dropped = 0;
    std::vector<std::string> drop_reasons;
};

}  // namespace devlist::sync
