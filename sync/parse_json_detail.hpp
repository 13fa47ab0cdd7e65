// Private to sync/parse_*.cpp: the simdjson parser behind parse_context and small helpers that
// turn simdjson's error codes into devlist errors. No other file may include this.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "devlist/error.hpp"
#include "sync/parse_context.hpp"

namespace devlist::sync {

namespace od = simdjson::ondemand;

struct parse_context::impl {
    od::parser parser;
    // Signed objects are iterated a second time, from their raw bytes, by this parser.
    od::parser inner;
    // Holds a copy of a body that arrived without spare capacity for simdjson's padding.
    simdjson::padded_string copy;
};

namespace detail {

inline error json_error(simdjson::error_code e, std::string_view where) {
    errc kind = e == simdjson::INCORRECT_TYPE ? errc::json_type
                : e == simdjson::DEPTH_ERROR  ? errc::json_limit
                                              : errc::json_syntax;
    std::string detail(where);
    detail += ": ";
    detail += simdjson::error_message(e);
    return error{kind, std::move(detail)};
}

// Starts iterating `body`, using its spare capacity as padding when there is enough.
inline result<od::document> iterate(od::parser& parser, simdjson::padded_string& copy,
                                    const char* data, std::size_t size, std::size_t capacity,
                                    std::string_view what) {
    simdjson::padded_string_view view(data, size, capacity);
    if (capacity < size + simdjson::SIMDJSON_PADDING) {
        copy = simdjson::padded_string(data, size);
        view = simdjson::padded_string_view(copy);
    }
    od::document doc;
    if (auto e = parser.iterate(view).get(doc)) return json_error(e, what);
    return doc;
}

// Reads the member an object iteration is at: its unescaped key and its value. Every object loop
// of the parsers starts with this; a non-zero result is structural and ends the parse.
inline simdjson::error_code read_member(simdjson::simdjson_result<od::field> member,
                                        std::string_view& key, od::value& value) {
    od::field field;
    if (auto e = std::move(member).get(field)) return e;
    if (auto e = field.unescaped_key().get(key)) return e;
    value = field.value();
    return simdjson::SUCCESS;
}

// Reads a string value; false (leaving `out` untouched) when it is not a string.
inline bool get_string(od::value v, std::string_view& out) {
    return v.get_string().get(out) == simdjson::SUCCESS;
}

// Drops trailing insignificant whitespace that raw_json() leaves after a value.
inline std::string_view trim_json(std::string_view raw) {
    while (!raw.empty() &&
           (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) {
        raw.remove_suffix(1);
    }
    return raw;
}

// True when tokens follow the root value (simdjson 3.0 has no document::at_end()): after the
// root was fully iterated, a current location in bounds means more input.
inline bool has_trailing_content(od::document& doc) {
    const char* location = nullptr;
    return doc.current_location().get(location) == simdjson::SUCCESS;
}

// Collects dropped-entry reasons, keeping only the first few for the log.
struct drop_log {
    std::size_t& count;
    std::vector<std::string>& reasons;
    void add(std::string reason) {
        ++count;
        if (reasons.size() < 8) reasons.push_back(std::move(reason));
    }
};

// Reads an array of strings; non-string elements are reported through `bad`. Returns a
// structural error only.
template <class OnString, class OnBad>
simdjson::error_code for_each_string(od::value v, OnString on_string, OnBad bad) {
    od::array arr;
    if (auto e = v.get_array().get(arr)) return e;
    for (auto element : arr) {
        od::value item;
        if (auto e = std::move(element).get(item)) return e;
        std::string_view s;
        if (item.get_string().get(s)) {
            bad();
            continue;
        }
        on_string(s);
    }
    return simdjson::SUCCESS;
}

}  // namespace detail
}  // namespace devlist::sync
