// An example bot on devlist::engine (libdevlist's C++ API): it watches one user's devices.
//
//   cpp_bot CONFIG USER_ID [--until-new-device]
//
// It tracks USER_ID, waits until the user's device list is fresh and prints it, then prints the
// events that follow, acknowledging them as the consumer "cpp-bot" so that a restarted bot goes
// on where it stopped. With --until-new-device it ends once a device it had not listed appears.
// The engine runs on the bot's own io_context, side by side with the bot's coroutine.
//
// Build it against an installed libdevlist with CMake (find_package(devlist), link
// devlist::devlist) or pkg-config (`c++ -std=c++20 cpp_bot.cpp $(pkg-config --cflags --libs
// devlist)`).
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <devlist/engine.hpp>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

void print_device(const char* prefix, const devlist::device& d) {
    std::printf("%s %s ed25519=%s curve25519=%s name=%s%s\n", prefix, d.device_id.c_str(),
                d.ed25519.c_str(), d.curve25519.c_str(), d.display_name.value_or("-").c_str(),
                d.cross_signed ? " cross-signed" : "");
}

// The value of "key":"..." in an event's data (canonical JSON: no spaces, no escapes in IDs).
std::string field(std::string_view json, std::string_view key) {
    std::string needle = "\"" + std::string(key) + "\":\"";
    auto at = json.find(needle);
    if (at == std::string_view::npos) return {};
    at += needle.size();
    return std::string(json.substr(at, json.find('"', at) - at));
}

asio::awaitable<int> watch(devlist::engine& engine, std::string user, bool until_new_device) {
    if (auto r = engine.track(user); !r) {
        std::fprintf(stderr, "cpp_bot: cannot track %s: %s\n", user.c_str(),
                     r.error().message().c_str());
        co_return 1;
    }
    auto fresh = co_await engine.fresh_devices(user, {30s});
    if (!fresh) {
        std::fprintf(stderr, "cpp_bot: %s\n", fresh.error().message().c_str());
        co_return 1;
    }
    std::printf("%s has %zu device(s)%s\n", user.c_str(), fresh->devices.size(),
                fresh->outdated ? " (the list may be outdated)" : "");
    std::set<std::string> known;
    for (const auto& d : fresh->devices) {
        print_device("device", d);
        known.insert(d.device_id);
    }

    // A new consumer starts after the last event so far; a known one where it acknowledged.
    auto cursor = engine.consumer_cursor("cpp-bot");
    if (!cursor) {
        std::fprintf(stderr, "cpp_bot: %s\n", cursor.error().message().c_str());
        co_return 1;
    }
    std::puts("ready");
    std::fflush(stdout);
    for (;;) {
        auto batch = co_await engine.wait_for_events(*cursor, 30s);
        if (!batch) {
            std::fprintf(stderr, "cpp_bot: %s\n", batch.error().message().c_str());
            co_return 1;
        }
        bool new_device = false;
        for (const auto& e : batch->events) {
            std::printf("event %lld %s %s\n", static_cast<long long>(e.cursor), e.type.c_str(),
                        e.data_json.c_str());
            if (e.type == "device_added" && field(e.data_json, "user_id") == user &&
                !known.contains(field(e.data_json, "device_id"))) {
                std::printf("new device %s ed25519=%s\n", field(e.data_json, "device_id").c_str(),
                            field(e.data_json, "ed25519").c_str());
                new_device = true;
            }
        }
        std::fflush(stdout);
        // Printed, so handled: a restarted bot will not see these again.
        if (auto acked = engine.acknowledge("cpp-bot", batch->next); !acked) {
            std::fprintf(stderr, "cpp_bot: %s\n", acked.error().message().c_str());
            co_return 1;
        }
        *cursor = batch->next;
        if (new_device && until_new_device) co_return 0;
    }
}

// The engine and the bot side by side: whichever ends first ends the other.
asio::awaitable<int> run_bot(devlist::engine& engine, std::string user, bool until_new_device) {
    using namespace asio::experimental::awaitable_operators;
    auto ended = co_await (engine.run() || watch(engine, std::move(user), until_new_device));
    if (auto* run = std::get_if<0>(&ended)) {
        if (!*run) {
            std::fprintf(stderr, "cpp_bot: the engine stopped: %s\n",
                         run->error().message().c_str());
            co_return 1;
        }
        co_return 0;  // cancelled (a signal)
    }
    co_return std::get<1>(ended);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && std::string_view(argv[3]) != "--until-new-device")) {
        std::fprintf(stderr, "usage: cpp_bot CONFIG USER_ID [--until-new-device]\n");
        return 2;
    }
    auto config = devlist::load_engine_config(argv[1]);
    if (!config) {
        std::fprintf(stderr, "cpp_bot: %s\n", config.error().message().c_str());
        return 2;
    }
    asio::io_context io(1);
    devlist::engine_hooks hooks;
    hooks.log = [](devlist::log_level, std::string_view line) {
        std::fprintf(stderr, "cpp_bot: devlist: %.*s\n", static_cast<int>(line.size()),
                     line.data());
    };
    auto engine = devlist::engine::create(io.get_executor(), std::move(*config), std::move(hooks));
    if (!engine) {
        std::fprintf(stderr, "cpp_bot: %s\n", engine.error().message().c_str());
        return 1;
    }

    int exit_code = 0;
    asio::cancellation_signal stop;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) stop.emit(asio::cancellation_type::terminal);
    });
    asio::co_spawn(io, run_bot(*engine, argv[2], argc == 4),
                   asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e, int code) {
                       signals.cancel();
                       exit_code = e ? 70 : code;
                   }));
    io.run();
    return exit_code;
}
