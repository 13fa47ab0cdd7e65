// devlist::engine (include/devlist/engine.hpp): the sync engine, its store and HTTP client
// behind the library's public types.
#include "devlist/engine.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <variant>

#include "storage/store.hpp"
#include "sync/api_model.hpp"
#include "sync/http_client.hpp"
#include "sync/matrix_ids.hpp"
#include "sync/sealing_key_file.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"
#include "sync/wakeup.hpp"

namespace devlist {

namespace asio = boost::asio;
using std::chrono::steady_clock;

namespace {

constexpr std::string_view one_time_key_prefix = "signed_curve25519:";
constexpr std::size_t max_event_limit = 1000;
// Events handed to a subscriber in one call at most; more follow in the next.
constexpr std::size_t subscription_batch = 100;

log_level to_public(sync::log_level l) {
    switch (l) {
        case sync::log_level::debug:
            return log_level::debug;
        case sync::log_level::info:
            return log_level::info;
        case sync::log_level::notice:
            return log_level::notice;
        case sync::log_level::warning:
            return log_level::warning;
        case sync::log_level::error:
            return log_level::error;
    }
    return log_level::error;
}

// A secret's text: the value, or the one line of its file (without the newline).
result<std::optional<std::string>> read_secret(const secret& s, std::string_view what) {
    if (s.value && s.file) {
        return error{errc::invalid_argument,
                     "the " + std::string(what) + " is given both as a value and as a file"};
    }
    if (s.value) {
        if (s.value->empty()) {
            return error{errc::invalid_argument, "the " + std::string(what) + " is empty"};
        }
        return s.value;
    }
    if (!s.file) return std::optional<std::string>{};
    std::ifstream in(*s.file, std::ios::binary);
    if (!in) {
        return error{errc::io_error, "cannot read the " + std::string(what) + " file " +
                                         s.file->string() + ": " + std::strerror(errno)};
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r'))
        value.pop_back();
    // The error names the file, never its content.
    if (value.empty()) {
        return error{errc::invalid_argument,
                     "the " + std::string(what) + " file " + s.file->string() + " is empty"};
    }
    if (value.find('\n') != std::string::npos) {
        return error{errc::invalid_argument, "the " + std::string(what) + " file " +
                                                 s.file->string() + " must hold one line"};
    }
    return std::optional<std::string>(std::move(value));
}

// True when `e` is the operation_aborted that a cancelled coroutine resumes with, possibly
// inside the multiple_exceptions of an awaitable-operator group.
bool is_cancellation(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& error) {
        return error.code() == asio::error::operation_aborted;
    } catch (const asio::multiple_exceptions& many) {
        return is_cancellation(many.first_exception());
    } catch (...) {
        return false;
    }
}

error not_a_user_id(const std::string& user_id) {
    return error{errc::invalid_argument, "not a valid user ID: " + user_id};
}

}  // namespace

const char* library_version() noexcept {
    return DEVLIST_VERSION;
}

class engine::impl {
  public:
    impl(asio::any_io_executor executor, engine_config config, engine_hooks hooks,
         storage::store store)
        : executor_(std::move(executor)),
          config_(std::move(config)),
          hooks_(std::move(hooks)),
          store_(std::move(store)) {}

    result<void> init();
    asio::awaitable<result<void>> run();

    devlist::status status() {
        auto last = store_.outbox().last_cursor();
        return sync::to_public(engine_->status(), last ? *last : 0, DEVLIST_VERSION);
    }

    subscription_id subscribe(std::int64_t after, event_callback callback) {
        auto id = next_subscription_++;
        subscribers_.push_back({id, after, std::move(callback)});
        subscribed_.notify_all();
        return id;
    }

    void unsubscribe(subscription_id id) {
        std::erase_if(subscribers_, [id](const subscriber& s) { return s.id == id; });
    }

    void log(sync::log_level level, std::string_view line) const {
        if (hooks_.log && to_public(level) >= config_.min_log_level) {
            hooks_.log(to_public(level), line);
        }
    }

