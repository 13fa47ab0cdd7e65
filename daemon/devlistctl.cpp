// devlistctl: the command-line client of devlistd's socket API. Readable tables by default,
// the daemon's JSON answer with --json; exit codes that scripts can test (see usage()).
//
// Synchronous Beast over a Unix stream socket: one request at a time is all a CLI needs.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crypto/json_value.hpp"
#include "daemon/default_paths.hpp"
#include "sync/url.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using namespace devlist;

// The exit codes; README.md, "devlistctl", lists them too.
constexpr int exit_ok = 0;
constexpr int exit_daemon_error = 1;  // the daemon answered with an error
constexpr int exit_usage = 2;
constexpr int exit_not_running = 3;  // no socket, or nothing listening on it
constexpr int exit_denied = 4;       // the socket's permissions or the daemon refused us
constexpr int exit_not_found = 5;    // no such device, consumer or tracked user

void usage(std::FILE* to) {
    std::fputs(
        "usage: devlistctl [--socket PATH] [--json] COMMAND [ARGUMENTS]\n"
        "\n"
        "Asks a running devlistd about the device lists it keeps.\n"
        "\n"
        "commands:\n"
        "  status                    the daemon's account, sync and key state\n"
        "  devices USER [--fresh] [--timeout MS]\n"
        "                            USER's devices; --fresh waits (up to MS, default 10000)\n"
        "                            until the list is up to date\n"
        "  whois-key KEY             the device that owns a Curve25519 key\n"
        "  track USER                track USER's device list until untracked\n"
        "  untrack USER              stop tracking USER explicitly\n"
        "  refresh USER              fetch USER's device list again\n"
        "  tracked                   every tracked user and whether their list is up to date\n"
        "  events [--after CURSOR] [--limit N]\n"
        "                            the events still kept (device changes, key conflicts,\n"
        "                            to-device events), without acknowledging them\n"
        "  events --consumer NAME    the events NAME has not acknowledged (registers NAME)\n"
        "  events --follow [--consumer NAME]\n"
        "                            print events as they come and acknowledge each batch\n"
        "                            once printed, as consumer NAME (default: devlistctl);\n"
        "                            a restarted follower goes on where it stopped\n"
        "\n"
        "options:\n"
        "  --socket PATH   devlistd's socket (else $DEVLISTD_SOCKET, else "
        "/run/devlistd/devlistd.sock)\n"
        "  --json          print the daemon's JSON answer instead of a table (with --follow:\n"
        "                  one answer per line)\n"
        "  --help, --version\n"
        "\n"
        "exit status: 0 ok; 1 the daemon answered with an error; 2 usage; 3 devlistd is not\n"
        "running; 4 access denied; 5 not found.\n",
        to);
}

struct failure {
    int code;
    std::string message;
};

// An HTTP answer of the daemon.
struct answer {
    unsigned status = 0;
    std::string body;
};

class client {
  public:
    explicit client(std::string socket_path) : path_(std::move(socket_path)) {}

    // One request on a fresh connection (a CLI makes few; keep-alive would save nothing).
    std::variant<answer, failure> request(http::verb method, const std::string& target,
                                          const std::string& body = {}) {
        asio::io_context io;
        local::socket socket(io);
        boost::system::error_code ec;
        socket.connect(local::endpoint(path_), ec);
        if (ec) return connect_failure(ec);
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, "devlistd");
        req.set(http::field::user_agent, "devlistctl");
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        http::write(socket, req, ec);
        if (ec) return failure{exit_not_running, "devlistd closed the connection: " + ec.message()};
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(1u << 30);  // a tracked list of many users is large, and local
        http::read(socket, buffer, parser, ec);
        if (ec) {
            return failure{exit_not_running,
                           "devlistd did not answer (" + ec.message() + "); is it stopping?"};
        }
        return answer{parser.get().result_int(), std::move(parser.get().body())};
    }

  private:
    failure connect_failure(const boost::system::error_code& ec) const {
        if (ec == boost::system::errc::no_such_file_or_directory) {
            return {exit_not_running,
                    "devlistd is not running: there is no socket " + path_ +
                        " (use --socket PATH or $DEVLISTD_SOCKET for another one)"};
        }
        if (ec == boost::system::errc::connection_refused) {
            return {exit_not_running, "devlistd is not running: nothing listens on " + path_};
        }
        if (ec == boost::system::errc::permission_denied) {
            return {exit_denied,
                    "permission denied on " + path_ + " (is this user in the socket's group?)"};
        }
        return {exit_not_running, "cannot connect to " + path_ + ": " + ec.message()};
    }

    std::string path_;
};

