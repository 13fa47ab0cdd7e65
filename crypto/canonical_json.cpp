#include "crypto/canonical_json.hpp"

#include "crypto/canonical_writer.hpp"
#include "crypto/json_reader.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstring>

namespace devlist::crypto {
namespace {

// The next byte of a canonically escaped string, with its escape (if any) decoded.
unsigned char next_decoded(const char*& p) {
    if (*p != '\\') return static_cast<unsigned char>(*p++);
    const char c = p[1];
    if (c == 'u') {  // always \u00xx with lowercase hex in canonical output
        const auto nibble = [](char h) { return h <= '9' ? h - '0' : h - 'a' + 10; };
        const auto byte = static_cast<unsigned char>(nibble(p[4]) << 4 | nibble(p[5]));
        p += 6;
        return byte;
    }
    p += 2;
    switch (c) {
        case 'b':
            return '\b';
        case 't':
            return '\t';
        case 'n':
            return '\n';
        case 'f':
            return '\f';
        case 'r':
            return '\r';
        default:
            return static_cast<unsigned char>(c);  // '"' or '\\'
    }
}

// Orders two canonically escaped keys by their decoded bytes, which is code-point order.
int compare_decoded(std::string_view a, std::string_view b) {
    const char* pa = a.data();
    const char* pb = b.data();
    const char* const ea = pa + a.size();
    const char* const eb = pb + b.size();
    while (pa != ea && pb != eb) {
        const unsigned char ca = next_decoded(pa);
        const unsigned char cb = next_decoded(pb);
        if (ca != cb) return ca < cb ? -1 : 1;
    }
    return pa == ea ? (pb == eb ? 0 : -1) : 1;
}

// Writes canonical JSON from the reader's events. Objects are written in input order; when one
// closes, its members are put in key order if they were not already (servers usually send
// them sorted), and stripped members are left out.
class canonical_builder {
  public:
    // Writes through a pointer into out, sized ahead of the writes: a std::string push_back
    // per token costs more than the whole reader. finish() trims out to what was written.
    canonical_builder(std::string& out, std::size_t expected_size, bool strip)
        : out_(out), strip_(strip) {
        out_.resize(std::max(out_.capacity(), expected_size));
        buffer_ = out_.data();
        capacity_ = out_.size();
    }
    void finish() { out_.resize(size_); }

    void begin_object() {
        put('{');
        objects_.push_back({size_, members_.size()});
    }
    bool key(std::string_view k, bool needs_escape, std::size_t offset) {
        member m{};
        m.start = size_;
        m.input_offset = offset;
        m.key_escaped = needs_escape;
        m.dropped = strip_ && objects_.size() == 1 && (k == "signatures" || k == "unsigned");
        write_string(k, needs_escape);
        m.key_size = size_ - m.start - 2;
        put(':');
        members_.push_back(m);
        return true;
    }
    bool end_object() {
        const open_object object = objects_.back();
        objects_.pop_back();
        const auto first = members_.begin() + static_cast<std::ptrdiff_t>(object.first_member);
        if (first != members_.end() && !order_members(object.content_start, first)) return false;
        members_.erase(first, members_.end());
        put('}');
        return true;
    }
    void begin_array() { put('['); }
    void end_array() { put(']'); }
    void separator() { put(','); }
    void string(std::string_view s, bool needs_escape) { write_string(s, needs_escape); }
    void integer(std::int64_t i) {
        wrote_until(json::write_canonical_integer(i, room(json::max_canonical_integer_size)));
    }
    void boolean(bool b) { put(b ? std::string_view("true") : std::string_view("false")); }
    void null() { put("null"); }
    error take_error() { return std::move(error_); }

  private:
    struct member {
        std::size_t start;         // offset in out_ of the key's opening quote
        std::size_t end;           // one past the value (set when the object closes)
        std::size_t key_size;      // of the key as written, without its quotes
        std::size_t input_offset;  // of the key in the input, for error details
        bool key_escaped;          // the written key holds escapes: compare it decoded
        bool dropped;              // a stripped top-level member
    };
    struct open_object {
        std::size_t content_start;  // offset in out_ just after '{'
        std::size_t first_member;   // index in members_
    };
    using member_iterator = boost::container::small_vector<member, 32>::iterator;

