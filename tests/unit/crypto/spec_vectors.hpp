// Access to tests/fixtures/spec-vectors/*.json for the crypto tests. The files are read with
// simdjson, independently of the JSON code under test.
#pragma once

#include "crypto/ed25519.hpp"

#include <simdjson.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::test {

// The parsed root of a fixture file (e.g. "canonical-json.json"); valid for the whole run.
simdjson::dom::element spec_vectors(std::string_view file_name);

// The string member key of object e.
std::string string_at(simdjson::dom::element e, std::string_view key);

std::vector<std::uint8_t> from_hex(std::string_view hex);
std::string to_hex(std::span<const std::uint8_t> bytes);
std::string to_hex(std::string_view bytes);
std::span<const std::uint8_t> as_bytes(std::string_view s);

// The key pair of the specification's signing example (signing-json.json), from its seed.
crypto::ed25519_key_pair spec_signing_key_pair();

// A gtest parameter name made from a fixture case id ("appendix-canonical-1").
std::string test_name(std::string_view id);

}  // namespace devlist::test
