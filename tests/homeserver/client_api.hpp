// The Matrix client-server API of the test homeserver: routes an HTTP request to its endpoint,
// checks the access token, applies injected faults, and turns the model into spec-shaped JSON.
//
// Endpoints live in three files: client_api.cpp (routing, login, accounts, filters, rooms,
// to-device), client_api_keys.cpp (/keys/*), client_api_sync.cpp (/sync).
//
// Not thread-safe; the test homeserver calls it with its model's mutex held.
#pragma once

#include "tests/homeserver/fault.hpp"
#include "tests/homeserver/http_server.hpp"
#include "tests/homeserver/server_behaviour.hpp"
#include "tests/homeserver/server_model.hpp"

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::testing {

// A request on its way to an endpoint.
struct api_request {
    const http_request& http;
    std::vector<std::string> params{};  // the percent-decoded {placeholders} of the route
    std::map<std::string, std::string, std::less<>> query{};
    json::value body{};                         // the JSON object body, where the route has one
    const access_token_record* auth = nullptr;  // where the route needs one
    std::string access_token{};
    bool may_long_poll = true;  // false: answer at once (e.g. to truncate it)

    const std::string* query_param(std::string_view name) const;
};

// {errcode, error} with a status.
reply::answer matrix_error(unsigned status, std::string_view errcode, std::string_view message);
// A JSON body, written canonically.
reply::answer json_answer(unsigned status, const json::value& body);

class client_api {
  public:
    client_api(server_model& model, fault_queue& faults, server_behaviour behaviour);
    void set_behaviour(const server_behaviour& behaviour) { behaviour_ = behaviour; }

    http_reply handle(const http_request& request, bool first_attempt);

    // The owner of the request's access token (revoked or not); empty if none.
    std::string user_of(const http_request& request);

    // The percent-decoded path of a target, without its query.
    static std::string decoded_path(std::string_view target);

  private:
    using endpoint = http_reply (client_api::*)(const api_request&);
    struct route;
    static const std::vector<route>& routes();

    http_reply dispatch(const http_request& request, bool may_long_poll);
    std::optional<http_reply> apply_fault(const fault_kind& fault, const http_request& request);

    // client_api.cpp
    http_reply versions(const api_request& request);
    http_reply login_flows(const api_request& request);
    http_reply login(const api_request& request);
    http_reply logout(const api_request& request);
    http_reply whoami(const api_request& request);
    http_reply create_filter(const api_request& request);
    http_reply get_filter(const api_request& request);
    http_reply room_members(const api_request& request);
    http_reply send_to_device(const api_request& request);
    // client_api_keys.cpp
    http_reply keys_upload(const api_request& request);
    http_reply keys_query(const api_request& request);
    http_reply keys_claim(const api_request& request);
    http_reply keys_changes(const api_request& request);
    http_reply device_signing_upload(const api_request& request);
    http_reply signatures_upload(const api_request& request);
    // client_api_sync.cpp
    http_reply sync(const api_request& request);

    // Whether auth (a UIA `auth` dict) proves the password of user_id; the 401/403 otherwise.
    std::optional<reply::answer> check_password_auth(const json::value& auth,
                                                     const std::string& user_id);
    json::object one_time_key_counts(const std::string& user_id, const std::string& device_id);
    // One signature of /keys/signatures/upload: nullopt when stored, else the failure entry.
    std::optional<json::value> add_signature(const user_record& me, const std::string& signer,
                                             const std::string& by_device,
                                             const std::string& user_id, const std::string& key_id,
                                             const json::value& signed_object);
    const std::string* device_ed25519_key(std::string_view user_id, std::string_view device_id);

    server_model& model_;
    fault_queue& faults_;
    server_behaviour behaviour_;
};

// "s<position>" → position.
std::optional<stream_position> parse_sync_token(std::string_view token);
std::string make_sync_token(stream_position position);

}  // namespace devlist::testing
