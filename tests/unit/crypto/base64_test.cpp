#include "crypto/base64.hpp"

#include "spec_vectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace devlist::crypto {
namespace {

using test::as_bytes;
using test::from_hex;
using ::testing::HasSubstr;

struct base64_case {
    std::string name;
    std::string ascii;
    std::vector<std::uint8_t> bytes;
    std::string expected;
};

std::vector<base64_case> spec_cases() {
    std::vector<base64_case> cases;
    for (auto c : test::spec_vectors("unpadded-base64.json")["cases"].get_array()) {
        const std::string ascii = test::string_at(c, "input_ascii");
        cases.push_back({test::test_name(ascii), ascii, from_hex(test::string_at(c, "input_hex")),
                         test::string_at(c, "expected")});
    }
    return cases;
}

class base64_spec_case : public ::testing::TestWithParam<base64_case> {};

TEST_P(base64_spec_case, encodes_to_the_expected_text) {
    const auto& c = GetParam();
    ASSERT_EQ(c.bytes, std::vector<std::uint8_t>(c.ascii.begin(), c.ascii.end()));
    EXPECT_EQ(base64_encode(c.bytes), c.expected);
    EXPECT_EQ(base64url_encode(c.bytes), c.expected);  // no 62/63 characters in these cases
}

TEST_P(base64_spec_case, decodes_unpadded_and_padded) {
    const auto& c = GetParam();
    EXPECT_EQ(base64_decode(c.expected).value(), c.bytes);
    std::string padded = c.expected;
    while (padded.size() % 4 != 0)
        padded.push_back('=');
    EXPECT_EQ(base64_decode(padded).value(), c.bytes);
    EXPECT_EQ(base64url_decode(padded).value(), c.bytes);

    std::vector<std::uint8_t> out(c.bytes.size());
    ASSERT_TRUE(base64_decode_into(c.expected, out));
    EXPECT_EQ(out, c.bytes);
}

INSTANTIATE_TEST_SUITE_P(spec, base64_spec_case, ::testing::ValuesIn(spec_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(base64, decodes_the_spec_seed_despite_its_nonzero_trailing_bits) {
    const simdjson::dom::element observation =
        test::spec_vectors("unpadded-base64.json")["extra_observation_NOT_FROM_SPEC_TEXT"].value();
    const auto decoded = base64_decode(test::string_at(observation, "string"));
    ASSERT_TRUE(decoded) << decoded.error().message();
    EXPECT_EQ(*decoded, from_hex(test::string_at(observation, "decoded_hex")));
    EXPECT_EQ(base64_encode(*decoded), test::string_at(observation, "canonical_reencoding"));
}

TEST(base64, uses_the_standard_and_url_safe_alphabets) {
    const std::vector<std::uint8_t> bytes = {0xfb, 0xff, 0xbf};
    EXPECT_EQ(base64_encode(bytes), "+/+/");
    EXPECT_EQ(base64url_encode(bytes), "-_-_");
    EXPECT_EQ(base64_decode("+/+/").value(), bytes);
    EXPECT_EQ(base64url_decode("-_-_").value(), bytes);
    EXPECT_EQ(base64_decode("-_-_").error(), errc::base64_invalid);
    EXPECT_EQ(base64url_decode("+/+/").error(), errc::base64_invalid);
}

TEST(base64, round_trips_every_length) {
    std::mt19937 rng(7);
    for (std::size_t n = 0; n < 200; ++n) {
        std::vector<std::uint8_t> bytes(n);
        for (auto& b : bytes)
            b = static_cast<std::uint8_t>(rng());
        const std::string text = base64_encode(bytes);
        EXPECT_EQ(text.size(), base64_encoded_size(n));
        EXPECT_EQ(text.find('='), std::string::npos);
        EXPECT_EQ(base64_decode(text).value(), bytes) << n;
        EXPECT_EQ(base64url_decode(base64url_encode(bytes)).value(), bytes) << n;
    }
}

struct bad_input {
    std::string text;
    std::string detail;  // a part of the expected error detail
};

class base64_refuses : public ::testing::TestWithParam<bad_input> {};

TEST_P(base64_refuses, input) {
    const auto r = base64_decode(GetParam().text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::base64_invalid);
    EXPECT_THAT(r.error().detail, HasSubstr(GetParam().detail));
    std::vector<std::uint8_t> out(64);
    EXPECT_FALSE(base64_decode_into(GetParam().text, std::span(out).first(3)));
}

INSTANTIATE_TEST_SUITE_P(
    base64, base64_refuses,
    ::testing::Values(
        bad_input{"Zm9v*mFy", "'*' at position 4"},
        bad_input{"Zm9v YmF", "whitespace (0x20) at position 4"},
        bad_input{"Zm9\n", "whitespace (0x0a) at position 3"}, bad_input{" Zm9", "position 0"},
        bad_input{"Zm\xc3\xa9", "byte 0xc3 at position 2"},
        bad_input{"Zm9vY", "lone character at position 4"},
        bad_input{"Z", "lone character at position 0"}, bad_input{"Zg=", "padding at position 2"},
        bad_input{"Zg===", "padding"}, bad_input{"Zm8==", "padding at position 3"},
        bad_input{"Zm9v=", "padding at position 4"}, bad_input{"=", "padding at position 0"},
        bad_input{"Zm=9", "padding '=' at position 2"},
        bad_input{"Zg==Zg==", "padding '=' at position 2"}, bad_input{"====", "padding"}),
    [](const auto& param_info) { return "case_" + std::to_string(param_info.index); });

TEST(base64, decode_into_requires_the_exact_length) {
    std::array<std::uint8_t, 32> key{};
    const std::string text = base64_encode(std::vector<std::uint8_t>(31, 1));
    const auto r = base64_decode_into(text, key);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::base64_invalid);
    EXPECT_THAT(r.error().detail, HasSubstr("expected 32 bytes, got 31"));

    const std::vector<std::uint8_t> bytes(32, 0xab);
    ASSERT_TRUE(base64_decode_into(base64_encode(bytes), key));
    EXPECT_TRUE(std::equal(key.begin(), key.end(), bytes.begin()));
}

TEST(base64, decodes_into_an_empty_span) {
    EXPECT_TRUE(base64_decode_into("", std::span<std::uint8_t>()));
    EXPECT_EQ(base64_decode("").value(), std::vector<std::uint8_t>());
}

TEST(base64, accepts_nonzero_trailing_bits_in_both_tail_lengths) {
    // "Zh" and "Zm9" carry bits beyond the last byte; lenient decoding ignores them.
    EXPECT_EQ(base64_decode("Zh").value(), std::vector<std::uint8_t>{'f'});
    EXPECT_EQ(base64_decode("Zm9").value(), (std::vector<std::uint8_t>{'f', 'o'}));
    EXPECT_EQ(base64_decode("Zm9=").value(), (std::vector<std::uint8_t>{'f', 'o'}));
}

TEST(base64, encodes_binary_data) {
    const auto bytes = from_hex("00ff10807f");
    EXPECT_EQ(base64_encode(bytes), "AP8QgH8");
    EXPECT_EQ(base64_decode("AP8QgH8").value(), bytes);
    EXPECT_EQ(base64_encode(as_bytes("")), "");
}

}  // namespace
}  // namespace devlist::crypto
