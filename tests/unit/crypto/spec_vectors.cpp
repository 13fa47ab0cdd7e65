#include "spec_vectors.hpp"

#include "crypto/base64.hpp"

#include <map>
#include <memory>
#include <stdexcept>

namespace devlist::test {

simdjson::dom::element spec_vectors(std::string_view file_name) {
    // One parser per file: a dom::parser owns the document it parsed last.
    static std::map<std::string, std::unique_ptr<simdjson::dom::parser>, std::less<>> parsers;
    static std::map<std::string, simdjson::dom::element, std::less<>> roots;
    if (const auto it = roots.find(file_name); it != roots.end()) return it->second;
    // Appended, not a chain of operator+: with the tests' precompiled header, GCC 12 at -O1
    // reports the chain as an out-of-bounds memcpy (a false -Warray-bounds in std::string).
    std::string path = DEVLIST_FIXTURES_DIR;
    path.append("/spec-vectors/").append(file_name);
    auto parser = std::make_unique<simdjson::dom::parser>();
    simdjson::dom::element root = parser->load(path).value();
    parsers.emplace(std::string(file_name), std::move(parser));
    roots.emplace(std::string(file_name), root);
    return root;
}

std::string string_at(simdjson::dom::element e, std::string_view key) {
    return std::string(e[key].get_string().value());
}

crypto::ed25519_key_pair spec_signing_key_pair() {
    const auto seed = crypto::base64_decode(
        string_at(spec_vectors("signing-json.json")["signing_key"], "seed_base64_as_in_spec"));
    return crypto::ed25519_key_pair::from_seed(seed.value()).value();
}

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) throw std::invalid_argument("odd-length hex");
    const auto nibble = [](char c) -> std::uint8_t {
        if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
        if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
        if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
        throw std::invalid_argument("not hex");
    };
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    }
    return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    constexpr std::string_view digits = "0123456789abcdef";
    std::string out;
    for (const std::uint8_t b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xf]);
    }
    return out;
}

std::string to_hex(std::string_view bytes) {
    return to_hex(as_bytes(bytes));
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string test_name(std::string_view id) {
    std::string name;
    for (const char c : id) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        name.push_back(alnum ? c : '_');
    }
    return name.empty() ? "empty" : name;
}

}  // namespace devlist::test
