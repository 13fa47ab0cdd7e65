#include "sync/parse_sync.hpp"

#include <gtest/gtest.h>

#include "fixture_file.hpp"

namespace devlist::sync {
namespace {

result<sync_response> parse(const std::string& body) {
    static parse_context ctx;
    return parse_sync_response(ctx, body);
}

TEST(parse_sync, spec_example_with_device_lists_and_key_counts) {
    auto r = parse(test::read_fixture("spec-examples/md.sync.e2e-extensions.example.json"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->next_batch, "s72595_4483_1934");
    EXPECT_EQ(r->device_lists_changed, std::vector<std::string>{"@alice:example.com"});
    EXPECT_EQ(r->device_lists_left, std::vector<std::string>{"@bob:example.com"});
    ASSERT_TRUE(r->one_time_key_counts);
    EXPECT_EQ(r->one_time_key_counts->at("signed_curve25519"), 20);
    ASSERT_TRUE(r->unused_fallback_key_types);
    EXPECT_EQ(*r->unused_fallback_key_types, std::vector<std::string>{"signed_curve25519"});
    EXPECT_EQ(r->dropped, 0u);
}

TEST(parse_sync, spec_to_device_example_keeps_content_bytes) {
    auto r = parse(test::read_fixture("spec-examples/md.sync.to_device.example.json"));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->to_device.size(), 1u);
    EXPECT_EQ(r->to_device[0].type, "m.new_device");
    EXPECT_EQ(r->to_device[0].sender, "@alice:example.com");
    EXPECT_EQ(r->to_device[0].content_json.front(), '{');
    EXPECT_NE(r->to_device[0].content_json.find("\"XYZABCDE\""), std::string::npos);
    EXPECT_EQ(r->to_device[0].content_json.back(), '}');
}

TEST(parse_sync, rooms_members_and_encryption) {
    auto r = parse(R"({
      "next_batch": "s2",
      "rooms": {
        "join": {"!r:x": {
          "state": {"events": [
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
            {"type": "m.room.member", "state_key": "@a:x", "content": {"membership": "join"}}]},
          "timeline": {"events": [
            {"content": {"membership": "invite"}, "state_key": "@b:x", "type": "m.room.member"},
            {"type": "m.room.message", "content": {"body": "hi", "membership": "join"}},
            {"type": "m.room.member", "state_key": "@a:x", "content": {"membership": "leave"}}],
            "limited": true}}},
        "invite": {"!i:x": {"invite_state": {"events": [
            {"type": "m.room.member", "state_key": "@me:x", "content": {"membership": "invite"}}]}}},
        "leave": {"!l:x": {"timeline": {"events": []}}},
        "knock": {"!k:x": {}}
      }})");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->rooms.size(), 3u);
    const auto& joined = r->rooms[0];
    EXPECT_EQ(joined.room_id, "!r:x");
    EXPECT_EQ(joined.section, room_section::join);
    EXPECT_EQ(joined.encryption_algorithm, "m.megolm.v1.aes-sha2");
    ASSERT_EQ(joined.members.size(), 3u);  // the message is not state and is ignored
    EXPECT_EQ(joined.members[0].user_id, "@a:x");
    EXPECT_EQ(joined.members[0].state, membership::join);
    EXPECT_EQ(joined.members[1].user_id, "@b:x");
    EXPECT_EQ(joined.members[1].state, membership::invite);
    EXPECT_EQ(joined.members[2].state, membership::leave);
    EXPECT_EQ(r->rooms[1].section, room_section::invite);
    EXPECT_EQ(r->rooms[1].members.at(0).user_id, "@me:x");
    EXPECT_EQ(r->rooms[2].section, room_section::leave);
    EXPECT_FALSE(r->one_time_key_counts.has_value());
    EXPECT_FALSE(r->unused_fallback_key_types.has_value());
}

TEST(parse_sync, bad_entries_are_dropped_and_counted_not_fatal) {
    auto r = parse(R"({"next_batch": "s3",
      "device_lists": {"changed": ["@ok:x", "not-a-user", 7, "@also:ok"], "left": []},
      "device_one_time_keys_count": {"curve25519": 3},
      "rooms": {"join": {"!r:x": {"state": {"events": [
          {"type": "m.room.member", "state_key": "bad id", "content": {"membership": "join"}},
          {"type": "m.room.member", "state_key": "@x:x", "content": {"membership": "dancing"}},
          {"type": "m.room.encryption", "state_key": "", "content": {}},
          "not an event"]}}}},
      "to_device": {"events": [{"type": "t", "sender": "@s:x"}, 5,
                               {"type": "t", "sender": "@s:x", "content": {}}]}})");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->device_lists_changed, (std::vector<std::string>{"@ok:x", "@also:ok"}));
    EXPECT_TRUE(r->device_lists_left.empty());
    ASSERT_TRUE(r->one_time_key_counts);
    EXPECT_EQ(r->one_time_key_counts->at("curve25519"), 3);
    EXPECT_TRUE(r->rooms.at(0).members.empty());
    EXPECT_FALSE(r->rooms.at(0).encryption_algorithm.has_value());
    EXPECT_EQ(r->to_device.size(), 1u);
    EXPECT_GE(r->dropped, 8u);
    EXPECT_FALSE(r->drop_reasons.empty());
    EXPECT_LE(r->drop_reasons.size(), 8u);
}

