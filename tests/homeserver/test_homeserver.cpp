#include "tests/homeserver/test_homeserver.hpp"

#include "tests/homeserver/client_api.hpp"
#include "tests/homeserver/server_model.hpp"
#include "tests/homeserver/simulated_keys.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>

namespace devlist::testing {

namespace asio = boost::asio;

struct test_homeserver::impl final : http_handler {
    explicit impl(homeserver_options o)
        : options(std::move(o)),
          model(options.server_name),
          api(model, faults, options.behaviour),
          server(std::make_unique<http_server>(io, *this, options.limits)) {}

    // ---- http_handler, on the server's thread ----

    http_reply handle(const http_request& request, bool first_attempt) override {
        http_reply outcome;
        bool changed = false;
        bool parked = false;
        {
            std::lock_guard lock(mutex);
            const auto before = model.position();
            outcome = api.handle(request, first_attempt);
            changed = model.position() != before;
            // The request object lives in its connection's coroutine until it is recorded.
            if (std::holds_alternative<reply::wait_for_change>(outcome)) {
                parked = polling.emplace(&request, api.user_of(request)).second;
            }
        }
        if (parked) activity.notify_all();
        if (changed) server->wake_long_polls();
        return outcome;
    }

    void record(const http_request& request, unsigned status, std::string_view body) override {
        request_record entry{.method = request.method,
                             .target = request.target,
                             .path = client_api::decoded_path(request.target),
                             .request_body = request.body,
                             .status = status,
                             .response_body = std::string(body),
                             .received = request.received,
                             .answered = std::chrono::steady_clock::now()};
        {
            std::lock_guard lock(mutex);
            entry.user_id = api.user_of(request);
            log.push_back(entry);
            polling.erase(&request);
        }
        activity.notify_all();
        if (options.on_request) options.on_request(entry);
    }

    // ---- for the scripting API, on the test's threads ----

    // Holds the model's mutex for one change; when released, wakes the long-polls (on the
    // server's thread) so that they look at what changed.
    class change {
      public:
        explicit change(impl& owner) : owner_(owner), lock_(owner.mutex) {}
        ~change() {
            lock_.unlock();
            try {
                // Through the owner: resume() replaces the server while this may be queued.
                asio::post(owner_.io, [&owner = owner_] { owner.server->wake_long_polls(); });
            } catch (const std::bad_alloc&) {
                // Only a wake-up is lost: every long-poll still ends at its timeout.
            }
        }
        change(const change&) = delete;
        change& operator=(const change&) = delete;

      private:
        impl& owner_;
        std::unique_lock<std::mutex> lock_;
    };

    user_record& user(const std::string& user_id) {
        user_record* found = model.find_user(user_id);
        if (!found) throw std::invalid_argument("test homeserver: unknown user " + user_id);
        return *found;
    }

    simulated_device& simulated(const std::string& user_id, const std::string& device_id) {
        auto it = devices.find({user_id, device_id});
        if (it == devices.end()) {
            throw std::invalid_argument("test homeserver: " + user_id +
                                        " has no simulated device " + device_id);
        }
        return it->second;
    }

    const std::string& room_creator(const std::string& room_id) {
        room_record* room = model.find_room(room_id);
        if (!room) throw std::invalid_argument("test homeserver: unknown room " + room_id);
        return room->creator;
    }

    void ensure_new_device(const std::string& user_id, const std::string& device_id) {
        if (user(user_id).devices.contains(device_id)) {
            throw std::invalid_argument("test homeserver: " + user_id + " already has device " +
                                        device_id);
        }
    }

    // Signs a simulated device with the user's self-signing key, if the user has one.
    void cross_sign(const std::string& user_id, const std::string& device_id) {
        const auto secrets = cross_signing.find(user_id);
        const device_record* device = model.find_device(user_id, device_id);
        if (secrets == cross_signing.end() || !device || !device->keys) return;
        const auto& key = secrets->second.self_signing;
        model.add_device_signature(user_id, device_id, user_id, key_id_of(key),
                                   cross_signature(*device->keys, user_id, key), {});
    }

