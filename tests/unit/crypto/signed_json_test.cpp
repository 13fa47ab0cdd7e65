#include "crypto/signed_json.hpp"

#include "crypto/base64.hpp"
#include "crypto/canonical_json.hpp"
#include "crypto/curve25519.hpp"
#include "spec_vectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sodium.h>

#include <algorithm>
#include <array>

namespace devlist::crypto {
namespace {

using ::testing::HasSubstr;

simdjson::dom::element signing_fixture() {
    return test::spec_vectors("signing-json.json");
}

ed25519_public_key spec_public_key() {
    return ed25519_public_key::from_base64(test::string_at(signing_fixture()["signing_key"],
                                                           "derived_public_key_base64_NOT_IN_SPEC"))
        .value();
}

std::string spec_entity() {
    return test::string_at(signing_fixture()["signing_key"], "SERVER_NAME");
}
std::string spec_key_id() {
    return test::string_at(signing_fixture()["signing_key"], "KEY_ID");
}

std::string minified(simdjson::dom::element e) {
    return simdjson::minify(e);
}

// ---- the spec's JSON signing vectors ----

struct signing_case {
    std::string name;
    std::string input_raw;
    std::string input;  // the fixture's parsed copy, minified by simdjson
    std::string canonical_signed;
    std::string expected_signed_raw;
    std::string expected_signed;
    std::string expected_signature;
};

std::vector<signing_case> json_signing_cases() {
    std::vector<signing_case> cases;
    for (auto c : signing_fixture()["json_signing_vectors"].get_array()) {
        cases.push_back({test::test_name(test::string_at(c, "id")), test::string_at(c, "input_raw"),
                         minified(c["input"]), test::string_at(c, "canonical_bytes_signed"),
                         test::string_at(c, "expected_signed_raw"), minified(c["expected_signed"]),
                         test::string_at(c, "expected_signature")});
    }
    return cases;
}

class json_signing_vector : public ::testing::TestWithParam<signing_case> {};

TEST_P(json_signing_vector, signs_like_the_spec) {
    const auto& c = GetParam();
    const auto pair = test::spec_signing_key_pair();
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    EXPECT_EQ(canonicalize(c.input_raw, strip).value(), c.canonical_signed);
    EXPECT_EQ(pair.sign(c.canonical_signed).to_base64(), c.expected_signature);

    const auto signed_raw = sign_json(c.input_raw, spec_entity(), spec_key_id(), pair);
    ASSERT_TRUE(signed_raw) << signed_raw.error().message();
    EXPECT_EQ(*signed_raw, canonicalize(c.expected_signed_raw).value());
    EXPECT_EQ(*signed_raw, canonicalize(c.expected_signed).value());
    EXPECT_EQ(sign_json(c.input, spec_entity(), spec_key_id(), pair).value(), *signed_raw);

    auto in_place = json::parse(c.input_raw).value();
    sign_json(in_place, spec_entity(), spec_key_id(), pair);
    EXPECT_EQ(json::to_canonical(in_place), *signed_raw);
}

TEST_P(json_signing_vector, verifies_the_spec_output_with_the_derived_key) {
    const auto& c = GetParam();
    const auto r =
        verify_json(c.expected_signed_raw, spec_entity(), spec_key_id(), spec_public_key());
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_TRUE(
        verify_json_signature(c.expected_signed_raw, c.expected_signature, spec_public_key()));
    EXPECT_EQ(verify_json(c.expected_signed_raw, spec_entity(), spec_key_id(),
                          ed25519_key_pair::generate().public_key())
                  .error(),
              errc::signature_invalid);
}

INSTANTIATE_TEST_SUITE_P(spec, json_signing_vector, ::testing::ValuesIn(json_signing_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// ---- the spec's event signing vectors ----
// Their "method": the signature covers canonical(redacted event minus signatures/unsigned);
// the content hash covers canonical(event minus unsigned/signatures/hashes). Redaction (room
// v1 rules) keeps the listed top-level keys and empties the content of non-state events.

struct event_case {
    std::string name;
    std::string input_raw;
    std::string expected_signed_raw;
    std::string expected_hash;
    std::string expected_signature;
    std::string method;
};

std::vector<event_case> event_signing_cases() {
    std::vector<event_case> cases;
    for (auto c : signing_fixture()["event_signing_vectors"].get_array()) {
        cases.push_back({test::test_name(test::string_at(c, "id")), test::string_at(c, "input_raw"),
                         test::string_at(c, "expected_signed_raw"),
                         test::string_at(c, "expected_sha256_hash"),
                         test::string_at(c, "expected_signature"), test::string_at(c, "method")});
    }
    return cases;
}

json::value redacted(json::value event) {
    static constexpr std::array<std::string_view, 15> kept = {
        "auth_events", "content",          "depth",       "event_id",   "hashes",  "membership",
        "origin",      "origin_server_ts", "prev_events", "prev_state", "room_id", "sender",
        "signatures",  "state_key",        "type"};
    auto& members = event.as_object();
    std::erase_if(members, [](const auto& m) {
        return std::find(kept.begin(), kept.end(), m.first) == kept.end();
    });
    if (event.find("state_key") == nullptr) event["content"] = json::object{};
    return event;
}

std::string content_hash(json::value event) {
    event.erase("unsigned");
    event.erase("signatures");
    event.erase("hashes");
    const std::string canonical = json::to_canonical(event);
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> hash{};
    crypto_hash_sha256(hash.data(), reinterpret_cast<const unsigned char*>(canonical.data()),
                       canonical.size());
    return base64_encode(hash);
}

class event_signing_vector : public ::testing::TestWithParam<event_case> {};

TEST_P(event_signing_vector, method_is_the_one_this_test_implements) {
    EXPECT_THAT(GetParam().method, HasSubstr("signature over canonical(redacted event minus "
                                             "signatures/unsigned), v1 redaction keeps"));
}

TEST_P(event_signing_vector, hash_and_signature_match_the_spec) {
    const auto& c = GetParam();
    json::value event = json::parse(c.input_raw).value();
    EXPECT_EQ(content_hash(event), c.expected_hash);
    event["hashes"] = json::object{{"sha256", c.expected_hash}};

    const json::value to_sign = redacted(event);
    const auto signed_raw = sign_json(json::to_canonical(to_sign), spec_entity(), spec_key_id(),
                                      test::spec_signing_key_pair());
    ASSERT_TRUE(signed_raw);
    const auto signed_event = json::parse(*signed_raw).value();
    EXPECT_EQ(
        signed_event.find("signatures")->find(spec_entity())->find(spec_key_id())->as_string(),
        c.expected_signature);
}

TEST_P(event_signing_vector, spec_signature_verifies_over_the_redacted_form) {
    const auto& c = GetParam();
    const json::value event = json::parse(c.expected_signed_raw).value();
    const std::string redacted_raw = json::to_canonical(redacted(event));
    const auto r = verify_json(redacted_raw, spec_entity(), spec_key_id(), spec_public_key());
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_TRUE(verify_json_signature(redacted_raw, c.expected_signature, spec_public_key()));
    // Where redaction changes more than "unsigned" (which no signature covers), the event as
    // received is not what was signed.
    json::value unsigned_removed = event;
    unsigned_removed.erase("unsigned");
    if (redacted(event) != unsigned_removed) {
        EXPECT_EQ(
            verify_json(c.expected_signed_raw, spec_entity(), spec_key_id(), spec_public_key())
                .error(),
            errc::signature_invalid);
    }
}

INSTANTIATE_TEST_SUITE_P(spec, event_signing_vector, ::testing::ValuesIn(event_signing_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(signed_json, spec_illustrative_example_matches_its_recorded_verdict) {
    const simdjson::dom::element example =
        signing_fixture()["signing_details_illustrative_example"].value();
    const auto key =
        ed25519_public_key::from_base64(test::string_at(example, "signing_key_in_example"));
    ASSERT_TRUE(key);
    const bool verifies = example["signature_verifies"].get_bool().value();
    const auto r = verify_json(test::string_at(example, "raw"), "example.org", "ed25519:1", *key);
    EXPECT_EQ(static_cast<bool>(r), verifies);
    if (!r) {
        EXPECT_EQ(r.error(), errc::signature_invalid);
    }
}

// ---- behaviour around a realistic device-keys object ----

class signed_device_keys : public ::testing::Test {
  protected:
    signed_device_keys() {
        json::value keys;
        keys["user_id"] = user;
        keys["device_id"] = "JLAFKJWSCS";
        keys["algorithms"] = json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"};
        keys["keys"]["curve25519:JLAFKJWSCS"] =
            curve25519_key_pair::generate().public_key().to_base64();
        keys["keys"]["ed25519:JLAFKJWSCS"] = device.public_key().to_base64();
        sign_json(keys, user, key_id, device);
        keys["unsigned"]["device_display_name"] = "Alice's laptop";
        signed_raw = json::to_canonical(keys);
    }

    // signed_raw with a member changed through json::value.
    template <class Edit>
    std::string edited(Edit edit) const {
        json::value v = json::parse(signed_raw).value();
        edit(v);
        return json::to_canonical(v);
    }

    result<void> verify(std::string_view raw) const {
        return verify_json(raw, user, key_id, device.public_key());
    }

    const std::string user = "@alice:example.org";
    const std::string key_id = "ed25519:JLAFKJWSCS";
    const ed25519_key_pair device = ed25519_key_pair::generate();
    std::string signed_raw;
};

TEST_F(signed_device_keys, verifies) {
    const auto r = verify(signed_raw);
    EXPECT_TRUE(r) << r.error().message();
}

TEST_F(signed_device_keys, verifies_the_object_as_received_in_any_layout) {
    // The same object, pretty-printed with members in another order and escapes.
    const std::string sig = json::parse(signed_raw).value()["signatures"][user][key_id].as_string();
    const auto keys = json::parse(signed_raw).value()["keys"];
    const std::string raw =
        "{\n  \"unsigned\": {\"device_display_name\": \"Alice\\u0027s laptop\"},\n"
        "  \"signatures\": {\"" +
        user + "\": {\"" + key_id + "\": \"" + sig +
        "\"}},\n"
        "  \"keys\": " +
        json::to_canonical(keys) +
        ",\n"
        "  \"device_id\": \"JLAFKJWSCS\",\n"
        "  \"algorithms\": [\"m.olm.v1.curve25519-aes-sha2\", \"m.megolm.v1.aes-sha2\"],\n"
        "  \"user_id\": \"\\u0040alice:example.org\"\n}";
    const auto r = verify(raw);
    EXPECT_TRUE(r) << r.error().message();
}

TEST_F(signed_device_keys, tampering_breaks_the_signature) {
    const std::string changed = edited([](json::value& v) { v["device_id"] = "OTHERDEVICE"; });
    const std::string added = edited([](json::value& v) { v["extra"] = 1; });
    const std::string removed = edited([](json::value& v) { v.erase("algorithms"); });
    const std::string nested =
        edited([](json::value& v) { v["algorithms"].as_array().pop_back(); });
    for (const auto& raw : {changed, added, removed, nested}) {
        const auto r = verify(raw);
        ASSERT_FALSE(r) << raw;
        EXPECT_EQ(r.error(), errc::signature_invalid) << raw;
    }
}

TEST_F(signed_device_keys, unknown_fields_are_covered) {
    // A field this program does not know, signed by its sender, must not be droppable.
    json::value v = json::parse(signed_raw).value();
    v.erase("signatures");
    v["org.example.future_field"] = json::object{{"n", 1}};
    sign_json(v, user, key_id, device);
    const std::string with_field = json::to_canonical(v);
    EXPECT_TRUE(verify(with_field));
    v.erase("org.example.future_field");
    EXPECT_EQ(verify(json::to_canonical(v)).error(), errc::signature_invalid);
}

TEST_F(signed_device_keys, unsigned_and_other_signatures_may_change) {
    EXPECT_TRUE(
        verify(edited([](json::value& v) { v["unsigned"]["device_display_name"] = "new"; })));
    EXPECT_TRUE(verify(edited([](json::value& v) { v.erase("unsigned"); })));
    EXPECT_TRUE(verify(edited([](json::value& v) { v["unsigned"] = 1; })));
    EXPECT_TRUE(verify(
        edited([](json::value& v) { v["signatures"]["@bob:example.org"]["ed25519:B"] = "c2ln"; })));
}

TEST_F(signed_device_keys, wrong_key_is_refused) {
    const auto r = verify_json(signed_raw, user, key_id, ed25519_key_pair::generate().public_key());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::signature_invalid);
}

TEST_F(signed_device_keys, malformed_signatures_are_invalid) {
    const std::string sig = json::parse(signed_raw).value()["signatures"][user][key_id].as_string();
    const auto with_signature = [&](json::value replacement) {
        return edited([&](json::value& v) { v["signatures"][user][key_id] = replacement; });
    };
    for (const auto& bad : {with_signature(sig.substr(0, 85)),  // truncated
                            with_signature(sig.substr(0, 84)),  // a whole byte short
                            with_signature(sig.substr(0, 40)),
                            with_signature("*" + sig.substr(1)),      // not base64
                            with_signature(sig.substr(0, 85) + " "),  // whitespace
                            with_signature(sig + "AAAA"),             // too long
                            with_signature(""),
                            with_signature(42),  // not a string
                            with_signature(json::object{})}) {
        const auto r = verify(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error(), errc::signature_invalid) << bad << ": " << r.error().message();
    }
    // Padding is fine: decoders accept it.
    EXPECT_TRUE(verify(with_signature(sig + "==")));
}

TEST_F(signed_device_keys, missing_signatures_are_reported_as_missing) {
    EXPECT_EQ(verify_json(signed_raw, "@mallory:example.org", key_id, device.public_key()).error(),
              errc::signature_missing);
    EXPECT_EQ(verify_json(signed_raw, user, "ed25519:OTHER", device.public_key()).error(),
              errc::signature_missing);
    for (const auto& raw :
         {edited([](json::value& v) { v.erase("signatures"); }),
          edited([](json::value& v) { v["signatures"] = "text"; }),
          edited([&](json::value& v) { v["signatures"][user] = json::array{}; }),
          edited([&](json::value& v) { v["signatures"][user] = json::object{}; })}) {
        const auto r = verify(raw);
        ASSERT_FALSE(r) << raw;
        EXPECT_EQ(r.error(), errc::signature_missing) << raw;
    }
    EXPECT_THAT(
        verify_json(signed_raw, "@mallory:example.org", key_id, device.public_key()).error().detail,
        HasSubstr("signatures.\"@mallory:example.org\".\"ed25519:JLAFKJWSCS\""));
}

TEST_F(signed_device_keys, malformed_json_is_a_json_error) {
    EXPECT_EQ(verify(signed_raw.substr(0, signed_raw.size() - 1)).error(), errc::json_syntax);
    EXPECT_EQ(verify(signed_raw + "x").error(), errc::json_syntax);
    EXPECT_EQ(verify("[]").error(), errc::json_type);
    EXPECT_EQ(verify(R"({"a":1.5,"signatures":{}})").error(), errc::json_number);
    EXPECT_EQ(verify(R"({"a":1,"a":2})").error(), errc::json_duplicate_key);
}

TEST_F(signed_device_keys, verify_json_signature_reuses_the_scratch_buffer) {
    const std::string sig = json::parse(signed_raw).value()["signatures"][user][key_id].as_string();
    std::string scratch;
    ASSERT_TRUE(verify_json_signature(signed_raw, sig, device.public_key(), &scratch));
    const char* buffer = scratch.data();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(verify_json_signature(signed_raw, sig, device.public_key(), &scratch));
        EXPECT_EQ(scratch.data(), buffer);
    }
    EXPECT_EQ(scratch, canonicalize(edited([](json::value& v) {
                           v.erase("signatures");
                           v.erase("unsigned");
                       })).value());
    EXPECT_EQ(verify_json_signature(signed_raw, sig.substr(1), device.public_key()).error(),
              errc::signature_invalid);
    EXPECT_EQ(verify_json_signature("{", sig, device.public_key()).error(), errc::json_syntax);
}

// ---- signing ----

TEST(sign_json, keeps_other_signatures_and_unsigned) {
    const auto a = ed25519_key_pair::generate();
    const auto b = ed25519_key_pair::generate();
    const std::string raw =
        R"({"k":"v","unsigned":{"age":1},"signatures":{"@other:x":{"ed25519:O":"c2ln"}}})";
    const auto once = sign_json(raw, "@a:x", "ed25519:A", a);
    ASSERT_TRUE(once);
    const auto twice = sign_json(*once, "@a:x", "ed25519:B", b);
    ASSERT_TRUE(twice);
    const json::value v = json::parse(*twice).value();
    EXPECT_EQ(v.find("unsigned")->find("age")->as_integer(), 1);
    EXPECT_EQ(v.find("signatures")->find("@other:x")->find("ed25519:O")->as_string(), "c2ln");
    EXPECT_TRUE(verify_json(*twice, "@a:x", "ed25519:A", a.public_key()));
    EXPECT_TRUE(verify_json(*twice, "@a:x", "ed25519:B", b.public_key()));
    EXPECT_EQ(*twice, canonicalize(*twice).value());  // the output is canonical
}

TEST(sign_json, re_signing_replaces_the_same_key_id) {
    const auto a = ed25519_key_pair::generate();
    const auto b = ed25519_key_pair::generate();
    const auto first = sign_json(R"({"k":1})", "@a:x", "ed25519:A", a).value();
    const auto second = sign_json(first, "@a:x", "ed25519:A", b).value();
    EXPECT_EQ(verify_json(second, "@a:x", "ed25519:A", a.public_key()).error(),
              errc::signature_invalid);
    EXPECT_TRUE(verify_json(second, "@a:x", "ed25519:A", b.public_key()));
}

TEST(sign_json, refuses_what_it_cannot_sign) {
    const auto a = ed25519_key_pair::generate();
    EXPECT_EQ(sign_json("[1]", "@a:x", "ed25519:A", a).error(), errc::json_type);
    EXPECT_EQ(sign_json(R"({"signatures":[]})", "@a:x", "ed25519:A", a).error(), errc::json_type);
    EXPECT_EQ(sign_json(R"({"signatures":{"@a:x":"s"}})", "@a:x", "ed25519:A", a).error(),
              errc::json_type);
    EXPECT_EQ(sign_json(R"({"a":1.5})", "@a:x", "ed25519:A", a).error(), errc::json_number);
    EXPECT_EQ(sign_json("{", "@a:x", "ed25519:A", a).error(), errc::json_syntax);
}

TEST(sign_json, in_place_replaces_signatures_that_are_not_objects) {
    const auto a = ed25519_key_pair::generate();
    json::value v = json::object{{"signatures", "junk"}, {"k", 1}};
    sign_json(v, "@a:x", "ed25519:A", a);
    EXPECT_TRUE(verify_json(json::to_canonical(v), "@a:x", "ed25519:A", a.public_key()));
}

}  // namespace
}  // namespace devlist::crypto