// Where dropping would lose or invent something (a list of changes that is not a list, a count
// that would read as 0, a key that means whichever value the reader picks), the body is
// refused, and the error says what and where.
TEST(parse_sync, wrong_containers_bad_counts_and_duplicate_keys_refuse_the_body) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"next_batch": "s", "device_lists": {"left": "nope"}})",
         "device_lists.left is not an array"},
        {R"({"next_batch": "s", "device_lists": []})", "device_lists is not an object"},
        {R"({"next_batch": "s", "rooms": {"join": []}})", "rooms.join is not an object"},
        {R"({"next_batch": "s", "rooms": {"join": {"!r:x": 1}}})", "rooms: !r:x is not an object"},
        {R"({"next_batch": "s", "rooms": {"join": {"!r:x": {"timeline": {"events": {}}}}}})",
         "rooms: !r:x timeline events is not an array"},
        {R"({"next_batch": "s", "to_device": {"events": 1}})", "to_device.events is not an array"},
        {R"({"next_batch": "s", "device_one_time_keys_count": {"signed_curve25519": -1}})",
         "device_one_time_keys_count \"signed_curve25519\" is -1, not a non-negative integer"},
        {R"({"next_batch": "s", "device_one_time_keys_count": {"signed_curve25519": 1e400}})",
         "device_one_time_keys_count \"signed_curve25519\" is 1e400"},
        {R"({"next_batch": "s", "device_one_time_keys_count": {"signed_curve25519": 1.0}})",
         "device_one_time_keys_count \"signed_curve25519\" is 1.0"},
        {R"({"next_batch": "s", "device_one_time_keys_count": {"a": 18446744073709551616}})",
         "device_one_time_keys_count \"a\" is 18446744073709551616"},
        {R"({"next_batch": "s", "device_unused_fallback_key_types": [1]})",
         "device_unused_fallback_key_types has a non-string"},
        {R"({"next_batch": "s", "next_batch": "t"})",
         "duplicate key \"next_batch\" in the /sync response"},
        {R"({"next_batch": "s", "device_lists": {"changed": [], "changed": ["@a:x"]}})",
         "duplicate key \"changed\" in device_lists"},
        {R"({"next_batch": "s", "rooms": {"join": {"!r:x": {}, "!r:x": {}}}})",
         "duplicate key \"!r:x\" in rooms.join"},
        {R"({"next_batch": "s", "device_one_time_keys_count": {"a": 1, "a": 2}})",
         "duplicate key \"a\" in device_one_time_keys_count"},
        {R"({"next_batch": "s", "a\nb": 1, "a\nb": 2})",
         "duplicate key \"a\\u000ab\" in the /sync response"},
        {"{\"next_batch\": \"s\", \"x\": \"ab\xed\xa0\x80\"}",
         "invalid UTF-8 (byte 0xed) at byte 28"},
    };
    for (const auto& [body, message] : cases) {
        auto r = parse(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(message), std::string::npos)
            << body << " -> " << r.error().message();
    }
}