    // Space for n more bytes at the end of the output; valid until the next call.
    char* room(std::size_t n) {
        if (capacity_ - size_ < n) [[unlikely]]
            grow(n);
        return buffer_ + size_;
    }
    [[gnu::noinline]] void grow(std::size_t n) {
        out_.resize(std::max(capacity_ * 2, size_ + n));
        buffer_ = out_.data();
        capacity_ = out_.size();
    }
    void wrote_until(const char* end) { size_ = static_cast<std::size_t>(end - buffer_); }
    void put(char c) {
        *room(1) = c;
        ++size_;
    }
    void put(std::string_view s) {
        std::memcpy(room(s.size()), s.data(), s.size());
        size_ += s.size();
    }

    void write_string(std::string_view s, bool needs_escape) {
        if (needs_escape) {
            wrote_until(json::write_canonical_string(s, room(json::canonical_string_size(s))));
            return;
        }
        char* p = room(s.size() + 2);
        *p++ = '"';
        if (!s.empty()) std::memcpy(p, s.data(), s.size());
        p += s.size();
        *p++ = '"';
        wrote_until(p);
    }

    std::string_view key_of(const member& m) const { return {buffer_ + m.start + 1, m.key_size}; }

    int compare_keys(const member& a, const member& b) const {
        if (!a.key_escaped && !b.key_escaped) return key_of(a).compare(key_of(b));
        return compare_decoded(key_of(a), key_of(b));
    }

    bool duplicate(const member& a, const member& b) {
        error_ =
            json::detail::duplicate_key_error(key_of(b), std::max(a.input_offset, b.input_offset));
        return false;
    }

    // Sorts the members [first, members_.end()) of the object whose content starts at
    // content_start, refuses duplicate keys and leaves out dropped members.
    bool order_members(std::size_t content_start, const member_iterator& first) {
        const auto last = members_.end();
        for (auto it = first; it != last; ++it) {
            it->end = it + 1 == last ? size_ : (it + 1)->start - 1;  // before the ','
        }
        bool sorted = true;
        bool any_dropped = first->dropped;
        for (auto it = first + 1; it != last; ++it) {
            any_dropped = any_dropped || it->dropped;
            const int order = compare_keys(*(it - 1), *it);
            if (order == 0) return duplicate(*(it - 1), *it);
            sorted = sorted && order < 0;
        }
        if (!sorted) {
            std::sort(first, last,
                      [this](const member& a, const member& b) { return compare_keys(a, b) < 0; });
            for (auto it = first + 1; it != last; ++it) {
                if (compare_keys(*(it - 1), *it) == 0) return duplicate(*(it - 1), *it);
            }
        }
        if (!sorted || any_dropped) rewrite(content_start, first);
        return true;
    }

    // Rewrites the object's content from its members in their current order, using the space
    // after the output as scratch so that a reused out_ needs no allocation.
    void rewrite(std::size_t content_start, const member_iterator& first) {
        const std::size_t old_size = size_;
        char* const scratch = room(old_size - content_start);
        char* const base = buffer_;
        char* w = scratch;
        for (auto it = first; it != members_.end(); ++it) {
            if (it->dropped) continue;
            if (w != scratch) *w++ = ',';
            std::memcpy(w, base + it->start, it->end - it->start);
            w += it->end - it->start;
        }
        const auto size = static_cast<std::size_t>(w - scratch);
        std::memcpy(base + content_start, scratch, size);
        size_ = content_start + size;
    }

    std::string& out_;
    char* buffer_ = nullptr;  // out_.data(), of capacity_ bytes until finish()
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;  // bytes written
    const bool strip_;
    boost::container::small_vector<open_object, 16> objects_;
    // The members of every open object, outermost object's first.
    boost::container::small_vector<member, 32> members_;
    error error_;
};

}  // namespace

result<void> canonicalize(std::string_view raw, std::string& out,
                          const canonical_options& options) {
    out.clear();
    if (options.strip_signatures_and_unsigned) {
        const std::size_t start = raw.find_first_not_of(" \t\n\r");
        if (start != std::string_view::npos && raw[start] != '{') {
            return error{errc::json_type,
                         "a signed JSON value must be an object; this one is not "
                         "(byte " +
                             std::to_string(start) + ")"};
        }
    }
    // Canonical output is rarely longer than the input; room() grows the buffer if it is.
    canonical_builder builder(out, raw.size() + 64, options.strip_signatures_and_unsigned);
    auto r = json::read(raw, options.limits, builder);
    if (r) {
        builder.finish();
    } else {
        out.clear();
    }
    return r;
}

result<std::string> canonicalize(std::string_view raw, const canonical_options& options) {
    std::string out;
    if (auto r = canonicalize(raw, out, options); !r) return r.error();
    return out;
}

}  // namespace devlist::crypto
