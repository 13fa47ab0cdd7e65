// A hostile homeserver (issue 7): forged and mismatched keys, changed keys, colliding IDs, and
// bodies that are enormous, deeply nested, not UTF-8, out of range, ambiguous or of the wrong
// shape — through the real engine, against the test homeserver. Each case checks that devlistd
// refuses cleanly (a log line that says what and where), keeps running, stores nothing of the
// refused input, records an event when keys are concerned, and recovers when the server
// behaves again.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"
#include "engine_fixture.hpp"
#include "sync/key_verifier.hpp"
#include "tests/homeserver/simulated_keys.hpp"

namespace devlist::test {
namespace {

using testing::fault;
namespace fault_action = testing::fault_action;

constexpr const char* alice = "@alice:localhost";
constexpr const char* bob = "@bob:localhost";
constexpr const char* mallory = "@mallory:localhost";
constexpr const char* sync_path = "/_matrix/client/v3/sync";
constexpr const char* query_path = "/_matrix/client/v3/keys/query";

std::string replaced(std::string text, std::string_view from, std::string_view to) {
    auto at = text.find(from);
    if (at == std::string::npos) throw std::invalid_argument("no " + std::string(from));
    text.replace(at, from.size(), to);
    return text;
}

std::string nested(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

// What the store knew about a device, compared field by field.
struct device_view {
    std::string ed25519, curve25519, signed_json;
    bool cross_signed = false;
    bool operator==(const device_view&) const = default;
};

class hostile_homeserver_test : public engine_fixture {
  protected:
    std::string room;
    int serial = 0;  // makes device IDs and events of successive cases distinct

    // DEVLIST_PRINT_LOG=1 shows what a person would read in the journal (failures always do).
    void TearDown() override {
        if (std::getenv("DEVLIST_PRINT_LOG") && !HasFailure()) {
            for (const auto& l : log_lines)
                std::fprintf(stderr, "engine log: %s\n", l.c_str());
        }
        engine_fixture::TearDown();
    }

    // Alice (cross-signed, one device) and Bob (one device) share an encrypted room with the
    // bot; the engine has verified and stored both before any hostility.
    void world() {
        hs.add_user(alice, "pw");
        hs.add_user(bob, "pw");
        hs.add_user(mallory, "pw");
        hs.add_device(alice, "ALICE1");
        hs.bootstrap_cross_signing(alice);
        hs.add_device(bob, "BOB1");
        room = hs.create_room(alice, true);
        hs.join(room, bob);
        hs.join(room, bot);
        start();
        ASSERT_TRUE(run_until([&] {
            return all_fresh() && has_device(alice, "ALICE1") && has_device(bob, "BOB1") &&
                   engine->status().keys.identity_uploaded;
        }));
        trusted = snapshot();
        ASSERT_TRUE(trusted.at(alice).at("ALICE1").cross_signed);
    }

    bool all_fresh() {
        return engine && !ended && engine->status().outdated == 0 && engine->status().syncs > 0;
    }

    using snapshot_t = std::map<std::string, std::map<std::string, device_view>>;
    snapshot_t trusted;

    snapshot_t snapshot() {
        snapshot_t out;
        for (const char* u : {alice, bob}) {
            for (const auto& d : devices_of(u))
                out[u][d.device_id] = {d.ed25519, d.curve25519, d.signed_json, d.cross_signed};
        }
        return out;
    }

    // Every device verified before the hostility is still stored, unchanged.
    void expect_trusted_kept() {
        auto now = snapshot();
        for (const auto& [user, devices] : trusted) {
            for (const auto& [id, view] : devices) {
                auto u = now.find(user);
                ASSERT_TRUE(u != now.end() && u->second.contains(id)) << user << " " << id;
                EXPECT_EQ(u->second.at(id), view) << user << " " << id;
            }
        }
    }

    // The cross-signing keys verified before, unchanged.
    std::vector<storage::cross_signing_key> cross_signing_of(const std::string& user) {
        auto k = store->devices().cross_signing_keys_of(user);
        EXPECT_TRUE(k);
        auto out = k ? *k : std::vector<storage::cross_signing_key>{};
        std::sort(out.begin(), out.end(),
                  [](const auto& a, const auto& b) { return a.usage < b.usage; });
        return out;
    }

    std::size_t log_mark() const { return log_lines.size(); }
    std::string logged_since(std::size_t mark, std::string_view needle) const {
        for (std::size_t i = mark; i < log_lines.size(); ++i) {
            if (log_lines[i].find(needle) != std::string::npos) return log_lines[i];
        }
        return {};
    }
    // Waits for a log line after `mark` that holds every needle; returns it (empty: none came).
    std::string wait_log(std::size_t mark, std::initializer_list<std::string_view> needles) {
        std::string found;
        run_until([&] {
            for (std::size_t i = mark; i < log_lines.size(); ++i) {
                const auto& l = log_lines[i];
                if (std::all_of(needles.begin(), needles.end(),
                                [&](auto n) { return l.find(n) != std::string::npos; })) {
                    found = l;
                    return true;
                }
            }
            return ended.has_value();
        });
        return found;
    }

    std::int64_t last_security_id() {
        auto e = security_events();
        std::int64_t id = 0;
        for (const auto& x : e)
            id = std::max(id, x.id);
        return id;
    }
    std::vector<storage::security_event> security_since(std::int64_t id) {
        auto all = security_events();
        std::erase_if(all, [&](const auto& e) { return e.id <= id; });
        return all;
    }
    std::int64_t outbox_cursor() {
        auto c = store->outbox().last_cursor();
        EXPECT_TRUE(c);
        return c ? *c : 0;
    }
    std::vector<storage::outbox_event> outbox_since(std::int64_t cursor) {
        auto e = store->outbox().read_after(cursor, 1000);
        EXPECT_TRUE(e);
        return e ? *e : std::vector<storage::outbox_event>{};
    }

    std::string stored_next_batch() {
        auto s = store->sync().load_sync_state();
        EXPECT_TRUE(s);
        return s && s->next_batch ? *s->next_batch : std::string();
    }

    // The engine is still running and picks up a change the server makes now.
    void expect_recovers() {
        ASSERT_FALSE(ended.has_value())
            << (*ended ? std::string("ended") : ended->error().message());
        std::string id = "LATER" + std::to_string(++serial);
        hs.add_device(bob, id);
        EXPECT_TRUE(run_until([&] { return has_device(bob, id) && all_fresh(); }))
            << "the engine did not pick up a change after the hostile answer";
        expect_trusted_kept();
    }

    // A device as /keys/query serves it, canonical JSON.
    std::string served(const std::string& user, const std::string& device) {
        auto d = hs.served_device_keys(user, device);
        if (!d) throw std::invalid_argument("no such device " + device);
        return json::to_canonical(*d);
    }
    std::string served_cross(const std::string& user, testing::cross_signing_key_kind kind) {
        auto k = hs.cross_signing_key(user, kind);
        if (!k) throw std::invalid_argument("no cross-signing key");
        return json::to_canonical(*k);
    }
    // Every device of the user as served, "ID": {...} members joined by commas.
    std::string served_members(const std::string& user) {
        std::string out;
        for (const auto& d : devices_of(user)) {
            if (!out.empty()) out += ',';
            out += json::to_canonical(json::value(d.device_id)) + ":" + served(user, d.device_id);
        }
        return out;
    }
};

// ---------------------------------------------------------------------------------------------
// /sync bodies
// ---------------------------------------------------------------------------------------------

// A /sync body that would be seen if it were applied: a new encrypted room where Mallory is a
// member (she would be tracked), Mallory in device_lists.changed, and next_batch s999999.
const std::string bait_sync =
    R"({"next_batch":"s999999",)"
    R"("device_lists":{"changed":["@mallory:localhost"],"left":[]},)"
    R"("rooms":{"join":{"!bait:localhost":{"state":{"events":[)"
    R"({"type":"m.room.encryption","state_key":"","content":{"algorithm":"m.megolm.v1.aes-sha2"}},)"
    R"({"type":"m.room.member","state_key":"@mallory:localhost","content":{"membership":"join"}},)"
    R"({"type":"m.room.member","state_key":"@bot:localhost","content":{"membership":"join"}}]},)"
    R"("timeline":{"events":[]}}}},)"
    R"("to_device":{"events":[{"type":"m.dummy","sender":"@mallory:localhost","content":{}}]},)"
    R"("device_one_time_keys_count":{"signed_curve25519":50},)"
    R"("device_unused_fallback_key_types":["signed_curve25519"]})";

struct hostile_body {
    std::string name;
    std::string body;
    // Every one of these must be in the log line that refuses the body.
    std::vector<std::string> log;
};

std::vector<hostile_body> refused_sync_bodies() {
    const std::string& b = bait_sync;
    std::string big = replaced(b, R"("to_device")",
                               R"("padding":")" + std::string(300 << 10, 'x') + R"(","to_device")");
    return {
        {"truncated", b.substr(0, b.size() / 2), {"/sync"}},
        {"not JSON", "<html>502 Bad Gateway</html>", {"/sync response is not JSON", "<html>"}},
        {"an array", "[]", {"/sync response is an array, not an object"}},
        {"trailing content", b + "{}", {"/sync response"}},
        {"enormous", big, {"GET /_matrix/client/v3/sync:", "body exceeds 262144 bytes"}},
        {"nested 10000 deep in an unknown field",
         replaced(b, R"("to_device")", R"("x":)" + nested(10000) + R"(,"to_device")"),
         {"/sync", "deep"}},
        {"nested 10000 deep in to-device content",
         replaced(b, R"("content":{}})", R"("content":{"a":)" + nested(10000) + "}}"),
         {"/sync", "deep"}},
        {"invalid UTF-8 in a user ID",
         replaced(b, "@mallory:localhost\"]", "@mall\xff:localhost\"]"),
         {"/sync", "UTF-8"}},
        {"invalid UTF-8 in a key",
         replaced(b, "\"!bait:localhost\"", "\"!bait\xc3\x28:localhost\""),
         {"/sync", "UTF-8"}},
        {"overlong UTF-8",
         replaced(b, "m.dummy",
                  "m.\xc0\xaf"
                  "dummy"),
         {"/sync", "UTF-8"}},
        {"next_batch missing", replaced(b, R"("next_batch":"s999999",)", ""), {"next_batch"}},
        {"next_batch a number", replaced(b, R"("s999999")", "999999"), {"next_batch"}},
        {"next_batch null", replaced(b, R"("s999999")", "null"), {"next_batch"}},
        {"next_batch empty", replaced(b, R"("s999999")", R"("")"), {"next_batch"}},
        {"next_batch twice",
         replaced(b, R"("next_batch":"s999999",)", R"("next_batch":"s1","next_batch":"s999999",)"),
         {"duplicate", "next_batch"}},
        {"device_lists twice",
         replaced(b, R"("device_lists")", R"("device_lists":{"changed":[]},"device_lists")"),
         {"duplicate", "device_lists"}},
        {"changed twice", replaced(b, R"("left":[])", R"("changed":[])"), {"duplicate", "changed"}},
        {"a key count twice",
         replaced(b, R"("signed_curve25519":50)",
                  R"("signed_curve25519":50,"signed_curve25519":0)"),
         {"duplicate", "signed_curve25519"}},
        {"rooms an array",
         replaced(b, R"("rooms":{"join":)", R"("rooms":[],"x":{"join":)"),
         {"rooms"}},
        {"rooms.join an array",
         replaced(b, R"({"join":{"!bait)", R"({"join":[],"x":{"!bait)"),
         {"rooms", "join"}},
        {"a room a string",
         replaced(b, R"({"!bait:localhost":{)", R"({"!bait:localhost":"x","!y:localhost":{)"),
         {"rooms", "!bait:localhost"}},
        {"state an array",
         replaced(b, R"({"state":{"events":[)", R"({"state":[],"x":{"events":[)"),
         {"rooms", "state"}},
        {"state.events an object",
         replaced(b, R"("timeline":{"events":[]})", R"("timeline":{"events":{}})"),
         {"rooms", "events"}},
        {"device_lists an array",
         replaced(b, R"("device_lists":{"changed":["@mallory:localhost"],"left":[]})",
                  R"("device_lists":["@mallory:localhost"])"),
         {"device_lists"}},
        {"changed a string",
         replaced(b, R"(["@mallory:localhost"])", R"("@mallory:localhost")"),
         {"device_lists", "changed"}},
        {"left an object", replaced(b, R"("left":[])", R"("left":{})"), {"device_lists", "left"}},
        {"to_device an array",
         replaced(b, R"("to_device":{"events":)", R"("to_device":[],"x":{"e":)"),
         {"to_device"}},
        {"to_device.events an object",
         replaced(
             b,
             R"("to_device":{"events":[{"type":"m.dummy","sender":"@mallory:localhost","content":{}}]})",
             R"("to_device":{"events":{"x":1}})"),
         {"to_device", "events"}},
        {"key counts an array",
         replaced(b, R"({"signed_curve25519":50})", "[50]"),
         {"device_one_time_keys_count"}},
        {"a key count 1e400",
         replaced(b, ":50}", ":1e400}"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"a key count 2^64",
         replaced(b, ":50}", ":18446744073709551616}"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"a key count -1",
         replaced(b, ":50}", ":-1}"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"a key count 50.5",
         replaced(b, ":50}", ":50.5}"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"a key count 5.0e1",
         replaced(b, ":50}", ":5.0e1}"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"a key count a string",
         replaced(b, ":50}", R"(:"50"})"),
         {"device_one_time_keys_count", "signed_curve25519"}},
        {"fallback types an object",
         replaced(b, R"(["signed_curve25519"]})", R"({"a":1}})"),
         {"device_unused_fallback_key_types"}},
    };
}

TEST_F(hostile_homeserver_test, refused_sync_bodies_change_nothing_and_sync_goes_on) {
    http_options.max_response_bytes = 256 << 10;
    world();
    const auto cases = refused_sync_bodies();
    for (const auto& c : cases) {
        SCOPED_TRACE("/sync body: " + c.name);
        auto mark = log_mark();
        auto events = last_security_id();
        hs.inject(fault{sync_path, fault_action::raw_response{200, c.body}, "GET", 1});
        // Wakes the long-poll in flight; the request after it gets the hostile body.
        hs.add_device(bob, "WAKE" + std::to_string(++serial));
        std::string line = wait_log(mark, {"sync", "retrying in"});
        ASSERT_FALSE(line.empty()) << "no refusal was logged";
        for (const auto& needle : c.log)
            EXPECT_NE(line.find(needle), std::string::npos) << "log: " << line;
        EXPECT_EQ(logged_since(mark, "s999999"), "");
        EXPECT_NE(stored_next_batch(), "s999999");
        EXPECT_FALSE(tracked(mallory)) << "half of a refused batch was applied";
        auto rooms = store->sync().load_rooms();
        ASSERT_TRUE(rooms);
        EXPECT_TRUE(std::none_of(rooms->begin(), rooms->end(),
                                 [](const auto& r) { return r.room_id == "!bait:localhost"; }));
        EXPECT_TRUE(security_since(events).empty());
        ASSERT_NO_FATAL_FAILURE(expect_recovers());
        if (HasFatalFailure()) return;
    }
    // Nothing the refused bodies carried reached local consumers.
    auto outbox = outbox_since(0);
    EXPECT_TRUE(std::none_of(outbox.begin(), outbox.end(), [](const auto& e) {
        return e.payload_json.find("@mallory:localhost") != std::string::npos;
    }));
    EXPECT_EQ(engine->status().keys.one_time_keys_on_server, 50);
}

// Entries that cannot be used are dropped one by one (and said so); the rest of the batch is
// applied: one garbled user ID must not hold up everyone else's device list.
TEST_F(hostile_homeserver_test, unusable_entries_are_dropped_and_the_rest_applied) {
    world();
    struct dropping_case {
        std::string name;
        std::string from, to;
        std::string reason;
    };
    const std::vector<dropping_case> cases = {
        {"a number in changed", R"(["@mallory:localhost"])", R"([5,"@mallory:localhost"])",
         "device_lists.changed: non-string entry"},
        {"not a user ID in changed", R"(["@mallory:localhost"])",
         R"(["mallory","@mallory:localhost"])", "device_lists.changed: invalid user ID"},
        {"an invalid room ID", R"("rooms":{"join":{)", R"("rooms":{"join":{"bait":{},)",
         "invalid room entry"},
        {"a member event with a numeric state_key", R"("state":{"events":[)",
         R"("state":{"events":[{"type":"m.room.member","state_key":5,"content":{"membership":"join"}},)",
         "event in !bait:localhost: state_key is not a string"},
        {"a membership that is an object", R"("state":{"events":[)",
         R"("state":{"events":[{"type":"m.room.member","state_key":"@x:localhost","content":{"membership":{}}},)",
         "bad m.room.member event"},
        {"an event that is a string", R"("state":{"events":[)", R"("state":{"events":["x",)",
         "event in !bait:localhost is not an object"},
        {"a lone surrogate escape in a to-device type", "m.dummy", "m.\\udc00dummy",
         "to_device event without type, sender or content"},
        {"a to-device event without sender", R"("sender":"@mallory:localhost",)", "",
         "to_device event without type, sender or content"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("/sync body: " + c.name);
        auto mark = log_mark();
        // A token the server gave out: one from the future would be clamped to the present
        // when it comes back, and the changes in between would be lost (the server's doing).
        std::string token = hs.sync_token();
        std::string body = replaced(replaced(bait_sync, c.from, c.to), "s999999", token);
        hs.inject(fault{sync_path, fault_action::raw_response{200, body}, "GET", 1});
        hs.add_device(bob, "WAKE" + std::to_string(++serial));
        std::string line = wait_log(mark, {"sync " + token + ":", "dropped"});
        ASSERT_FALSE(line.empty());
        EXPECT_NE(line.find("dropped 1 malformed entries (first: " + c.reason), std::string::npos)
            << line;
        EXPECT_TRUE(tracked(mallory));  // the rest of the batch was applied
        // The server's next answer is an honest one again (its own tokens are far below).
        ASSERT_NO_FATAL_FAILURE(expect_recovers());
    }
}

// ---------------------------------------------------------------------------------------------
// /keys/query answers: whole bodies
// ---------------------------------------------------------------------------------------------

TEST_F(hostile_homeserver_test, refused_query_answers_change_nothing_and_users_are_asked_again) {
    http_options.max_response_bytes = 256 << 10;
    world();
    // An answer that, if taken, would replace Bob's device by a forged-free, validly signed
    // stranger and drop BOB1.
    testing::simulated_device stranger;
    std::string evil = json::to_canonical(
        testing::make_device_keys(bob, "STRANGER", stranger, stranger.signing_key));
    const std::string a = R"({"device_keys":{"@bob:localhost":{"STRANGER":)" + evil +
                          R"(}},"failures":{},"master_keys":{},"self_signing_keys":{}})";
    const std::vector<hostile_body> cases = {
        {"truncated", a.substr(0, a.size() / 2), {"/keys/query"}},
        {"not JSON", "Service Unavailable", {"/keys/query response is not JSON", "Service"}},
        {"a string", R"("device_keys")", {"/keys/query response is a string, not an object"}},
        {"trailing content", a + "]", {"/keys/query"}},
        {"enormous",
         replaced(a, R"("failures")",
                  R"("pad":")" + std::string(300 << 10, 'p') + R"(","failures")"),
         {"POST /_matrix/client/v3/keys/query:", "body exceeds 262144 bytes"}},
        {"nested 10000 deep",
         replaced(a, R"("failures")", R"("x":)" + nested(10000) + R"(,"failures")"),
         {"/keys/query", "deep"}},
        {"invalid UTF-8 in a display name",
         replaced(a, R"("failures")", "\"x\":\"\xed\xa0\x80\",\"failures\""),
         {"/keys/query", "invalid UTF-8 (byte 0xed) at byte"}},
        {"invalid UTF-8 in a user ID key",
         replaced(a, R"("@bob:localhost":{)", "\"@b\xffob:localhost\":{"),
         {"/keys/query", "UTF-8"}},
        {"device_keys twice",
         replaced(a, R"({"device_keys")", R"({"device_keys":{},"device_keys")"),
         {"duplicate", "device_keys"}},
        {"a user twice",
         replaced(a, R"({"@bob:localhost":{)", R"({"@bob:localhost":{},"@bob:localhost":{)"),
         {"duplicate", "@bob:localhost"}},
        {"a device twice",
         replaced(a, R"({"STRANGER":)", R"({"STRANGER":)" + evil + R"(,"STRANGER":)"),
         {"duplicate", "STRANGER"}},
        {"a master key twice",
         replaced(a, R"("master_keys":{})",
                  R"("master_keys":{"@bob:localhost":{},"@bob:localhost":{}})"),
         {"duplicate", "@bob:localhost"}},
        {"device_keys an array",
         replaced(a, R"({"device_keys":{)", R"({"device_keys":[],"x":{)"),
         {"device_keys"}},
        {"a user's devices an array",
         replaced(a, R"({"@bob:localhost":{)", R"({"@bob:localhost":[],"@x:localhost":{)"),
         {"device_keys", "@bob:localhost"}},
        {"failures an array", replaced(a, R"("failures":{})", R"("failures":[])"), {"failures"}},
        {"master_keys a string",
         replaced(a, R"("master_keys":{})", R"("master_keys":"x")"),
         {"master_keys"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("/keys/query answer: " + c.name);
        auto mark = log_mark();
        auto events = last_security_id();
        hs.inject(fault{query_path, fault_action::raw_response{200, c.body}, "POST", 1});
        ASSERT_TRUE(engine->refresh_user(bob));
        std::string line = wait_log(mark, {"keys/query:", "stay outdated"});
        ASSERT_FALSE(line.empty()) << "no refusal was logged";
        for (const auto& needle : c.log)
            EXPECT_NE(line.find(needle), std::string::npos) << "log: " << line;
        EXPECT_FALSE(has_device(bob, "STRANGER"));
        EXPECT_TRUE(security_since(events).empty());
        // Bob was asked again, with the honest answer.
        EXPECT_TRUE(run_until([&] { return all_fresh(); }));
        ASSERT_NO_FATAL_FAILURE(expect_recovers());
    }
}

// ---------------------------------------------------------------------------------------------
// /keys/query answers: devices (each refusal is a security event and an outbox event)
// ---------------------------------------------------------------------------------------------

struct device_case {
    std::string name;
    // Makes the device's served JSON (for a new device id) hostile; the result is the text
    // /keys/query serves for it.
    std::function<std::string(const std::string& device_id)> make;
    std::string reason;  // in the event's detail and in the log
};

TEST_F(hostile_homeserver_test, hostile_devices_are_refused_recorded_and_published) {
    world();
    // A device that is valid in every way but the one under test: signed with its own key.
    auto signed_device = [](const std::string& device_id,
                            const std::function<void(json::value&)>& mutate) {
        testing::simulated_device d;
        json::value keys = testing::make_device_keys(bob, device_id, d, d.signing_key);
        keys.as_object().erase("signatures");
        mutate(keys);
        crypto::sign_json(keys, bob, "ed25519:" + device_id, d.signing_key);
        return json::to_canonical(keys);
    };
    auto honest = [&](const std::string& device_id) {
        return signed_device(device_id, [](json::value&) {});
    };
    // The device's text with its self-signature's value (a JSON string) replaced by `value`.
    auto with_signature = [&](const std::string& device_id, const std::string& value) {
        std::string t = honest(device_id);
        const std::string key = "\"ed25519:" + device_id + "\":";
        auto start = t.find(key, t.find("\"signatures\"")) + key.size();
        auto end = t.find('"', start + 1) + 1;
        return t.replace(start, end - start, value);
    };
    auto alice_ssk = hs.cross_signing_key(alice, testing::cross_signing_key_kind::self_signing);
    ASSERT_TRUE(alice_ssk);
    const std::string ssk_id = (*alice_ssk)["keys"].as_object().begin()->second.as_string();

    const std::vector<device_case> cases = {
        {"a forged self-signature",
         [&](const std::string& id) {
             testing::simulated_device d, other;
             return json::to_canonical(testing::make_device_keys(bob, id, d, other.signing_key));
         },
         "self-signature invalid"},
        {"no signature",
         [&](const std::string& id) {
             testing::simulated_device d;
             json::value v = testing::make_device_keys(bob, id, d, d.signing_key);
             v.as_object().erase("signatures");
             return json::to_canonical(v);
         },
         "self-signature missing"},
        {"a signature of another user",
         [&](const std::string& id) {
             testing::simulated_device d;
             json::value v = testing::make_device_keys(bob, id, d, d.signing_key);
             json::value sigs = v["signatures"][bob];
             v["signatures"] = json::object{{mallory, sigs}};
             return json::to_canonical(v);
         },
         "self-signature missing"},
        {"a signature that is not base64",
         [&](const std::string& id) { return with_signature(id, "\"!!not base64!!\""); },
         "self-signature invalid"},
        {"user_id of another user",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["user_id"] = mallory; });
         },
         "user_id does not match the map key"},
        {"device_id of another device",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["device_id"] = "BOB1"; });
         },
         "device_id does not match the map key"},
        {"no ed25519 key",
         [&](const std::string& id) {
             return signed_device(
                 id, [&](json::value& v) { v["keys"].as_object().erase("ed25519:" + id); });
         },
         "missing or malformed ed25519 key"},
        {"a 31-byte ed25519 key",
         [&](const std::string& id) {
             return signed_device(
                 id, [&](json::value& v) { v["keys"]["ed25519:" + id] = std::string(42, 'A'); });
         },
         "missing or malformed ed25519 key"},
        {"a curve25519 key that is not base64",
         [&](const std::string& id) {
             return signed_device(
                 id, [&](json::value& v) { v["keys"]["curve25519:" + id] = "not base64!"; });
         },
         "missing or malformed curve25519 key"},
        {"user_id a number",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["user_id"] = std::int64_t{5}; });
         },
         "user_id not a string"},
        {"device_id an array",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["device_id"] = json::array{}; });
         },
         "device_id not a string"},
        {"keys a string",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["keys"] = "x"; });
         },
         "keys is not an object"},
        {"a key a number",
         [&](const std::string& id) {
             return signed_device(
                 id, [&](json::value& v) { v["keys"]["ed25519:" + id] = std::int64_t{1}; });
         },
         "a key is not a string"},
        {"algorithms a string",
         [&](const std::string& id) {
             return signed_device(id, [](json::value& v) { v["algorithms"] = "x"; });
         },
         "algorithms is not an array"},
        {"algorithms holding a number",
         [&](const std::string& id) {
             return signed_device(
                 id, [](json::value& v) { v["algorithms"] = json::array{std::int64_t{1}}; });
         },
         "algorithms has a non-string"},
        {"signatures an array",
         [&](const std::string& id) {
             return replaced(honest(id), "\"signatures\":{\"@bob:localhost\":{",
                             "\"signatures\":[],\"x\":{\"@bob:localhost\":{");
         },
         "signatures is not an object"},
        {"a signature a number", [&](const std::string& id) { return with_signature(id, "7"); },
         "a signature is not a string"},
        {"the device a string", [](const std::string&) { return std::string("\"x\""); },
         "device keys are not an object"},
        {"keys twice",
         [&](const std::string& id) {
             return replaced(honest(id), "\"keys\":", "\"keys\":{},\"keys\":");
         },
         "duplicate key"},
        {"an ed25519 key twice",
         [&](const std::string& id) {
             testing::simulated_device other;
             return replaced(honest(id), "\"keys\":{",
                             "\"keys\":{\"ed25519:" + id + "\":\"" +
                                 other.signing_key.public_key().to_base64() + "\",");
         },
         "duplicate key"},
        {"an unsigned number 1e400 in the signed part",
         [&](const std::string& id) {
             return replaced(honest(id), "\"keys\":", "\"n\":1e400,\"keys\":");
         },
         "self-signature uncheckable"},
        {"a float in the signed part",
         [&](const std::string& id) {
             return replaced(honest(id), "\"keys\":", "\"n\":1.5,\"keys\":");
         },
         "self-signature uncheckable"},
        {"2^64 in the signed part",
         [&](const std::string& id) {
             return replaced(honest(id), "\"keys\":", "\"n\":18446744073709551616,\"keys\":");
         },
         "self-signature uncheckable"},
    };

    for (const auto& c : cases) {
        SCOPED_TRACE("device: " + c.name);
        const std::string id = "EVIL" + std::to_string(++serial);
        auto mark = log_mark();
        auto events = last_security_id();
        auto cursor = outbox_cursor();
        std::string body = R"({"device_keys":{"@bob:localhost":{)" + served_members(bob) + ",\"" +
                           id + "\":" + c.make(id) + R"(}},"failures":{}})";
        hs.inject(fault{query_path, fault_action::raw_response{200, body}, "POST", 1});
        ASSERT_TRUE(engine->refresh_user(bob));
        std::string line = wait_log(mark, {"security: device_rejected", id});
        ASSERT_FALSE(line.empty()) << "no refusal was logged";
        EXPECT_NE(line.find(c.reason), std::string::npos) << line;
        EXPECT_NE(line.find(bob), std::string::npos) << line;
        EXPECT_FALSE(has_device(bob, id));
        auto recorded = security_since(events);
        ASSERT_EQ(recorded.size(), 1u);
        EXPECT_EQ(recorded[0].kind, sync::security_kind::device_rejected);
        EXPECT_EQ(recorded[0].user_id, std::optional<std::string>(bob));
        EXPECT_EQ(recorded[0].device_id, std::optional<std::string>(id));
        EXPECT_NE(recorded[0].detail_json.find(c.reason), std::string::npos)
            << recorded[0].detail_json;
        auto published = outbox_since(cursor);
        EXPECT_TRUE(std::any_of(published.begin(), published.end(), [&](const auto& e) {
            return e.type == sync::security_kind::device_rejected &&
                   e.payload_json.find(id) != std::string::npos &&
                   e.payload_json.find(c.reason) != std::string::npos;
        }));
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        expect_trusted_kept();
    }
    ASSERT_NO_FATAL_FAILURE(expect_recovers());

    // A device whose ID is Alice's self-signing key: validly self-signed, yet refused.
    {
        SCOPED_TRACE("a device ID equal to a cross-signing key ID");
        auto mark = log_mark();
        auto events = last_security_id();
        testing::simulated_device d;
        hs.set_device_keys_json(alice, ssk_id,
                                testing::make_device_keys(alice, ssk_id, d, d.signing_key));
        std::string line = wait_log(mark, {"security: device_rejected", ssk_id});
        ASSERT_FALSE(line.empty());
        EXPECT_NE(line.find("collides with a cross-signing key"), std::string::npos) << line;
        EXPECT_FALSE(has_device(alice, ssk_id));
        auto recorded = security_since(events);
        ASSERT_EQ(recorded.size(), 1u);
        EXPECT_EQ(recorded[0].device_id, std::optional<std::string>(ssk_id));
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        expect_trusted_kept();
    }
}

