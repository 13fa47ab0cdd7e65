#include "crypto/json_value.hpp"

#include "crypto/canonical_writer.hpp"
#include "crypto/json_reader.hpp"

#include <boost/container/small_vector.hpp>

namespace devlist::json {

value& value::operator[](std::string_view key) {
    if (is_null()) v_ = object{};
    auto& members = as_object();
    auto it = members.find(key);
    if (it == members.end()) it = members.emplace_hint(it, std::string(key), value{});
    return it->second;
}

const value* value::find(std::string_view key) const noexcept {
    const auto* members = std::get_if<object>(&v_);
    if (members == nullptr) return nullptr;
    const auto it = members->find(key);
    return it == members->end() ? nullptr : &it->second;
}

value* value::find(std::string_view key) noexcept {
    return const_cast<value*>(std::as_const(*this).find(key));
}

bool value::erase(std::string_view key) {
    auto* members = std::get_if<object>(&v_);
    if (members == nullptr) return false;
    const auto it = members->find(key);
    if (it == members->end()) return false;
    members->erase(it);
    return true;
}

bool operator==(const value& a, const value& b) {
    return a.v_ == b.v_;
}

namespace {

// Builds a value from the reader's events.
class tree_builder {
  public:
    void begin_object() { open(object{}); }
    void begin_array() { open(array{}); }
    bool key(std::string_view k, bool /*needs_escape*/, std::size_t offset) {
        auto [it, inserted] = open_.back()->as_object().try_emplace(std::string(k));
        if (!inserted) {
            error_ = detail::duplicate_key_error(k, offset);
            return false;
        }
        member_ = &it->second;
        return true;
    }
    bool end_object() {
        open_.pop_back();
        return true;
    }
    void end_array() { open_.pop_back(); }
    void separator() {}
    void string(std::string_view s, bool /*needs_escape*/) { put(std::string(s)); }
    void integer(std::int64_t i) { put(i); }
    void boolean(bool b) { put(b); }
    void null() { put(nullptr); }
    error take_error() { return std::move(error_); }

    value take_root() { return std::move(root_); }

  private:
    // Constructs the new value where it belongs (a temporary value moved into place trips
    // GCC 12's -Wmaybe-uninitialized on std::variant).
    template <class T>
    value& put(T&& v) {
        if (open_.empty()) return root_ = value(std::forward<T>(v));
        value& container = *open_.back();
        if (container.is_array()) return container.as_array().emplace_back(std::forward<T>(v));
        return *member_ = value(std::forward<T>(v));
    }
    template <class T>
    void open(T&& v) {
        open_.push_back(&put(std::forward<T>(v)));
    }

    value root_;
    // The open containers, innermost last. Elements are only appended to the innermost one,
    // so these pointers stay valid while they are on the stack.
    boost::container::small_vector<value*, 16> open_;
    value* member_ = nullptr;  // the member whose key was read last
    error error_;
};

}  // namespace

result<value> parse(std::string_view text, const limits& lim) {
    tree_builder builder;
    if (auto r = read(text, lim, builder); !r) return r.error();
    return builder.take_root();
}

void append_canonical(const value& v, std::string& out) {
    v.visit([&out]<class T>(const T& held) {
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
            out += "null";
        } else if constexpr (std::is_same_v<T, bool>) {
            out += held ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
            append_canonical_integer(held, out);
        } else if constexpr (std::is_same_v<T, std::string>) {
            append_canonical_string(held, out);
        } else if constexpr (std::is_same_v<T, array>) {
            out.push_back('[');
            for (std::size_t i = 0; i < held.size(); ++i) {
                if (i != 0) out.push_back(',');
                append_canonical(held[i], out);
            }
            out.push_back(']');
        } else {
            out.push_back('{');
            bool first = true;
            for (const auto& [key, member] : held) {
                if (!first) out.push_back(',');
                first = false;
                append_canonical_string(key, out);
                out.push_back(':');
                append_canonical(member, out);
            }
            out.push_back('}');
        }
    });
}

std::string to_canonical(const value& v) {
    std::string out;
    append_canonical(v, out);
    return out;
}

}  // namespace devlist::json
