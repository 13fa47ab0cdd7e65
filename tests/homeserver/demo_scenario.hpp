// The lively scenario of `devlist-test-homeserver --scenario demo`: a small cast of users whose
// rooms and devices change every one to three seconds for about forty seconds, covering what a
// device-tracking client has to get right (new devices, users newly sharing or no longer
// sharing an encrypted room, an unreachable server, cross-signing, a forged signature, a changed
// Ed25519 key). Each step is announced as one human line on stdout.
#pragma once

#include "tests/homeserver/test_homeserver.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>

namespace devlist::testing {

struct demo_cast {
    std::string bot{};  // the account the demo's client uses
    std::string alice{}, bob{}, carol{}, dave{}, zoe{};
    std::string team{}, ops{}, lobby{};  // room IDs
};

// Creates the cast and the rooms, with the bot joined to the encrypted ones.
demo_cast set_up_demo(test_homeserver& homeserver, const std::string& bot_user_id);

// Plays the steps, then returns; cancellation stops it between steps. The homeserver must
// outlive the coroutine.
boost::asio::awaitable<void> run_demo(test_homeserver& homeserver, demo_cast cast);

}  // namespace devlist::testing
