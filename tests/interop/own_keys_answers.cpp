// devlist-interop-own-keys: the keys devlistd publishes, as another client receives them.
//
// Usage: devlist-interop-own-keys OUT_DIR
//
// Runs the sync engine for @bot:localhost (cross-signing bootstrapped through UIA with its
// password) against the in-process test homeserver until its keys are settled, then asks the
// homeserver's HTTP API, logged in as @alice:localhost, what any peer would ask:
//   keys_query.json          POST /keys/query for the bot: device keys, master and self-signing
//                            keys, the device signed by the self-signing key
//   claim_one_time_key.json  POST /keys/claim of one signed_curve25519 key: a one-time key
//   claim_fallback_key.json  the same claim once the one-time keys are exhausted: the fallback
//                            key
// Each answer is written byte for byte as the homeserver sent it. bot.json holds what the bot's
// side knows: its IDs and public keys, the cross-signing public keys it created, and the private
// halves the engine hands out for the two claimed keys (take_one_time_key, fallback_keys), plus
// the device's Curve25519 identity secret from its store, so that a peer's pre-key message can
// be opened with devlistd's keys alone.
//
// Exits 1 with a message naming the step on any failure.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/base64.hpp"
#include "crypto/json_value.hpp"
#include "crypto/seal.hpp"
#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/own_keys.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"
#include "tests/homeserver/http_test_client.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace {

using namespace devlist;
using namespace std::chrono_literals;

constexpr const char* bot = "@bot:localhost";
constexpr const char* bot_password = "bot-password";
constexpr const char* alice = "@alice:localhost";
constexpr const char* alice_password = "alice-password";
constexpr const char* alice_device = "ALICEDEV";
constexpr std::size_t one_time_key_target = 50;

// A failed step: main prints it and exits 1.
struct step_failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& what) {
    throw step_failed(what);
}

void write_file(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) fail("cannot write " + path.string());
}

const json::value& member(const json::value& v, std::string_view key, std::string_view where) {
    const json::value* m = v.find(key);
    if (!m) fail(std::string(where) + " has no '" + std::string(key) + "'");
    return *m;
}

// The one {"signed_curve25519:<id>": {...}} entry a /keys/claim answer holds for the device.
struct claimed_key {
    std::string key_id;  // without the algorithm
    std::string public_key;
    bool fallback = false;
};

claimed_key single_claimed_key(const json::value& answer, const std::string& device) {
    const auto& by_user = member(member(answer, "one_time_keys", "the claim answer"), bot,
                                 "the claim answer's one_time_keys");
    const auto& keys = member(by_user, device, "the claim answer's keys of the bot");
    if (!keys.is_object() || keys.as_object().size() != 1)
        fail("the claim answer holds not exactly one key for the bot's device");
    const auto& [full_id, key] = *keys.as_object().begin();
    const std::string prefix = std::string(sync::signed_curve25519) + ":";
    if (!full_id.starts_with(prefix)) fail("the claimed key is not signed_curve25519: " + full_id);
    const json::value* fallback = key.find("fallback");
    return {full_id.substr(prefix.size()), member(key, "key", "the claimed key").as_string(),
            fallback && fallback->is_bool() && fallback->as_bool()};
}

json::value handout_json(const sync::private_key_handout& h) {
    return json::object{
        {"key_id", h.key_id}, {"public_key", h.public_key}, {"private_key", h.private_key}};
}

class own_keys_run {
  public:
    explicit own_keys_run(std::filesystem::path out_dir) : out_dir_(std::move(out_dir)) {}

    ~own_keys_run() {
        stop_engine();
        engine_.reset();
        http_.reset();
        store_.reset();
        hs_.stop();
    }

    void run() {
        start_homeserver();
        start_engine();
        wait_until_settled();
        answers_and_handouts();
        stop_engine();
    }

    // What the engine logged, for a failure's message.
    const std::vector<std::string>& log_lines() const { return log_lines_; }

  private:
    void start_homeserver() {
        testing::server_behaviour behaviour;
        // Servers before Matrix 1.11 (and many deployed ones) demand UIA for the first upload.
        behaviour.uia_for_first_cross_signing_upload = true;
        hs_.set_behaviour(behaviour);
        if (auto started = hs_.start(); !started)
            fail("the test homeserver did not start: " + started.error().message());
        hs_.add_user(bot, bot_password);
        hs_.add_user(alice, alice_password);
    }

