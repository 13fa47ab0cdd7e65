#include "daemon/log_sink.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace devlist::daemon {
namespace {

int syslog_priority(sync::log_level level) {
    switch (level) {
        case sync::log_level::debug:
            return 7;
        case sync::log_level::info:
            return 6;
        case sync::log_level::notice:
            return 5;
        case sync::log_level::warning:
            return 4;
        case sync::log_level::error:
            return 3;
    }
    return 6;
}

const char* level_name(sync::log_level level) {
    switch (level) {
        case sync::log_level::debug:
            return "debug";
        case sync::log_level::info:
            return "info";
        case sync::log_level::notice:
            return "notice";
        case sync::log_level::warning:
            return "warning";
        case sync::log_level::error:
            return "error";
    }
    return "info";
}

}  // namespace

sync::log_function make_stderr_log(sync::log_level min) {
    const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
    return [min, journald](sync::log_level level, std::string_view line) {
        if (level < min) return;
        std::string out;
        if (journald) {
            out = "<" + std::to_string(syslog_priority(level)) + ">";
        } else {
            std::time_t t = std::time(nullptr);
            std::tm tm{};
            gmtime_r(&t, &tm);
            char stamp[32];
            std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
            out = stamp;
            out += level_name(level);
            out += ": ";
        }
        out.append(line);
        out += '\n';
        std::fwrite(out.data(), 1, out.size(), stderr);
    };
}

}  // namespace devlist::daemon
