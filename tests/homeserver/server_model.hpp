// What the test homeserver knows: accounts, devices and their keys, cross-signing keys, rooms
// with their event history, to-device inboxes, and one stream position that every change
// advances. No HTTP here: the client API (client_api.hpp) and the scripting API
// (test_homeserver.hpp) both work on this model.
//
// History is kept whole (every room event and device-list change with its stream position), so
// that a /sync from any past position can be answered exactly: who shared an encrypted room
// with whom at `since`, and who does now.
//
// Not thread-safe; the test homeserver guards it with one mutex.
#pragma once

#include "crypto/json_value.hpp"

#include <devlist/error.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devlist::testing {

using stream_position = std::int64_t;

enum class membership { invite, join, leave };

// The server name of a user ID ("@alice:example.org" → "example.org").
std::string_view server_name_of(std::string_view user_id);

struct one_time_key {
    std::string key_id;  // "<algorithm>:<id>"
    json::value key;
    stream_position uploaded_at = 0;
};

struct fallback_key {
    std::string key_id;  // "<algorithm>:<id>"
    json::value key;
    bool used = false;
};

struct to_device_message {
    stream_position position = 0;
    json::value event;  // {sender, type, content}
};

struct device_record {
    std::string display_name;
    std::optional<json::value> keys;  // the device_keys object as uploaded
    // Signatures added by /keys/signatures/upload: signatures[signer][key id] = signature.
    json::object added_signatures;
    std::deque<one_time_key> one_time_keys;  // unclaimed, oldest upload first
    std::map<std::string, fallback_key, std::less<>> fallback_keys;  // by algorithm
    std::deque<to_device_message> inbox;
    stream_position last_claimed_at = 0;  // when another client last claimed one of its keys
    // The device's key history, kept for checkers (tests/support/store_checker.hpp), which must
    // prove that no key ever published lost its private part: every one-time key ever accepted
    // (upload order) and those handed out by claims (claim order), every fallback key ever set
    // (oldest first), and the messages of uploads refused for a key ID reused with another key.
    std::vector<one_time_key> one_time_keys_ever;
    std::vector<one_time_key> claimed_one_time_keys;
    std::vector<fallback_key> fallback_keys_ever;
    std::vector<std::string> refused_one_time_key_conflicts;
};

struct cross_signing_key_record {
    json::value key;  // as uploaded
    // Signatures added by /keys/signatures/upload (master keys only).
    json::object added_signatures;
};

struct user_record {
    std::string password;
    std::map<std::string, device_record, std::less<>> devices;
    std::optional<cross_signing_key_record> master_key;
    std::optional<cross_signing_key_record> self_signing_key;
    std::optional<cross_signing_key_record> user_signing_key;
    std::vector<json::value> filters;  // filter ID = index
};

struct room_event {
    stream_position position = 0;
    json::value event;  // client format, without room_id
    bool is_state = false;
    std::string type;
    std::string state_key;
};

struct room_record {
    std::string room_id;
    std::string creator;
    std::vector<room_event> events;  // in stream order
    // Per user, every membership with the position it took effect at, oldest first.
    std::map<std::string, std::vector<std::pair<stream_position, membership>>, std::less<>>
        memberships;
    std::optional<stream_position> encrypted_since;
};

// A change of a user's devices or cross-signing keys, as /sync reports it.
struct device_list_change {
    stream_position position = 0;
    std::string user_id;
    std::string by_device;  // the device that made it; empty when made by the server
    std::string only_for;   // if set, only this user hears of it (user-signing signatures)
};

struct access_token_record {
    std::string user_id;
    std::string device_id;
    bool revoked = false;
};

struct device_list_delta {
    std::set<std::string> changed;
    std::set<std::string> left;
};

class server_model {
  public:
    explicit server_model(std::string server_name);

    const std::string& server_name() const { return server_name_; }
    stream_position position() const { return position_; }

    // ---- accounts and tokens ----
    user_record& add_user(const std::string& user_id, std::string password);
    user_record* find_user(std::string_view user_id);
    const user_record* find_user(std::string_view user_id) const;
    // "alice" or "@alice:<server_name>" → "@alice:<server_name>"; full IDs are kept as given.
    std::string qualify_user_id(std::string_view name) const;
    std::string issue_access_token(const std::string& user_id, const std::string& device_id);
    access_token_record* find_access_token(std::string_view token);
    void revoke_access_token(std::string_view token);
    std::string random_device_id();