    void start_engine() {
        // The store stays apart from the answers.
        std::error_code ec;
        std::filesystem::create_directories(out_dir_ / "store", ec);
        if (ec) fail("cannot create " + (out_dir_ / "store").string() + ": " + ec.message());
        auto s = storage::store::open(out_dir_ / "store" / "devlistd.db");
        if (!s) fail("cannot open the store: " + s.error().message());
        store_.emplace(std::move(*s));
        auto base = sync::parse_url(hs_.base_url());
        if (!base) fail("bad homeserver URL " + hs_.base_url());
        http_.emplace(io_.get_executor(), *base, sync::http_client_options{});

        sync::engine_options options;
        options.user_id = bot;
        options.password = bot_password;  // login, and UIA for the cross-signing upload
        options.sync_timeout = 2000ms;
        options.sync_backoff = {20ms, 200ms};
        options.query_backoff = {20ms, 200ms};
        options.server_backoff = {100ms, 400ms};
        options.upload_backoff = {20ms, 200ms};
        options.one_time_key_target = one_time_key_target;
        options.bootstrap_cross_signing = true;
        options.sealing_key = sealing_;
        engine_.emplace(
            io_.get_executor(), *store_, *http_, std::move(options),
            [this](sync::log_level, std::string_view line) { log_lines_.emplace_back(line); });
        boost::asio::co_spawn(
            io_, engine_->run(),
            boost::asio::bind_cancellation_slot(
                stop_signal_.slot(), [this](std::exception_ptr e, result<void> r) {
                    if (e) {
                        try {
                            std::rethrow_exception(e);
                        } catch (const std::exception& ex) {
                            log_lines_.emplace_back(std::string("the engine threw: ") + ex.what());
                        } catch (...) {
                            log_lines_.emplace_back("the engine threw");
                        }
                        r = error{errc::invalid_argument, "the engine threw"};
                    }
                    ended_ = std::move(r);
                }));
    }

