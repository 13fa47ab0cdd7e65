// The spec-faithful test homeserver: a Matrix client-server API for device tracking, in process.
//
// It serves the endpoints a device-tracking client uses (login, /sync with device_lists and key
// counts, the /keys/* family, cross-signing with User-Interactive Auth, to-device messages) over
// HTTP/1.1 or HTTPS on 127.0.0.1, and behaves like Synapse where the spec leaves room: it stores
// device keys without checking their self-signature and lets a device's keys change (clients
// must catch both), refuses a one-time key ID reused with a different key, hands out the fallback
// key when the one-time keys run out, computes device_lists.changed/left from room membership,
// and long-polls. Tests script users, devices, rooms and faults through this class.
//
// Choices where the spec says nothing or Synapse and the spec differ:
//  - Sync tokens are "s<position>": one stream position that every change advances. A token
//    that does not parse, or one rejected by fault_action::reject_sync_token, is answered as
//    Synapse answers a token it cannot parse: 400 {"errcode":"M_UNKNOWN","error":"Invalid
//    stream token"}. A token from the future is clamped to the present (as Synapse does).
//  - "Sharing an encrypted room" counts joined and invited members. device_lists.changed names a
//    user who newly shares an encrypted room with the syncing user even if they already shared
//    another one (the simpler rule the spec allows; Synapse does the same).
//  - The syncing user appears in its own device_lists.changed when one of its *other* devices,
//    or its cross-signing keys, changed.
//  - /keys/device_signing/upload needs no UIA when the user has no master key yet, or when the
//    upload holds no new key (spec since v1.11, MSC3967); options can demand UIA always.
//  - /keys/changes ignores `to` and reports up to the present, as Synapse does.
//  - A one-time key conflict is Synapse's 400 M_UNKNOWN "One time key <id> already exists. Old
//    key: ...; new key: ...", with both keys as canonical JSON (Synapse prints a Python repr).
//  - /sync honours since, timeout, full_state and a filter's room.timeline.limit (default 10);
//    other filter fields and set_presence are ignored. At most 100 to-device messages per
//    response; next_batch then stops before the rest.
//  - Users of other server names live here too (federation is simulated, not spoken).
//
// Thread-safety: all members may be called from any thread while the server runs on its own
// thread; one mutex guards the model (this is test infrastructure, not the io loop of devlistd).
// Long-polls are woken by posting to the server's io_context after each change. Every scripted
// change is announced to clients exactly as the same change made through the API would be.
// A scripting mistake (an unknown user, room or simulated device) throws std::invalid_argument.
#pragma once

#include "crypto/json_value.hpp"
#include "tests/homeserver/fault.hpp"
#include "tests/homeserver/http_server.hpp"
#include "tests/homeserver/server_behaviour.hpp"

#include <devlist/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace devlist::testing {

// One request as the server saw and answered it.
struct request_record {
    std::string method{};
    std::string target{};   // path and query as sent (percent-encoded)
    std::string path{};     // the percent-decoded path, without the query
    std::string user_id{};  // the owner of the access token it carried; empty if none
    std::string request_body{};
    unsigned status = 0;  // 0: no answer was sent (dropped, hung, or the server stopped)
    std::string response_body{};
    std::chrono::steady_clock::time_point received{};
    std::chrono::steady_clock::time_point answered{};
};

struct homeserver_options {
    std::string server_name = "localhost";
    std::string bind_address = "127.0.0.1";
    std::uint16_t port = 0;  // 0: an ephemeral port, see port()
    std::optional<tls_files> tls{};
    server_behaviour behaviour{};
    http_server_limits limits{};
    // Called on the server's thread after each request is recorded (e.g. to print a log line).
    std::function<void(const request_record&)> on_request{};
};

// An access token and the device it belongs to.
struct session {
    std::string user_id{};
    std::string device_id{};
    std::string access_token{};
};

// The public identity keys of a simulated device (unpadded base64).
struct device_identity {
    std::string device_id{};
    std::string ed25519{};
    std::string curve25519{};
};

