#include "daemon/metrics_text.hpp"

#include <cstdio>
#include <iterator>

namespace devlist::daemon {
namespace {

class writer {
  public:
    // One # HELP and # TYPE header per family, before its samples.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::string_view name, std::string_view labels, std::string_view value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    template <class Number>
    void sample(std::string_view name, std::string_view labels, Number value) {
        sample(name, labels, std::string_view(std::to_string(value)));
    }
    // A family with one unlabelled sample.
    template <class Number>
    void single(std::string_view name, std::string_view type, std::string_view help, Number value) {
        family(name, type, help);
        sample(name, {}, value);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

// Milliseconds as seconds with three decimals: Prometheus wants base units.
std::string seconds(std::int64_t ms) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    return buffer;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string render_metrics(const sync::engine_status& s, const api_counters& api) {
    writer w;
    w.family("devlistd_engine_phase", "gauge", "1 for the sync engine's current phase.");
    for (auto p : {sync::engine_phase::starting, sync::engine_phase::syncing,
                   sync::engine_phase::backing_off, sync::engine_phase::stopped}) {
        w.sample("devlistd_engine_phase", "phase=\"" + std::string(sync::to_string(p)) + "\"",
                 p == s.phase ? 1 : 0);
    }

    w.single("devlistd_syncs_total", "counter", "Successful /sync responses applied.", s.syncs);
    w.single("devlistd_sync_failures_total", "counter", "Failed /sync requests.", s.sync_failures);
    if (s.last_sync_at) {
        w.single("devlistd_last_sync_timestamp_seconds", "gauge",
                 "When the last /sync response was applied (Unix time).",
                 std::string_view(seconds(*s.last_sync_at)));
    }

    // Buckets are cumulative in this format; the engine counts each bucket on its own.
    w.family("devlistd_sync_duration_seconds", "histogram",
             "Duration of /sync requests, long-polls included.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < std::size(sync::sync_latency_bounds_ms); ++i) {
        cumulative += s.sync_latency_buckets[i];
        w.sample("devlistd_sync_duration_seconds_bucket",
                 "le=\"" + seconds(sync::sync_latency_bounds_ms[i]) + "\"", cumulative);
    }
    cumulative += s.sync_latency_buckets.back();
    w.sample("devlistd_sync_duration_seconds_bucket", "le=\"+Inf\"", cumulative);
    w.sample("devlistd_sync_duration_seconds_sum", {},
             std::string_view(seconds(s.sync_latency_sum_ms)));
    w.sample("devlistd_sync_duration_seconds_count", {}, cumulative);

    w.single("devlistd_key_queries_total", "counter", "/keys/query requests answered.", s.queries);
    w.single("devlistd_key_query_failures_total", "counter", "/keys/query requests that failed.",
             s.query_failures);
    w.family("devlistd_key_query_server_failures_total", "counter",
             "Times a server was listed in the failures of a /keys/query answer.");
    for (const auto& [server, count] : s.query_failures_by_server) {
        w.sample("devlistd_key_query_server_failures_total",
                 "server=\"" + escape_label_value(server) + "\"", count);
    }
    w.single("devlistd_tracked_users", "gauge", "Users whose device lists are tracked.", s.tracked);
    w.single("devlistd_outdated_users", "gauge", "Tracked users whose device list is outdated.",
             s.outdated);
    w.single("devlistd_users_in_flight", "gauge",
             "Users in /keys/query requests awaiting an answer.", s.users_in_flight);
    w.single("devlistd_devices_rejected_total", "counter",
             "Devices refused (bad signature, changed key, mismatched IDs).", s.devices_rejected);

    const auto& k = s.keys;
    w.single("devlistd_identity_keys_uploaded", "gauge",
             "1 once the own device's identity keys are on the server.",
             k.identity_uploaded ? 1 : 0);
    w.family("devlistd_one_time_keys", "gauge", "Own one-time keys by state.");
    w.sample("devlistd_one_time_keys", "state=\"on_server\"", k.one_time_keys_on_server);
    w.sample("devlistd_one_time_keys", "state=\"pending\"", k.one_time_keys_pending);
    w.single("devlistd_one_time_key_target", "gauge", "One-time keys kept on the server.",
             k.one_time_key_target);
    w.single("devlistd_one_time_keys_uploaded_total", "counter", "One-time keys uploaded.",
             k.one_time_keys_uploaded);
    w.single("devlistd_one_time_key_conflicts_total", "counter",
             "One-time key uploads refused because a key ID already exists.",
             k.one_time_key_conflicts);
    w.single("devlistd_fallback_key_published", "gauge",
             "1 while the current fallback key is on the server.", k.fallback_published ? 1 : 0);
    w.single("devlistd_key_uploads_total", "counter", "Successful key uploads of any kind.",
             k.uploads);
    w.single("devlistd_key_upload_failures_total", "counter", "Failed key uploads.",
             k.upload_failures);

    w.family("devlistd_socket_responses_total", "counter", "Socket API responses by HTTP status.");
    for (const auto& [status, count] : api.responses) {
        w.sample("devlistd_socket_responses_total", "code=\"" + std::to_string(status) + "\"",
                 count);
    }
    w.single("devlistd_socket_denied_total", "counter",
             "Socket API requests refused for the peer's credentials.", api.denied);
    w.single("devlistd_private_keys_handed_out_total", "counter",
             "One-time and fallback private keys handed out over the socket.",
             api.private_keys_handed_out);
    return w.take();
}

}  // namespace devlist::daemon