    void publish_cross_signing(const std::string& user_id, simulated_cross_signing secrets) {
        model.set_cross_signing_keys(
            user_id, make_cross_signing_key(user_id, "master", secrets.master, secrets.master),
            make_cross_signing_key(user_id, "self_signing", secrets.self_signing, secrets.master),
            make_cross_signing_key(user_id, "user_signing", secrets.user_signing, secrets.master),
            {});
        cross_signing.insert_or_assign(user_id, std::move(secrets));
        for (const auto& [id, device] : devices) {
            if (id.first == user_id && !device.forged) cross_sign(user_id, id.second);
        }
    }

    device_identity identity_of(const std::string& device_id, const simulated_device& device) {
        return {.device_id = device_id,
                .ed25519 = device.signing_key.public_key().to_base64(),
                .curve25519 = device.identity_key.public_key().to_base64()};
    }

    homeserver_options options;
    mutable std::mutex mutex;                  // guards everything below but io, server and thread
    mutable std::condition_variable activity;  // the log grew, or a long-poll parked
    server_model model;
    fault_queue faults;
    client_api api;
    std::vector<request_record> log;
    std::map<const http_request*, std::string> polling;  // parked long-polls → their user
    std::map<std::pair<std::string, std::string>, simulated_device> devices;  // (user, device)
    std::map<std::string, simulated_cross_signing> cross_signing;

