// devlist-test-homeserver: the test homeserver as a program, for the demo and for trying
// devlistd by hand. Logs every request as one line; `--scenario demo` plays demo_scenario.hpp.
#include "tests/homeserver/demo_scenario.hpp"
#include "tests/homeserver/test_homeserver.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace devlist::testing;

constexpr const char* usage = R"(usage: devlist-test-homeserver [options]
  --listen HOST:PORT         address to serve on (default 127.0.0.1:8008)
  --server-name NAME         the homeserver's server name (default localhost)
  --user USER_ID:PASSWORD    an account that can log in (repeatable; the password is
                             everything after the last ':')
  --scenario none|demo       demo: a lively scenario for the first --user (default none)
  --tls-cert FILE --tls-key FILE
                             serve HTTPS with this PEM certificate chain and key
  --omit-zero-otk-counts     leave zero one-time key counts out of /sync
  --fallback-key-types both|stable|unstable|neither
                             which field names /sync uses (default both)
)";

struct command_line {
    homeserver_options options;
    std::vector<std::pair<std::string, std::string>> users;  // user ID, password
    bool demo = false;
};

// "HOST:PORT" → host, port.
std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::uint16_t port = 0;
    const std::string_view digits = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return std::pair{std::string(text.substr(0, colon)), port};
}

std::optional<fallback_key_types_field> parse_fallback_field(std::string_view text) {
    if (text == "both") return fallback_key_types_field::both;
    if (text == "stable") return fallback_key_types_field::stable;
    if (text == "unstable") return fallback_key_types_field::unstable;
    if (text == "neither") return fallback_key_types_field::neither;
    return std::nullopt;
}

// The parsed command line, or an error message.
std::pair<std::optional<command_line>, std::string> parse(int argc, char** argv) {
    command_line result;
    result.options.port = 8008;
    std::optional<std::string> cert, key;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&]() -> std::optional<std::string_view> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string_view(argv[++i]);
        };
        if (arg == "--help" || arg == "-h") return {std::nullopt, ""};
        if (arg == "--omit-zero-otk-counts") {
            result.options.behaviour.omit_zero_one_time_key_counts = true;
            continue;
        }
        constexpr std::string_view with_value[] = {
            "--listen",  "--server-name",       "--user", "--scenario", "--tls-cert",
            "--tls-key", "--fallback-key-types"};
        if (std::find(std::begin(with_value), std::end(with_value), arg) == std::end(with_value)) {
            return {std::nullopt, "unknown option " + std::string(arg)};
        }
        const auto v = value();
        if (!v) return {std::nullopt, std::string(arg) + " needs a value"};
        if (arg == "--listen") {
            const auto listen = parse_listen(*v);
            if (!listen) return {std::nullopt, "--listen wants HOST:PORT"};
            result.options.bind_address = listen->first;
            result.options.port = listen->second;
        } else if (arg == "--server-name") {
            result.options.server_name = std::string(*v);
        } else if (arg == "--user") {
            const auto colon = v->rfind(':');
            if (!v->starts_with('@') || colon == std::string_view::npos || v->find(':') == colon) {
                return {std::nullopt, "--user wants @name:server:password"};
            }
            result.users.emplace_back(std::string(v->substr(0, colon)),
                                      std::string(v->substr(colon + 1)));
        } else if (arg == "--scenario") {
            if (*v != "none" && *v != "demo") return {std::nullopt, "--scenario is none or demo"};
            result.demo = *v == "demo";
        } else if (arg == "--tls-cert") {
            cert = std::string(*v);
        } else if (arg == "--tls-key") {
            key = std::string(*v);
        } else if (arg == "--fallback-key-types") {
            const auto field = parse_fallback_field(*v);
            if (!field) return {std::nullopt, "--fallback-key-types: both|stable|unstable|neither"};
            result.options.behaviour.fallback_key_types = *field;
        }
    }
    if (cert.has_value() != key.has_value()) {
        return {std::nullopt, "--tls-cert and --tls-key go together"};
    }
    if (cert) result.options.tls = tls_files{*cert, *key};
    return {std::move(result), ""};
}