    // Processes the engine's events until done() or the deadline; never sleeps.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        if (io_.stopped()) io_.restart();
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            io_.run_one_for(20ms);
            if (io_.stopped()) io_.restart();
        }
        return true;
    }

    void wait_until_settled() {
        const auto settled = [this] {
            if (ended_) return true;
            const auto k = engine_->status().keys;
            const auto device = engine_->status().device_id;
            return k.identity_uploaded &&
                   k.one_time_keys_on_server == static_cast<std::int64_t>(one_time_key_target) &&
                   k.one_time_keys_pending == 0 && k.fallback_published &&
                   k.cross_signing == sync::cross_signing_state::uploaded && !device.empty() &&
                   hs_.one_time_key_count(bot, device) == one_time_key_target &&
                   hs_.unused_fallback_key_types(bot, device).size() == 1;
        };
        const bool ok = run_until(settled, 60s);
        if (ended_) {
            fail("the engine stopped before its keys were settled: " +
                 (*ended_ ? std::string("without an error") : ended_->error().message()));
        }
        if (!ok) {
            const auto k = engine_->status().keys;
            fail("the keys were not settled within 60 s: identity_uploaded=" +
                 std::to_string(k.identity_uploaded) +
                 " one_time_keys_on_server=" + std::to_string(k.one_time_keys_on_server) +
                 " pending=" + std::to_string(k.one_time_keys_pending) +
                 " fallback_published=" + std::to_string(k.fallback_published) +
                 " cross_signing=" + std::string(sync::to_string(k.cross_signing)) +
                 " last_key_error='" + k.last_key_error + "'");
        }
        device_ = engine_->status().device_id;
    }

    testing::http_response alice_post(testing::http_test_client& client,
                                      const testing::session& session, const std::string& path,
                                      const json::value& body) {
        auto r = client.post("/_matrix/client/v3/keys/" + path, body, session.access_token);
        if (r.error) fail("POST /keys/" + path + ": " + r.error.message());
        if (r.status != 200)
            fail("POST /keys/" + path + ": HTTP " + std::to_string(r.status) + " " + r.body);
        return r;
    }

    void answers_and_handouts() {
        const auto session = hs_.login(alice, alice_device, "Alice's interop machine");
        testing::http_test_client client(hs_.port());
        const json::value claim_body = json::object{
            {"one_time_keys",
             json::object{{bot, json::object{{device_, std::string(sync::signed_curve25519)}}}}},
            {"timeout", 10000}};

        // The device list exactly as a peer's /keys/query receives it.
        auto query = alice_post(
            client, session, "query",
            json::object{{"device_keys", json::object{{bot, json::array{}}}}, {"timeout", 10000}});
        write_file(out_dir_ / "keys_query.json", query.body);

        const auto status = engine_->status().keys;
        if (!status.fallback_key_id) fail("the engine reports no fallback key");
        const std::string fallback_id = *status.fallback_key_id;

        // A one-time key, then the rest of them, then the fallback key.
        auto first = alice_post(client, session, "claim", claim_body);
        const auto one_time = single_claimed_key(first.json(), device_);
        if (one_time.fallback || one_time.key_id == fallback_id)
            fail("the first claim handed out the fallback key, not a one-time key");
        write_file(out_dir_ / "claim_one_time_key.json", first.body);

        std::size_t exhausted = 0;
        while (hs_.one_time_key_count(bot, device_) > 0) {
            if (++exhausted > one_time_key_target) fail("the one-time keys do not run out");
            auto c = alice_post(client, session, "claim", claim_body);
            if (single_claimed_key(c.json(), device_).fallback)
                fail("a claim handed out the fallback key while one-time keys were left");
        }
        if (exhausted != one_time_key_target - 1) {
            fail("expected " + std::to_string(one_time_key_target - 1) +
                 " one-time keys left after the first claim, claimed " + std::to_string(exhausted));
        }
        auto last = alice_post(client, session, "claim", claim_body);
        const auto fallback = single_claimed_key(last.json(), device_);
        if (!fallback.fallback || fallback.key_id != fallback_id) {
            fail("the claim after the one-time keys ran out did not hand out the fallback key " +
                 fallback_id + " (got " + fallback.key_id + ")");
        }
        write_file(out_dir_ / "claim_fallback_key.json", last.body);

        // The private halves, as the engine hands them to the device's owner.
        auto taken = engine_->take_one_time_key(one_time.key_id);
        if (!taken) fail("take_one_time_key: " + taken.error().message());
        if (!*taken) fail("the engine has no private key for one-time key " + one_time.key_id);
        auto fallbacks = engine_->fallback_keys();
        if (!fallbacks) fail("fallback_keys: " + fallbacks.error().message());
        const sync::fallback_key_handout* fallback_handout = nullptr;
        for (const auto& f : *fallbacks) {
            if (f.key.key_id == fallback.key_id) fallback_handout = &f;
        }
        if (!fallback_handout)
            fail("the engine hands out no private key for fallback key " + fallback.key_id);

        write_file(out_dir_ / "bot.json", json::to_canonical(bot_json(**taken, *fallback_handout)));
    }

    json::value bot_json(const sync::private_key_handout& one_time,
                         const sync::fallback_key_handout& fallback) {
        auto record = store_->account().load();
        if (!record || !*record) fail("the store holds no device identity");
        auto identity = sync::open_identity(**record, *sealing_);
        if (!identity) fail("cannot open the device identity: " + identity.error().message());
        auto own = store_->own_cross_signing().load();
        if (!own) fail("cannot load the cross-signing keys: " + own.error().message());
        json::object cross_signing;
        for (const auto& k : *own)
            cross_signing[std::string(sync::usage_name(k.usage))] = k.public_key;
        const auto status = engine_->status();
        return json::object{
            {"user_id", bot},
            {"device_id", device_},
            {"ed25519", status.keys.ed25519},
            {"curve25519", status.keys.curve25519},
            // Not handed out by the engine: read from the store, so that the test can open a
            // pre-key message the way the device's own Olm implementation would.
            {"curve25519_secret", crypto::base64_encode(identity->exchange.secret().span())},
            {"cross_signing", std::move(cross_signing)},
            {"one_time_key", handout_json(one_time)},
            {"fallback_key", handout_json(fallback.key)},
        };
    }

    void stop_engine() {
        if (!engine_ || ended_) return;
        stop_signal_.emit(boost::asio::cancellation_type::terminal);
        run_until([this] { return ended_.has_value(); }, 10s);
        http_->close();
        io_.run_for(50ms);  // let closed connections finish
    }

    std::filesystem::path out_dir_;
    std::shared_ptr<const crypto::sealing_key> sealing_ =
        std::make_shared<const crypto::sealing_key>(crypto::sealing_key::generate());
    testing::test_homeserver hs_;
    std::optional<storage::store> store_;
    boost::asio::io_context io_{1};
    std::optional<sync::http_client> http_;
    std::optional<sync::sync_engine> engine_;
    boost::asio::cancellation_signal stop_signal_;
    std::optional<result<void>> ended_;
    std::vector<std::string> log_lines_;
    std::string device_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path out_dir = argv[1];
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
        std::fprintf(stderr, "devlist-interop-own-keys: cannot create %s: %s\n", argv[1],
                     ec.message().c_str());
        return 1;
    }
    std::optional<own_keys_run> run;
    try {
        run.emplace(out_dir);
        run->run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "devlist-interop-own-keys: FAILED: %s\n", e.what());
        if (run) {
            for (const auto& line : run->log_lines())
                std::fprintf(stderr, "  engine log: %s\n", line.c_str());
        }
        return 1;
    }
    std::printf("devlist-interop-own-keys: answers written to %s\n", argv[1]);
    return 0;
}
