#include "sync/key_maintenance.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "crypto/json_value.hpp"
#include "devlist/failpoint.hpp"

namespace devlist::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// More keys than this in one /keys/upload are split (servers limit body sizes).
constexpr std::size_t upload_chunk = 100;
// How often the maintainer looks again when nothing is due (a sync wakes it earlier).
constexpr milliseconds idle_check = 1h;

}  // namespace

key_maintainer::key_maintainer(storage::store& store, matrix_api& api,
                               const engine_options& options, log_function log, key_status& status,
                               wakeup& changed, std::function<void()> own_keys_changed)
    : store_(store),
      api_(api),
      options_(options),
      log_(std::move(log)),
      status_(status),
      changed_(changed),
      own_keys_changed_(std::move(own_keys_changed)),
      planner_(options.one_time_key_target),
      random_(std::random_device{}()) {
    status_.one_time_key_target = options.one_time_key_target;
}

void key_maintainer::note_sync(const key_planner::sync_report& report) {
    planner_.note_sync(report);
    woken_ = true;
    wake_.notify_all();
}

void key_maintainer::set_one_time_key_target(std::size_t target) {
    planner_.set_target(target);
    status_.one_time_key_target = target;
    woken_ = true;
    wake_.notify_all();
}

asio::awaitable<void> key_maintainer::sleep(milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<result<void>> key_maintainer::prepare(std::string device_id) {
    if (!options_.sealing_key) {
        co_return error{errc::invalid_argument,
                        "no sealing key: devlistd needs one to keep its private keys"};
    }
    const auto& sealing = *options_.sealing_key;
    auto stored = store_.account().load();
    if (!stored) co_return stored.error();
    if (*stored && (*stored)->device_id != device_id) {
        co_return error{errc::invalid_argument, "the database holds the identity of device " +
                                                    (*stored)->device_id + ", not of device " +
                                                    device_id +
                                                    " — use another database for another device"};
    }

    // The server's copy of the own device and master key. Retried while unreachable: nothing
    // may be uploaded before we know what the server has.
    std::optional<queried_device> on_server;
    for (std::int64_t failures = 1;; ++failures) {
        // (A named vector: GCC 12 miscompiles a braced list inside a co_await expression.)
        std::vector<std::string> own_user{options_.user_id};
        auto answer = co_await api_.keys_query_parsed(std::move(own_user), 10s);
        if (answer) {
            for (auto& d : answer->devices) {
                if (d.user_id == options_.user_id && d.device_id == device_id) {
                    on_server = std::move(d);
                }
            }
            server_master_key_.reset();
            for (const auto& k : answer->master_keys) {
                if (k.user_id == options_.user_id && k.keys.size() == 1) {
                    server_master_key_ = k.keys.front().second;
                }
            }
            break;
        }
        if (!answer.error().is_transient()) {
            co_return error{errc::io_error, "cannot read the own device keys from the server: " +
                                                answer.error().detail};
        }
        auto wait = options_.sync_backoff.delay(failures, random_());
        log(log_level::warning, "cannot read the own device keys (" + answer.error().detail +
                                    "); retrying in " + std::to_string(wait.count()) + " ms");
        co_await sleep(wait);
    }

    if (!*stored) {
        if (on_server) {
            co_return error{
                errc::invalid_argument,
                "device " + device_id + " of " + options_.user_id +
                    " already has identity keys on the homeserver (ed25519 " + on_server->ed25519 +
                    ") but this database has none — it was lost, or belongs to another "
                    "installation. devlistd never uploads new identity keys for a device that "
                    "has some (every peer would see a changed key and refuse it). Restore the "
                    "database, or let devlistd log in as a new device: remove device_id from "
                    "the configuration (or name a new one) and use a password_file"};
        }
        auto made = create_identity(options_.user_id, device_id, sealing, options_.clock());
        if (auto r = store_.account().create(made.record); !r) co_return r.error();
        identity_ = std::move(made.keys);
        log(log_level::notice, "created the identity keys of device " + device_id + " (ed25519 " +
                                   made.record.ed25519_public + ")");
    } else {
        auto opened = open_identity(**stored, sealing);
        if (!opened) co_return opened.error();
        identity_ = std::move(*opened);
        identity_uploaded_ = (*stored)->device_keys_uploaded;
        device_signature_uploaded_ = (*stored)->device_signature_uploaded;
        const auto& record = **stored;
        if (on_server && (on_server->ed25519 != record.ed25519_public ||
                          on_server->curve25519 != record.curve25519_public)) {
            co_return error{
                errc::invalid_argument,
                "the homeserver has other identity keys for device " + device_id + " (ed25519 " +
                    on_server->ed25519 + ", curve25519 " + on_server->curve25519 +
                    ") than this database (ed25519 " + record.ed25519_public + ", curve25519 " +
                    record.curve25519_public +
                    ") — another client uses this device ID. devlistd stops rather than "
                    "replace them: give devlistd a device of its own (a new device_id, or none "
                    "to log in as a new device) with a new database"};
        }
        if (on_server && !identity_uploaded_) {
            // Uploaded before a crash took the mark with it.
            if (auto r = store_.account().mark_device_keys_uploaded(); !r) co_return r.error();
            identity_uploaded_ = true;
        } else if (!on_server && identity_uploaded_) {
            log(log_level::warning, "the homeserver lost the identity keys of device " + device_id +
                                        "; uploading the same keys again");
            identity_uploaded_ = false;
        }
    }
    signed_device_keys_ = signed_device_keys(*identity_);
    status_.ed25519 = identity_->signing.public_key().to_base64();
    status_.curve25519 = identity_->exchange.public_key().to_base64();
    status_.identity_uploaded = identity_uploaded_;
    if (auto r = refresh_status(); !r) co_return r.error();
    co_return result<void>{};
}

asio::awaitable<void> key_maintainer::run() {
    std::int64_t failures = 0;
    for (;;) {
        woken_ = false;
        auto next = co_await step();
        if (next) {
            failures = 0;
            // A refused cross-signing upload stays the last word until a restart.
            status_.last_key_error = cross_signing_failure_;
            // A sync reported during step() (e.g. the first one, telling that the server takes
            // fallback keys, while the one-time keys were uploading) is acted on at once.
            if (!woken_ && *next > steady_clock::now()) co_await wake_.wait_until(*next);
            continue;
        }
        if ((co_await asio::this_coro::cancellation_state).cancelled() !=
            asio::cancellation_type::none) {
            co_return;  // stopping: a cancelled upload is not a failure
        }
        ++failures;
        ++status_.upload_failures;
        status_.last_key_error = next.error().detail;
        auto wait = options_.upload_backoff.delay(failures, random_());
        if (retry_after_) wait = std::max(wait, *retry_after_);
        retry_after_.reset();
        log(log_level::warning, "key maintenance: " + next.error().detail + "; retrying in " +
                                    std::to_string(wait.count()) + " ms");
        co_await sleep(wait);
    }
}

error key_maintainer::upload_failed(const api_failure& f) {
    retry_after_ = f.retry_after;
    return error{errc::io_error, f.detail};
}

asio::awaitable<result<key_maintainer::clock_point>> key_maintainer::step() {
    auto next = steady_clock::now() + idle_check;
    if (!identity_uploaded_) {
        if (auto r = co_await upload_identity(); !r) co_return r.error();
    }
    if (!planner_.server_count()) {
        // An upload of nothing answers with the current counts: no need to wait for a /sync.
        auto counts = co_await api_.keys_upload("{}");
        if (!counts) co_return upload_failed(counts.error());
        planner_.note_upload_answer(*counts, steady_clock::now());
    }
    if (auto r = co_await maintain_fallback_key(next); !r) co_return r.error();
    if (auto r = co_await maintain_one_time_keys(); !r) co_return r.error();
    if (auto r = co_await maintain_cross_signing(); !r) co_return r.error();
    if (auto r = refresh_status(); !r) co_return r.error();
    co_return next;
}

asio::awaitable<result<void>> key_maintainer::upload_identity() {
    auto counts = co_await api_.keys_upload(device_keys_upload_body(signed_device_keys_));
    if (!counts) co_return upload_failed(counts.error());
    planner_.note_upload_answer(*counts, steady_clock::now());
    if (auto r = store_.account().mark_device_keys_uploaded(); !r) co_return r.error();
    identity_uploaded_ = true;
    status_.identity_uploaded = true;
    ++status_.uploads;
    changed_.notify_all();
    if (own_keys_changed_) own_keys_changed_();
    log(log_level::notice, "uploaded the identity keys of device " + identity_->device_id);
    co_return result<void>{};
}

asio::awaitable<result<void>> key_maintainer::maintain_fallback_key(clock_point& next) {
    auto& keys = store_.fallback_keys();
    const auto now = options_.clock();
    if (auto erased = keys.erase_expired(now); !erased) {
        co_return erased.error();
    } else if (*erased > 0) {
        log(log_level::info, "erased " + std::to_string(*erased) +
                                 " replaced fallback key(s) an hour after their successor");
    }
    auto current = keys.current();
    if (!current) co_return current.error();
    if (*current && planner_.fallback_reported_used() &&
        (*current)->state == storage::key_state::published && !(*current)->used_at) {
        // mark_used is idempotent: a replayed report cannot rotate twice.
        if (auto r = keys.mark_used((*current)->key_id, now); !r) co_return r.error();
        log(log_level::info, "the server handed out fallback key " + (*current)->key_id);
        current = keys.current();
        if (!current) co_return current.error();
    }
    const auto step = planner_.fallback_next(*current, now, options_.fallback_rotation);
    if (step == key_planner::fallback_step::create || step == key_planner::fallback_step::rotate) {
        auto made = make_signed_curve25519_key(*identity_, true, *options_.sealing_key);
        auto added = keys.add_pending_current(made, now, format_key_id);
        if (!added) co_return added.error();
        DEVLIST_FAILPOINT("keys.fallback.after_persist");
        current = std::optional<storage::fallback_key>(std::move(*added));
        log(log_level::info, std::string(step == key_planner::fallback_step::create
                                             ? "created fallback key "
                                             : "rotating the fallback key: new key ") +
                                 (*current)->key_id);
    }
    if (*current && (*current)->state == storage::key_state::pending) {
        auto counts = co_await api_.keys_upload(fallback_key_upload_body(**current));
        if (!counts) co_return upload_failed(counts.error());
        planner_.note_upload_answer(*counts, steady_clock::now());
        if (auto r = keys.mark_published((*current)->key_id, options_.clock(),
                                         options_.fallback_keep_previous);
            !r) {
            co_return r.error();
        }
        ++status_.uploads;
        changed_.notify_all();
        log(log_level::info, "published fallback key " + (*current)->key_id);
        current = keys.current();
        if (!current) co_return current.error();
    }
    // Wake for the weekly rotation and for the erasure of replaced keys.
    const auto at = [&](storage::timestamp_ms when) {
        return steady_clock::now() + milliseconds(std::max<std::int64_t>(0, when - now));
    };
    if (*current && (*current)->published_at) {
        next = std::min(next, at(*(*current)->published_at + options_.fallback_rotation.count()));
    }
    auto previous = keys.previous();
    if (!previous) co_return previous.error();
    for (const auto& p : *previous) {
        if (p.erase_after) next = std::min(next, at(*p.erase_after));
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> key_maintainer::maintain_one_time_keys() {
    auto& keys = store_.one_time_keys();
    // Keys committed but not confirmed (a lost answer, a crash) go first, byte for byte.
    auto pending = keys.pending();
    if (!pending) co_return pending.error();
    if (!pending->empty()) {
        if (auto r = co_await upload_one_time_keys(std::move(*pending)); !r) co_return r.error();
    }
    const std::size_t wanted = planner_.one_time_keys_to_generate(0);
    if (wanted > 0) {
        std::vector<storage::new_key> made;
        made.reserve(wanted);
        for (std::size_t i = 0; i < wanted; ++i)
            made.push_back(make_signed_curve25519_key(*identity_, false, *options_.sealing_key));
        auto added = keys.add_pending(made, options_.clock(), format_key_id);
        if (!added) co_return added.error();
        DEVLIST_FAILPOINT("keys.one_time.after_persist");
        if (auto r = co_await upload_one_time_keys(std::move(*added)); !r) co_return r.error();
    }
    if (auto pruned = keys.prune_published(options_.one_time_keys_kept); !pruned) {
        co_return pruned.error();
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> key_maintainer::upload_one_time_keys(
    std::vector<storage::one_time_key> keys) {
    for (std::size_t from = 0; from < keys.size(); from += upload_chunk) {
        const std::size_t n = std::min(upload_chunk, keys.size() - from);
        std::span<const storage::one_time_key> chunk(keys.data() + from, n);
        auto counts = co_await api_.keys_upload(one_time_keys_upload_body(chunk));
        if (!counts) {
            const api_failure& f = counts.error();
            if (f.what == api_failure::kind::http && f.status == 400 && f.matrix) {
                if (auto id = one_time_key_conflict_id(f.matrix->error)) {
                    record_conflict(*id, f.matrix->error);
                }
            }
            co_return upload_failed(f);
        }
        DEVLIST_FAILPOINT("keys.one_time.after_upload");
        planner_.note_upload_answer(*counts, steady_clock::now());
        std::vector<std::string> ids;
        for (const auto& k : chunk)
            ids.push_back(k.key_id);
        if (auto r = store_.one_time_keys().mark_published(ids, options_.clock()); !r) {
            co_return r.error();
        }
        status_.one_time_keys_uploaded += n;
        ++status_.uploads;
        changed_.notify_all();
        log(log_level::info, "published " + std::to_string(n) + " one-time keys; the server has " +
                                 std::to_string(planner_.server_count().value_or(0)));
    }
    co_return result<void>{};
}

void key_maintainer::record_conflict(const std::string& key_id, const std::string& message) {
    ++status_.one_time_key_conflicts;
    // The server holds another key under this ID, and refused the whole upload (Synapse checks
    // every key before storing any). Our key with that ID was never published: drop it; the
    // counter never hands the ID out again, and the other pending keys go again after backoff.
    auto discarded = store_.one_time_keys().discard_pending(key_id);
    const auto now = options_.clock();
    json::value detail = json::object{{"key_id", key_id},
                                      {"error", message.substr(0, 500)},
                                      {"discarded", discarded && *discarded}};
    storage::security_event event{0,
                                  now,
                                  "one_time_key_conflict",
                                  options_.user_id,
                                  identity_->device_id,
                                  json::to_canonical(detail)};
    if (auto r = store_.security().append(event); !r) {
        log(log_level::error, "could not record a one-time key conflict: " + r.error().message());
    }
    storage::outbox_event published{0, now, "one_time_key_conflict", event.detail_json};
    if (auto r = store_.outbox().append(published); !r) {
        log(log_level::error, "could not publish a one-time key conflict: " + r.error().message());
    }
    changed_.notify_all();
    log(log_level::error, "the homeserver refused one-time key " + key_id +
                              ": it already has another key with that ID (" +
                              message.substr(0, 200) +
                              "); the key was dropped and the others are retried after backoff");
}

asio::awaitable<api_result<void>> key_maintainer::upload_cross_signing(const std::string& body) {
    auto r = co_await api_.device_signing_upload(body, std::nullopt);
    if (r || !r.error().uia) co_return r;
    // User-Interactive Auth: follow a flow made of stages devlistd can do.
    const auto doable = [&](const std::string& stage) {
        return stage == "m.login.dummy" || (stage == "m.login.password" && options_.password);
    };
    uia_challenge challenge = *r.error().uia;
    const std::vector<std::string>* flow = nullptr;
    for (const auto& f : challenge.flows) {
        if (std::all_of(f.begin(), f.end(), doable)) {
            flow = &f;
            break;
        }
    }
    if (!flow) {
        std::string offered;
        for (const auto& f : challenge.flows) {
            std::string stages;
            for (const auto& s : f)
                stages += (stages.empty() ? "" : "+") + s;
            offered += (offered.empty() ? "" : ", ") + stages;
        }
        api_failure f = r.error();
        f.detail =
            "the homeserver asks for authentication devlistd cannot give (flows: " + offered +
            (options_.password ? ")" : "; no password_file is configured)");
        co_return f;
    }
    const std::vector<std::string> stages = *flow;
    for (const auto& stage : stages) {
        if (std::find(challenge.completed.begin(), challenge.completed.end(), stage) !=
            challenge.completed.end()) {
            continue;
        }
        json::value auth = json::object{{"type", stage}};
        if (!challenge.session.empty()) auth["session"] = challenge.session;
        if (stage == "m.login.password") {
            auth["identifier"] = json::object{{"type", "m.id.user"}, {"user", options_.user_id}};
            auth["password"] = *options_.password;
        }
        r = co_await api_.device_signing_upload(body, json::to_canonical(auth));
        if (r || !r.error().uia) co_return r;
        if (r.error().uia->errcode) co_return r;  // the stage failed (a wrong password…)
        challenge = *r.error().uia;
    }
    co_return r;
}

asio::awaitable<result<void>> key_maintainer::maintain_cross_signing() {
    if (!options_.bootstrap_cross_signing || cross_signing_given_up_) co_return result<void>{};
    auto& own = store_.own_cross_signing();
    auto keys = own.load();
    if (!keys) co_return keys.error();
    const auto ours = [&]() -> std::optional<std::string> {
        for (const auto& k : *keys)
            if (k.usage == storage::key_usage::master) return k.public_key;
        return std::nullopt;
    };
    if (server_master_key_ && server_master_key_ != ours()) {
        // Never overwrite a master key someone else made: peers trust it.
        status_.cross_signing = cross_signing_state::managed_elsewhere;
        cross_signing_given_up_ = true;
        log(log_level::notice, "the account's cross-signing keys are managed elsewhere (master " +
                                   *server_master_key_ + "); devlistd leaves them alone");
        co_return result<void>{};
    }
    if (keys->empty()) {
        auto made = create_cross_signing_keys(*identity_, *options_.sealing_key, options_.clock());
        if (auto r = own.store_pending(made, options_.clock()); !r) co_return r.error();
        DEVLIST_FAILPOINT("keys.cross_signing.after_persist");
        device_signature_uploaded_ = false;
        keys = own.load();
        if (!keys) co_return keys.error();
        log(log_level::notice, "created cross-signing keys (master " + *ours() + ")");
    }
    const bool pending = std::any_of(keys->begin(), keys->end(), [](const auto& k) {
        return k.state == storage::upload_state::pending;
    });
    if (pending) {
        status_.cross_signing = cross_signing_state::pending;
        auto r = co_await upload_cross_signing(cross_signing_upload_body(*keys));
        if (!r) {
            if (r.error().is_transient()) co_return upload_failed(r.error());
            // A wrong password or a flow we cannot follow does not get better by retrying.
            cross_signing_given_up_ = true;
            status_.cross_signing = cross_signing_state::failed;
            cross_signing_failure_ = "cross-signing upload refused: " + r.error().detail;
            log(log_level::error, cross_signing_failure_ +
                                      " — fix the credential or the server settings and restart "
                                      "devlistd; the keys are kept and uploaded then");
            co_return result<void>{};
        }
        DEVLIST_FAILPOINT("keys.cross_signing.after_upload");
        if (auto m = own.mark_uploaded(options_.clock()); !m) co_return m.error();
        server_master_key_ = ours();
        ++status_.uploads;
        changed_.notify_all();
        if (own_keys_changed_) own_keys_changed_();
        log(log_level::notice, "uploaded the cross-signing keys");
    }
    if (!device_signature_uploaded_) {
        const auto ssk = std::find_if(keys->begin(), keys->end(), [](const auto& k) {
            return k.usage == storage::key_usage::self_signing;
        });
        if (ssk == keys->end()) co_return result<void>{};
        auto body = device_signature_upload_body(*identity_, *ssk, *options_.sealing_key);
        if (!body) co_return body.error();
        auto failures = co_await api_.signatures_upload(std::move(*body));
        if (!failures) co_return upload_failed(failures.error());
        if (!failures->empty()) {
            co_return error{errc::io_error, "the homeserver refused the own device's signature: " +
                                                failures->front()};
        }
        if (auto m = store_.account().mark_device_signature_uploaded(); !m) co_return m.error();
        device_signature_uploaded_ = true;
        ++status_.uploads;
        changed_.notify_all();
        if (own_keys_changed_) own_keys_changed_();
        log(log_level::notice,
            "signed device " + identity_->device_id + " with the self-signing key");
    }
    status_.cross_signing = cross_signing_state::uploaded;
    co_return result<void>{};
}

result<void> key_maintainer::refresh_status() {
    status_.one_time_keys_on_server = planner_.server_count().value_or(0);
    status_.one_time_key_target = planner_.target();
    auto pending = store_.one_time_keys().count(storage::key_state::pending);
    if (!pending) return pending.error();
    status_.one_time_keys_pending = *pending;
    status_.fallback_supported = planner_.fallback_supported();
    auto current = store_.fallback_keys().current();
    if (!current) return current.error();
    status_.fallback_key_id.reset();
    status_.fallback_published = false;
    if (*current) {
        status_.fallback_key_id = (*current)->key_id;
        status_.fallback_published = (*current)->state == storage::key_state::published;
    }
    if (!options_.bootstrap_cross_signing) {
        status_.cross_signing =
            server_master_key_ ? cross_signing_state::managed_elsewhere : cross_signing_state::off;
    }
    return {};
}

}  // namespace devlist::sync
