#include "tests/homeserver/demo_scenario.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

namespace devlist::testing {

namespace {

void say(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

struct demo_step {
    std::chrono::seconds pause;  // before the step
    std::string announcement;
    std::function<void(test_homeserver&, const demo_cast&)> act;
};

// Who does what, in order. Each step exercises one thing a client must handle.
std::vector<demo_step> demo_steps() {
    using std::chrono::seconds;
    return {
        {seconds(2), "alice added device PHONE",
         [](test_homeserver& hs, const demo_cast& c) {
             hs.add_device(c.alice, "PHONE", "Alice's phone");
         }},
        {seconds(2), "dave was invited to the encrypted room team: he now shares it with the bot",
         [](test_homeserver& hs, const demo_cast& c) { hs.invite(c.team, c.dave); }},
        {seconds(1), "dave joined team",
         [](test_homeserver& hs, const demo_cast& c) { hs.join(c.team, c.dave); }},
        {seconds(3), "bob set up cross-signing; his devices are signed by his self-signing key",
         [](test_homeserver& hs, const demo_cast& c) { hs.bootstrap_cross_signing(c.bob); }},
        {seconds(2), "remote.example became unreachable",
         [](test_homeserver& hs, const demo_cast&) {
             hs.set_server_reachable("remote.example", false);
         }},
        {seconds(2), "zoe of remote.example joined team: her keys cannot be fetched for now",
         [](test_homeserver& hs, const demo_cast& c) { hs.join(c.team, c.zoe); }},
        {seconds(2), "carol added device LAPTOP",
         [](test_homeserver& hs, const demo_cast& c) {
             hs.add_device(c.carol, "LAPTOP", "Carol's laptop");
         }},
        {seconds(3), "bob left team, but still shares ops with the bot: he stays tracked",
         [](test_homeserver& hs, const demo_cast& c) { hs.leave(c.team, c.bob); }},
        {seconds(2), "carol got a device SPOOFED whose signature is forged: it must be rejected",
         [](test_homeserver& hs, const demo_cast& c) { hs.forge_device(c.carol, "SPOOFED"); }},
        {seconds(2), "alice's device LAPTOP changed its Ed25519 key: the new key must be refused",
         [](test_homeserver& hs, const demo_cast& c) { hs.change_device_keys(c.alice, "LAPTOP"); }},
        {seconds(2), "alice removed device PHONE",
         [](test_homeserver& hs, const demo_cast& c) { hs.remove_device(c.alice, "PHONE"); }},
        {seconds(3), "lobby was made encrypted",
         [](test_homeserver& hs, const demo_cast& c) { hs.enable_encryption(c.lobby); }},
        {seconds(2),
         "carol left ops, her last encrypted room with the bot: she is no longer tracked",
         [](test_homeserver& hs, const demo_cast& c) { hs.leave(c.ops, c.carol); }},
        {seconds(2), "remote.example is reachable again: zoe's keys can be fetched",
         [](test_homeserver& hs, const demo_cast&) {
             hs.set_server_reachable("remote.example", true);
         }},
        {seconds(2), "bob added device LAPTOP, cross-signed",
         [](test_homeserver& hs, const demo_cast& c) {
             hs.add_device(c.bob, "LAPTOP", "Bob's laptop");
         }},
        {seconds(2), "alice sent the bot a to-device message (m.dummy)",
         [](test_homeserver& hs, const demo_cast& c) {
             hs.send_to_device(c.alice, c.bot, "*", "m.dummy", json::object{});
         }},
    };
}

}  // namespace

demo_cast set_up_demo(test_homeserver& hs, const std::string& bot_user_id) {
    const std::string& server = hs.server_name();
    demo_cast cast{.bot = bot_user_id,
                   .alice = "@alice:" + server,
                   .bob = "@bob:" + server,
                   .carol = "@carol:" + server,
                   .dave = "@dave:" + server,
                   .zoe = "@zoe:remote.example"};
    for (const auto* user : {&cast.alice, &cast.bob, &cast.carol, &cast.dave}) {
        hs.add_user(*user, user->substr(1, user->find(':') - 1) + "-password");
    }
    hs.add_user(cast.zoe);
    hs.add_device(cast.alice, "LAPTOP", "Alice's laptop");
    hs.add_device(cast.bob, "DESKTOP", "Bob's desktop");
    hs.add_device(cast.carol, "TABLET", "Carol's tablet");
    hs.add_device(cast.dave, "PHONE", "Dave's phone");
    hs.add_device(cast.zoe, "WORKSTATION", "Zoe's workstation");

    cast.team = hs.create_room(cast.alice, true);
    hs.join(cast.team, cast.bob);
    hs.join(cast.team, cast.bot);
    cast.ops = hs.create_room(cast.bob, true);
    hs.join(cast.ops, cast.carol);
    hs.join(cast.ops, cast.bot);
    cast.lobby = hs.create_room(cast.alice, false);
    hs.join(cast.lobby, cast.dave);
    hs.join(cast.lobby, cast.bot);
    say("[demo] rooms: team " + cast.team + " (encrypted: alice, bob, bot), ops " + cast.ops +
        " (encrypted: bob, carol, bot), lobby " + cast.lobby +
        " (not encrypted: alice, dave, bot)");
    return cast;
}

boost::asio::awaitable<void> run_demo(test_homeserver& hs, demo_cast cast) {
    const auto started = std::chrono::steady_clock::now();
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (const auto& step : demo_steps()) {
        timer.expires_after(step.pause);
        co_await timer.async_wait(boost::asio::use_awaitable);  // throws when cancelled
        step.act(hs, cast);
        const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::steady_clock::now() - started);
        say("[demo +" + std::to_string(elapsed.count()) + "s] " + step.announcement);
    }
    say("[demo] scenario complete; still serving (Ctrl-C to stop)");
}

}  // namespace devlist::testing
