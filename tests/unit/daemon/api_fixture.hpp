// A socket_api over a real in-memory store and a sync engine that is never run (its local
// requests commit to the store and wake waiters all the same), driven on this thread's
// io_context. Requests are plain objects; no socket is involved.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"
#include "crypto/seal.hpp"
#include "daemon/socket_api.hpp"
#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/own_keys.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"

namespace devlist::daemon::test {

class api_fixture : public ::testing::Test {
  protected:
    static constexpr const char* bot = "@bot:example.org";

    boost::asio::io_context io{1};
    std::optional<storage::store> store;
    std::optional<sync::http_client> http;
    std::shared_ptr<const crypto::sealing_key> sealing_key =
        std::make_shared<const crypto::sealing_key>(crypto::sealing_key::generate());
    std::optional<sync::sync_engine> engine;
    std::optional<socket_api> api;
    socket_api_options api_options;
    std::vector<std::string> log_lines;
    peer_credentials me;

    void SetUp() override {
        auto s = storage::store::open(":memory:");
        ASSERT_TRUE(s) << s.error().message();
        store.emplace(std::move(*s));
        // Never contacted: the engine does not run.
        auto base = sync::parse_url("http://127.0.0.1:9");
        ASSERT_TRUE(base);
        http.emplace(io.get_executor(), *base, sync::http_client_options{});
        sync::engine_options options;
        options.user_id = bot;
        options.device_id = "BOTDEVICE";
        options.sealing_key = sealing_key;
        options.clock = [] { return std::int64_t{1700000000000}; };
        engine.emplace(io.get_executor(), *store, *http, options, sync::log_function{});
        me.uid = ::geteuid();
        me.gid = ::getegid();
        me.pid = ::getpid();
        api_options.access = make_access_policy(::geteuid(), {}, {}, std::nullopt, std::nullopt);
        api_options.version = "test";
        make_api();
    }

    void TearDown() override {
        if (HasFailure()) {
            for (const auto& l : log_lines)
                std::fprintf(stderr, "log: %s\n", l.c_str());
        }
    }

    void make_api() {
        api.emplace(*engine, *store, api_options, [this](sync::log_level, std::string_view line) {
            log_lines.emplace_back(line);
        });
    }

    bool logged(std::string_view needle) const {
        for (const auto& l : log_lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }

    // Processes events until done() or the limit; false at the limit. Never sleeps: the
    // io_context wakes for timers and completions.
    bool run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (io.stopped()) io.restart();
            io.run_one_until(deadline);
        }
        return true;
    }

    struct reply {
        unsigned status = 0;
        std::string content_type;
        std::string allow;
        std::string body;
        json::value json;  // null unless the body parses
    };

    static reply to_reply(const api_response& r) {
        reply out{r.status, r.content_type, r.allow, r.body, {}};
        if (auto v = json::parse(r.body)) out.json = std::move(*v);
        return out;
    }

    // A request whose answer is awaited in the background (for waits and cancellation).
    struct pending {
        std::optional<api_response> response;
        std::exception_ptr error;
        bool done = false;
        boost::asio::cancellation_signal cancel;
    };

    std::unique_ptr<pending> start(std::string method, std::string target, std::string body = {},
                                   std::optional<peer_credentials> peer = std::nullopt) {
        auto p = std::make_unique<pending>();
        api_request request{std::move(method), std::move(target), std::move(body),
                            peer.value_or(me)};
        auto* raw = p.get();
        boost::asio::co_spawn(io, api->handle(std::move(request)),
                              boost::asio::bind_cancellation_slot(
                                  raw->cancel.slot(), [raw](std::exception_ptr e, api_response r) {
                                      raw->done = true;
                                      if (e) {
                                          raw->error = e;
                                      } else {
                                          raw->response = std::move(r);
                                      }
                                  }));
        return p;
    }

    reply call(std::string method, std::string target, std::string body = {},
               std::optional<peer_credentials> peer = std::nullopt) {
        auto p = start(std::move(method), std::move(target), std::move(body), peer);
        EXPECT_TRUE(run_until([&] { return p->done; })) << "no answer";
        if (!p->response) {
            ADD_FAILURE() << "the request threw";
            return {};
        }
        return to_reply(*p->response);
    }

    // ---- test data ----

    static std::string new_curve_key() {
        return crypto::curve25519_key_pair::generate().public_key().to_base64();
    }
    static std::string new_ed_key() {
        return crypto::ed25519_key_pair::generate().public_key().to_base64();
    }

    static storage::device_record device(std::string user, std::string id,
                                         std::optional<std::string> name = std::nullopt,
                                         bool cross_signed = false) {
        storage::device_record d;
        d.user_id = std::move(user);
        d.device_id = std::move(id);
        d.ed25519 = new_ed_key();
        d.curve25519 = new_curve_key();
        d.display_name = std::move(name);
        d.signed_json = "{}";
        d.cross_signed = cross_signed;
        return d;
    }

    // Stores devices as a verified /keys/query answer would, for a user already tracked, and
    // clears the outdated flag (the generation is the stored one).
    void store_devices(const std::string& user, std::vector<storage::device_record> devices,
                       std::optional<std::vector<storage::cross_signing_key>> cross = {}) {
        auto t = store->tracking().find(user);
        ASSERT_TRUE(t && *t) << user << " is not tracked";
        storage::query_result answer;
        answer.at = 1700000001000;
        storage::user_query_result u;
        u.user_id = user;
        u.generation_at_send = (*t)->generation;
        u.devices = std::move(devices);
        u.cross_signing_keys = std::move(cross);
        answer.users.push_back(std::move(u));
        auto r = store->devices().apply_query_result(answer);
        ASSERT_TRUE(r) << r.error().message();
    }

    void track(const std::string& user) {
        auto r = engine->track_user(user);
        ASSERT_TRUE(r) << r.error().message();
    }

    // A one-time key stored as key maintenance stores them: the private part sealed with the
    // engine's sealing key. Returns its key ID, public key and secret (base64).
    struct own_key {
        std::string key_id;
        std::string public_key;
        std::string private_key;
    };
    own_key add_one_time_key() {
        auto pair = crypto::curve25519_key_pair::generate();
        storage::new_key k;
        k.public_key = pair.public_key().to_base64();
        k.sealed_private = sealing_key->seal(
            pair.secret().span(), std::string(sync::seal_context::one_time_key) + k.public_key);
        k.signed_json = "{\"key\":\"" + k.public_key + "\"}";
        auto added = store->one_time_keys().add_pending(
            std::span<const storage::new_key>(&k, 1), 1700000000000,
            [](std::int64_t v) { return "AAAA" + std::to_string(v); });
        EXPECT_TRUE(added) << added.error().message();
        if (!added || added->empty()) return {};
        return {added->front().key_id, k.public_key, crypto::base64_encode(pair.secret().span())};
    }
    own_key add_fallback_key() {
        auto pair = crypto::curve25519_key_pair::generate();
        storage::new_key k;
        k.public_key = pair.public_key().to_base64();
        k.sealed_private = sealing_key->seal(
            pair.secret().span(), std::string(sync::seal_context::fallback_key) + k.public_key);
        k.signed_json = "{\"key\":\"" + k.public_key + "\",\"fallback\":true}";
        auto added = store->fallback_keys().add_pending_current(
            k, 1700000000000, [](std::int64_t v) { return "FB" + std::to_string(v); });
        EXPECT_TRUE(added) << added.error().message();
        if (!added) return {};
        return {added->key_id, k.public_key, crypto::base64_encode(pair.secret().span())};
    }
};

}  // namespace devlist::daemon::test
