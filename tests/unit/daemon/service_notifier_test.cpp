// The STATUS= text systemctl status shows for each phase of the engine.
#include "daemon/service_notifier.hpp"

#include <gtest/gtest.h>

namespace devlist::daemon {
namespace {

TEST(service_notifier_test, the_status_says_what_the_engine_does_and_why) {
    sync::engine_status s;
    EXPECT_EQ(describe_status(s), "starting: logging in and loading the device lists");

    s.phase = sync::engine_phase::syncing;
    s.tracked = 12;
    s.outdated = 3;
    EXPECT_EQ(describe_status(s), "syncing: 12 users tracked, 3 outdated");
    s.keys.last_key_error = "429 M_LIMIT_EXCEEDED";
    EXPECT_EQ(describe_status(s),
              "syncing: 12 users tracked, 3 outdated; key upload failing: 429 M_LIMIT_EXCEEDED");

    s.phase = sync::engine_phase::backing_off;
    s.last_error = "connection refused";
    EXPECT_EQ(describe_status(s), "backing off: connection refused");
    s.last_error.clear();
    EXPECT_EQ(describe_status(s), "backing off");

    s.phase = sync::engine_phase::stopped;
    s.last_error = "M_UNKNOWN_TOKEN: the access token was revoked";
    EXPECT_EQ(describe_status(s), "stopped: M_UNKNOWN_TOKEN: the access token was revoked");
}

}  // namespace
}  // namespace devlist::daemon
