// Reading the fixed-size binary values of Matrix key maps (public keys, signatures) from their
// base64, with the error kind and name of the value in question.
#pragma once

#include "crypto/base64.hpp"

#include <devlist/error.hpp>

#include <string>
#include <string_view>

namespace devlist::crypto {

// A T whose `bytes` array is decoded from text; errc `code` naming `what` unless text is the
// base64 (padded or not) of exactly sizeof(T::bytes) bytes.
template <class T>
result<T> decode_fixed_size(std::string_view text, errc code, std::string_view what) {
    T value;
    if (auto r = base64_decode_into(text, value.bytes); !r) {
        return error{code, std::string(what) + ": " + r.error().detail};
    }
    return value;
}

}  // namespace devlist::crypto
