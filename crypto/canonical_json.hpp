// Canonical JSON (Matrix spec appendix "Canonical JSON") straight from received bytes.
//
// canonicalize() reads the text once with the shared reader (json_reader.hpp) and writes the
// canonical form as it goes; only the members of an object that arrive out of order are moved,
// when the object closes. No tree is built, and a reused `out` string means no allocation at
// all in the common case. This is the hot path of /keys/query verification.
//
// Thread-safety: pure functions; concurrent calls with different `out` strings are safe.
#pragma once

#include "crypto/json_limits.hpp"

#include <devlist/error.hpp>

#include <string>
#include <string_view>

namespace devlist::crypto {

struct canonical_options {
    json::limits limits;
    // Leave out the top-level members "signatures" and "unsigned": the bytes a Matrix signature
    // covers. The input must then be an object (else errc::json_type).
    bool strip_signatures_and_unsigned = false;
};

// Writes the canonical form of raw into out (cleared first; its capacity is reused). On error
// out is empty. Errors: json_syntax, json_number, json_duplicate_key,
// json_limit, json_type (see json_reader.hpp), each with the byte offset of the fault.
result<void> canonicalize(std::string_view raw, std::string& out,
                          const canonical_options& options = {});
result<std::string> canonicalize(std::string_view raw, const canonical_options& options = {});

}  // namespace devlist::crypto
