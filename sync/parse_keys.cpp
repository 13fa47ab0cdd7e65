#include "sync/parse_keys.hpp"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "sync/matrix_ids.hpp"
#include "sync/parse_json_detail.hpp"

namespace devlist::sync {
namespace {

using detail::drop_log;
using detail::for_each_string;
using simdjson::error_code;
using simdjson::SUCCESS;

// Hostile answers could carry thousands of signatures per object; the ones that matter are few.
constexpr std::size_t max_signatures_per_object = 64;
constexpr std::size_t max_keys_per_object = 64;

// Structural errors end parsing; a type mismatch inside a signed object only marks it.
bool is_structural(error_code e) {
    return e && e != simdjson::INCORRECT_TYPE;
}

void set_problem(std::optional<std::string>& problem, std::string what) {
    if (!problem) problem = std::move(what);
}

std::string duplicate_in(std::string_view key, std::string_view where) {
    std::string out = "duplicate key " + detail::quoted(key);
    if (!where.empty()) {
        out += " in ";
        out += where;
    }
    return out;
}

error_code read_signatures(od::value v, std::vector<signature_entry>& out,
                           std::optional<std::string>& problem) {
    od::object by_signer;
    if (auto e = v.get_object().get(by_signer)) {
        set_problem(problem, "signatures is not an object");
        return is_structural(e) ? e : SUCCESS;
    }
    detail::key_set signers;
    for (auto s : by_signer) {
        std::string_view signer;
        od::value signer_value;
        if (auto e = detail::read_member(std::move(s), signer, signer_value)) return e;
        if (!signers.insert(signer)) set_problem(problem, duplicate_in(signer, "signatures"));
        od::object by_key;
        if (signer_value.get_object().get(by_key)) {
            set_problem(problem, "signatures entry is not an object");
            continue;
        }
        detail::key_set key_ids;
        for (auto k : by_key) {
            std::string_view key_id;
            od::value key_value;
            if (auto e = detail::read_member(std::move(k), key_id, key_value)) return e;
            if (!key_ids.insert(key_id)) set_problem(problem, duplicate_in(key_id, "signatures"));
            std::string_view sig;
            if (key_value.get_string().get(sig)) {
                set_problem(problem, "a signature is not a string");
                continue;
            }
            if (out.size() >= max_signatures_per_object) {
                set_problem(problem, "too many signatures");
                continue;
            }
            out.push_back({std::string(signer), std::string(key_id), std::string(sig)});
        }
    }
    return SUCCESS;
}

// Calls on_key(key_id, value) for each string entry of a "keys" object.
template <class OnKey>
error_code read_keys(od::value v, std::optional<std::string>& problem, OnKey on_key) {
    od::object keys;
    if (auto e = v.get_object().get(keys)) {
        set_problem(problem, "keys is not an object");
        return is_structural(e) ? e : SUCCESS;
    }
    std::size_t n = 0;
    detail::key_set seen;
    for (auto k : keys) {
        std::string_view key_id;
        od::value member;
        if (auto e = detail::read_member(std::move(k), key_id, member)) return e;
        if (!seen.insert(key_id)) set_problem(problem, duplicate_in(key_id, "keys"));
        std::string_view value;
        if (!detail::get_string(member, value)) {
            set_problem(problem, "a key is not a string");
            continue;
        }
        if (++n > max_keys_per_object) {
            set_problem(problem, "too many keys");
            continue;
        }
        on_key(key_id, value);
    }
    return SUCCESS;
}

// Keeps the raw bytes of a signed object, then rewinds it so its fields can be read.
error_code take_raw(od::object& obj, std::string& raw) {
    std::string_view view;
    if (auto e = obj.raw_json().get(view)) return e;
    raw = detail::trim_json(view);
    bool ignored = false;
    return obj.reset().get(ignored);
}

error_code read_device(std::string_view user_id, std::string_view device_id, od::value v,
                       keys_query_response& out) {
    queried_device dev;
    dev.user_id = user_id;
    dev.device_id = device_id;
    od::object obj;
    if (auto e = v.get_object().get(obj)) {
        if (is_structural(e)) return e;
        dev.problem = "device keys are not an object";
        out.devices.push_back(std::move(dev));
        return SUCCESS;
    }
    if (auto e = take_raw(obj, dev.raw_json)) return e;
    const std::string ed_id = "ed25519:" + dev.device_id;
    const std::string curve_id = "curve25519:" + dev.device_id;
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value)) return e;
        if (!seen.insert(key)) set_problem(dev.problem, duplicate_in(key, {}));
        std::string_view s;
        error_code e = SUCCESS;
        if (key == "user_id") {
            if (value.get_string().get(s)) set_problem(dev.problem, "user_id not a string");
            dev.claimed_user_id = s;
        } else if (key == "device_id") {
            if (value.get_string().get(s)) {
                set_problem(dev.problem, "device_id not a string");
            }
            dev.claimed_device_id = s;
        } else if (key == "algorithms") {
            e = for_each_string(
                value, [&](std::string_view a) { dev.algorithms.emplace_back(a); },
                [&] { set_problem(dev.problem, "algorithms has a non-string"); });
            if (e == simdjson::INCORRECT_TYPE) {
                set_problem(dev.problem, "algorithms is not an array");
                e = SUCCESS;
            }
        } else if (key == "keys") {
            e = read_keys(value, dev.problem, [&](std::string_view id, std::string_view k) {
                if (id == ed_id) dev.ed25519 = k;
                if (id == curve_id) dev.curve25519 = k;
            });
        } else if (key == "signatures") {
            e = read_signatures(value, dev.signatures, dev.problem);
        } else if (key == "unsigned") {
            od::object uns;
            if (value.get_object().get(uns)) continue;
            for (auto u : uns) {
                std::string_view uk;
                od::value unsigned_value;
                if (auto ue = detail::read_member(std::move(u), uk, unsigned_value)) return ue;
                if (uk == "device_display_name" && detail::get_string(unsigned_value, s)) {
                    dev.display_name = std::string(s);
                }
            }
        }
        if (e) return e;
    }
    out.devices.push_back(std::move(dev));
    return SUCCESS;
}