// A device verified before whose keys the server now serves differently.
TEST_F(hostile_homeserver_test, a_known_device_keeps_its_verified_keys) {
    world();
    const json::value bob1_as_verified = *hs.served_device_keys(bob, "BOB1");
    struct known_case {
        std::string name;
        std::function<void()> act;
        const char* kind;
        std::string detail;
    };
    const std::vector<known_case> cases = {
        {"a new ed25519 key, validly self-signed", [&] { hs.change_device_keys(bob, "BOB1"); },
         sync::security_kind::device_key_changed, "new_ed25519"},
        {"re-signed under another user_id",
         [&] {
             testing::simulated_device d;
             json::value v = testing::make_device_keys(mallory, "BOB1", d, d.signing_key);
             hs.set_device_keys_json(bob, "BOB1", v);
         },
         sync::security_kind::device_rejected, "user_id does not match the map key"},
        {"its self-signature forged",
         [&] {
             json::value keys = bob1_as_verified;
             keys.as_object().erase("unsigned");
             keys["signatures"][bob]["ed25519:BOB1"] = std::string(86, 'A');
             hs.set_device_keys_json(bob, "BOB1", keys);
         },
         sync::security_kind::device_rejected, "self-signature invalid"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("BOB1: " + c.name);
        auto mark = log_mark();
        auto events = last_security_id();
        auto cursor = outbox_cursor();
        c.act();
        std::string line = wait_log(mark, {std::string("security: ") + c.kind, "BOB1"});
        ASSERT_FALSE(line.empty());
        EXPECT_NE(line.find(c.detail), std::string::npos) << line;
        auto recorded = security_since(events);
        ASSERT_EQ(recorded.size(), 1u);
        EXPECT_EQ(recorded[0].kind, c.kind);
        EXPECT_NE(recorded[0].detail_json.find(c.detail), std::string::npos);
        auto published = outbox_since(cursor);
        EXPECT_TRUE(std::any_of(published.begin(), published.end(),
                                [&](const auto& e) { return e.type == c.kind; }));
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        expect_trusted_kept();  // BOB1 as first verified
    }
    ASSERT_NO_FATAL_FAILURE(expect_recovers());
}

// ---------------------------------------------------------------------------------------------
// /keys/query answers: cross-signing keys
// ---------------------------------------------------------------------------------------------

TEST_F(hostile_homeserver_test, hostile_cross_signing_keys_are_refused_and_recorded) {
    world();
    using kind = testing::cross_signing_key_kind;
    const auto master_before = cross_signing_of(alice);
    ASSERT_EQ(master_before.size(), 2u);
    const std::string master = served_cross(alice, kind::master);
    const std::string ssk = served_cross(alice, kind::self_signing);
    json::value master_v = *hs.cross_signing_key(alice, kind::master);
    const std::string master_pub = master_v["keys"].as_object().begin()->second.as_string();
    auto body = [&](const std::string& m, const std::string& s) {
        return R"({"device_keys":{"@alice:localhost":{)" + served_members(alice) +
               R"(}},"failures":{},"master_keys":{"@alice:localhost":)" + m +
               R"(},"self_signing_keys":{"@alice:localhost":)" + s + "}}";
    };
    crypto::ed25519_key_pair other = crypto::ed25519_key_pair::generate();
    const std::string other_pub = other.public_key().to_base64();
    struct cs_case {
        std::string name;
        std::string body;
        std::string usage, reason;
    };
    const std::vector<cs_case> cases = {
        {"master of another user",
         body(replaced(master, R"("user_id":"@alice:localhost")",
                       R"("user_id":"@mallory:localhost")"),
              ssk),
         "master", "user_id does not match"},
        {"master without its usage",
         body(replaced(master, R"(["master"])", R"(["self_signing"])"), ssk), "master",
         "usage does not include master"},
        {"master with two keys",
         body(replaced(master, R"("keys":{)",
                       "\"keys\":{\"ed25519:" + other_pub + "\":\"" + other_pub + "\","),
              ssk),
         "master", "must have exactly one key"},
        {"master key ID not its key",
         body(replaced(master, "\"ed25519:" + master_pub, "\"ed25519:" + other_pub), ssk), "master",
         "key ID does not match the key"},
        {"master key not base64",
         body(replaced(replaced(master, master_pub + "\":", "!!\":"), "\"" + master_pub + "\"",
                       "\"!!\""),
              ssk),
         "master", "32-byte"},
        {"master a number", body("5", ssk), "master", "not an object"},
        {"master usage a string", body(replaced(master, R"(["master"])", R"("master")"), ssk),
         "master", "usage is not an array"},
        {"self-signing not signed by the master key",
         body(master, json::to_canonical(
                          testing::make_cross_signing_key(alice, "self_signing", other, other))),
         "self_signing", "not signed by the master key"},
        {"self-signing key twice",
         body(master, replaced(ssk, "\"keys\":", "\"keys\":{},\"keys\":")), "self_signing",
         "duplicate key"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("cross-signing: " + c.name);
        auto mark = log_mark();
        auto events = last_security_id();
        auto cursor = outbox_cursor();
        hs.inject(fault{query_path, fault_action::raw_response{200, c.body}, "POST", 1});
        ASSERT_TRUE(engine->refresh_user(alice));
        std::string line = wait_log(mark, {"security: cross_signing_key_rejected"});
        ASSERT_FALSE(line.empty());
        EXPECT_NE(line.find(c.reason), std::string::npos) << line;
        EXPECT_NE(line.find("\"usage\":\"" + c.usage + "\""), std::string::npos) << line;
        auto recorded = security_since(events);
        ASSERT_EQ(recorded.size(), 1u);
        EXPECT_EQ(recorded[0].kind, sync::security_kind::cross_signing_key_rejected);
        EXPECT_EQ(recorded[0].user_id, std::optional<std::string>(alice));
        auto published = outbox_since(cursor);
        EXPECT_TRUE(std::any_of(published.begin(), published.end(), [&](const auto& e) {
            return e.type == sync::security_kind::cross_signing_key_rejected;
        }));
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        // Alice's device keys themselves are untouched (what happens to the stored
        // cross-signing keys meanwhile: a_rejected_cross_signing_key_keeps_the_verified_ones).
        auto a1 = snapshot().at(alice).at("ALICE1");
        EXPECT_EQ(a1.ed25519, trusted.at(alice).at("ALICE1").ed25519);
        EXPECT_EQ(a1.signed_json, trusted.at(alice).at("ALICE1").signed_json);
        // The honest answer again: the chain verifies and the device is cross-signed again.
        ASSERT_TRUE(engine->refresh_user(alice));
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        auto now = cross_signing_of(alice);
        ASSERT_EQ(now.size(), master_before.size());
        for (std::size_t i = 0; i < now.size(); ++i)
            EXPECT_EQ(now[i].public_key, master_before[i].public_key);
        expect_trusted_kept();
    }
}

// A cross-signing key that fails verification is recorded, and what was verified before stays
// (for a rejected master key, the whole chain), exactly as a refused device keeps its verified
// record: one bad answer must not erase a verified identity or the devices' cross-signed verdict.
TEST_F(hostile_homeserver_test, a_rejected_cross_signing_key_keeps_the_verified_ones) {
    world();
    using kind = testing::cross_signing_key_kind;
    const auto before = cross_signing_of(alice);
    ASSERT_EQ(before.size(), 2u);
    const std::string master = served_cross(alice, kind::master);
    const std::string ssk = served_cross(alice, kind::self_signing);
    crypto::ed25519_key_pair other = crypto::ed25519_key_pair::generate();
    const std::string forged_ssk =
        json::to_canonical(testing::make_cross_signing_key(alice, "self_signing", other, other));
    for (const auto& [m, s] : {std::pair{replaced(master, R"("user_id":"@alice:localhost")",
                                                  R"("user_id":"@mallory:localhost")"),
                                         ssk},
                               std::pair{master, forged_ssk}}) {
        hs.inject(fault{query_path,
                        fault_action::raw_response{
                            200, R"({"device_keys":{"@alice:localhost":{)" + served_members(alice) +
                                     R"(}},"master_keys":{"@alice:localhost":)" + m +
                                     R"(},"self_signing_keys":{"@alice:localhost":)" + s + "}}"},
                        "POST", 1});
        auto events = last_security_id();
        ASSERT_TRUE(engine->refresh_user(alice));
        ASSERT_TRUE(run_until([&] { return !security_since(events).empty() && all_fresh(); }));
        auto now = cross_signing_of(alice);
        ASSERT_EQ(now.size(), before.size());
        for (std::size_t i = 0; i < now.size(); ++i) {
            EXPECT_EQ(now[i].public_key, before[i].public_key);
            EXPECT_EQ(now[i].signed_json, before[i].signed_json);
        }
        expect_trusted_kept();  // ALICE1 still cross-signed
    }
}

TEST_F(hostile_homeserver_test, a_changed_master_key_is_recorded_published_and_logged) {
    world();
    using kind = testing::cross_signing_key_kind;
    json::value old_master = *hs.cross_signing_key(alice, kind::master);
    const std::string old_pub = old_master["keys"].as_object().begin()->second.as_string();
    auto mark = log_mark();
    auto events = last_security_id();
    auto cursor = outbox_cursor();
    hs.change_master_key(alice);
    json::value new_master = *hs.cross_signing_key(alice, kind::master);
    const std::string new_pub = new_master["keys"].as_object().begin()->second.as_string();
    std::string line = wait_log(mark, {"security: master_key_changed", alice});
    ASSERT_FALSE(line.empty());
    EXPECT_NE(line.find(old_pub), std::string::npos) << line;
    EXPECT_NE(line.find(new_pub), std::string::npos) << line;
    auto recorded = security_since(events);
    ASSERT_EQ(recorded.size(), 1u);
    EXPECT_EQ(recorded[0].kind, sync::security_kind::master_key_changed);
    auto published = outbox_since(cursor);
    EXPECT_TRUE(std::any_of(published.begin(), published.end(), [&](const auto& e) {
        return e.type == sync::security_kind::master_key_changed &&
               e.payload_json.find(new_pub) != std::string::npos;
    }));
    ASSERT_TRUE(run_until([&] {
        auto keys = cross_signing_of(alice);
        return all_fresh() && !keys.empty() && keys[0].public_key == new_pub;
    }));
    // ALICE1's own keys are unchanged, and the new chain cross-signs it.
    auto a1 = snapshot().at(alice).at("ALICE1");
    EXPECT_EQ(a1.ed25519, trusted.at(alice).at("ALICE1").ed25519);
    EXPECT_EQ(a1.curve25519, trusted.at(alice).at("ALICE1").curve25519);
    EXPECT_TRUE(a1.cross_signed);
    trusted = snapshot();  // its signed JSON now carries the new self-signing signature
    ASSERT_NO_FATAL_FAILURE(expect_recovers());
}

// ---------------------------------------------------------------------------------------------
// /keys/changes answers (the catch-up after a rejected sync token)
// ---------------------------------------------------------------------------------------------

TEST_F(hostile_homeserver_test, a_refused_keys_changes_answer_marks_everyone_outdated) {
    http_options.max_response_bytes = 256 << 10;
    world();
    const std::string a = R"({"changed":["@bob:localhost"],"left":[]})";
    const std::vector<hostile_body> cases = {
        {"truncated", a.substr(0, 10), {"/keys/changes"}},
        {"changed a string",
         R"({"changed":"@bob:localhost","left":[]})",
         {"/keys/changes", "changed"}},
        {"left an object", R"({"changed":[],"left":{}})", {"/keys/changes", "left"}},
        {"changed twice",
         R"({"changed":[],"changed":["@bob:localhost"]})",
         {"duplicate", "changed"}},
        {"invalid UTF-8", "{\"changed\":[\"@b\xffob:localhost\"]}", {"/keys/changes", "UTF-8"}},
        {"nested 10000 deep", "{\"x\":" + nested(10000) + "}", {"/keys/changes", "deep"}},
        {"enormous",
         R"({"x":")" + std::string(300 << 10, 'c') + "\"}",
         {"/keys/changes", "body exceeds 262144 bytes"}},
        {"an array", "[]", {"/keys/changes"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("/keys/changes answer: " + c.name);
        auto mark = log_mark();
        hs.inject(fault{sync_path, fault_action::reject_sync_token{}, "GET", 1});
        hs.inject(fault{"/_matrix/client/v3/keys/changes", fault_action::raw_response{200, c.body},
                        "GET", 1});
        hs.add_device(bob, "WAKE" + std::to_string(++serial));
        std::string line = wait_log(mark, {"catch-up: "});
        ASSERT_FALSE(line.empty());
        EXPECT_NE(line.find("marked all"), std::string::npos) << line;
        for (const auto& needle : c.log)
            EXPECT_NE(line.find(needle), std::string::npos) << "log: " << line;
        ASSERT_TRUE(run_until([&] { return all_fresh(); }));
        expect_trusted_kept();
        ASSERT_NO_FATAL_FAILURE(expect_recovers());
    }
}

// ---------------------------------------------------------------------------------------------
// /keys/upload and /login answers
// ---------------------------------------------------------------------------------------------

TEST_F(hostile_homeserver_test, refused_upload_answers_are_retried_with_the_same_keys) {
    http_options.max_response_bytes = 256 << 10;
    options.one_time_key_target = 10;
    options.upload_backoff = {std::chrono::milliseconds(1), std::chrono::milliseconds(5)};
    const std::vector<hostile_body> cases = {
        {"truncated", R"({"one_time_key_counts":{"signed_curve25519":)", {"/keys/upload"}},
        {"counts missing", "{}", {"/keys/upload", "one_time_key_counts"}},
        {"counts an array",
         R"({"one_time_key_counts":[10]})",
         {"/keys/upload", "one_time_key_counts"}},
        {"a count 1e400",
         R"({"one_time_key_counts":{"signed_curve25519":1e400}})",
         {"/keys/upload"}},
        {"a count 2^64",
         R"({"one_time_key_counts":{"signed_curve25519":18446744073709551616}})",
         {"/keys/upload"}},
        {"a count -1",
         R"({"one_time_key_counts":{"signed_curve25519":-1}})",
         {"/keys/upload", "signed_curve25519"}},
        {"a count 2.5", R"({"one_time_key_counts":{"signed_curve25519":2.5}})", {"/keys/upload"}},
        {"a count twice",
         R"({"one_time_key_counts":{"signed_curve25519":10,"signed_curve25519":0}})",
         {"/keys/upload", "duplicate", "signed_curve25519"}},
        {"invalid UTF-8", "{\"one_time_key_counts\":{\"\xff\":1}}", {"/keys/upload", "UTF-8"}},
        {"nested 10000 deep", "{\"x\":" + nested(10000) + "}", {"/keys/upload", "deep"}},
        {"enormous",
         R"({"x":")" + std::string(300 << 10, 'u') + "\"}",
         {"/keys/upload", "body exceeds 262144 bytes"}},
    };
    for (const auto& c : cases) {
        hs.inject(fault{"/_matrix/client/v3/keys/upload", fault_action::raw_response{200, c.body},
                        "POST", 1});
    }
    start();
    ASSERT_TRUE(run_until([&] {
        return engine->status().keys.identity_uploaded &&
               hs.one_time_key_count(bot, "BOTDEVICE") == 10 &&
               engine->status().keys.one_time_keys_pending == 0;
    }));
    for (const auto& c : cases) {
        SCOPED_TRACE("/keys/upload answer: " + c.name);
        bool found = false;
        for (const auto& l : log_lines) {
            if (l.find("/keys/upload") == std::string::npos) continue;
            if (std::all_of(c.log.begin(), c.log.end(),
                            [&](const auto& n) { return l.find(n) != std::string::npos; })) {
                found = true;
            }
        }
        EXPECT_TRUE(found) << "no log line with every needle";
    }
    EXPECT_FALSE(ended.has_value());
    // Every published key still has its private part; none was published twice.
    auto history = hs.keys_published_by(bot, "BOTDEVICE");
    EXPECT_TRUE(history.refused_conflicts.empty());
    auto all = store->one_time_keys().all();
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 10u);
    ASSERT_EQ(history.one_time_keys.size(), 10u);
    for (const auto& published : history.one_time_keys) {
        auto id = published.key_id.substr(published.key_id.find(':') + 1);
        auto mine = store->one_time_keys().find(id);
        ASSERT_TRUE(mine);
        EXPECT_TRUE(mine->has_value()) << published.key_id << " has no private part";
    }
}

TEST_F(hostile_homeserver_test, refused_login_answers_are_retried_and_never_half_taken) {
    options.sync_backoff = {std::chrono::milliseconds(1), std::chrono::milliseconds(5)};
    const std::vector<hostile_body> cases = {
        {"truncated", R"({"user_id":"@bot:localhost","access)", {"/login"}},
        {"user_id a number",
         R"({"user_id":5,"access_token":"t","device_id":"BOTDEVICE"})",
         {"/login", "user_id"}},
        {"no access_token",
         R"({"user_id":"@bot:localhost","device_id":"BOTDEVICE"})",
         {"/login", "access_token"}},
        {"access_token twice",
         R"({"user_id":"@bot:localhost","access_token":"good","access_token":"evil","device_id":"BOTDEVICE"})",
         {"/login", "duplicate", "access_token"}},
        {"invalid UTF-8",
         "{\"user_id\":\"@bot:localhost\",\"access_token\":\"\xff\"}",
         {"/login", "UTF-8"}},
        {"nested 10000 deep", "{\"x\":" + nested(10000) + "}", {"/login", "deep"}},
    };
    for (const auto& c : cases) {
        hs.inject(
            fault{"/_matrix/client/v3/login", fault_action::raw_response{200, c.body}, "POST", 1});
    }
    start();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > 0; }));
    EXPECT_EQ(engine->status().device_id, "BOTDEVICE");
    for (const auto& c : cases) {
        SCOPED_TRACE("/login answer: " + c.name);
        bool found = false;
        for (const auto& l : log_lines) {
            if (l.find("POST /login:") == std::string::npos) continue;
            if (std::all_of(c.log.begin(), c.log.end(),
                            [&](const auto& n) { return l.find(n) != std::string::npos; })) {
                found = true;
            }
        }
        EXPECT_TRUE(found) << "no log line with every needle";
    }
}

}  // namespace
}  // namespace devlist::test
