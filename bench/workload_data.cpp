#include "bench/workload_data.hpp"

#include <array>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"

namespace devlist::bench {
namespace {

constexpr std::array<const char*, 8> display_names = {
    "Element Desktop (Linux)",
    "Element Android",
    "Element iOS",
    "Element Web (Firefox, Linux)",
    "nheko",
    "Fractal",
    "FluffyChat",
    "Element X iOS",
};
constexpr std::array<const char*, 8> words = {"ada",  "bruno", "chidi", "dana",
                                              "elif", "farah", "goran", "hana"};

void append_string(std::string& out, std::string_view s) {
    json::append_canonical(json::value(s), out);
}

// Signs `canonical` with `key` and records it.
std::string sign_recorded(const crypto::ed25519_key_pair& key, const std::string& canonical,
                          std::vector<signed_message>* signatures) {
    auto signature = key.sign(std::string_view(canonical));
    if (signatures) signatures->push_back({key.public_key(), canonical, signature});
    return signature.to_base64();
}

}  // namespace

std::string bench_user_id(std::size_t index) {
    return "@u" + std::to_string(index) + "." + words[index % words.size()] + ":hs" +
           std::to_string(index % 40) + ".example.org";
}

std::string key_factory::device_id() {
    std::string id(10, 'A');
    std::uniform_int_distribution<int> letter(0, 25);
    for (auto& c : id)
        c = static_cast<char>('A' + letter(random_));
    return id;
}

std::string key_factory::random_base64(std::size_t bytes) {
    std::vector<std::uint8_t> raw(bytes);
    for (auto& b : raw)
        b = static_cast<std::uint8_t>(random_());
    return crypto::base64_encode(raw);
}

bench_user key_factory::make_user(std::string user_id, std::size_t devices,
                                  std::vector<signed_message>* signatures) {
    bench_user user;
    user.user_id = std::move(user_id);
    auto master = crypto::ed25519_key_pair::generate();
    const std::string master_pub = master.public_key().to_base64();
    const std::string ssk_pub = user.self_signing.public_key().to_base64();

    // Master key: Synapse returns it as uploaded; signed here by nobody (as in the spec's
    // example), its trust comes from elsewhere.
    user.master_json = "{\"user_id\":";
    append_string(user.master_json, user.user_id);
    user.master_json +=
        ",\"usage\":[\"master\"],\"keys\":{\"ed25519:" + master_pub + "\":\"" + master_pub + "\"}}";

    json::value ssk;
    ssk["user_id"] = user.user_id;
    ssk["usage"] = json::array{"self_signing"};
    ssk["keys"]["ed25519:" + ssk_pub] = ssk_pub;
    const std::string ssk_signature = sign_recorded(master, json::to_canonical(ssk), signatures);
    user.self_signing_json = "{\"user_id\":";
    append_string(user.self_signing_json, user.user_id);
    user.self_signing_json += ",\"usage\":[\"self_signing\"],\"keys\":{\"ed25519:" + ssk_pub +
                              "\":\"" + ssk_pub + "\"},\"signatures\":{";
    append_string(user.self_signing_json, user.user_id);
    user.self_signing_json += ":{\"ed25519:" + master_pub + "\":\"" + ssk_signature + "\"}}}";

    for (std::size_t i = 0; i < devices; ++i)
        add_device(user, signatures);
    return user;
}

void key_factory::add_device(bench_user& user, std::vector<signed_message>* signatures) {
    auto signing = crypto::ed25519_key_pair::generate();
    auto exchange = crypto::curve25519_key_pair::generate();
    const std::string id = device_id();
    const std::string ed = signing.public_key().to_base64();
    const std::string curve = exchange.public_key().to_base64();

    json::value keys;
    keys["user_id"] = user.user_id;
    keys["device_id"] = id;
    keys["algorithms"] = json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"};
    keys["keys"]["curve25519:" + id] = curve;
    keys["keys"]["ed25519:" + id] = ed;
    const std::string canonical = json::to_canonical(keys);
    const std::string self_signature = sign_recorded(signing, canonical, signatures);
    const std::string cross_signature = sign_recorded(user.self_signing, canonical, signatures);

    // Synapse's member order: as the client uploaded them, "unsigned" added last.
    std::string out = "{\"user_id\":";
    append_string(out, user.user_id);
    out += ",\"device_id\":\"" + id +
           "\",\"algorithms\":[\"m.olm.v1.curve25519-aes-sha2\",\"m.megolm.v1.aes-sha2\"]," +
           "\"keys\":{\"curve25519:" + id + "\":\"" + curve + "\",\"ed25519:" + id + "\":\"" + ed +
           "\"},\"signatures\":{";
    append_string(out, user.user_id);
    out += ":{\"ed25519:" + id + "\":\"" + self_signature +
           "\",\"ed25519:" + user.self_signing.public_key().to_base64() + "\":\"" +
           cross_signature + "\"}},\"unsigned\":{\"device_display_name\":";
    append_string(out, display_names[random_() % display_names.size()]);
    out += "}}";
    user.devices.push_back({id, std::move(out)});
}

std::string keys_query_answer(std::span<const bench_user> users) {
    std::string out;
    std::size_t size = 256;
    for (const auto& u : users) {
        size += u.master_json.size() + u.self_signing_json.size() + 3 * u.user_id.size() + 64;
        for (const auto& d : u.devices)
            size += d.json.size() + d.device_id.size() + 8;
    }
    out.reserve(size);
    out += "{\"failures\":{},\"device_keys\":{";
    bool first = true;
    for (const auto& u : users) {
        if (!first) out += ',';
        first = false;
        append_string(out, u.user_id);
        out += ":{";
        for (std::size_t i = 0; i < u.devices.size(); ++i) {
            if (i) out += ',';
            out += '"' + u.devices[i].device_id + "\":" + u.devices[i].json;
        }
        out += '}';
    }
    out += "},\"master_keys\":{";
    first = true;
    for (const auto& u : users) {
        if (!first) out += ',';
        first = false;
        append_string(out, u.user_id);
        out += ':' + u.master_json;
    }
    out += "},\"self_signing_keys\":{";
    first = true;
    for (const auto& u : users) {
        if (!first) out += ',';
        first = false;
        append_string(out, u.user_id);
        out += ':' + u.self_signing_json;
    }
    out += "}}";
    return out;
}

std::string sync_body(const std::vector<std::string>& changed, std::size_t target_bytes,
                      std::size_t rooms, const std::string& next_batch, key_factory& keys) {
    std::string out;
    out.reserve(target_bytes + 4096);
    out += "{\"next_batch\":";
    append_string(out, next_batch);
    out += ",\"account_data\":{\"events\":[]},\"presence\":{\"events\":[]},";
    out += "\"device_lists\":{\"changed\":[";
    for (std::size_t i = 0; i < changed.size(); ++i) {
        if (i) out += ',';
        append_string(out, changed[i]);
    }
    out += "],\"left\":[]},\"device_one_time_keys_count\":{\"signed_curve25519\":50},";
    out += "\"device_unused_fallback_key_types\":[\"signed_curve25519\"],";
    out += "\"org.matrix.msc2732.device_unused_fallback_key_types\":[\"signed_curve25519\"],";
    out += "\"to_device\":{\"events\":[]},\"rooms\":{\"join\":{";
    // Encrypted timeline events (m.room.encrypted, megolm) fill the rest, spread over the rooms.
    const std::size_t closing = 64 * rooms + 64;
    const std::size_t budget =
        target_bytes > out.size() + closing ? (target_bytes - out.size() - closing) / rooms : 0;
    std::size_t event_number = 0;
    for (std::size_t r = 0; r < rooms; ++r) {
        if (r) out += ',';
        out += "\"!room" + std::to_string(r) + ":hs0.example.org\":{\"timeline\":{\"events\":[";
        const std::size_t room_end = out.size() + budget;
        bool first = true;
        while (out.size() + 900 < room_end) {
            if (!first) out += ',';
            first = false;
            const std::string sender = changed.empty() ? bench_user_id(event_number)
                                                       : changed[event_number % changed.size()];
            out += "{\"type\":\"m.room.encrypted\",\"sender\":";
            append_string(out, sender);
            out += ",\"content\":{\"algorithm\":\"m.megolm.v1.aes-sha2\",\"ciphertext\":\"" +
                   keys.random_base64(420) + "\",\"device_id\":\"" + keys.device_id() +
                   "\",\"sender_key\":\"" + keys.random_base64(32) + "\",\"session_id\":\"" +
                   keys.random_base64(32) + "\"},\"event_id\":\"$" + keys.random_base64(32) +
                   "\",\"origin_server_ts\":" + std::to_string(1700000000000 + event_number) +
                   ",\"unsigned\":{\"age\":" + std::to_string(1000 + event_number % 5000) + "}}";
            ++event_number;
        }
        out += "],\"limited\":false,\"prev_batch\":\"t" + std::to_string(r) +
               "-1\"},\"state\":{\"events\":[]},\"ephemeral\":{\"events\":[]},"
               "\"account_data\":{\"events\":[]},\"unread_notifications\":{\"highlight_count\":0,"
               "\"notification_count\":" +
               std::to_string(r) + "}}";
    }
    out += "},\"invite\":{},\"leave\":{}}}";
    return out;
}

std::string synthetic_device_json(const std::string& user_id, const std::string& device_id,
                                  const std::string& ed25519, const std::string& curve25519,
                                  key_factory& keys) {
    std::string out = "{\"user_id\":";
    append_string(out, user_id);
    out += ",\"device_id\":\"" + device_id +
           "\",\"algorithms\":[\"m.olm.v1.curve25519-aes-sha2\",\"m.megolm.v1.aes-sha2\"]," +
           "\"keys\":{\"curve25519:" + device_id + "\":\"" + curve25519 +
           "\",\"ed25519:" + device_id + "\":\"" + ed25519 + "\"},\"signatures\":{";
    append_string(out, user_id);
    out += ":{\"ed25519:" + device_id + "\":\"" + keys.random_base64(64) +
           "\",\"ed25519:" + keys.random_base64(32) + "\":\"" + keys.random_base64(64) + "\"}}}";
    return out;
}

}  // namespace devlist::bench