// The maps of the answer must be what they say: a map of the wrong type or a user or device
// named twice makes the answer ambiguous, and it is refused as a whole (its users stay
// outdated and are asked again). What is wrong inside one signed object is that object's
// problem instead, recorded when it is rejected.
// The devices of one user (the second step, on the user's object of devices). A device named
// twice makes the answer ambiguous, and it is refused as a whole (its users stay outdated and
// are asked again). What is wrong inside one signed object is that object's problem instead,
// recorded when it is rejected.
error_code read_user_devices(std::string_view user_id, od::object devices, keys_query_response& out,
                             drop_log& drops, detail::refusal& why) {
    detail::key_set device_ids;
    for (auto d : devices) {
        std::string_view device_id;
        od::value device_value;
        if (auto e = detail::read_member(std::move(d), device_id, device_value)) return e;
        if (!device_ids.insert(device_id)) {
            return why.duplicate(device_id, "device_keys." + std::string(user_id));
        }
        if (!is_valid_device_id(device_id)) {
            drops.add("device_keys: invalid device ID for " + std::string(user_id));
            continue;
        }
        if (auto e = read_device(user_id, device_id, device_value, out)) return e;
    }
    return SUCCESS;
}

// A cross-signing key that is an object; `raw` is its bytes.
error_code read_cross_signing_object(std::string_view user_id, od::object obj, std::string raw,
                                     std::vector<queried_cross_signing_key>& out) {
    queried_cross_signing_key key;
    key.user_id = user_id;
    key.raw_json = std::move(raw);
    detail::key_set seen;
    for (auto f : obj) {
        std::string_view name;
        od::value value;
        if (auto e = detail::read_member(std::move(f), name, value)) return e;
        if (!seen.insert(name)) set_problem(key.problem, duplicate_in(name, {}));
        error_code e = SUCCESS;
        if (name == "user_id") {
            std::string_view s;
            if (value.get_string().get(s)) set_problem(key.problem, "user_id not a string");
            key.claimed_user_id = s;
        } else if (name == "usage") {
            e = for_each_string(
                value, [&](std::string_view s) { key.usage.emplace_back(s); },
                [&] { set_problem(key.problem, "usage has a non-string"); });
            if (e == simdjson::INCORRECT_TYPE) {
                set_problem(key.problem, "usage is not an array");
                e = SUCCESS;
            }
        } else if (name == "keys") {
            e = read_keys(value, key.problem, [&](std::string_view id, std::string_view k) {
                key.keys.emplace_back(id, k);
            });
        } else if (name == "signatures") {
            e = read_signatures(value, key.signatures, key.problem);
        }
        if (e) return e;
    }
    out.push_back(std::move(key));
    return SUCCESS;
}