    asio::io_context io;
    std::unique_ptr<http_server> server;
    std::thread thread;
    std::uint16_t port = 0;
    bool started = false;
};

test_homeserver::test_homeserver(homeserver_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

test_homeserver::~test_homeserver() {
    stop();
}

result<void> test_homeserver::start() {
    if (impl_->started) return error(errc::invalid_argument, "a test homeserver starts once");
    impl_->started = true;
    const auto& o = impl_->options;
    auto bound = impl_->server->listen(o.bind_address, o.port, o.tls);
    if (!bound) return bound.error();
    impl_->port = *bound;
    impl_->server->start();
    impl_->thread = std::thread([&io = impl_->io] { io.run(); });
    return {};
}

void test_homeserver::stop() {
    if (!impl_->thread.joinable()) return;
    asio::post(impl_->io, [&server = *impl_->server] { server.stop(); });
    impl_->thread.join();
}

result<void> test_homeserver::resume() {
    if (!impl_->started || impl_->thread.joinable()) {
        return error(errc::invalid_argument, "only a stopped test homeserver resumes");
    }
    // A fresh listener and connection table; the model (the server's database) stays.
    impl_->server = std::make_unique<http_server>(impl_->io, *impl_, impl_->options.limits);
    impl_->io.restart();
    const auto& o = impl_->options;
    auto bound = impl_->server->listen(o.bind_address, impl_->port, o.tls);
    if (!bound) return bound.error();
    impl_->server->start();
    impl_->thread = std::thread([&io = impl_->io] { io.run(); });
    return {};
}

std::uint16_t test_homeserver::port() const {
    return impl_->port;
}

std::string test_homeserver::base_url() const {
    return (impl_->options.tls ? "https://" : "http://") + impl_->options.bind_address + ":" +
           std::to_string(impl_->port);
}

const std::string& test_homeserver::server_name() const {
    return impl_->options.server_name;
}

// ---- accounts ----

void test_homeserver::add_user(const std::string& user_id, const std::string& password) {
    std::lock_guard lock(impl_->mutex);
    impl_->model.add_user(user_id, password);
}

session test_homeserver::login(const std::string& user_id, const std::string& device_id,
                               const std::string& display_name) {
    impl::change change(*impl_);
    impl_->user(user_id);
    const std::string id = device_id.empty() ? impl_->model.random_device_id() : device_id;
    impl_->model.ensure_device(user_id, id, display_name);
    return {.user_id = user_id,
            .device_id = id,
            .access_token = impl_->model.issue_access_token(user_id, id)};
}

void test_homeserver::revoke_access_token(const std::string& access_token) {
    std::lock_guard lock(impl_->mutex);
    impl_->model.revoke_access_token(access_token);
}

// ---- simulated devices ----

device_identity test_homeserver::add_device(const std::string& user_id,
                                            const std::string& device_id,
                                            const std::string& display_name, int one_time_keys) {
    impl::change change(*impl_);
    impl_->ensure_new_device(user_id, device_id);
    simulated_device device;
    auto& model = impl_->model;
    model.ensure_device(user_id, device_id, display_name);
    model.set_device_keys(user_id, device_id,
                          make_device_keys(user_id, device_id, device, device.signing_key),
                          device_id);
    [[maybe_unused]] const auto added = model.add_one_time_keys(
        user_id, device_id, make_one_time_keys(user_id, device_id, device, one_time_keys));
    assert(added && "fresh key IDs cannot conflict");
    model.set_fallback_keys(user_id, device_id, make_fallback_key(user_id, device_id, device));
    auto identity = impl_->identity_of(device_id, device);
    impl_->devices.emplace(std::pair{user_id, device_id}, std::move(device));
    impl_->cross_sign(user_id, device_id);
    return identity;
}

void test_homeserver::remove_device(const std::string& user_id, const std::string& device_id) {
    impl::change change(*impl_);
    impl_->model.remove_device(user_id, device_id);
    impl_->devices.erase({user_id, device_id});
}

device_identity test_homeserver::change_device_keys(const std::string& user_id,
                                                    const std::string& device_id) {
    impl::change change(*impl_);
    simulated_device& device = impl_->simulated(user_id, device_id);
    device.signing_key = crypto::ed25519_key_pair::generate();
    impl_->model.set_device_keys(user_id, device_id,
                                 make_device_keys(user_id, device_id, device, device.signing_key),
                                 device_id);
    return impl_->identity_of(device_id, device);
}

device_identity test_homeserver::forge_device(const std::string& user_id,
                                              const std::string& device_id,
                                              const std::string& display_name) {
    impl::change change(*impl_);
    impl_->ensure_new_device(user_id, device_id);
    simulated_device device;
    device.forged = true;
    const auto forger = crypto::ed25519_key_pair::generate();
    impl_->model.ensure_device(user_id, device_id, display_name);
    impl_->model.set_device_keys(user_id, device_id,
                                 make_device_keys(user_id, device_id, device, forger), device_id);
    auto identity = impl_->identity_of(device_id, device);
    impl_->devices.emplace(std::pair{user_id, device_id}, std::move(device));
    return identity;
}

void test_homeserver::set_device_keys_json(const std::string& user_id, const std::string& device_id,
                                           json::value keys) {
    impl::change change(*impl_);
    impl_->user(user_id);
    impl_->model.set_device_keys(user_id, device_id, std::move(keys), device_id);
}

void test_homeserver::bootstrap_cross_signing(const std::string& user_id) {
    impl::change change(*impl_);
    impl_->user(user_id);
    impl_->publish_cross_signing(user_id, simulated_cross_signing{});
}

void test_homeserver::change_master_key(const std::string& user_id) {
    impl::change change(*impl_);
    if (!impl_->cross_signing.contains(user_id)) {
        throw std::invalid_argument("test homeserver: " + user_id + " has no cross-signing keys");
    }
    impl_->publish_cross_signing(user_id, simulated_cross_signing{});
}

// ---- bulk scripting ----

std::vector<device_identity> test_homeserver::add_devices(
    const std::vector<std::pair<std::string, std::string>>& user_and_device_ids) {
    // Key generation and signing dominate: made here, on every core, they do not hold up the
    // server.
    const std::size_t count = user_and_device_ids.size();
    std::vector<std::optional<simulated_device>> made(count);
    std::vector<json::value> keys(count);
    auto make = [&](std::size_t first, std::size_t step) {
        for (std::size_t i = first; i < count; i += step) {
            const auto& [user_id, device_id] = user_and_device_ids[i];
            made[i].emplace();
            keys[i] = make_device_keys(user_id, device_id, *made[i], made[i]->signing_key);
        }
    };
    const std::size_t threads =
        count < 1000 ? 1 : std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 8);
    std::vector<std::thread> helpers;
    for (std::size_t t = 1; t < threads; ++t)
        helpers.emplace_back(make, t, threads);
    make(0, threads);
    for (auto& h : helpers)
        h.join();

    impl::change change(*impl_);
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& id : user_and_device_ids) {
        impl_->ensure_new_device(id.first, id.second);
        if (!seen.insert(id).second) {
            throw std::invalid_argument("test homeserver: " + id.first + " device " + id.second +
                                        " is listed twice");
        }
    }
    std::vector<device_identity> identities;
    identities.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const auto& [user_id, device_id] = user_and_device_ids[i];
        impl_->model.ensure_device(user_id, device_id, {});
        impl_->model.set_device_keys(user_id, device_id, std::move(keys[i]), device_id);
        identities.push_back(impl_->identity_of(device_id, *made[i]));
        impl_->devices.emplace(std::pair{user_id, device_id}, std::move(*made[i]));
        impl_->cross_sign(user_id, device_id);
    }
    return identities;
}

