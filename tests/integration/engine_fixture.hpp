// Runs a sync_engine against the in-process test homeserver. The engine runs on this thread's
// io_context; tests drive it with run_until(condition), which processes events until the
// condition holds or a deadline passes — no sleeping, no polling of wall-clock time.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace devlist::test {

class engine_fixture : public ::testing::Test {
  protected:
    static constexpr const char* bot = "@bot:localhost";
    static constexpr const char* password = "bot-password";

    testing::test_homeserver hs;
    std::filesystem::path dir;
    std::optional<storage::store> store;
    boost::asio::io_context io{1};
    std::optional<sync::http_client> http;
    std::optional<sync::sync_engine> engine;
    boost::asio::cancellation_signal stop_signal;
    std::optional<result<void>> ended;
    std::vector<std::string> log_lines;
    sync::engine_options options;
    sync::http_client_options http_options;  // e.g. a small max_response_bytes

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, password);
        dir = std::filesystem::temp_directory_path() /
              ("devlist-engine-" + std::to_string(std::random_device{}()));
        std::filesystem::create_directories(dir);
        options.user_id = bot;
        options.password = password;
        options.device_id = "BOTDEVICE";
        options.sync_timeout = std::chrono::milliseconds(2000);
        // Short backoffs: the behaviour is the same, the test is fast.
        options.sync_backoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(200)};
        options.query_backoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(200)};
        options.server_backoff = {std::chrono::milliseconds(100), std::chrono::milliseconds(400)};
        options.upload_backoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(200)};
        options.sealing_key =
            std::make_shared<const crypto::sealing_key>(crypto::sealing_key::generate());
    }

    void TearDown() override {
        if (HasFailure()) {
            for (const auto& l : log_lines)
                std::fprintf(stderr, "engine log: %s\n", l.c_str());
        }
        stop();
        engine.reset();
        http.reset();
        store.reset();
        hs.stop();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    void start() {
        auto s = storage::store::open(dir / "devlistd.db");
        ASSERT_TRUE(s) << s.error().message();
        store.emplace(std::move(*s));
        auto base = sync::parse_url(hs.base_url());
        ASSERT_TRUE(base);
        http.emplace(io.get_executor(), *base, http_options);
        engine.emplace(
            io.get_executor(), *store, *http, options,
            [this](sync::log_level, std::string_view line) { log_lines.emplace_back(line); });
        ended.reset();
        boost::asio::co_spawn(io, engine->run(),
                              boost::asio::bind_cancellation_slot(
                                  stop_signal.slot(), [this](std::exception_ptr e, result<void> r) {
                                      if (e) {
                                          try {
                                              std::rethrow_exception(e);
                                          } catch (const boost::asio::multiple_exceptions& many) {
                                              try {
                                                  std::rethrow_exception(many.first_exception());
                                              } catch (const std::exception& ex) {
                                                  ADD_FAILURE()
                                                      << "the engine threw: " << ex.what();
                                              }
                                          } catch (const std::exception& ex) {
                                              ADD_FAILURE() << "the engine threw: " << ex.what()
                                                            << " (" << typeid(ex).name() << ")";
                                          }
                                          for (const auto& l : log_lines)
                                              std::fprintf(stderr, "engine log: %s\n", l.c_str());
                                          r = error{errc::invalid_argument, "threw"};
                                      }
                                      ended = std::move(r);
                                  }));
    }

    // Stops the engine (cancellation) and waits until it has returned.
    void stop() {
        if (!engine || ended) return;
        stop_signal.emit(boost::asio::cancellation_type::terminal);
        run_until([&] { return ended.has_value(); });
        http->close();
        io.run_for(std::chrono::milliseconds(50));  // let closed connections finish
    }

    // Restarts the engine on the same database, as a restarted devlistd would.
    void restart() {
        stop();
        engine.reset();
        http.reset();
        store.reset();
        io.restart();
        start();
    }

    bool run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(15000)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        if (io.stopped()) io.restart();
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            io.run_one_for(std::chrono::milliseconds(20));
            if (io.stopped()) io.restart();
        }
        return true;
    }

    std::vector<storage::device_record> devices_of(const std::string& user) {
        auto d = store->devices().devices_of(user);
        EXPECT_TRUE(d) << d.error().message();
        return d ? *d : std::vector<storage::device_record>{};
    }
    bool has_device(const std::string& user, const std::string& device) {
        for (const auto& d : devices_of(user)) {
            if (d.device_id == device) return true;
        }
        return false;
    }
    std::optional<storage::tracked_user> tracked(const std::string& user) {
        auto t = store->tracking().find(user);
        EXPECT_TRUE(t);
        return t ? *t : std::nullopt;
    }
    bool is_fresh(const std::string& user) {
        auto t = tracked(user);
        return t && !t->outdated;
    }
    std::vector<storage::security_event> security_events() {
        auto e = store->security().recent(100);
        EXPECT_TRUE(e);
        return e ? *e : std::vector<storage::security_event>{};
    }
    bool logged(std::string_view needle) const {
        for (const auto& l : log_lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }
};

}  // namespace devlist::test