// ---- the first step: the body as a whole, each user's part located ----

answer_span span_in(const std::string& body, std::string_view part) {
    return {static_cast<std::size_t>(part.data() - body.data()), part.size()};
}

// A cross-signing map's entries, until they are filed under the users of device_keys (the maps
// may come in any order). The user IDs point into the parser's string buffer.
using cross_signing_entries = std::vector<std::pair<std::string_view, cross_signing_entry>>;

// The maps of the answer must be what they say: a map of the wrong type or a user named twice
// makes the answer ambiguous, and it is refused as a whole.
error_code index_device_keys(od::value v, keys_query_answer& out, drop_log& drops,
                             detail::refusal& why) {
    return detail::for_each_unique_member(
        v, "device_keys", why, [&](std::string_view user_id, od::value user_value) -> error_code {
            if (!is_valid_user_id(user_id)) {
                drops.add("device_keys: invalid user entry");
                return SUCCESS;
            }
            od::object devices;
            if (auto e = user_value.get_object().get(devices)) {
                return detail::type_error(e, why, "device_keys." + std::string(user_id),
                                          "an object");
            }
            // Skipped, not parsed: the second step parses the parts that are not known already.
            std::string_view raw;
            if (auto e = devices.raw_json().get(raw)) return e;
            auto& section = out.users.emplace_back();
            section.user_id = user_id;
            section.device_keys = span_in(out.body, detail::trim_json(raw));
            return SUCCESS;
        });
}

error_code index_cross_signing_keys(od::value v, const std::string& body,
                                    cross_signing_entries& out, drop_log& drops,
                                    std::string_view what, detail::refusal& why) {
    return detail::for_each_unique_member(
        v, what, why, [&](std::string_view user_id, od::value value) -> error_code {
            if (!is_valid_user_id(user_id)) {
                drops.add(std::string(what) + ": invalid user ID");
                return SUCCESS;
            }
            cross_signing_entry entry;
            od::object key;
            auto e = value.get_object().get(key);
            if (is_structural(e)) return e;
            if (!e) {
                std::string_view raw;
                if (auto r = key.raw_json().get(raw)) return r;
                entry.bytes = span_in(body, detail::trim_json(raw));
                entry.is_object = true;
            }
            out.emplace_back(user_id, entry);
            return SUCCESS;
        });
}

error_code read_failures(od::value v, keys_query_answer& out, drop_log& drops,
                         detail::refusal& why) {
    return detail::for_each_unique_member(
        v, "failures", why, [&](std::string_view server, od::value value) -> error_code {
            if (!is_valid_server_name(server)) {
                drops.add("failures: invalid server name");
                return SUCCESS;
            }
            // The spec leaves the failure object's content open; keep it for the log when it
            // is an object, but the server name is what matters.
            std::string content = "{}";
            od::object failure;
            std::string_view raw;
            if (!value.get_object().get(failure) && !failure.raw_json().get(raw)) {
                content = detail::trim_json(raw);
            }
            out.failures.insert_or_assign(std::string(server), std::move(content));
            return SUCCESS;
        });
}

