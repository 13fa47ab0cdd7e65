// Private to sync/parse_*.cpp: the simdjson parser behind parse_context and small helpers that
// turn simdjson's error codes into devlist errors. No other file may include this.
#pragma once

#include <simdjson.h>

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "devlist/error.hpp"
#include "sync/answer_digest.hpp"
#include "sync/parse_context.hpp"

namespace devlist::sync {

namespace od = simdjson::ondemand;

struct parse_context::impl {
    od::parser parser;
    // Parts of a body (a user's part of a /keys/query answer) are iterated on their own, from a
    // padded copy in `part`, by this parser.
    od::parser inner;
    std::string part;
    // Holds a copy of a body that arrived without spare capacity for simdjson's padding.
    simdjson::padded_string copy;
    answer_digester digester;
};

namespace detail {

inline error json_error(simdjson::error_code e, std::string_view where) {
    errc kind = e == simdjson::INCORRECT_TYPE ? errc::json_type
                : e == simdjson::DEPTH_ERROR  ? errc::json_limit
                : e == simdjson::NUMBER_ERROR || e == simdjson::NUMBER_OUT_OF_RANGE
                    ? errc::json_number
                    : errc::json_syntax;
    std::string detail(where);
    detail += ": ";
    detail += simdjson::error_message(e);
    return error{kind, std::move(detail)};
}

// The offset of the first byte of `text` that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), or text.size().
inline std::size_t first_invalid_utf8(const char* text, std::size_t size) {
    const auto* p = reinterpret_cast<const unsigned char*>(text);
    std::size_t i = 0;
    while (i < size) {
        const unsigned c = p[i];
        std::size_t n = 0;
        unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (size - i <= n) return i;
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (std::size_t k = 2; k <= n; ++k) {
            if ((p[i + k] & 0xC0u) != 0x80u) return i;
        }
        i += n + 1;
    }
    return size;
}

// simdjson says only that the input is not UTF-8; a person wants to know where.
inline error utf8_error(const char* data, std::size_t size, std::string_view what) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::size_t at = first_invalid_utf8(data, size);
    std::string detail(what);
    detail += ": invalid UTF-8";
    if (at < size) {
        const auto byte = static_cast<unsigned char>(data[at]);
        detail += " (byte 0x";
        detail += hex[byte >> 4];
        detail += hex[byte & 0xF];
        detail += ") at byte " + std::to_string(at);
    }
    return error{errc::json_syntax, std::move(detail)};
}

// The offset at which arrays and objects in `text` nest deeper than `limit`, or nullopt.
// simdjson On-Demand skips the values it is not asked for without counting their depth, and a
// body goes on to places (the sync hook, a bot's own parser) that may recurse: so the whole
// body is checked. Most of a body's bytes are inside strings (keys, signatures), where only the
// closing quote matters: memchr finds it, and it closes the string unless an odd run of
// backslashes precedes it. Between strings, eight bytes at a time where none is a bracket or a
// quote. (A byte-by-byte scan took 20 instructions a byte: 30 ms of a 13 MB /keys/query answer.)
//
// `depth` is where `text` starts, and where it ends when the call returns: a body can be checked
// in pieces (each piece a run of whole tokens), leaving out values that were checked on their
// own.
inline std::optional<std::size_t> nesting_beyond(std::string_view text, std::size_t limit,
                                                 std::size_t& depth) {
    constexpr std::uint64_t ones = 0x0101010101010101u;
    constexpr std::uint64_t highs = 0x8080808080808080u;
    const auto has = [](std::uint64_t w, char c) {
        const std::uint64_t x = w ^ (ones * static_cast<unsigned char>(c));
        return ((x - ones) & ~x & highs) != 0;
    };
    const char* const data = text.data();
    const std::size_t size = text.size();
    std::size_t i = 0;
    while (i < size) {
        if (size - i >= 8) {
            std::uint64_t w;
            std::memcpy(&w, data + i, sizeof w);
            if (!(has(w, '"') || has(w, '[') || has(w, ']') || has(w, '{') || has(w, '}'))) {
                i += 8;
                continue;
            }
        }
        const char c = data[i];
        if (c == '"') {
            std::size_t end = i + 1;
            for (;;) {
                const void* quote = std::memchr(data + end, '"', size - end);
                if (quote == nullptr) return std::nullopt;  // unterminated: the parser says so
                end = static_cast<std::size_t>(static_cast<const char*>(quote) - data);
                // The run stops at the opening quote at the latest; runs are disjoint, so the
                // whole scan stays linear.
                std::size_t backslashes = 0;
                while (data[end - 1 - backslashes] == '\\')
                    ++backslashes;
                if (backslashes % 2 == 0) break;
                ++end;
            }
            i = end + 1;
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > limit) return i;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
        ++i;
    }
    return std::nullopt;
}

inline std::optional<std::size_t> nesting_beyond(std::string_view text, std::size_t limit) {
    std::size_t depth = 0;
    return nesting_beyond(text, limit, depth);
}

inline error nesting_error(std::string_view what, std::size_t limit, std::size_t at) {
    return error{errc::json_limit, std::string(what) + ": nesting deeper than the limit of " +
                                       std::to_string(limit) + " at byte " + std::to_string(at)};
}

// How iterate() bounds the nesting of a text.
struct nesting_check {
    bool whole = true;          // false: the caller checks (in pieces, see nesting_beyond)
    std::size_t enclosing = 0;  // the depth at which the text sits in its body
};

// Starts iterating `body`, using its spare capacity as padding when there is enough.
inline result<od::document> iterate(od::parser& parser, simdjson::padded_string& copy,
                                    const char* data, std::size_t size, std::size_t capacity,
                                    std::string_view what, nesting_check nesting = {}) {
    simdjson::padded_string_view view(data, size, capacity);
    if (capacity < size + simdjson::SIMDJSON_PADDING) {
        copy = simdjson::padded_string(data, size);
        view = simdjson::padded_string_view(copy);
    }
    std::size_t depth = nesting.enclosing;
    if (nesting.whole) {
        if (auto at = nesting_beyond({data, size}, parser.max_depth(), depth)) {
            return nesting_error(what, parser.max_depth(), *at);
        }
    }
    od::document doc;
    if (auto e = parser.iterate(view).get(doc)) {
        if (e == simdjson::UTF8_ERROR) return utf8_error(data, size, what);
        return json_error(e, what);
    }
    return doc;
}

// The start of a body, printable, for an error message about what arrived instead of JSON.
inline std::string body_start(std::string_view body) {
    std::string out;
    for (char c : body.substr(0, 32))
        out += c >= 0x20 && c < 0x7f ? c : '?';
    if (body.size() > 32) out += "...";
    return out;
}

// The root object of a document, or an error that says what came instead.
inline std::optional<error> root_object(od::document& doc, std::string_view body,
                                        std::string_view what, od::object& root) {
    od::json_type type{};
    if (doc.type().get(type)) {
        return error{errc::json_syntax,
                     std::string(what) + " is not JSON (starts with \"" + body_start(body) + "\")"};
    }
    const char* name = type == od::json_type::array     ? "an array"
                       : type == od::json_type::string  ? "a string"
                       : type == od::json_type::number  ? "a number"
                       : type == od::json_type::boolean ? "a boolean"
                       : type == od::json_type::null    ? "null"
                                                        : nullptr;
    if (name) {
        return error{errc::json_type, std::string(what) + " is " + name + ", not an object"};
    }
    if (auto e = doc.get_object().get(root)) return json_error(e, what);
    return std::nullopt;
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

// A string from the network, quoted for a log line: control characters escaped (a key with a
// newline must not forge a second log line) and at most 64 bytes, cut between UTF-8 sequences.
inline std::string quoted(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    constexpr std::size_t max_bytes = 64;
    std::size_t n = std::min(text.size(), max_bytes);
    while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0u) == 0x80u)
        --n;
    std::string out = "\"";
    for (char c : text.substr(0, n)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
            out += "\\u00";
            out += hex[u >> 4];
            out += hex[u & 0xF];
        } else {
            out += c;
        }
    }
    out += n < text.size() ? "\"..." : "\"";
    return out;
}

