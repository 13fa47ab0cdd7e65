#include "crypto/canonical_json.hpp"

#include "crypto/json_value.hpp"
#include "spec_vectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace devlist::crypto {
namespace {

using ::testing::HasSubstr;

// ---- the spec's examples and the fixture's grammar-derived cases ----

struct canonical_case {
    std::string name;
    std::string input;
    std::string expected;
    std::string expected_hex;
};

std::vector<canonical_case> fixture_cases() {
    std::vector<canonical_case> cases;
    const auto root = test::spec_vectors("canonical-json.json");
    const auto add = [&](std::string_view array, std::string_view input_key) {
        for (auto c : root[array].get_array()) {
            cases.push_back({test::test_name(test::string_at(c, "id")),
                             test::string_at(c, input_key),
                             test::string_at(c, "expected_canonical"),
                             test::string_at(c, "expected_canonical_utf8_hex")});
        }
    };
    add("cases", "input_raw");
    add("grammar_derived_cases_NOT_FROM_SPEC", "input_json_ascii");
    return cases;
}

class canonical_json_fixture_case : public ::testing::TestWithParam<canonical_case> {};

TEST_P(canonical_json_fixture_case, canonicalize_gives_the_expected_bytes) {
    const auto& c = GetParam();
    const auto out = canonicalize(c.input);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(*out, c.expected);
    EXPECT_EQ(test::to_hex(*out), c.expected_hex);
}

TEST_P(canonical_json_fixture_case, parse_then_to_canonical_gives_the_expected_bytes) {
    const auto& c = GetParam();
    const auto v = json::parse(c.input);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(json::to_canonical(*v), c.expected);
}

TEST_P(canonical_json_fixture_case, canonical_output_is_a_fixed_point) {
    const auto& c = GetParam();
    EXPECT_EQ(canonicalize(c.expected).value(), c.expected);
}

INSTANTIATE_TEST_SUITE_P(spec, canonical_json_fixture_case, ::testing::ValuesIn(fixture_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(canonical_json, fixture_integer_range_limits_are_accepted_and_no_further) {
    const simdjson::dom::element range =
        test::spec_vectors("canonical-json.json")["integer_range"].value();
    const std::string max = test::string_at(range, "max_str");
    const std::string min = test::string_at(range, "min_str");
    EXPECT_EQ(canonicalize(max).value(), max);
    EXPECT_EQ(canonicalize(min).value(), min);
    EXPECT_EQ(json::parse(max).value().as_integer(), range["max"].get_int64().value());
    EXPECT_EQ(json::parse(min).value().as_integer(), range["min"].get_int64().value());
}

// ---- helpers: every input goes through both canonicalize and json::parse ----

std::string canonical(std::string_view raw) {
    const auto out = canonicalize(raw);
    EXPECT_TRUE(out) << raw << ": " << out.error().message();
    const auto parsed = json::parse(raw);
    EXPECT_TRUE(parsed) << raw << ": " << parsed.error().message();
    if (out && parsed) {
        EXPECT_EQ(json::to_canonical(*parsed), *out) << raw;
    }
    return out ? *out : std::string();
}

canonical_options with_limits(const json::limits& limits) {
    canonical_options options;
    options.limits = limits;
    return options;
}

// The error of canonicalize(raw), after checking that json::parse refuses it the same way.
error refusal(std::string_view raw, const json::limits& limits = {}) {
    const auto out = canonicalize(raw, with_limits(limits));
    const auto parsed = json::parse(raw, limits);
    EXPECT_FALSE(out) << "canonicalize accepted " << raw;
    EXPECT_FALSE(parsed) << "parse accepted " << raw;
    if (out || parsed) return {};
    EXPECT_EQ(out.error().code, parsed.error().code) << raw;
    EXPECT_EQ(out.error().detail, parsed.error().detail) << raw;
    return out.error();
}

// ---- numbers ----

TEST(canonical_json_numbers, integral_values_are_written_plainly) {
    EXPECT_EQ(canonical("9007199254740991"), "9007199254740991");
    EXPECT_EQ(canonical("-9007199254740991"), "-9007199254740991");
    EXPECT_EQ(canonical("-0"), "0");
    EXPECT_EQ(canonical("0"), "0");
    EXPECT_EQ(canonical("1e10"), "10000000000");
    EXPECT_EQ(canonical("1E+2"), "100");
    EXPECT_EQ(canonical("1e+0"), "1");
    EXPECT_EQ(canonical("1.0"), "1");
    EXPECT_EQ(canonical("1.5e1"), "15");
    EXPECT_EQ(canonical("-1.50E1"), "-15");
    EXPECT_EQ(canonical("100e-2"), "1");
    EXPECT_EQ(canonical("1200E-2"), "12");
    EXPECT_EQ(canonical("0.0"), "0");
    EXPECT_EQ(canonical("-0.0e-5"), "0");
    EXPECT_EQ(canonical("0e999999999999999999999"), "0");
    EXPECT_EQ(canonical("9.007199254740991e15"), "9007199254740991");
    EXPECT_EQ(canonical("90071992547409910e-1"), "9007199254740991");
    EXPECT_EQ(canonical("0.000000000000000000001e21"), "1");
    EXPECT_EQ(canonical("[1,-2,3e0]"), "[1,-2,3]");
}

TEST(canonical_json_numbers, values_canonical_json_cannot_hold_are_refused) {
    for (const char* raw :
         {"9007199254740992", "-9007199254740992", "9007199254740993", "12345678901234567",
          "123456789012345678901234567890", "1e16", "9.007199254740992e15", "1e999999999999999999",
          "-1e300", "1.5", "-0.5", "1e-1", "0.1", "1.25e1", "1e-999999999999999999",
          "9007199254740991.5"}) {
        const error e = refusal(raw);
        EXPECT_EQ(e, errc::json_number) << raw << ": " << e.message();
        EXPECT_THAT(e.detail, HasSubstr("at byte 0")) << raw;
    }
    EXPECT_THAT(refusal("1.5").detail, HasSubstr("not an integer"));
    EXPECT_THAT(refusal("9007199254740992").detail, HasSubstr("outside the range"));
    EXPECT_EQ(refusal("{\"a\":[1, 2.5]}").detail,
              "number 2.5 is not an integer (canonical JSON has no fractions) at byte 9");
}

TEST(canonical_json_numbers, malformed_numbers_are_syntax_errors) {
    for (const char* raw : {"01", "-01", "00", "-", "--1", "+1", "1.", ".5", "1e", "1e+", "1E-",
                            "0x10", "1.e5", "- 1", "Infinity", "NaN", "1_000"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << raw;
    }
    EXPECT_THAT(refusal("[01]").detail, HasSubstr("leading zero at byte 1"));
    EXPECT_THAT(refusal("-").detail, HasSubstr("'-' not followed by a digit at byte 0"));
}

// ---- strings and Unicode ----

TEST(canonical_json_strings, escapes_only_what_the_grammar_requires) {
    EXPECT_EQ(canonical(R"(["\/", "\u007f", "\u00e9", "\u00E9", "\u0041", "\"\\"])"),
              "[\"/\",\"\x7f\",\"\xc3\xa9\",\"\xc3\xa9\",\"A\",\"\\\"\\\\\"]");
    EXPECT_EQ(canonical(R"("\u001F\u001f\u0008\b\u000C\u000a\u000D\u0009\u0000")"),
              R"("\u001f\u001f\b\b\f\n\r\t\u0000")");
    EXPECT_EQ(canonical("\"raw \xe2\x80\xa8 \xf0\x9f\x98\x80 \x7f\""),
              "\"raw \xe2\x80\xa8 \xf0\x9f\x98\x80 \x7f\"");
    EXPECT_EQ(canonical(R"("\ud83d\ude00\uD83D\uDE00")"), "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"");
    EXPECT_EQ(canonical(R"("\udbff\udfff")"), "\"\xf4\x8f\xbf\xbf\"");
    EXPECT_EQ(canonical("\"\xf4\x8f\xbf\xbf \xef\xbf\xbf \xc2\x80\""),
              "\"\xf4\x8f\xbf\xbf \xef\xbf\xbf \xc2\x80\"");
}

TEST(canonical_json_strings, lone_surrogates_are_refused) {
    for (const char* raw : {R"("\ud83d")", R"("\ude00")", R"("\ud83d\u0041")", R"("\ud83dx")",
                            R"("\ud83d\ud83d")", R"("\udfff\ud800")", R"("a\ud800)"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << raw;
    }
    EXPECT_THAT(refusal(R"({"k":"\ude00"})").detail, HasSubstr("lone low surrogate"));
    EXPECT_THAT(refusal(R"({"k":"\ud800"})").detail,
                HasSubstr("lone high surrogate in a \\u escape at byte 6"));
}

TEST(canonical_json_strings, invalid_utf8_is_refused) {
    for (const char* raw : {
             "\"\xff\"",              // never valid
             "\"\x80\"",              // a lone continuation byte
             "\"\xc0\x80\"",          // overlong NUL
             "\"\xc1\xbf\"",          // overlong
             "\"\xe0\x80\x80\"",      // overlong 3-byte
             "\"\xe0\x9f\xbf\"",      // overlong 3-byte
             "\"\xf0\x80\x80\x80\"",  // overlong 4-byte
             "\"\xed\xa0\x80\"",      // an encoded surrogate
             "\"\xed\xbf\xbf\"",      // an encoded surrogate
             "\"\xf4\x90\x80\x80\"",  // beyond U+10FFFF
             "\"\xf5\x80\x80\x80\"",  // beyond U+10FFFF
             "\"\xe6\x97\"",          // cut short by the quote
             "\"\xe6\x97",            // cut short by the end
             "\"\xc3\"",              // cut short
             "\"\xc3\x28\"",          // not a continuation byte
         }) {
        const error e = refusal(raw);
        EXPECT_EQ(e, errc::json_syntax) << test::to_hex(std::string_view(raw));
    }
    EXPECT_THAT(refusal("{\"a\":\"ok \xc0\x80\"}").detail,
                HasSubstr("invalid UTF-8 (byte 0xc0) in a string at byte 9"));
    EXPECT_EQ(refusal("{\"\xff\":1}"), errc::json_syntax);  // in keys too
}

TEST(canonical_json_strings, raw_control_characters_are_refused) {
    for (const char* raw : {"\"a\x01\"", "\"a\nb\"", "\"\t\"", "\"\x1f\"", "{\"k\x0d\":1}"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << test::to_hex(std::string_view(raw));
    }
    EXPECT_THAT(refusal("[\"ab\ncd\"]").detail,
                HasSubstr("unescaped control character 0x0a in a string at byte 4"));
    EXPECT_EQ(refusal(std::string_view("\"a\0b\"", 5)), errc::json_syntax);
}

TEST(canonical_json_strings, invalid_escapes_are_refused) {
    for (const char* raw : {R"("\x41")", R"("\U0041")", R"("\u00g1")", R"("\u004")", R"("\)",
                            R"("\')", R"("\a")", "\"\\"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << raw;
    }
}

// ---- key order ----

TEST(canonical_json_keys, are_sorted_by_code_point_not_utf16) {
    // U+FFFF sorts before U+1F600 by code point, after it by UTF-16 code unit.
    EXPECT_EQ(canonical(R"({"😀":1,"\uffff":2})"), "{\"\xef\xbf\xbf\":2,\"\xf0\x9f\x98\x80\":1}");
    EXPECT_EQ(canonical(R"({"\ud83d\ude00":1,"￿":2})"),
              "{\"\xef\xbf\xbf\":2,\"\xf0\x9f\x98\x80\":1}");
    EXPECT_EQ(canonical(R"({"b":1,"a":2,"B":3,"":4,"é":5,"ab":6})"),
              R"({"":4,"B":3,"a":2,"ab":6,"b":1,"é":5})");
}

TEST(canonical_json_keys, are_sorted_by_their_unescaped_value) {
    // Written escaped, U+0001 and U+001F start with '\' (0x5c); unescaped they sort first.
    EXPECT_EQ(canonical(R"({" ":1,"\u0001":2})"), R"({"\u0001":2," ":1})");
    EXPECT_EQ(canonical(R"({"\\":1,"\u001f":2})"), R"({"\u001f":2,"\\":1})");
    EXPECT_EQ(canonical(R"({"#":3,"\"":1,"!":2})"), R"({"!":2,"\"":1,"#":3})");
    EXPECT_EQ(canonical(R"({"a]":1,"a\\":2,"a[":3})"), R"({"a[":3,"a\\":2,"a]":1})");
    EXPECT_EQ(canonical(R"({"\n":1,"\t":2,"\b":3})"), R"({"\b":3,"\t":2,"\n":1})");
    EXPECT_EQ(canonical(R"({"\u0062":1,"\u0061":2})"), R"({"a":2,"b":1})");
}

TEST(canonical_json_keys, nested_objects_are_sorted_independently) {
    EXPECT_EQ(canonical(R"({"z":{"y":1,"x":{"b":[{"d":1,"c":2}],"a":null}},"a":[]})"),
              R"({"a":[],"z":{"x":{"a":null,"b":[{"c":2,"d":1}]},"y":1}})");
}

TEST(canonical_json_keys, duplicates_are_refused_even_when_spelled_differently) {
    for (const char* raw :
         {R"({"a":1,"a":2})", R"({"a":1,"\u0061":2})", R"({"b":1,"a":2,"b":3})",
          R"({"x":{"k":1,"k":1}})", R"([{"a":1},{"b":1,"b":1}])", R"({"\u00e9":1,"é":2})",
          R"({"\ud83d\ude00":1,"😀":2})", R"({"\/":1,"/":2})"}) {
        const error e = refusal(raw);
        EXPECT_EQ(e, errc::json_duplicate_key) << raw;
    }
    EXPECT_EQ(refusal(R"({"b":1,"a":2,"b":3})").detail, R"(duplicate key "b" at byte 13)");
    EXPECT_EQ(refusal(R"({"a":1,"\u0061":2})").detail, R"(duplicate key "a" at byte 7)");
}

// ---- structure, limits, trailing garbage ----

TEST(canonical_json_structure, removes_insignificant_whitespace) {
    EXPECT_EQ(canonical(" \t\r\n{ \"a\" :\n[ 1 , true,false , null ,{ } , [ ] ] } \n"),
              R"({"a":[1,true,false,null,{},[]]})");
    EXPECT_EQ(canonical("\"top-level string\""), "\"top-level string\"");
    EXPECT_EQ(canonical("true"), "true");
    EXPECT_EQ(canonical("null"), "null");
}

TEST(canonical_json_structure, malformed_json_is_refused_with_its_offset) {
    EXPECT_EQ(refusal("").detail, "empty input: expected a JSON value at byte 0");
    EXPECT_EQ(refusal("  \n").detail, "unexpected end of input: expected a JSON value at byte 3");
    EXPECT_EQ(refusal(R"({"a":tru})").detail, "invalid literal: expected 'true' at byte 5");
    EXPECT_EQ(refusal(R"({"a" 1})").detail, "unexpected '1': expected ':' at byte 5");
    EXPECT_EQ(refusal(R"({"a":1 "b":2})").detail, "unexpected '\"': expected ',' or '}' at byte 7");
    EXPECT_EQ(refusal("[1,]").detail, "unexpected ']': expected a value at byte 3");
    EXPECT_EQ(refusal(R"({"a":1,})").detail, "unexpected '}': expected a string key at byte 7");
    EXPECT_EQ(refusal("{a:1}").detail, "unexpected 'a': expected a string key at byte 1");
    EXPECT_EQ(refusal(R"({"a":"b)").detail, "unterminated string at byte 5");
    EXPECT_EQ(refusal(R"({"a":[1)").detail,
              "unexpected end of input: expected ',' or ']' at byte 7");
    for (const char* raw : {"{'a':1}", "True", "nul", "[1 2]", "{\"a\"}", "\f1", "\xc2\xa0 1", "[",
                            "{", "]", "}", ",", ":"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << raw;
    }
}

TEST(canonical_json_structure, trailing_garbage_is_refused) {
    for (const char* raw : {"{} x", "{}{}", "1 2", "[1]]", "{}}", "\"a\"\"b\"", "null,", "0 0"}) {
        EXPECT_EQ(refusal(raw), errc::json_syntax) << raw;
    }
    EXPECT_EQ(refusal("{} x").detail, "unexpected 'x' after the end of the JSON value at byte 3");
    EXPECT_EQ(canonical("{}  \n"), "{}");
}

TEST(canonical_json_structure, depth_is_limited) {
    json::limits limits;
    limits.max_depth = 3;
    EXPECT_EQ(canonicalize("[[{}]]", with_limits(limits)).value(), "[[{}]]");
    EXPECT_EQ(refusal("[[[[]]]]", limits), errc::json_limit);
    EXPECT_EQ(refusal(R"({"a":{"b":{"c":{}}}})", limits).detail,
              "nesting deeper than the limit of 3 at byte 15");

    // The default limit of 64, and input far deeper than any stack would allow recursion for.
    EXPECT_TRUE(canonicalize(std::string(64, '[') + std::string(64, ']')));
    EXPECT_EQ(refusal(std::string(65, '[') + std::string(65, ']')), errc::json_limit);
    json::limits deep;
    deep.max_depth = 1'000'000;
    const std::string very_deep = std::string(500'000, '[') + std::string(500'000, ']');
    EXPECT_TRUE(canonicalize(very_deep, with_limits(deep)));
    EXPECT_TRUE(json::parse(std::string(5'000, '[') + std::string(5'000, ']'), deep));
}

TEST(canonical_json_structure, size_is_limited) {
    json::limits limits;
    limits.max_bytes = 10;
    EXPECT_EQ(canonicalize("[1,2,3,45]", with_limits(limits)).value(), "[1,2,3,45]");
    EXPECT_EQ(refusal("[1,2,3,4,5]", limits).detail,
              "JSON text of 11 bytes is larger than the limit of 10 bytes");
    EXPECT_EQ(refusal("[1,2,3,4,5]", limits), errc::json_limit);
}

// ---- stripping signatures and unsigned ----

TEST(canonical_json_strip, removes_only_top_level_signatures_and_unsigned) {
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    EXPECT_EQ(canonicalize(R"({"unsigned":{"a":1},"b":{"signatures":1,"unsigned":2},)"
                           R"("signatures":{"x":{"y":"z"}},"a":[{"unsigned":3}]})",
                           strip)
                  .value(),
              R"({"a":[{"unsigned":3}],"b":{"signatures":1,"unsigned":2}})");
    EXPECT_EQ(canonicalize(R"({"signatures":{}})", strip).value(), "{}");
    EXPECT_EQ(canonicalize(R"({"unsigned":1,"signatures":2})", strip).value(), "{}");
    EXPECT_EQ(canonicalize(R"({"\u0073ignatures":{},"a":1})", strip).value(), R"({"a":1})");
    EXPECT_EQ(canonicalize(R"(  {"a":1,"signatures":{}} )", strip).value(), R"({"a":1})");
}

TEST(canonical_json_strip, still_validates_what_it_strips) {
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    EXPECT_EQ(canonicalize(R"({"signatures":{"a":1.5}})", strip).error(), errc::json_number);
    EXPECT_EQ(canonicalize(R"({"signatures":1,"signatures":2})", strip).error(),
              errc::json_duplicate_key);
    EXPECT_EQ(canonicalize(R"({"unsigned":{"a":1,"a":1}})", strip).error(),
              errc::json_duplicate_key);
}

TEST(canonical_json_strip, requires_an_object) {
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    for (const char* raw : {"[]", " 1", "\"signatures\"", "null"}) {
        EXPECT_EQ(canonicalize(raw, strip).error(), errc::json_type) << raw;
    }
    EXPECT_EQ(canonicalize("", strip).error(), errc::json_syntax);
}

// ---- the output buffer ----

TEST(canonical_json_output, a_reused_buffer_is_not_reallocated) {
    const std::string raw = R"({"user_id":"@a:b","keys":{"z":"1","a":"2"},"device_id":"D",)"
                            R"("signatures":{"@a:b":{"ed25519:D":"sig"}},"unsigned":{}})";
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    std::string out;
    ASSERT_TRUE(canonicalize(raw, out, strip));
    const std::string first = out;
    const char* const buffer = out.data();
    const std::size_t capacity = out.capacity();
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(canonicalize(raw, out, strip));
        EXPECT_EQ(out, first);
        EXPECT_EQ(out.data(), buffer);
        EXPECT_EQ(out.capacity(), capacity);
    }
    EXPECT_EQ(first, R"({"device_id":"D","keys":{"a":"2","z":"1"},"user_id":"@a:b"})");
}

TEST(canonical_json_output, is_cleared_before_writing) {
    std::string out = "left over";
    ASSERT_TRUE(canonicalize("[]", out));
    EXPECT_EQ(out, "[]");
}

// ---- both paths agree on random documents written loosely ----

class loose_writer {
  public:
    explicit loose_writer(std::mt19937& rng) : rng_(rng) {}

    json::value random_value(int depth) {
        switch (pick(depth > 3 ? 4 : 6)) {
            case 0:
                return nullptr;
            case 1:
                return pick(2) == 0;
            case 2:
                return random_integer();
            case 3:
                return random_string();
            case 4: {
                json::array a;
                for (int n = pick(4); n > 0; --n)
                    a.push_back(random_value(depth + 1));
                return a;
            }
            default: {
                json::object o;
                for (int n = pick(5); n > 0; --n)
                    o.emplace(random_string(), random_value(depth + 1));
                return o;
            }
        }
    }

    // Writes v as valid but non-canonical JSON: shuffled members, whitespace, escapes and
    // numbers spelled in other ways.
    void write(const json::value& v, std::string& out) {
        space(out);
        if (v.is_null()) {
            out += "null";
        } else if (v.is_bool()) {
            out += v.as_bool() ? "true" : "false";
        } else if (v.is_integer()) {
            write_integer(v.as_integer(), out);
        } else if (v.is_string()) {
            write_string(v.as_string(), out);
        } else if (v.is_array()) {
            out += '[';
            const auto& a = v.as_array();
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (i != 0) out += ',';
                write(a[i], out);
            }
            space(out);
            out += ']';
        } else {
            std::vector<const std::pair<const std::string, json::value>*> members;
            for (const auto& m : v.as_object())
                members.push_back(&m);
            std::shuffle(members.begin(), members.end(), rng_);
            out += '{';
            for (std::size_t i = 0; i < members.size(); ++i) {
                if (i != 0) out += ',';
                space(out);
                write_string(members[i]->first, out);
                space(out);
                out += ':';
                write(members[i]->second, out);
            }
            space(out);
            out += '}';
        }
        space(out);
    }

  private:
    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

    std::int64_t random_integer() {
        switch (pick(4)) {
            case 0:
                return pick(21) - 10;
            case 1:
                return json::max_safe_integer - pick(3);
            case 2:
                return -json::max_safe_integer + pick(3);
            default:
                return std::uniform_int_distribution<std::int64_t>(-1'000'000, 1'000'000)(rng_);
        }
    }

    std::string random_string() {
        static constexpr std::uint32_t code_points[] = {
            'a',  'b',  'B',  'z',  '0',  ' ',  '"',  '\\',   '/',    0x00,   0x01,    0x08,
            0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x7f, 0xe9, 0x65e5, 0x2028, 0xffff, 0x1f600, 0x10ffff};
        std::string s;
        for (int n = pick(5); n > 0; --n) {
            append_utf8(code_points[pick(static_cast<int>(std::size(code_points)))], s);
        }
        return s;
    }

    static void append_utf8(std::uint32_t cp, std::string& out) {
        const auto byte = [&out](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
        if (cp < 0x80) {
            byte(cp);
        } else if (cp < 0x800) {
            byte(0xc0 | cp >> 6);
            byte(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            byte(0xe0 | cp >> 12);
            byte(0x80 | (cp >> 6 & 0x3f));
            byte(0x80 | (cp & 0x3f));
        } else {
            byte(0xf0 | cp >> 18);
            byte(0x80 | (cp >> 12 & 0x3f));
            byte(0x80 | (cp >> 6 & 0x3f));
            byte(0x80 | (cp & 0x3f));
        }
    }

    void write_u_escape(std::uint32_t unit, std::string& out) {
        const char* hex = pick(2) == 0 ? "0123456789abcdef" : "0123456789ABCDEF";
        out += "\\u";
        for (int shift = 12; shift >= 0; shift -= 4)
            out += hex[unit >> shift & 0xf];
    }

    void write_string(const std::string& s, std::string& out) {
        out += '"';
        for (std::size_t i = 0; i < s.size();) {
            const auto c0 = static_cast<unsigned char>(s[i]);
            const std::size_t n = c0 < 0x80 ? 1 : c0 < 0xe0 ? 2 : c0 < 0xf0 ? 3 : 4;
            std::uint32_t cp = n == 1 ? std::uint32_t{c0} : c0 & (0xffu >> (n + 1));
            for (std::size_t k = 1; k < n; ++k)
                cp = cp << 6 | (static_cast<std::uint32_t>(s[i + k]) & 0x3f);
            const bool must_escape = cp < 0x20 || cp == '"' || cp == '\\';
            if (!must_escape && pick(3) != 0) {
                out.append(s, i, n);
            } else if (cp == '"' || cp == '\\' || cp == '/') {
                out += '\\';
                out += static_cast<char>(cp);
            } else if (cp >= 0x10000) {
                write_u_escape(0xd800 + ((cp - 0x10000) >> 10), out);
                write_u_escape(0xdc00 + ((cp - 0x10000) & 0x3ff), out);
            } else {
                write_u_escape(cp, out);
            }
            i += n;
        }
        out += '"';
    }

    void write_integer(std::int64_t v, std::string& out) {
        const std::string digits = std::to_string(v < 0 ? -v : v);
        if (v < 0) out += '-';
        switch (pick(4)) {
            case 0:
                out += digits;
                break;
            case 1:
                out += digits + ".000";
                break;
            case 2:
                out += v == 0 ? "0e-1" : digits + "0e-1";
                break;
            default:
                out += digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") +
                       "E+" + std::to_string(digits.size() - 1);
        }
    }

    void space(std::string& out) {
        static constexpr const char* spaces[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
        out += spaces[pick(static_cast<int>(std::size(spaces)))];
    }

    std::mt19937& rng_;
};

TEST(canonical_json_agreement, canonicalize_and_parse_agree_on_random_documents) {
    std::mt19937 rng(20240607);
    loose_writer writer(rng);
    canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    for (int i = 0; i < 2000; ++i) {
        json::value v = writer.random_value(0);
        if (i % 2 == 0) {  // objects with members to strip
            json::value o = json::object{};
            o["content"] = std::move(v);
            o["signatures"] = json::object{{"@a:b", json::object{{"ed25519:X", "c2ln"}}}};
            o["unsigned"] = json::object{{"age", 3}};
            v = std::move(o);
        }
        std::string raw;
        writer.write(v, raw);
        const std::string expected = json::to_canonical(v);
        const auto out = canonicalize(raw);
        ASSERT_TRUE(out) << raw << ": " << out.error().message();
        ASSERT_EQ(*out, expected) << raw;
        const auto parsed = json::parse(raw);
        ASSERT_TRUE(parsed) << raw;
        ASSERT_EQ(*parsed, v) << raw;
        if (v.is_object()) {
            json::value stripped = v;
            stripped.erase("signatures");
            stripped.erase("unsigned");
            ASSERT_EQ(canonicalize(raw, strip).value(), json::to_canonical(stripped)) << raw;
        }
    }
}

}  // namespace
}  // namespace devlist::crypto