// The nesting of the body but for the parts (each part's is checked when it is parsed): the
// parts are whole values, so leaving them out keeps the depth count right.
std::optional<error> check_nesting_outside_parts(const keys_query_answer& answer,
                                                 const cross_signing_entries& master,
                                                 const cross_signing_entries& self_signing,
                                                 const cross_signing_entries& user_signing,
                                                 std::size_t limit) {
    std::vector<answer_span> parts;
    parts.reserve(answer.users.size() + master.size() + self_signing.size() + user_signing.size());
    for (const auto& user : answer.users)
        parts.push_back(user.device_keys);
    for (const auto* entries : {&master, &self_signing, &user_signing}) {
        for (const auto& [user_id, entry] : *entries) {
            if (entry.is_object) parts.push_back(entry.bytes);
        }
    }
    std::sort(parts.begin(), parts.end(),
              [](const answer_span& a, const answer_span& b) { return a.offset < b.offset; });
    const std::string_view body = answer.body;
    std::size_t depth = 0;
    std::size_t from = 0;
    auto check = [&](std::size_t to) -> std::optional<error> {
        if (auto at = detail::nesting_beyond(body.substr(from, to - from), limit, depth)) {
            return detail::nesting_error("/keys/query response", limit, from + *at);
        }
        return std::nullopt;
    };
    for (const auto& part : parts) {
        if (auto e = check(part.offset)) return e;
        from = part.offset + part.size;
    }
    return check(body.size());
}

// ---- the second step: one part at a time, on the context's inner parser ----

// Where a user's part sits in the body: {"device_keys": {"@user": <part>}} (or master_keys…).
constexpr std::size_t part_depth = 2;

result<od::document> iterate_part(parse_context::impl& impl, std::string_view bytes) {
    // A copy with simdjson's padding after it: the part is followed by the rest of the body,
    // which is not padding. Its nesting is checked here, where it sits in the body: the first
    // step leaves the parts out (a repeated part was checked when it was first parsed).
    impl.part.reserve(bytes.size() + simdjson::SIMDJSON_PADDING);
    impl.part.assign(bytes);
    return detail::iterate(impl.inner, impl.copy, impl.part.data(), impl.part.size(),
                           impl.part.capacity(), "/keys/query user part",
                           {.whole = true, .enclosing = part_depth});
}

result<void> parse_cross_signing_part(parse_context::impl& impl, const keys_query_answer& answer,
                                      std::string_view user_id, const cross_signing_entry& entry,
                                      std::vector<queried_cross_signing_key>& out,
                                      std::string_view what) {
    if (!entry.is_object) {
        queried_cross_signing_key key;
        key.user_id = user_id;
        key.problem = "cross-signing key is not an object";
        out.push_back(std::move(key));
        return {};
    }
    const std::string_view bytes = answer.bytes(entry.bytes);
    auto doc = iterate_part(impl, bytes);
    if (!doc) return doc.error();
    od::object obj;
    error_code e = doc->get_object().get(obj);
    if (!e) e = read_cross_signing_object(user_id, obj, std::string(bytes), out);
    if (!e && detail::has_trailing_content(*doc)) e = simdjson::TRAILING_CONTENT;
    if (e) return detail::json_error(e, "/keys/query " + std::string(what));
    return {};
}

result<void> parse_devices_part(parse_context::impl& impl, const keys_query_answer& answer,
                                const user_section& user, keys_query_response& out,
                                drop_log& drops) {
    auto doc = iterate_part(impl, answer.bytes(user.device_keys));
    if (!doc) return doc.error();
    detail::refusal why;
    od::object devices;
    error_code e = doc->get_object().get(devices);
    if (!e) e = read_user_devices(user.user_id, devices, out, drops, why);
    if (!e && detail::has_trailing_content(*doc)) e = simdjson::TRAILING_CONTENT;
    if (e) return why.take(e, "/keys/query device_keys");
    return {};
}

}  // namespace