enum class cross_signing_key_kind { master, self_signing, user_signing };

// A key as published: its full ID "<algorithm>:<id>" and the key object as uploaded.
struct published_key {
    std::string key_id{};
    json::value key{};
    bool used = false;  // fallback keys: handed out by a claim since they were set
};

// Every key a device ever published, including those claimed or replaced since.
struct key_history {
    std::vector<published_key> one_time_keys{};  // every one ever accepted, upload order
    std::vector<std::string> claimed{};          // full IDs handed out by claims, claim order
    std::vector<published_key> fallback_keys{};  // every one ever set, oldest first
    std::vector<published_key> current_fallback_keys{};  // what a claim would hand out now
    // The messages of uploads refused because a key ID came again with another key.
    std::vector<std::string> refused_conflicts{};
};

class test_homeserver {
  public:
    explicit test_homeserver(homeserver_options options = {});
    ~test_homeserver();  // stops the server
    test_homeserver(const test_homeserver&) = delete;
    test_homeserver& operator=(const test_homeserver&) = delete;

    // Binds (errors: the address or TLS files are unusable) and starts the server's thread.
    // A homeserver starts once; scripting works before start() too.
    result<void> start();
    // Cancels every connection and joins the server's thread. Idempotent.
    void stop();
    // After stop(): serves again on the same port, with every account, token, room, key and
    // queued fault kept, as a real homeserver restarted on its database would. While stopped,
    // connections are refused. Errors: the port was taken meanwhile.
    result<void> resume();

    std::uint16_t port() const;
    std::string base_url() const;  // "http://127.0.0.1:PORT" (https with TLS)
    const std::string& server_name() const;

    // ---- accounts ----
    // A user of any server name. Only users of server_name() can log in (with the password).
    void add_user(const std::string& user_id, const std::string& password = {});
    // What POST /login would do: a new access token for device_id (created when absent; a
    // random ID when empty).
    session login(const std::string& user_id, const std::string& device_id = {},
                  const std::string& display_name = {});
    void revoke_access_token(const std::string& access_token);

    // ---- simulated devices: real Ed25519/Curve25519 keys and real signatures ----
    // A device with self-signed device keys, `one_time_keys` signed one-time keys and a fallback
    // key, signed by the user's self-signing key if the user has cross-signing.
    device_identity add_device(const std::string& user_id, const std::string& device_id,
                               const std::string& display_name = {}, int one_time_keys = 5);
    void remove_device(const std::string& user_id, const std::string& device_id);
    // Replaces a device's Ed25519 key by a new one and self-signs the keys with the new key:
    // every signature is valid, yet a client that knew the device must refuse the new key.
    device_identity change_device_keys(const std::string& user_id, const std::string& device_id);
    // A new device whose self-signature does not verify.
    device_identity forge_device(const std::string& user_id, const std::string& device_id,
                                 const std::string& display_name = {});
    // Stores any JSON as a device's keys (the device is created if absent): hostile shapes such
    // as a user_id or device_id that does not match, missing keys, wrong types.
    void set_device_keys_json(const std::string& user_id, const std::string& device_id,
                              json::value keys);
    // Master key, self-signing and user-signing keys (both signed by the master key); every
    // simulated device of the user is signed by the self-signing key.
    void bootstrap_cross_signing(const std::string& user_id);
    // A new master key (and new self-signing and user-signing keys) for a user who has one.
    void change_master_key(const std::string& user_id);

    // ---- bulk scripting, for load tests ----
    // Many simulated devices in one change: each (user, device) pair gets a device as
    // add_device makes it, cross-signed likewise, but without one-time or fallback keys (what
    // /keys/query serves is the same). The keys are made (on every core) before the model is
    // locked; then every device appears at once, so a /sync sees all of them or none. Returns the
    // identities in the order given. Users must exist and devices be new (checked before anything
    // changes).
    std::vector<device_identity> add_devices(
        const std::vector<std::pair<std::string, std::string>>& user_and_device_ids);