void print_request(const request_record& r) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.answered - r.received);
    const std::string outcome = r.status == 0 ? "no answer" : std::to_string(r.status);
    const std::string who = r.user_id.empty() ? "" : r.user_id + ", ";
    std::printf("%s %s -> %s (%s%lld ms)\n", r.method.c_str(), r.target.c_str(), outcome.c_str(),
                who.c_str(), static_cast<long long>(ms.count()));
    std::fflush(stdout);
}

void report_demo_end(std::exception_ptr failure) {
    if (!failure) return;
    try {
        std::rethrow_exception(failure);
    } catch (const boost::system::system_error& e) {
        if (e.code() == boost::asio::error::operation_aborted) return;  // stopped by a signal
        std::fprintf(stderr, "demo scenario failed: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo scenario failed: %s\n", e.what());
    }
}

// Starts the demo scenario when the bot first syncs, so that whoever watches sees every step
// reach the client, and stops it on a signal. Lives on the main io_context's thread, except
// notice(), which the homeserver calls on its own thread.
class demo_director {
  public:
    demo_director(boost::asio::io_context& io, std::string bot) : io_(io), bot_(std::move(bot)) {}

    void set_up(test_homeserver& homeserver) {
        homeserver_ = &homeserver;
        cast_ = set_up_demo(homeserver, bot_);
        std::printf("[demo] the scenario starts when %s first syncs\n", bot_.c_str());
        std::fflush(stdout);
    }

    void notice(const request_record& r) {
        if (r.user_id != bot_ || r.status != 200 || !r.path.ends_with("/sync")) return;
        if (bot_synced_.exchange(true)) return;
        boost::asio::post(io_, [this] { start(); });
    }

    void stop() {
        stopped_ = true;
        if (running_) stop_.emit(boost::asio::cancellation_type::terminal);
    }

  private:
    void start() {
        if (stopped_) return;
        running_ = true;
        boost::asio::co_spawn(
            io_, run_demo(*homeserver_, cast_),
            boost::asio::bind_cancellation_slot(stop_.slot(), [this](std::exception_ptr failure) {
                running_ = false;  // no cancellation after the end
                report_demo_end(failure);
            }));
    }

    boost::asio::io_context& io_;
    std::string bot_;
    test_homeserver* homeserver_ = nullptr;
    demo_cast cast_;
    std::atomic<bool> bot_synced_{false};
    boost::asio::cancellation_signal stop_;
    bool running_ = false;
    bool stopped_ = false;
};

}  // namespace

int main(int argc, char** argv) {
    auto [parsed, problem] = parse(argc, argv);
    if (!parsed) {
        if (!problem.empty()) {
            std::fprintf(stderr, "devlist-test-homeserver: %s\n", problem.c_str());
        }
        std::fputs(usage, problem.empty() ? stdout : stderr);
        return problem.empty() ? 0 : 2;
    }
    command_line& cli = *parsed;
    if (cli.demo && cli.users.empty()) {
        cli.users.emplace_back("@bot:" + cli.options.server_name, "bot-password");
        std::printf("no --user given: the demo's account is @bot:%s with password bot-password\n",
                    cli.options.server_name.c_str());
    }

    boost::asio::io_context io;  // signals and the demo; the homeserver has its own thread
    std::optional<demo_director> demo;
    if (cli.demo) demo.emplace(io, cli.users.front().first);
    cli.options.on_request = [&demo](const request_record& r) {
        print_request(r);
        if (demo) demo->notice(r);
    };
    test_homeserver homeserver(cli.options);
    for (const auto& [user_id, password] : cli.users) {
        homeserver.add_user(user_id, password);
    }
    if (demo) demo->set_up(homeserver);  // before serving, so the first sync sees the rooms
    if (auto started = homeserver.start(); !started) {
        std::fprintf(stderr, "devlist-test-homeserver: %s\n", started.error().message().c_str());
        return 1;
    }
    std::printf("devlist-test-homeserver serving %s (server name %s)\n",
                homeserver.base_url().c_str(), homeserver.server_name().c_str());
    std::fflush(stdout);

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&demo](const boost::system::error_code& ec, int signal_number) {
        if (ec) return;
        std::printf("signal %d: stopping\n", signal_number);
        if (demo) demo->stop();
    });
    io.run();  // until a signal has arrived and the demo (if any) has stopped
    homeserver.stop();
    return 0;
}