result<keys_query_answer> index_keys_query_answer(parse_context& ctx, std::string body) {
    auto& impl = ctx.get();
    keys_query_answer out;
    out.body = std::move(body);
    // Iterated in place, so that the parts are spans of the body: padded first when the body
    // came without room (the HTTP client leaves room).
    if (out.body.capacity() < out.body.size() + simdjson::SIMDJSON_PADDING) {
        out.body.reserve(out.body.size() + simdjson::SIMDJSON_PADDING);
    }
    const std::string& text = out.body;
    auto doc = detail::iterate(impl.parser, impl.copy, text.data(), text.size(), text.capacity(),
                               "/keys/query response", {.whole = false});
    if (!doc) return doc.error();
    od::object root;
    if (auto e = detail::root_object(*doc, text, "/keys/query response", root))
        return std::move(*e);

    drop_log drops{out.dropped, out.drop_reasons};
    detail::refusal why;
    detail::key_set seen;
    cross_signing_entries master, self_signing, user_signing;
    for (auto f : root) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value))
            return detail::json_error(e, "/keys/query response");
        if (!seen.insert(key)) {
            why.duplicate(key, "the /keys/query response");
            return why.take(detail::refused, "/keys/query response");
        }
        error_code e = SUCCESS;
        if (key == "device_keys") {
            e = index_device_keys(value, out, drops, why);
        } else if (key == "failures") {
            e = read_failures(value, out, drops, why);
        } else if (key == "master_keys") {
            e = index_cross_signing_keys(value, text, master, drops, key, why);
        } else if (key == "self_signing_keys") {
            e = index_cross_signing_keys(value, text, self_signing, drops, key, why);
        } else if (key == "user_signing_keys") {
            e = index_cross_signing_keys(value, text, user_signing, drops, key, why);
        }
        if (e) return why.take(e, "/keys/query " + std::string(key));
    }
    if (detail::has_trailing_content(*doc))
        return detail::json_error(simdjson::TRAILING_CONTENT, "/keys/query");
    if (auto e = check_nesting_outside_parts(out, master, self_signing, user_signing,
                                             impl.parser.max_depth())) {
        return std::move(*e);
    }

    // Each cross-signing key filed under its user. A key of a user the answer does not list
    // under device_keys is of no use, but it is checked as strictly as the others: a broken
    // one refuses the answer.
    std::unordered_map<std::string_view, user_section*> by_user;
    by_user.reserve(out.users.size());
    for (auto& user : out.users)
        by_user.emplace(user.user_id, &user);
    std::vector<queried_cross_signing_key> unused;
    for (auto [entries, slot, what] :
         {std::tuple{&master, &user_section::master, "master_keys"},
          std::tuple{&self_signing, &user_section::self_signing, "self_signing_keys"},
          std::tuple{&user_signing, &user_section::user_signing, "user_signing_keys"}}) {
        for (const auto& [user_id, entry] : *entries) {
            if (auto u = by_user.find(user_id); u != by_user.end()) {
                u->second->*slot = entry;
            } else if (auto r = parse_cross_signing_part(impl, out, user_id, entry, unused, what);
                       !r) {
                return r.error();
            }
            unused.clear();
        }
    }
    for (auto& user : out.users) {
        // A key that is not an object is refused whenever it comes: such a part is never
        // stored as verified, so it needs no digest.
        auto usable = [](const std::optional<cross_signing_entry>& e) {
            return !e || e->is_object;
        };
        if (!usable(user.master) || !usable(user.self_signing) || !usable(user.user_signing)) {
            continue;
        }
        auto bytes = [&](const std::optional<cross_signing_entry>& e) {
            return e ? std::optional(out.bytes(e->bytes)) : std::nullopt;
        };
        user.digest =
            impl.digester.digest({user.user_id, out.bytes(user.device_keys), bytes(user.master),
                                  bytes(user.self_signing), bytes(user.user_signing)});
    }
    return out;
}