// ---- output ----

std::string text_of(const json::value* v) {
    if (!v || v->is_null()) return "-";
    if (v->is_string()) return v->as_string();
    if (v->is_bool()) return v->as_bool() ? "yes" : "no";
    if (v->is_integer()) return std::to_string(v->as_integer());
    return json::to_canonical(*v);
}

// Milliseconds since the epoch as "2024-05-01 12:00:00Z".
std::string time_of(const json::value* v) {
    if (!v || !v->is_integer()) return "-";
    std::time_t t = static_cast<std::time_t>(v->as_integer() / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buffer;
}

const json::value* at(const json::value& v, std::string_view key) {
    return v.find(key);
}

class table {
  public:
    explicit table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print() const {
        std::vector<std::size_t> width(rows_.front().size(), 0);
        for (const auto& row : rows_) {
            for (std::size_t i = 0; i < row.size(); ++i)
                width[i] = std::max(width[i], row[i].size());
        }
        for (const auto& row : rows_) {
            std::string line;
            for (std::size_t i = 0; i < row.size(); ++i) {
                line += row[i];
                if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
            }
            std::puts(line.c_str());
        }
    }

  private:
    std::vector<std::vector<std::string>> rows_;
};

void print_status(const json::value& s) {
    const json::value empty = json::object{};
    const json::value& sync = at(s, "sync") ? *at(s, "sync") : empty;
    const json::value& keys = at(s, "keys") ? *at(s, "keys") : empty;
    const json::value& otk = at(keys, "one_time_keys") ? *at(keys, "one_time_keys") : empty;
    const json::value& fallback = at(keys, "fallback") ? *at(keys, "fallback") : empty;
    auto line = [](const char* label, const std::string& value) {
        std::printf("%-18s %s\n", label, value.c_str());
    };
    line("account", text_of(at(s, "user_id")));
    line("device", text_of(at(s, "device_id")));
    line("phase", text_of(at(s, "phase")));
    line("last sync", time_of(at(sync, "last_sync_at")));
    line("syncs", text_of(at(sync, "syncs")) + " (" + text_of(at(sync, "failures")) + " failed)");
    line("tracked users",
         text_of(at(s, "tracked")) + " (" + text_of(at(s, "outdated")) + " outdated)");
    line("one-time keys", text_of(at(otk, "on_server")) + " on the server, target " +
                              text_of(at(otk, "target")) + ", " + text_of(at(otk, "pending")) +
                              " pending");
    std::string fb = "not supported by the server";
    if (const auto* supported = at(fallback, "supported");
        supported && supported->is_bool() && supported->as_bool()) {
        const auto* published = at(fallback, "published");
        fb = text_of(at(fallback, "key_id")) +
             (published && published->is_bool() && published->as_bool() ? " (published)"
                                                                        : " (not published)");
    }
    line("fallback key", fb);
    line("cross-signing", text_of(at(keys, "cross_signing")));
    line("identity key", text_of(at(keys, "ed25519")));
    line("last error", text_of(at(s, "last_error")));
    if (const auto* e = at(keys, "last_error"); e && !e->is_null())
        line("last key error", text_of(e));
}

void print_devices(const json::value& d) {
    const auto* tracked = at(d, "tracked");
    const auto* outdated = at(d, "outdated");
    std::string state = tracked && tracked->is_bool() && tracked->as_bool()
                            ? (outdated && outdated->is_bool() && outdated->as_bool()
                                   ? "tracked, outdated (may be stale)"
                                   : "tracked, up to date")
                            : "not tracked (may be stale)";
    std::printf("%s: %s\n", text_of(at(d, "user_id")).c_str(), state.c_str());
    if (const auto* keys = at(d, "cross_signing_keys"); keys && keys->is_object()) {
        if (const auto* master = at(*keys, "master")) {
            std::printf("master key: %s%s\n", text_of(at(*master, "public_key")).c_str(),
                        text_of(at(*master, "verified")) == "yes" ? "" : " (unverified)");
        }
    }
    table t({"DEVICE", "NAME", "CROSS-SIGNED", "ED25519", "CURVE25519"});
    if (const auto* list = at(d, "devices"); list && list->is_array()) {
        for (const auto& dev : list->as_array()) {
            t.add({text_of(at(dev, "device_id")), text_of(at(dev, "display_name")),
                   text_of(at(dev, "cross_signed")), text_of(at(dev, "ed25519")),
                   text_of(at(dev, "curve25519"))});
        }
    }
    t.print();
}

void print_device(const json::value& d) {
    std::printf("%s %s (%s)%s\n", text_of(at(d, "user_id")).c_str(),
                text_of(at(d, "device_id")).c_str(), text_of(at(d, "display_name")).c_str(),
                text_of(at(d, "deleted")) == "yes" ? " — deleted" : "");
    std::printf("ed25519 %s\ncross-signed %s\nfirst seen %s\nlast seen %s\n",
                text_of(at(d, "ed25519")).c_str(), text_of(at(d, "cross_signed")).c_str(),
                time_of(at(d, "first_seen")).c_str(), time_of(at(d, "last_seen")).c_str());
}

std::string reasons_of(const json::value* reasons) {
    if (!reasons || !reasons->is_array()) return "-";
    std::string out;
    for (const auto& r : reasons->as_array()) {
        if (!out.empty()) out += ',';
        out += text_of(&r);
    }
    return out.empty() ? "-" : out;
}

void print_tracked(const json::value& t) {
    table out({"USER", "STATE", "REASONS", "LAST REFRESH"});
    if (const auto* users = at(t, "users"); users && users->is_array()) {
        for (const auto& u : users->as_array()) {
            out.add({text_of(at(u, "user_id")),
                     text_of(at(u, "outdated")) == "yes" ? "outdated" : "fresh",
                     reasons_of(at(u, "reasons")), time_of(at(u, "last_refreshed_at"))});
        }
    }
    out.print();
}

void print_tracking_change(const json::value& t, const char* verb) {
    std::printf("%s %s: %s (%s)\n", verb, text_of(at(t, "user_id")).c_str(),
                text_of(at(t, "tracked")) == "yes" ? "tracked" : "not tracked",
                reasons_of(at(t, "reasons")).c_str());
}

// One line per event: cursor, time, type, then what it is about.
void print_events(const json::value& e) {
    const auto* events = at(e, "events");
    if (!events || !events->is_array()) return;
    for (const auto& ev : events->as_array()) {
        std::string about;
        if (const auto* data = at(ev, "data"); data && data->is_object()) {
            for (const char* key : {"user_id", "device_id", "sender", "type"}) {
                if (const auto* v = at(*data, key); v && v->is_string()) {
                    about += ' ';
                    about += key;
                    about += '=';
                    about += v->as_string();
                }
            }
        }
        std::printf("%s  %s  %s%s\n", text_of(at(ev, "cursor")).c_str(),
                    time_of(at(ev, "at")).c_str(), text_of(at(ev, "type")).c_str(), about.c_str());
    }
}

// ---- commands ----

struct options {
    std::string socket;
    bool json = false;
    std::string command;
    std::vector<std::string> arguments;
    bool fresh = false;
    bool follow = false;
    std::optional<std::string> timeout_ms;
    std::optional<std::string> consumer;
    std::optional<std::string> after;
    std::optional<std::string> limit;
};

int fail(const failure& f) {
    std::fprintf(stderr, "devlistctl: %s\n", f.message.c_str());
    return f.code;
}

// An error answer: its message, and the exit code its status means.
int daemon_error(const answer& a) {
    auto v = json::parse(a.body);
    std::string message = a.body;
    std::string errcode;
    if (v && v->is_object()) {
        message = text_of(at(*v, "error"));
        errcode = text_of(at(*v, "errcode"));
    }
    std::fprintf(stderr, "devlistctl: devlistd answered %u %s: %s\n", a.status, errcode.c_str(),
                 message.c_str());
    if (a.status == 403) return exit_denied;
    if (a.status == 404 && errcode == "M_NOT_FOUND") return exit_not_found;
    return exit_daemon_error;
}

bool digits(const std::string& s) {
    return !s.empty() && s.size() <= 15 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string user_path(const std::string& user) {
    return sync::percent_encode_path_segment(user);
}

// Sends one request and prints its answer with `print` (or raw with --json).
template <class Print>
int run_one(client& c, const options& o, http::verb method, const std::string& target, Print print,
            const std::string& body = {}) {
    auto r = c.request(method, target, body);
    if (auto* f = std::get_if<failure>(&r)) return fail(*f);
    const auto& a = std::get<answer>(r);
    if (a.status >= 300) return daemon_error(a);
    if (o.json) {
        std::fwrite(a.body.data(), 1, a.body.size(), stdout);
        std::fputc('\n', stdout);
        return exit_ok;
    }
    auto v = json::parse(a.body);
    if (!v) {
        // Our parser refuses what it cannot sign (floats, which to-device content may hold);
        // the answer is still the daemon's, so show it as it came.
        std::fwrite(a.body.data(), 1, a.body.size(), stdout);
        std::fputc('\n', stdout);
        return exit_ok;
    }
    print(*v);
    return exit_ok;
}

// The cursor after the last event of an events answer. Read from the parsed answer when our
// parser takes it; else from its fixed ending `],"next":N}`, which the daemon always writes.
std::optional<std::int64_t> next_cursor(const std::string& body) {
    if (auto v = json::parse(body); v && v->is_object()) {
        const auto* next = at(*v, "next");
        if (next && next->is_integer()) return next->as_integer();
        return std::nullopt;
    }
    auto pos = body.rfind("\"next\":");
    if (pos == std::string::npos) return std::nullopt;
    std::string tail = body.substr(pos + 7);
    if (!tail.empty() && tail.back() == '}') tail.pop_back();
    if (!digits(tail)) return std::nullopt;
    return std::stoll(tail);
}

int follow(client& c, const options& o) {
    const std::string consumer = o.consumer.value_or("devlistctl");
    const std::string timeout = o.timeout_ms.value_or("30000");
    for (;;) {
        std::string target = "/v1/events?consumer=" + sync::percent_encode_query_value(consumer) +
                             "&timeout_ms=" + timeout;
        if (o.limit) target += "&limit=" + *o.limit;
        auto r = c.request(http::verb::get, target);
        if (auto* f = std::get_if<failure>(&r)) return fail(*f);
        const auto& a = std::get<answer>(r);
        if (a.status >= 300) return daemon_error(a);
        auto next = next_cursor(a.body);
        if (!next) return fail({exit_daemon_error, "devlistd's answer has no 'next' cursor"});
        auto parsed = json::parse(a.body);
        const auto* events = parsed ? at(*parsed, "events") : nullptr;
        bool any = !parsed || (events && events->is_array() && !events->as_array().empty());
        if (!any) continue;
        if (parsed && !o.json) {
            print_events(*parsed);
        } else {
            // --json, or an answer our parser refuses (see run_one): as it came.
            std::fwrite(a.body.data(), 1, a.body.size(), stdout);
            std::fputc('\n', stdout);
        }
        // Acknowledged only once printed: output lost to a closed pipe is shown again next time.
        if (std::fflush(stdout) != 0 || std::ferror(stdout)) return exit_daemon_error;
        json::value ack = json::object{{"cursor", *next}, {"consumer", consumer}};
        auto acked = c.request(http::verb::post, "/v1/events/ack", json::to_canonical(ack));
        if (auto* f = std::get_if<failure>(&acked)) return fail(*f);
        if (std::get<answer>(acked).status >= 300) return daemon_error(std::get<answer>(acked));
    }
}

int run(const options& o) {
    client c(o.socket);
    const auto& args = o.arguments;
    auto need = [&](std::size_t n) {
        if (args.size() == n) return true;
        std::fprintf(stderr, "devlistctl: %s takes %zu argument%s\n\n", o.command.c_str(), n,
                     n == 1 ? "" : "s");
        usage(stderr);
        return false;
    };
    if (o.command == "status") {
        if (!need(0)) return exit_usage;
        return run_one(c, o, http::verb::get, "/v1/status", print_status);
    }
    if (o.command == "devices") {
        if (!need(1)) return exit_usage;
        std::string target = "/v1/users/" + user_path(args[0]) + "/devices";
        if (o.fresh) {
            target += "?fresh=true";
            if (o.timeout_ms) target += "&timeout_ms=" + *o.timeout_ms;
        }
        return run_one(c, o, http::verb::get, target, print_devices);
    }
    if (o.command == "whois-key") {
        if (!need(1)) return exit_usage;
        return run_one(c, o, http::verb::get,
                       "/v1/devices/by-curve25519/" + sync::percent_encode_path_segment(args[0]),
                       print_device);
    }
    if (o.command == "track" || o.command == "untrack") {
        if (!need(1)) return exit_usage;
        bool track = o.command == "track";
        return run_one(c, o, track ? http::verb::put : http::verb::delete_,
                       "/v1/tracked/" + user_path(args[0]), [&](const json::value& v) {
                           print_tracking_change(v, track ? "track" : "untrack");
                       });
    }
    if (o.command == "refresh") {
        if (!need(1)) return exit_usage;
        return run_one(c, o, http::verb::post, "/v1/users/" + user_path(args[0]) + "/refresh",
                       [](const json::value& v) { print_tracking_change(v, "refresh"); });
    }
    if (o.command == "tracked") {
        if (!need(0)) return exit_usage;
        return run_one(c, o, http::verb::get, "/v1/tracked", print_tracked);
    }
    if (o.command == "events") {
        if (!need(0)) return exit_usage;
        if (o.follow) {
            if (o.after) {
                std::fputs(
                    "devlistctl: --follow goes on from the consumer's acknowledged cursor; "
                    "--after does not apply\n",
                    stderr);
                return exit_usage;
            }
            return follow(c, o);
        }
        if (o.consumer && o.after) {
            std::fputs(
                "devlistctl: --consumer reads after the consumer's acknowledged cursor; "
                "give --after or --consumer, not both\n",
                stderr);
            return exit_usage;
        }
        std::string target = "/v1/events?";
        if (o.consumer) {
            target += "consumer=" + sync::percent_encode_query_value(*o.consumer);
        } else {
            // Without a consumer: every event still kept, and nobody registered.
            target += "after=" + o.after.value_or("0");
        }
        if (o.limit) target += "&limit=" + *o.limit;
        if (o.timeout_ms) target += "&timeout_ms=" + *o.timeout_ms;
        return run_one(c, o, http::verb::get, target, print_events);
    }
    std::fprintf(stderr, "devlistctl: unknown command '%s'\n\n", o.command.c_str());
    usage(stderr);
    return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (const char* env = std::getenv("DEVLISTD_SOCKET"); env && *env) o.socket = env;
    if (o.socket.empty()) o.socket = daemon::default_socket_path;

    auto bad = [](const std::string& message) {
        std::fprintf(stderr, "devlistctl: %s\n\n", message.c_str());
        usage(stderr);
        return exit_usage;
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        // --name VALUE or --name=VALUE
        auto value_of = [&](std::string_view name) -> std::optional<std::string> {
            if (arg == name) {
                if (i + 1 >= argc) return std::nullopt;
                return std::string(argv[++i]);
            }
            if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
                return std::string(arg.substr(name.size() + 1));
            }
            return std::nullopt;
        };
        auto is_option = [&](std::string_view name) {
            return arg == name ||
                   (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=');
        };
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return exit_ok;
        }
        if (arg == "--version") {
            std::puts("devlistctl " DEVLIST_VERSION);
            return exit_ok;
        }
        if (arg == "--json") {
            o.json = true;
        } else if (arg == "--fresh") {
            o.fresh = true;
        } else if (arg == "--follow" || arg == "-f") {
            o.follow = true;
        } else if (is_option("--socket")) {
            auto v = value_of("--socket");
            if (!v || v->empty()) return bad("--socket needs a path");
            o.socket = *v;
        } else if (is_option("--timeout")) {
            auto v = value_of("--timeout");
            if (!v || !digits(*v)) return bad("--timeout needs milliseconds");
            o.timeout_ms = *v;
        } else if (is_option("--consumer")) {
            auto v = value_of("--consumer");
            if (!v || v->empty()) return bad("--consumer needs a name");
            o.consumer = *v;
        } else if (is_option("--after")) {
            auto v = value_of("--after");
            if (!v || !digits(*v)) return bad("--after needs a cursor (a number)");
            o.after = *v;
        } else if (is_option("--limit")) {
            auto v = value_of("--limit");
            if (!v || !digits(*v)) return bad("--limit needs a number");
            o.limit = *v;
        } else if (arg.starts_with("--")) {
            return bad("unknown option '" + std::string(arg) + "'");
        } else if (o.command.empty()) {
            o.command = arg;
        } else {
            o.arguments.emplace_back(arg);
        }
    }
    if (o.command.empty()) return bad("a command is required");
    return run(o);
}