// ---- rooms ----

std::string test_homeserver::create_room(const std::string& creator, bool encrypted) {
    impl::change change(*impl_);
    impl_->user(creator);
    return impl_->model.create_room(creator, encrypted);
}

void test_homeserver::invite(const std::string& room_id, const std::string& user_id) {
    impl::change change(*impl_);
    impl_->user(user_id);
    impl_->model.set_membership(room_id, user_id, membership::invite, impl_->room_creator(room_id));
}

void test_homeserver::join(const std::string& room_id, const std::string& user_id) {
    impl::change change(*impl_);
    impl_->user(user_id);
    impl_->model.set_membership(room_id, user_id, membership::join, user_id);
}

void test_homeserver::leave(const std::string& room_id, const std::string& user_id) {
    impl::change change(*impl_);
    impl_->model.set_membership(room_id, user_id, membership::leave, user_id);
}

void test_homeserver::enable_encryption(const std::string& room_id) {
    impl::change change(*impl_);
    impl_->model.enable_encryption(room_id, impl_->room_creator(room_id));
}

// ---- federation and to-device ----

void test_homeserver::set_server_reachable(const std::string& server_name, bool reachable) {
    std::lock_guard lock(impl_->mutex);
    impl_->model.set_server_reachable(server_name, reachable);
}

void test_homeserver::send_to_device(const std::string& sender, const std::string& user_id,
                                     const std::string& device_id, const std::string& type,
                                     const json::value& content) {
    impl::change change(*impl_);
    impl_->model.send_to_device(sender, user_id, device_id, type, content);
}

// ---- what clients did ----

std::size_t test_homeserver::one_time_key_count(const std::string& user_id,
                                                const std::string& device_id,
                                                const std::string& algorithm) const {
    std::lock_guard lock(impl_->mutex);
    const auto counts = impl_->model.one_time_key_counts(user_id, device_id);
    const auto it = counts.find(algorithm);
    return it == counts.end() ? 0 : static_cast<std::size_t>(it->second);
}

std::vector<std::string> test_homeserver::unused_fallback_key_types(
    const std::string& user_id, const std::string& device_id) const {
    std::lock_guard lock(impl_->mutex);
    return impl_->model.unused_fallback_key_types(user_id, device_id);
}

std::optional<json::value> test_homeserver::claim_one_time_key(const std::string& user_id,
                                                               const std::string& device_id,
                                                               const std::string& algorithm) {
    impl::change change(*impl_);
    auto claimed = impl_->model.claim_key(user_id, device_id, algorithm);
    if (!claimed) return std::nullopt;
    return json::object{{std::move(claimed->first), std::move(claimed->second)}};
}

std::optional<json::value> test_homeserver::uploaded_device_keys(
    const std::string& user_id, const std::string& device_id) const {
    std::lock_guard lock(impl_->mutex);
    const device_record* device = impl_->model.find_device(user_id, device_id);
    return device ? device->keys : std::nullopt;
}

std::optional<json::value> test_homeserver::served_device_keys(const std::string& user_id,
                                                               const std::string& device_id) const {
    std::lock_guard lock(impl_->mutex);
    json::value served = impl_->model.served_device_keys(user_id, device_id);
    if (served.is_null()) return std::nullopt;
    return served;
}