TEST(parse_sync, events_with_wrong_types_or_duplicate_keys_are_dropped_with_a_reason) {
    auto r = parse(R"({"next_batch": "s", "rooms": {"join": {"!r:x": {"state": {"events": [
          {"type": "m.room.member", "state_key": 5, "content": {"membership": "join"}},
          {"type": "m.room.member", "state_key": "@a:x", "content": {"membership": "join",
                                                                     "membership": "leave"}},
          {"type": "m.room.member", "state_key": "@b:x", "content": {"membership": "join"}}]}}}},
      "to_device": {"events": [{"type": "t", "type": "u", "sender": "@s:x", "content": {}}]}})");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->rooms.size(), 1u);
    ASSERT_EQ(r->rooms[0].members.size(), 1u);
    EXPECT_EQ(r->rooms[0].members[0].user_id, "@b:x");
    EXPECT_TRUE(r->to_device.empty());
    EXPECT_EQ(r->dropped, 3u);
    EXPECT_EQ(r->drop_reasons.at(0), "event in !r:x: state_key is not a string");
    EXPECT_EQ(r->drop_reasons.at(1), "event in !r:x: duplicate key \"membership\" in its content");
    EXPECT_EQ(r->drop_reasons.at(2), "to_device event with a duplicate key");
}

TEST(parse_sync, fallback_field_stable_wins_over_unstable) {
    auto both = parse(R"({"next_batch": "s", "org.matrix.msc2732.device_unused_fallback_key_types":
                          ["x"], "device_unused_fallback_key_types": []})");
    ASSERT_TRUE(both);
    ASSERT_TRUE(both->unused_fallback_key_types);
    EXPECT_TRUE(both->unused_fallback_key_types->empty());
    auto unstable = parse(R"({"next_batch": "s",
        "org.matrix.msc2732.device_unused_fallback_key_types": ["signed_curve25519"]})");
    ASSERT_TRUE(unstable);
    ASSERT_TRUE(unstable->unused_fallback_key_types);
    EXPECT_EQ(unstable->unused_fallback_key_types->size(), 1u);
}

TEST(parse_sync, unusable_bodies_are_errors) {
    for (const char* body : {"", "[]", "{", "{\"next_batch\": 5}", "{}", "{\"rooms\": {}}",
                             "{\"next_batch\": \"s\"} trailing", "{\"next_batch\": \"s\",}",
                             "\xff\xfe", "{\"next_batch\": \"\xc3\x28\"}"}) {
        auto r = parse(body);
        EXPECT_FALSE(r) << body;
    }
}

TEST(parse_sync, deep_nesting_is_refused_wherever_it_is) {
    // Unknown fields would be skipped without recursion, but the body goes on to the sync hook
    // and to bots' own parsers: nesting beyond the context's limit refuses it, in unknown
    // fields and in strings' neighbours alike, and brackets inside strings do not count.
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    for (const std::string& body :
         {R"({"x": )" + deep + R"(, "next_batch": "s"})",
          R"({"next_batch": "s", "device_lists": {"changed": [)" + deep + "]}}"}) {
        auto r = parse(body);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("nesting deeper than the limit of 128 at byte"),
                  std::string::npos)
            << r.error().message();
    }
    const std::string brackets_in_a_string = "\"" + std::string(1000, '[') + "\\\"\"";
    auto fine = parse(R"({"x": )" + brackets_in_a_string + R"(, "next_batch": "s", "y": )" +
                      std::string(120, '[') + std::string(120, ']') + "}");
    ASSERT_TRUE(fine) << fine.error().message();
    EXPECT_EQ(fine->next_batch, "s");
}

TEST(parse_sync, the_depth_count_finds_each_string_end_after_runs_of_backslashes) {
    // A quote ends a string unless an odd run of backslashes comes before it. The brackets in
    // these strings must not count; the root object and 128 brackets after them must, at the
    // byte of the 128th.
    const std::string deep = std::string(128, '[') + std::string(128, ']');
    const std::string fits = std::string(127, '[') + std::string(127, ']');
    for (const std::string_view text :
         {R"("\\\\")", R"("[\\\"[")", R"("[\\\\\\\"{")", R"("\\\\\\\\")",
          R"("[[[\\\\\\\\\\\"]]]\\\\")", R"("")", R"("\\\\[\\\\")"}) {
        const std::string head = R"({"next_batch": "s", "x": )" + std::string(text) + R"(, "y": )";
        auto r = parse(head + deep + "}");
        ASSERT_FALSE(r) << text;
        EXPECT_NE(r.error().message().find("nesting deeper than the limit of 128 at byte " +
                                           std::to_string(head.size() + 127)),
                  std::string::npos)
            << text << ": " << r.error().message();
        auto fine = parse(head + fits + "}");
        EXPECT_TRUE(fine) << text << ": " << fine.error().message();
    }
}

TEST(parse_sync, body_without_spare_capacity_is_copied_once) {
    std::string body = R"({"next_batch": "s9"})";
    body.shrink_to_fit();
    auto r = parse(body);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->next_batch, "s9");
}

}  // namespace
}  // namespace devlist::sync
