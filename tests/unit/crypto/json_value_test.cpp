#include "crypto/json_value.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <type_traits>

namespace devlist::json {
namespace {

using ::testing::HasSubstr;

// The overload traps: pointers and characters must not quietly become booleans or numbers.
static_assert(!std::is_constructible_v<value, const int*>);
static_assert(!std::is_constructible_v<value, void*>);
static_assert(!std::is_constructible_v<value, char>);
static_assert(!std::is_constructible_v<value, double>);
static_assert(std::is_constructible_v<value, const char*>);
static_assert(std::is_nothrow_move_constructible_v<value>);

TEST(json_value, holds_each_kind_it_is_built_from) {
    EXPECT_TRUE(value().is_null());
    EXPECT_TRUE(value(nullptr).is_null());
    EXPECT_TRUE(value(true).is_bool());
    EXPECT_FALSE(value(false).as_bool());
    EXPECT_EQ(value(42).as_integer(), 42);
    EXPECT_EQ(value(-7L).as_integer(), -7);
    EXPECT_EQ(value(std::size_t{50}).as_integer(), 50);
    EXPECT_EQ(value(std::uint16_t{65535}).as_integer(), 65535);
    EXPECT_EQ(value(max_safe_integer).as_integer(), max_safe_integer);
    EXPECT_EQ(value("text").as_string(), "text");
    EXPECT_EQ(value(std::string_view("view")).as_string(), "view");
    EXPECT_EQ(value(std::string("owned")).as_string(), "owned");
    EXPECT_TRUE(value(array{1, "a", nullptr}).is_array());
    EXPECT_TRUE(value(object{}).is_object());
    EXPECT_FALSE(value("true").is_bool());  // a literal string stays a string
    EXPECT_TRUE(value("").is_string());
}

TEST(json_value, accessors_of_another_type_throw) {
    EXPECT_THROW((void)value(1).as_string(), std::bad_variant_access);
    EXPECT_THROW((void)value("1").as_integer(), std::bad_variant_access);
    EXPECT_THROW((void)value(array{}).as_object(), std::bad_variant_access);
    value s = "string";
    EXPECT_THROW(s["key"], std::bad_variant_access);
}

TEST(json_value, subscript_creates_members_and_turns_null_into_an_object) {
    value v;
    v["user_id"] = "@alice:example.org";
    v["keys"]["ed25519:DEV"] = "key";
    v["count"] = 3;
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v.as_object().size(), 3u);
    EXPECT_EQ(v["keys"]["ed25519:DEV"].as_string(), "key");
    EXPECT_EQ(v["count"].as_integer(), 3);
    EXPECT_TRUE(v["new"].is_null());
    EXPECT_EQ(v.as_object().size(), 4u);
}

TEST(json_value, find_and_erase) {
    value v = object{{"a", 1}, {"b", object{{"c", true}}}};
    ASSERT_NE(v.find("a"), nullptr);
    EXPECT_EQ(v.find("a")->as_integer(), 1);
    EXPECT_EQ(v.find("missing"), nullptr);
    EXPECT_EQ(value(1).find("a"), nullptr);
    const value& cv = v;
    EXPECT_TRUE(cv.find("b")->find("c")->as_bool());
    EXPECT_TRUE(v.erase("a"));
    EXPECT_FALSE(v.erase("a"));
    EXPECT_FALSE(value("x").erase("a"));
    EXPECT_EQ(v.find("a"), nullptr);
}

TEST(json_value, equality_is_deep) {
    const value a = object{{"k", array{1, "two", object{{"x", nullptr}}}}};
    value b = a;
    EXPECT_EQ(a, b);
    b["k"].as_array()[2]["x"] = false;
    EXPECT_NE(a, b);
    EXPECT_NE(value(1), value(true));
    EXPECT_NE(value(0), value(nullptr));
    EXPECT_NE(value("1"), value(1));
}

TEST(json_value, to_canonical_sorts_keys_by_code_point_and_escapes_minimally) {
    value v;
    v["\xf0\x9f\x98\x80"] = 1;  // U+1F600
    v["\xef\xbf\xbf"] = 2;      // U+FFFF: before U+1F600 by code point
    v["B"] = "quote\" backslash\\ slash/ del\x7f";
    v["a"] = std::string("nul\0 ctl\x01\x1f\n", 11);
    v["arr"] = array{true, false, nullptr, -max_safe_integer, object{}};
    EXPECT_EQ(to_canonical(v),
              "{\"B\":\"quote\\\" backslash\\\\ slash/ del\x7f\",\"a\":\"nul\\u0000 "
              "ctl\\u0001\\u001f\\n\",\"arr\":[true,false,null,-9007199254740991,{}],"
              "\"\xef\xbf\xbf\":2,\"\xf0\x9f\x98\x80\":1}");
}

TEST(json_value, append_canonical_appends) {
    std::string out = "prefix:";
    append_canonical(value(array{1, 2}), out);
    EXPECT_EQ(out, "prefix:[1,2]");
    EXPECT_EQ(to_canonical(value()), "null");
    EXPECT_EQ(to_canonical(value(object{})), "{}");
}

TEST(json_value, parse_builds_the_tree) {
    const auto v = parse(R"( {"b":[1,true,null,"s",{"c":-2}],"a":{"\u00e9":"\ud83d\ude00"}} )");
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(*v, (value(object{{"a", object{{"\xc3\xa9", "\xf0\x9f\x98\x80"}}},
                                {"b", array{1, true, nullptr, "s", object{{"c", -2}}}}})));
}

TEST(json_value, parse_keeps_nul_characters) {
    const auto v = parse(R"(["a\u0000b"])");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->as_array()[0].as_string(), std::string("a\0b", 3));
    EXPECT_EQ(to_canonical(*v), R"(["a\u0000b"])");
}

TEST(json_value, parse_refuses_duplicate_keys_and_reports_errors) {
    const auto dup = parse(R"({"x":{"a":1,"\u0061":2}})");
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error(), errc::json_duplicate_key);
    EXPECT_EQ(dup.error().detail, R"(duplicate key "a" at byte 12)");
    EXPECT_EQ(parse("[1.5]").error(), errc::json_number);
    EXPECT_EQ(parse("[").error(), errc::json_syntax);
    limits tight;
    tight.max_depth = 1;
    EXPECT_EQ(parse("[[]]", tight).error(), errc::json_limit);
    EXPECT_THAT(parse("[1] 2").error().message(), HasSubstr("malformed JSON"));
}

TEST(json_value, parse_of_scalars) {
    EXPECT_EQ(parse("7").value(), value(7));
    EXPECT_EQ(parse("\"s\"").value(), value("s"));
    EXPECT_EQ(parse("false").value(), value(false));
    EXPECT_EQ(parse("null").value(), value());
}

}  // namespace
}  // namespace devlist::json