result<keys_query_response> parse_user_parts(parse_context& ctx, const keys_query_answer& answer,
                                             std::span<const user_section* const> users) {
    auto& impl = ctx.get();
    keys_query_response out;
    out.users.reserve(users.size());
    out.digests.reserve(users.size());
    drop_log drops{out.dropped, out.drop_reasons};
    for (const user_section* user : users) {
        const std::size_t dropped_before = out.dropped;
        if (auto r = parse_devices_part(impl, answer, *user, out, drops); !r) return r.error();
        for (auto [entry, into, what] :
             {std::tuple{&user->master, &out.master_keys, "master_keys"},
              std::tuple{&user->self_signing, &out.self_signing_keys, "self_signing_keys"},
              std::tuple{&user->user_signing, &out.user_signing_keys, "user_signing_keys"}}) {
            if (!*entry) continue;
            if (auto r =
                    parse_cross_signing_part(impl, answer, user->user_id, **entry, *into, what);
                !r) {
                return r.error();
            }
        }
        out.users.push_back(user->user_id);
        // A dropped device is not accepted: the part is not one to take as verified later.
        out.digests.push_back(out.dropped == dropped_before ? user->digest : std::nullopt);
    }
    return out;
}

result<keys_query_response> parse_keys_query_response(parse_context& ctx, const std::string& body) {
    auto answer = index_keys_query_answer(ctx, body);
    if (!answer) return answer.error();
    std::vector<const user_section*> users;
    users.reserve(answer->users.size());
    for (const auto& user : answer->users)
        users.push_back(&user);
    auto parts = parse_user_parts(ctx, *answer, users);
    if (!parts) return parts.error();
    parts->failures = std::move(answer->failures);
    parts->dropped += answer->dropped;
    for (auto& reason : parts->drop_reasons) {
        if (answer->drop_reasons.size() >= 8) break;
        answer->drop_reasons.push_back(std::move(reason));
    }
    parts->drop_reasons = std::move(answer->drop_reasons);
    return parts;
}

result<keys_changes_response> parse_keys_changes_response(parse_context& ctx,
                                                          const std::string& body) {
    auto& impl = ctx.get();
    auto doc = detail::iterate(impl.parser, impl.copy, body.data(), body.size(), body.capacity(),
                               "/keys/changes response");
    if (!doc) return doc.error();
    od::object root;
    if (auto e = detail::root_object(*doc, body, "/keys/changes response", root)) {
        return std::move(*e);
    }
    keys_changes_response out;
    detail::refusal why;
    detail::key_set seen;
    for (auto f : root) {
        std::string_view key;
        od::value value;
        if (auto e = detail::read_member(std::move(f), key, value))
            return detail::json_error(e, "/keys/changes");
        if (!seen.insert(key)) {
            why.duplicate(key, "the /keys/changes response");
            return why.take(detail::refused, "/keys/changes");
        }
        std::vector<std::string>* list = key == "changed" ? &out.changed
                                         : key == "left"  ? &out.left
                                                          : nullptr;
        if (!list) continue;
        auto e = for_each_string(
            value,
            [&](std::string_view s) {
                if (is_valid_user_id(s)) list->emplace_back(s);
            },
            [] {});
        // A list of the wrong type would lose every change it names: refused, so that the
        // caller falls back to marking everyone outdated.
        if (e == simdjson::INCORRECT_TYPE) {
            why.wrong_type("/keys/changes " + std::string(key), "an array");
            return why.take(detail::refused, "/keys/changes");
        }
        if (e) return detail::json_error(e, "/keys/changes");
    }
    if (detail::has_trailing_content(*doc))
        return detail::json_error(simdjson::TRAILING_CONTENT, "/keys/changes");
    return out;
}

}  // namespace devlist::sync