std::optional<json::value> test_homeserver::cross_signing_key(const std::string& user_id,
                                                              cross_signing_key_kind kind) const {
    std::lock_guard lock(impl_->mutex);
    const user_record* user = impl_->model.find_user(user_id);
    if (!user) return std::nullopt;
    const auto& record = kind == cross_signing_key_kind::master         ? user->master_key
                         : kind == cross_signing_key_kind::self_signing ? user->self_signing_key
                                                                        : user->user_signing_key;
    if (!record) return std::nullopt;
    return server_model::served_cross_signing_key(*record, user_id, std::nullopt);
}

// ---- the request log ----

std::vector<request_record> test_homeserver::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->log;
}

std::size_t test_homeserver::request_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->log.size();
}

std::optional<request_record> test_homeserver::wait_for_request(
    const std::function<bool(const request_record&)>& match,
    std::chrono::steady_clock::time_point deadline, std::size_t from_index) const {
    std::unique_lock lock(impl_->mutex);
    std::size_t next = from_index;
    for (;;) {
        for (; next < impl_->log.size(); ++next) {
            if (match(impl_->log[next])) return impl_->log[next];
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        impl_->activity.wait_until(lock, deadline);
    }
}

bool test_homeserver::wait_for_long_poll(const std::string& user_id,
                                         std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->activity.wait_until(lock, deadline, [&] {
        return std::any_of(impl_->polling.begin(), impl_->polling.end(),
                           [&](const auto& entry) { return entry.second == user_id; });
    });
}

// ---- the stream and faults ----

std::int64_t test_homeserver::stream_position() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->model.position();
}

std::string test_homeserver::sync_token() const {
    return make_sync_token(stream_position());
}

void test_homeserver::inject(fault f) {
    std::lock_guard lock(impl_->mutex);
    impl_->faults.add(std::move(f));
}

void test_homeserver::clear_faults() {
    std::lock_guard lock(impl_->mutex);
    impl_->faults.clear();
}

std::size_t test_homeserver::pending_faults() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->faults.pending();
}

void test_homeserver::set_behaviour(const server_behaviour& behaviour) {
    std::lock_guard lock(impl_->mutex);
    impl_->api.set_behaviour(behaviour);
}

// ---- the truth, for checkers ----

std::set<std::string> test_homeserver::encrypted_room_peers(const std::string& user_id,
                                                            std::int64_t at) const {
    std::lock_guard lock(impl_->mutex);
    return impl_->model.encrypted_room_peers(user_id, at);
}

std::set<std::string> test_homeserver::device_lists_changed_since(const std::string& user_id,
                                                                  const std::string& device_id,
                                                                  std::int64_t since) const {
    std::lock_guard lock(impl_->mutex);
    return impl_->model.device_lists(user_id, device_id, since, impl_->model.position()).changed;
}

std::optional<std::map<std::string, json::value>> test_homeserver::served_devices(
    const std::string& user_id) const {
    std::lock_guard lock(impl_->mutex);
    const user_record* user = impl_->model.find_user(user_id);
    if (!user) return std::nullopt;
    std::map<std::string, json::value> served;
    for (const auto& [device_id, device] : user->devices) {
        if (device.keys)
            served.emplace(device_id, impl_->model.served_device_keys(user_id, device_id));
    }
    return served;
}

key_history test_homeserver::keys_published_by(const std::string& user_id,
                                               const std::string& device_id) const {
    std::lock_guard lock(impl_->mutex);
    key_history history;
    const device_record* device = impl_->model.find_device(user_id, device_id);
    if (!device) return history;
    for (const auto& k : device->one_time_keys_ever) {
        history.one_time_keys.push_back({.key_id = k.key_id, .key = k.key});
    }
    for (const auto& k : device->claimed_one_time_keys) {
        history.claimed.push_back(k.key_id);
    }
    for (const auto& k : device->fallback_keys_ever) {
        history.fallback_keys.push_back({.key_id = k.key_id, .key = k.key, .used = k.used});
    }
    for (const auto& [algorithm, k] : device->fallback_keys) {
        history.current_fallback_keys.push_back({.key_id = k.key_id, .key = k.key, .used = k.used});
    }
    history.refused_conflicts = device->refused_one_time_key_conflicts;
    return history;
}

}  // namespace devlist::testing
