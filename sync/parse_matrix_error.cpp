#include "sync/parse_matrix_error.hpp"

#include <simdjson.h>

namespace devlist::sync {
namespace {

// Error bodies are small; a large one is not an error body, and is not copied for padding.
constexpr std::size_t max_body_bytes = 64u << 10;
// Error codes are short identifiers; a long one is garbage, not something to match on.
constexpr std::size_t max_errcode_bytes = 128;
// The message is for logs and people: keep its start.
constexpr std::size_t max_message_bytes = 1024;

// The longest prefix of `text` within `limit` bytes that does not split a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return text;
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0u) == 0x80u)
        --end;
    return text.substr(0, end);
}

}  // namespace

std::optional<matrix_error> parse_matrix_error(std::string_view body) {
    if (body.size() > max_body_bytes) return std::nullopt;
    const simdjson::padded_string json(body);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document document;
    simdjson::ondemand::object object;
    if (parser.iterate(json).get(document) || document.get_object().get(object)) {
        return std::nullopt;
    }

    std::optional<std::string> errcode;
    std::optional<std::string> message;
    std::optional<std::int64_t> retry_after_ms;
    bool saw_retry_after = false;
    for (auto member : object) {
        std::string_view key;
        if (member.unescaped_key().get(key)) return std::nullopt;
        simdjson::ondemand::value value;
        if (member.value().get(value)) return std::nullopt;

        std::string_view text;
        if (key == "errcode") {
            if (errcode || value.get_string().get(text) || text.size() > max_errcode_bytes) {
                return std::nullopt;
            }
            errcode.emplace(text);
        } else if (key == "error") {
            if (message || value.get_string().get(text)) return std::nullopt;
            message.emplace(utf8_prefix(text, max_message_bytes));
        } else if (key == "retry_after_ms") {
            if (saw_retry_after) return std::nullopt;
            saw_retry_after = true;
            std::int64_t ms = 0;
            simdjson::ondemand::json_type type{};
            if (!value.type().get(type) && type == simdjson::ondemand::json_type::number &&
                !value.get_int64().get(ms) && ms >= 0) {
                retry_after_ms = ms;
            }
        }
    }
    // On-demand parsing reads only what it is asked for, so bytes after the object go unnoticed
    // unless asked for: once the root is consumed, a location in bounds means more input.
    const char* trailing = nullptr;
    if (!errcode || document.current_location().get(trailing) == simdjson::SUCCESS) {
        return std::nullopt;
    }
    return matrix_error{std::move(*errcode), message.value_or(std::string{}), retry_after_ms};
}

}  // namespace devlist::sync