    asio::any_io_executor executor_;
    engine_config config_;
    engine_hooks hooks_;
    storage::store store_;
    std::optional<sync::http_client> http_;
    std::optional<sync::sync_engine> engine_;

  private:
    struct subscriber {
        subscription_id id;
        std::int64_t after;
        event_callback callback;
    };

    asio::awaitable<void> deliver_events();
    // Hands each subscriber what was committed after its cursor; false if there was nothing.
    bool deliver_once();

  public:
    enum class run_state { idle, running, ended };
    run_state run_state_ = run_state::idle;
    sync::wakeup ended_;  // run() ended

  private:
    std::vector<subscriber> subscribers_;
    subscription_id next_subscription_ = 1;
    sync::wakeup subscribed_;
};

result<void> engine::impl::init() {
    auto token = read_secret(config_.access_token, "access token");
    if (!token) return token.error();
    auto password = read_secret(config_.password, "password");
    if (!password) return password.error();
    if (!*token && !*password) {
        return error{errc::invalid_argument, "an access token or a password is required"};
    }
    auto base = sync::parse_url(config_.homeserver);
    if (!base) return error{errc::invalid_argument, "homeserver: " + base.error().message()};

    const sync::log_function log = [this](sync::log_level l, std::string_view line) {
        this->log(l, line);
    };
    auto sealing =
        sync::load_or_create_sealing_key(config_.sealing_key_file, config_.database, store_, log);
    if (!sealing) return sealing.error();

    sync::http_client_options http_options;
    http_options.extra_ca_file = config_.ca_file;
    http_options.user_agent = std::string("libdevlist/") + DEVLIST_VERSION;
    try {
        http_.emplace(executor_, *base, http_options);
    } catch (const std::exception& e) {
        return error{errc::invalid_argument, std::string("cannot set up TLS: ") + e.what()};
    }

    sync::engine_options options;
    options.user_id = config_.user_id;
    options.device_id = config_.device_id;
    options.access_token = std::move(*token);
    options.password = std::move(*password);
    options.device_display_name = config_.device_display_name;
    options.sync_timeout = config_.sync_timeout;
    options.sealing_key = std::move(*sealing);
    options.one_time_key_target = config_.one_time_key_target;
    options.one_time_keys_kept = config_.one_time_keys_kept;
    options.bootstrap_cross_signing = config_.bootstrap_cross_signing;
    options.sync_filter = config_.sync_filter;
    if (hooks_.on_sync) {
        options.on_sync_response = [this](const sync::sync_delivery& d) {
            return hooks_.on_sync({d.since, d.next_batch, d.body});
        };
    }
    engine_.emplace(executor_, store_, *http_, std::move(options), log);
    return {};
}

asio::awaitable<result<void>> engine::impl::run() {
    using namespace asio::experimental::awaitable_operators;
    if (run_state_ == run_state::running) {
        co_return error{errc::invalid_argument, "the engine runs already"};
    }
    if (run_state_ == run_state::ended) {
        // Its connections are closed; a new engine on the same database goes on where it stopped.
        co_return error{errc::invalid_argument, "the engine ran already; create a new one"};
    }
    run_state_ = run_state::running;
    std::optional<result<void>> ended;
    std::exception_ptr failure;
    // The sync engine first: it loads its state from the store before it first waits.
    try {
        auto first = co_await (engine_->run() || deliver_events());
        ended = std::move(std::get<0>(first));  // deliver_events() never returns
    } catch (...) {
        if (!is_cancellation(std::current_exception())) failure = std::current_exception();
    }
    run_state_ = run_state::ended;
    ended_.notify_all();
    // Idle keep-alive connections would keep the caller's io_context busy.
    http_->close();
    if (failure) std::rethrow_exception(failure);
    co_return ended.value_or(result<void>{});
}

bool engine::impl::deliver_once() {
    bool delivered = false;
    // By ID, not by iterator: a callback may subscribe or unsubscribe.
    std::vector<subscription_id> ids;
    for (const auto& s : subscribers_)
        ids.push_back(s.id);
    for (auto id : ids) {
        auto it = std::find_if(subscribers_.begin(), subscribers_.end(),
                               [id](const subscriber& s) { return s.id == id; });
        if (it == subscribers_.end()) continue;
        auto read = store_.outbox().read_after(it->after, subscription_batch);
        if (!read) {
            log(sync::log_level::error,
                "cannot read events for a subscriber: " + read.error().message());
            continue;
        }
        if (read->empty()) continue;
        event_batch batch;
        batch.next = read->back().cursor;
        for (const auto& e : *read)
            batch.events.push_back(sync::to_public(e));
        it->after = batch.next;
        // A copy: the callback may unsubscribe itself, which destroys the stored one.
        auto callback = it->callback;
        callback(batch);
        delivered = true;
    }
    return delivered;
}

asio::awaitable<void> engine::impl::deliver_events() {
    using namespace asio::experimental::awaitable_operators;
    for (;;) {
        if (deliver_once()) continue;  // more may be waiting beyond a full batch
        // Far off: a commit or a new subscriber wakes it, the deadline only bounds the wait.
        auto deadline = steady_clock::now() + std::chrono::hours(1);
        co_await (engine_->wait_for_change(deadline) || subscribed_.wait_until(deadline));
    }
}

// ---- engine ----

result<engine> engine::create(asio::any_io_executor executor, engine_config config,
                              engine_hooks hooks) {
    if (!sync::is_valid_user_id(config.user_id)) return not_a_user_id(config.user_id);
    if (config.database.empty()) return error{errc::invalid_argument, "database is required"};
    auto store = storage::store::open(config.database);
    if (!store) return store.error();
    auto i = std::make_unique<impl>(std::move(executor), std::move(config), std::move(hooks),
                                    std::move(*store));
    if (auto r = i->init(); !r) return r.error();
    return engine(std::move(i));
}

engine::engine(std::unique_ptr<impl> i) noexcept : impl_(std::move(i)) {}
engine::engine(engine&&) noexcept = default;
engine& engine::operator=(engine&&) noexcept = default;
engine::~engine() = default;

asio::any_io_executor engine::get_executor() const noexcept {
    return impl_->executor_;
}

asio::awaitable<result<void>> engine::run() {
    return impl_->run();
}

devlist::status engine::status() const {
    return impl_->status();
}

asio::awaitable<devlist::status> engine::wait_for_sync(std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    const auto deadline = steady_clock::now() + timeout;
    while (impl_->engine_->status().syncs == 0 && impl_->run_state_ != impl::run_state::ended &&
           steady_clock::now() < deadline) {
        co_await (impl_->engine_->wait_for_change(deadline) || impl_->ended_.wait_until(deadline));
    }
    co_return status();
}

result<user_devices> engine::devices(const std::string& user_id) const {
    if (!sync::is_valid_user_id(user_id)) return not_a_user_id(user_id);
    return sync::read_user_devices(impl_->store_, user_id);
}

asio::awaitable<result<user_devices>> engine::fresh_devices(std::string user_id, fresh_wait wait) {
    if (!sync::is_valid_user_id(user_id)) co_return not_a_user_id(user_id);
    co_return co_await sync::read_fresh_user_devices(
        *impl_->engine_, impl_->store_, std::move(user_id), steady_clock::now() + wait.timeout);
}

result<std::optional<device>> engine::device_by_curve25519(const std::string& key) const {
    return sync::read_device_by_curve25519(impl_->store_, key);
}

result<void> engine::track(const std::string& user_id) {
    return impl_->engine_->track_user(user_id);
}

result<bool> engine::untrack(const std::string& user_id) {
    if (!sync::is_valid_user_id(user_id)) return not_a_user_id(user_id);
    return impl_->engine_->untrack_user(user_id);
}

result<void> engine::refresh(const std::string& user_id) {
    if (!sync::is_valid_user_id(user_id)) return not_a_user_id(user_id);
    return impl_->engine_->refresh_user(user_id);
}

result<std::vector<tracked_user>> engine::tracked_users() const {
    return sync::read_tracked_users(impl_->store_);
}

result<event_batch> engine::events_after(std::int64_t cursor, std::size_t limit) const {
    if (cursor < 0 || limit == 0 || limit > max_event_limit) {
        return error{errc::invalid_argument, "the cursor must be >= 0 and the limit 1 to 1000"};
    }
    auto read = impl_->store_.outbox().read_after(cursor, limit);
    if (!read) return read.error();
    event_batch batch;
    batch.next = read->empty() ? cursor : read->back().cursor;
    for (const auto& e : *read)
        batch.events.push_back(sync::to_public(e));
    return batch;
}

asio::awaitable<result<event_batch>> engine::wait_for_events(std::int64_t cursor,
                                                             std::chrono::milliseconds timeout,
                                                             std::size_t limit) {
    if (cursor < 0 || limit == 0 || limit > max_event_limit) {
        co_return error{errc::invalid_argument, "the cursor must be >= 0 and the limit 1 to 1000"};
    }
    co_return co_await sync::read_events(*impl_->engine_, impl_->store_, cursor, limit,
                                         steady_clock::now() + timeout);
}

result<std::int64_t> engine::consumer_cursor(const std::string& consumer) {
    if (!sync::is_valid_consumer_name(consumer)) {
        return error{errc::invalid_argument, "a consumer name is 1 to 64 of A-Z a-z 0-9 . _ -"};
    }
    auto& outbox = impl_->store_.outbox();
    if (auto r = outbox.add_consumer(consumer); !r) return r.error();
    auto all = outbox.consumers();
    if (!all) return all.error();
    for (const auto& c : *all) {
        if (c.name == consumer) return c.acknowledged;
    }
    return error{errc::storage_corrupt, "the consumer " + consumer + " vanished"};
}

result<std::int64_t> engine::acknowledge(const std::string& consumer, std::int64_t cursor) {
    if (!sync::is_valid_consumer_name(consumer)) {
        return error{errc::invalid_argument, "a consumer name is 1 to 64 of A-Z a-z 0-9 . _ -"};
    }
    auto& outbox = impl_->store_.outbox();
    // The store refuses unknown consumers and cursors beyond the last event: acknowledging
    // does not register a consumer, or a misspelt name would hold back pruning forever.
    auto acknowledged = outbox.acknowledge(consumer, cursor);
    if (!acknowledged) return acknowledged.error();
    if (auto pruned = outbox.prune(); !pruned) {
        impl_->log(sync::log_level::warning,
                   "pruning acknowledged events failed: " + pruned.error().message());
    }
    return *acknowledged;
}

engine::subscription_id engine::subscribe(std::int64_t after, event_callback callback) {
    return impl_->subscribe(after, std::move(callback));
}

void engine::unsubscribe(subscription_id id) {
    impl_->unsubscribe(id);
}

result<std::optional<one_time_key>> engine::take_one_time_key(const std::string& key_id) {
    std::string id = key_id;
    if (id.starts_with(one_time_key_prefix)) id.erase(0, one_time_key_prefix.size());
    auto taken = impl_->engine_->take_one_time_key(id);
    if (!taken) return taken.error();
    if (!*taken) return std::optional<one_time_key>{};
    impl_->log(sync::log_level::notice, "one-time key " + (*taken)->key_id + " handed out");
    return std::optional<one_time_key>(sync::to_public(**taken));
}

result<std::optional<one_time_key>> engine::take_one_time_key_by_public_key(
    const std::string& public_key) {
    auto taken = impl_->engine_->take_one_time_key_by_public_key(public_key);
    if (!taken) return taken.error();
    if (!*taken) return std::optional<one_time_key>{};
    impl_->log(sync::log_level::notice, "one-time key " + (*taken)->key_id + " handed out");
    return std::optional<one_time_key>(sync::to_public(**taken));
}

result<std::vector<fallback_key>> engine::fallback_keys() const {
    auto keys = impl_->engine_->fallback_keys();
    if (!keys) return keys.error();
    std::vector<fallback_key> out;
    for (const auto& k : *keys)
        out.push_back(sync::to_public(k));
    return out;
}

}  // namespace devlist
