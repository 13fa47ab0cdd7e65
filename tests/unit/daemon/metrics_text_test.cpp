#include "daemon/metrics_text.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

namespace devlist::daemon {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text)) {
        if (l == line) return true;
    }
    return false;
}

sync::engine_status sample_status() {
    sync::engine_status s;
    s.phase = sync::engine_phase::syncing;
    s.syncs = 7;
    s.sync_failures = 2;
    s.last_sync_at = 1700000000123;
    s.queries = 5;
    s.query_failures = 1;
    s.query_failures_by_server = {{"bad.example", 3}, {"we\"ird\\name\n", 1}};
    s.tracked = 12;
    s.outdated = 4;
    s.devices_rejected = 1;
    // 100 ms, 250 ms, ... : 3 fast syncs, 2 in the 1 s bucket, 2 longer than 60 s.
    s.sync_latency_buckets[0] = 3;
    s.sync_latency_buckets[3] = 2;
    s.sync_latency_buckets.back() = 2;
    s.sync_latency_sum_ms = 150500;
    s.keys.one_time_keys_on_server = 48;
    s.keys.one_time_key_target = 50;
    s.keys.one_time_keys_pending = 2;
    s.keys.one_time_keys_uploaded = 60;
    s.keys.uploads = 3;
    return s;
}

TEST(metrics_text, every_sample_line_is_valid_exposition_format_under_its_family) {
    api_counters api;
    api.responses = {{200, 10}, {404, 1}};
    api.denied = 2;
    std::string text = render_metrics(sample_status(), api);
    const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="([^"\\\n]|\\.)*"\})? (\S+)$)");
    std::set<std::string> typed;
    std::string current;
    for (const auto& line : lines_of(text)) {
        if (line.starts_with("# HELP ")) continue;
        if (line.starts_with("# TYPE ")) {
            std::istringstream in(line.substr(7));
            std::string name;
            in >> name;
            EXPECT_TRUE(typed.insert(name).second) << "family twice: " << name;
            current = name;
            continue;
        }
        std::smatch m;
        ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample line: " << line;
        // A histogram's samples carry suffixes of its family name.
        EXPECT_TRUE(m[1].str().starts_with(current)) << line << " outside family " << current;
    }
    EXPECT_TRUE(typed.contains("devlistd_sync_duration_seconds"));
}

TEST(metrics_text, the_sync_histogram_is_cumulative_in_seconds) {
    std::string text = render_metrics(sample_status(), {});
    EXPECT_TRUE(has_line(text, "# TYPE devlistd_sync_duration_seconds histogram"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_bucket{le=\"0.100\"} 3"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_bucket{le=\"0.500\"} 3"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_bucket{le=\"1.000\"} 5"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_bucket{le=\"60.000\"} 5"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_bucket{le=\"+Inf\"} 7"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_count 7"));
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_sum 150.500"));
    EXPECT_TRUE(has_line(text, "devlistd_last_sync_timestamp_seconds 1700000000.123"));
}

TEST(metrics_text, counters_gauges_and_labels_carry_the_engines_figures) {
    api_counters api;
    api.responses = {{200, 10}, {403, 2}};
    api.denied = 2;
    api.private_keys_handed_out = 1;
    std::string text = render_metrics(sample_status(), api);
    for (const char* line : {
             "devlistd_engine_phase{phase=\"syncing\"} 1",
             "devlistd_engine_phase{phase=\"starting\"} 0",
             "devlistd_syncs_total 7",
             "devlistd_sync_failures_total 2",
             "devlistd_key_queries_total 5",
             "devlistd_key_query_failures_total 1",
             "devlistd_key_query_server_failures_total{server=\"bad.example\"} 3",
             "devlistd_key_query_server_failures_total{server=\"we\\\"ird\\\\name\\n\"} 1",
             "devlistd_tracked_users 12",
             "devlistd_outdated_users 4",
             "devlistd_devices_rejected_total 1",
             "devlistd_one_time_keys{state=\"on_server\"} 48",
             "devlistd_one_time_keys{state=\"pending\"} 2",
             "devlistd_one_time_key_target 50",
             "devlistd_one_time_keys_uploaded_total 60",
             "devlistd_key_uploads_total 3",
             "devlistd_socket_responses_total{code=\"200\"} 10",
             "devlistd_socket_responses_total{code=\"403\"} 2",
             "devlistd_socket_denied_total 2",
             "devlistd_private_keys_handed_out_total 1",
         }) {
        EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\n" << text;
    }
}

TEST(metrics_text, no_last_sync_sample_before_the_first_sync) {
    sync::engine_status s;
    std::string text = render_metrics(s, {});
    EXPECT_EQ(text.find("devlistd_last_sync_timestamp_seconds"), std::string::npos);
    EXPECT_TRUE(has_line(text, "devlistd_sync_duration_seconds_count 0"));
}

TEST(metrics_text, label_values_escape_backslash_quote_and_newline) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(escape_label_value("plain.example:8448"), "plain.example:8448");
}

}  // namespace
}  // namespace devlist::daemon
