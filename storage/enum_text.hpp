// Enumerations as the TEXT the schema's CHECK constraints allow, and back. Internal to storage/.
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"

#include <array>
#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace devlist::storage {

template <class E>
struct enum_text;

template <>
struct enum_text<membership> {
    static constexpr std::string_view what = "membership";
    static constexpr std::array<std::pair<membership, std::string_view>, 2> values{{
        {membership::join, "join"},
        {membership::invite, "invite"},
    }};
};

template <>
struct enum_text<key_usage> {
    static constexpr std::string_view what = "key usage";
    static constexpr std::array<std::pair<key_usage, std::string_view>, 3> values{{
        {key_usage::master, "master"},
        {key_usage::self_signing, "self_signing"},
        {key_usage::user_signing, "user_signing"},
    }};
};

template <>
struct enum_text<key_state> {
    static constexpr std::string_view what = "key state";
    static constexpr std::array<std::pair<key_state, std::string_view>, 2> values{{
        {key_state::pending, "pending"},
        {key_state::published, "published"},
    }};
};

template <>
struct enum_text<fallback_slot> {
    static constexpr std::string_view what = "fallback slot";
    static constexpr std::array<std::pair<fallback_slot, std::string_view>, 2> values{{
        {fallback_slot::current, "current"},
        {fallback_slot::previous, "previous"},
    }};
};

template <>
struct enum_text<upload_state> {
    static constexpr std::string_view what = "upload state";
    static constexpr std::array<std::pair<upload_state, std::string_view>, 2> values{{
        {upload_state::pending, "pending"},
        {upload_state::uploaded, "uploaded"},
    }};
};

template <class E>
std::string_view to_text(E value) {
    for (const auto& [v, text] : enum_text<E>::values) {
        if (v == value) return text;
    }
    assert(false && "enumerator without text");
    return {};
}

// errc::storage_corrupt for text the code never writes (the CHECK constraints should make this
// impossible; a hand-edited database is not).
template <class E>
result<E> parse_text(std::string_view text) {
    for (const auto& [v, t] : enum_text<E>::values) {
        if (t == text) return v;
    }
    return error{errc::storage_corrupt, "unknown " + std::string(enum_text<E>::what) + " '" +
                                            std::string(text) + "' in the database"};
}

// tracking_reasons as the bit set in tracked_users.reasons.
inline std::int64_t to_bits(const tracking_reasons& reasons) {
    return (reasons.own ? 1 : 0) | (reasons.encrypted_room ? 2 : 0) |
           (reasons.explicit_request ? 4 : 0);
}

inline result<tracking_reasons> parse_reasons(std::int64_t bits) {
    if (bits < 1 || bits > 7) {
        return error{errc::storage_corrupt,
                     "tracking reasons " + std::to_string(bits) + " in the database"};
    }
    return tracking_reasons{.own = (bits & 1) != 0,
                            .encrypted_room = (bits & 2) != 0,
                            .explicit_request = (bits & 4) != 0};
}

}  // namespace devlist::storage