    // ---- rooms ----
    // A room created (and joined) by creator; encrypted rooms get m.room.encryption at once.
    std::string create_room(const std::string& creator, bool encrypted);
    void invite(const std::string& room_id, const std::string& user_id);
    void join(const std::string& room_id, const std::string& user_id);
    void leave(const std::string& room_id, const std::string& user_id);
    void enable_encryption(const std::string& room_id);

    // ---- federation ----
    // Users of an unreachable server are left out of /keys/query and /keys/claim answers,
    // which name the server in `failures` instead.
    void set_server_reachable(const std::string& server_name, bool reachable);

    // ---- to-device ----
    // device_id "*" means every device of the user.
    void send_to_device(const std::string& sender, const std::string& user_id,
                        const std::string& device_id, const std::string& type,
                        const json::value& content);

    // ---- what clients did ----
    std::size_t one_time_key_count(const std::string& user_id, const std::string& device_id,
                                   const std::string& algorithm = "signed_curve25519") const;
    std::vector<std::string> unused_fallback_key_types(const std::string& user_id,
                                                       const std::string& device_id) const;
    // Claims a key as another client's POST /keys/claim would: {"<alg>:<id>": key} or nullopt.
    std::optional<json::value> claim_one_time_key(
        const std::string& user_id, const std::string& device_id,
        const std::string& algorithm = "signed_curve25519");
    // A device's keys as uploaded.
    std::optional<json::value> uploaded_device_keys(const std::string& user_id,
                                                    const std::string& device_id) const;
    // A device's keys as /keys/query serves them: with uploaded signatures and unsigned.
    std::optional<json::value> served_device_keys(const std::string& user_id,
                                                  const std::string& device_id) const;
    // A cross-signing key as /keys/query serves it, with every uploaded signature.
    std::optional<json::value> cross_signing_key(const std::string& user_id,
                                                 cross_signing_key_kind kind) const;

    // ---- the request log ----
    std::vector<request_record> requests() const;
    std::size_t request_count() const;
    // The first record at index >= from_index that matches, waiting (on a condition variable)
    // until one arrives or the deadline passes. `match` runs with the homeserver's lock held:
    // it must not call back into the homeserver.
    std::optional<request_record> wait_for_request(
        const std::function<bool(const request_record&)>& match,
        std::chrono::steady_clock::time_point deadline, std::size_t from_index = 0) const;

    // Whether a /sync of user_id is parked in a long-poll (waiting for a change), waiting until
    // one is or the deadline passes: lets a test change something *while* a client polls.
    bool wait_for_long_poll(const std::string& user_id,
                            std::chrono::steady_clock::time_point deadline) const;

    // ---- the stream ----
    std::int64_t stream_position() const;
    std::string sync_token() const;  // the next_batch a /sync would return now

    // ---- faults ----
    void inject(fault f);
    void clear_faults();
    // Uses of injected faults not yet taken by a request (0: every fault struck).
    std::size_t pending_faults() const;
    // Switches how the server behaves where the spec allows several ways (see
    // server_behaviour.hpp), effective from the next request.
    void set_behaviour(const server_behaviour& behaviour);

    // ---- the truth, for checkers (tests/support/store_checker.hpp) ----
    // Who shared an encrypted room with user_id at stream position `at` (joined or invited).
    std::set<std::string> encrypted_room_peers(const std::string& user_id, std::int64_t at) const;
    // The users the device_lists.changed of a /sync by this device from position `since` to now
    // would name: whose devices a client synced up to `since` may not know yet.
    std::set<std::string> device_lists_changed_since(const std::string& user_id,
                                                     const std::string& device_id,
                                                     std::int64_t since) const;
    // Every device of the user that /keys/query serves, as it serves it, by device ID; nullopt
    // for an unknown user.
    std::optional<std::map<std::string, json::value>> served_devices(
        const std::string& user_id) const;
    // Every key a device ever published (see key_history).
    key_history keys_published_by(const std::string& user_id, const std::string& device_id) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::testing
