// The switches that make the test homeserver behave like one server or another where the spec
// allows several behaviours, so that a client can be tested against each.
#pragma once

#include <string>

namespace devlist::testing {

// Which field names /sync uses for the unused fallback key types.
enum class fallback_key_types_field {
    both,      // stable and org.matrix.msc2732. (what Synapse sends)
    stable,    // device_unused_fallback_key_types only
    unstable,  // org.matrix.msc2732.device_unused_fallback_key_types only
    neither,   // a server without fallback-key support
};

struct server_behaviour {
    // Synapse always reports signed_curve25519, even at 0; the spec lets servers omit zero
    // counts, and the whole field when all are zero (so a missing count must read as 0).
    bool omit_zero_one_time_key_counts = false;
    fallback_key_types_field fallback_key_types = fallback_key_types_field::both;
    // Demand UIA for the first cross-signing upload too (servers before Matrix 1.11).
    bool uia_for_first_cross_signing_upload = false;
    // The one UIA stage the server offers: "m.login.password", "m.login.dummy", or one a bot
    // cannot complete such as "m.login.sso" (it then never succeeds).
    std::string uia_stage = "m.login.password";
};

}  // namespace devlist::testing