    // ---- devices and keys ----
    device_record& ensure_device(const std::string& user_id, const std::string& device_id,
                                 const std::string& display_name);
    void remove_device(const std::string& user_id, const std::string& device_id);
    device_record* find_device(std::string_view user_id, std::string_view device_id);
    const device_record* find_device(std::string_view user_id, std::string_view device_id) const;
    // Stores keys as given (no verification, like Synapse); a change is announced.
    void set_device_keys(const std::string& user_id, const std::string& device_id, json::value keys,
                         const std::string& by_device);
    // All or nothing: a key ID already held with a different key (signatures aside) refuses the
    // whole upload with Synapse's message; the same key again is ignored.
    result<void> add_one_time_keys(const std::string& user_id, const std::string& device_id,
                                   const json::object& keys);
    // One key per algorithm; a different key replaces the old one as unused, the same key again
    // keeps its used flag (as Synapse does).
    void set_fallback_keys(const std::string& user_id, const std::string& device_id,
                           const json::object& keys);
    // Unclaimed one-time keys per algorithm.
    std::map<std::string, std::int64_t, std::less<>> one_time_key_counts(
        std::string_view user_id, std::string_view device_id) const;
    std::vector<std::string> unused_fallback_key_types(std::string_view user_id,
                                                       std::string_view device_id) const;
    // The oldest one-time key of the algorithm, else the fallback key (marked used);
    // {"<alg>:<id>", key}.
    std::optional<std::pair<std::string, json::value>> claim_key(const std::string& user_id,
                                                                 const std::string& device_id,
                                                                 std::string_view algorithm);
    // The device as /keys/query serves it (added signatures merged, unsigned display name).
    json::value served_device_keys(std::string_view user_id, std::string_view device_id) const;

    // ---- cross-signing ----
    // Stores the given keys (no verification here); changes are announced to whoever may see
    // them: master and self-signing to everyone sharing a room, user-signing to the user only.
    void set_cross_signing_keys(const std::string& user_id, std::optional<json::value> master,
                                std::optional<json::value> self_signing,
                                std::optional<json::value> user_signing,
                                const std::string& by_device);
    // A cross-signing key as served to `viewer`: with the added signatures by its owner or by
    // the viewer (everyone's if there is no viewer).
    static json::value served_cross_signing_key(const cross_signing_key_record& key,
                                                std::string_view owner_id,
                                                std::optional<std::string_view> viewer);
    // Records a signature added through /keys/signatures/upload and announces it.
    void add_device_signature(const std::string& user_id, const std::string& device_id,
                              const std::string& signer, const std::string& key_id,
                              const std::string& signature, const std::string& by_device);
    void add_master_key_signature(const std::string& user_id, const std::string& signer,
                                  const std::string& key_id, const std::string& signature,
                                  const std::string& by_device);

    // ---- rooms ----
    std::string create_room(const std::string& creator, bool encrypted);
    room_record* find_room(std::string_view room_id);
    const std::map<std::string, room_record, std::less<>>& rooms() const { return rooms_; }
    void set_membership(const std::string& room_id, const std::string& user_id, membership m,
                        const std::string& sender);
    void enable_encryption(const std::string& room_id, const std::string& sender);
    static std::optional<membership> membership_at(const room_record& room,
                                                   std::string_view user_id, stream_position at);
    // When the membership in effect at `at` began (0 if the user had none).
    static stream_position membership_since(const room_record& room, std::string_view user_id,
                                            stream_position at);
    static bool is_encrypted_at(const room_record& room, stream_position at);

    // Who shared an encrypted room with user_id at `at` (joined or invited, both of them).
    std::set<std::string> encrypted_room_peers(std::string_view user_id, stream_position at) const;
    // device_lists for a /sync (or /keys/changes) of user_id's device over (from, to].
    device_list_delta device_lists(const std::string& user_id, const std::string& device_id,
                                   stream_position from, stream_position to) const;

    // ---- to-device ----
    // device_id "*" means every device; unknown users or devices are ignored.
    void send_to_device(const std::string& sender, const std::string& user_id,
                        const std::string& device_id, const std::string& type,
                        const json::value& content);
    // Whether this access token already sent this transaction; remembers it.
    bool seen_transaction(const std::string& access_token, const std::string& txn_id);

    // ---- federation ----
    void set_server_reachable(const std::string& server_name, bool reachable);
    bool is_reachable(std::string_view server_name) const;

    // ---- user-interactive auth ----
    std::string start_uia_session(const std::string& user_id);
    // The user of a live session, or nullptr.
    const std::string* find_uia_session(std::string_view session) const;
    void finish_uia_session(std::string_view session);

    std::string random_string(std::size_t length, std::string_view alphabet);

  private:
    stream_position advance() { return ++position_; }
    void announce_device_change(const std::string& user_id, const std::string& by_device,
                                const std::string& only_for = {});
    void append_event(room_record& room, const std::string& type, const std::string& sender,
                      json::value content, std::optional<std::string> state_key);

    std::string server_name_;
    stream_position position_ = 0;
    std::map<std::string, user_record, std::less<>> users_;
    std::map<std::string, access_token_record, std::less<>> access_tokens_;
    std::map<std::string, room_record, std::less<>> rooms_;
    std::vector<device_list_change> device_changes_;
    std::set<std::string, std::less<>> unreachable_servers_;
    std::set<std::pair<std::string, std::string>> transactions_;
    std::map<std::string, std::string, std::less<>> uia_sessions_;  // session → user ID
    std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace devlist::testing