// Remembers the keys of one object so that a key seen twice can be refused: simdjson does not
// notice duplicates, and a duplicate makes the object mean what each reader picks (the first
// or the last value). Keys must stay valid while the set is used (unescaped keys live in the
// parser's string buffer for the whole document).
class key_set {
  public:
    // False when the key was there already.
    bool insert(std::string_view key) {
        if (large_.empty()) {
            if (std::find(small_.begin(), small_.end(), key) != small_.end()) return false;
            if (small_.size() < small_.static_capacity) {
                small_.push_back(key);
                return true;
            }
            large_.insert(small_.begin(), small_.end());
        }
        return large_.insert(key).second;
    }

  private:
    boost::container::small_vector<std::string_view, 16> small_;
    std::unordered_set<std::string_view> large_;
};

// A parser's own refusal of a whole body (a duplicate key, a wrong type where tracking data
// must be): the first one is kept with its message, and `refused` travels up the simdjson
// error path to the top, which returns the kept message instead of simdjson's.
inline constexpr simdjson::error_code refused = simdjson::UNEXPECTED_ERROR;

struct refusal {
    std::optional<error> first;
    simdjson::error_code refuse(errc code, std::string detail) {
        if (!first) first = error{code, std::move(detail)};
        return refused;
    }
    simdjson::error_code duplicate(std::string_view key, std::string_view where) {
        return refuse(errc::json_duplicate_key,
                      "duplicate key " + quoted(key) + " in " + std::string(where));
    }
    simdjson::error_code wrong_type(std::string_view where, std::string_view expected) {
        return refuse(errc::json_type, std::string(where) + " is not " + std::string(expected));
    }
    // The error for the caller: the refusal, or simdjson's error at `where`.
    error take(simdjson::error_code e, std::string_view where) {
        if (e == refused && first) return std::move(*first);
        return json_error(e, where);
    }
};

// Refuses a value that is not of the wanted kind; other (structural) errors pass through, so a
// truncated body is reported as truncated, not as a wrong type.
inline simdjson::error_code type_error(simdjson::error_code e, refusal& why, std::string_view where,
                                       std::string_view expected) {
    return e == simdjson::INCORRECT_TYPE ? why.wrong_type(where, expected) : e;
}

// Calls visit(key, value) for each member of `v`, which must be an object naming each key once
// (a wrong type or a repeated key makes the body ambiguous, and it is refused as a whole); a
// non-zero result of visit ends the loop and is returned.
template <class Visit>
simdjson::error_code for_each_unique_member(od::value v, std::string_view what, refusal& why,
                                            Visit&& visit) {
    od::object members;
    if (auto e = v.get_object().get(members)) return type_error(e, why, what, "an object");
    key_set keys;
    for (auto m : members) {
        std::string_view key;
        od::value value;
        if (auto e = read_member(std::move(m), key, value)) return e;
        if (!keys.insert(key)) return why.duplicate(key, what);
        if (auto e = visit(key, value)) return e;
    }
    return simdjson::SUCCESS;
}

}  // namespace detail
}  // namespace devlist::sync
