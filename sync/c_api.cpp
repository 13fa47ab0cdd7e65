// include/devlist/devlist.h over devlist::engine. The C API is a boundary between threads: each
// call is carried out on the library's one io thread (post, then wait for the answer with a
// promise), so the engine itself stays single-threaded and lock-free. No exception crosses it.
#include "devlist/devlist.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "devlist/engine.hpp"
#include "devlist/json.hpp"

namespace asio = boost::asio;

struct devlist_handle {
    enum class state { created, running, stopping, stopped };

    asio::io_context io{1};
    devlist::engine_config config;
    std::optional<devlist::engine> engine;

    // Guards `state`; the io thread's own members below are touched on the io thread only, or
    // by the caller while no io thread runs.
    std::mutex mutex;
    std::condition_variable state_changed;
    state current = state::created;
    std::thread thread;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

    // ---- the io thread's ----
    asio::cancellation_signal stop_run;
    std::list<asio::cancellation_signal> waits;  // one per call waiting on the io thread
    std::optional<devlist::engine::subscription_id> subscription;
    std::atomic<bool> running{false};
    // How run() ended; written on the io thread, read after it was joined.
    std::optional<std::string> failure;

    // Set before devlist_start only, read on the io thread afterwards (the thread's start
    // orders the two).
    devlist_sync_callback sync_callback = nullptr;
    void* sync_user_data = nullptr;
};

namespace {

using devlist::errc;
using devlist::result;

char* copy_string(std::string_view s) {
    auto* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (!out) return nullptr;
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
    return out;
}

void set_error(char** error, std::string_view message) {
    if (error) *error = copy_string(message);
}

void set_error(char** error, const devlist::error& e) {
    set_error(error, e.detail.empty() ? e.message() : e.detail);
}

const char* level_name(devlist::log_level level) {
    switch (level) {
        case devlist::log_level::debug:
            return "debug";
        case devlist::log_level::info:
            return "info";
        case devlist::log_level::notice:
            return "notice";
        case devlist::log_level::warning:
            return "warning";
        case devlist::log_level::error:
            return "error";
    }
    return "error";
}

bool is_cancellation(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& error) {
        return error.code() == asio::error::operation_aborted;
    } catch (...) {
        return false;
    }
}

bool on_io_thread(devlist_handle* h) {
    return h->io.get_executor().running_in_this_thread();
}

// Waits out a devlist_stop() in progress; returns with the lock held.
std::unique_lock<std::mutex> lock_settled(devlist_handle* h) {
    std::unique_lock lock(h->mutex);
    h->state_changed.wait(lock, [h] { return h->current != devlist_handle::state::stopping; });
    return lock;
}

// Runs f on the io thread and returns its answer: directly when called there (a callback) or
// when no io thread runs, else posted and waited for.
template <class F>
auto on_library_thread(devlist_handle* h, F f) -> decltype(f()) {
    using answer = decltype(f());
    auto lock = lock_settled(h);
    if (h->current != devlist_handle::state::running || on_io_thread(h)) {
        lock.unlock();
        return f();
    }
    std::promise<answer> promise;
    auto future = promise.get_future();
    // Posted under the lock: devlist_stop() changes the state first, and the io thread runs
    // everything posted before it lets go of its work guard.
    asio::post(h->io, [&] {
        try {
            promise.set_value(f());
        } catch (...) {
            promise.set_exception(std::current_exception());
        }
    });
    lock.unlock();
    return future.get();
}

// A call that may wait: `wait()` (a coroutine) on the io thread, cancelled by devlist_stop();
// `now()` when it cannot wait — no io thread runs — or when it was cancelled.
template <class T>
result<T> waiting_call(devlist_handle* h, std::function<asio::awaitable<result<T>>()> wait,
                       std::function<result<T>()> now) {
    auto lock = lock_settled(h);
    if (h->current != devlist_handle::state::running) {
        lock.unlock();
        return now();
    }
    if (on_io_thread(h)) {
        return devlist::error{errc::invalid_argument,
                              "a call that waits cannot be made from a callback (it would block "
                              "the thread that must answer it); use timeout 0"};
    }
    std::promise<result<T>> promise;
    auto future = promise.get_future();
    asio::post(h->io, [&] {
        auto signal = h->waits.emplace(h->waits.end());
        asio::co_spawn(h->io, wait(),
                       asio::bind_cancellation_slot(
                           signal->slot(), [&, h, signal](std::exception_ptr e, result<T> r) {
                               h->waits.erase(signal);
                               if (!e) {
                                   promise.set_value(std::move(r));
                                   return;
                               }
                               if (is_cancellation(e)) {
                                   promise.set_value(now());  // stopped: what there is now
                               } else {
                                   promise.set_exception(e);
                               }
                           }));
    });
    lock.unlock();
    return future.get();
}

// The boundary: a JSON answer or NULL with the error; no exception gets out.
char* json_answer(char** error, const std::function<result<std::optional<std::string>>()>& f) {
    try {
        auto r = f();
        if (!r) {
            set_error(error, r.error());
            return nullptr;
        }
        if (!*r) return nullptr;  // "not found" is not an error
        char* out = copy_string(**r);
        if (!out) set_error(error, "out of memory");
        return out;
    } catch (const std::exception& e) {
        set_error(error, std::string("internal error: ") + e.what());
        return nullptr;
    }
}

template <class T>
result<std::optional<std::string>> rendered(const result<T>& r) {
    if (!r) return r.error();
    return std::optional<std::string>(devlist::to_json(*r));
}

template <class F>
int status_call(char** error, F f) {
    try {
        result<int> r = f();
        if (!r) {
            set_error(error, r.error());
            return -1;
        }
        return *r;
    } catch (const std::exception& e) {
        set_error(error, std::string("internal error: ") + e.what());
        return -1;
    }
}

// Log lines go to standard error; the sync hook calls the handle's sync callback, if any.
devlist::engine_hooks make_hooks(devlist_handle* h) {
    devlist::engine_hooks hooks;
    hooks.log = [](devlist::log_level level, std::string_view line) {
        std::fprintf(stderr, "devlist: %s: %.*s\n", level_name(level),
                     static_cast<int>(line.size()), line.data());
    };
    hooks.on_sync = [h](const devlist::sync_response_view& v) -> result<void> {
        if (!h->sync_callback) return {};
        int taken = h->sync_callback(v.body.data(), v.body.size(), h->sync_user_data);
        if (taken != 0) {
            return devlist::error{errc::invalid_argument,
                                  "the sync callback returned " + std::to_string(taken)};
        }
        return {};
    };
    return hooks;
}

devlist_handle* create(result<devlist::engine_config> config, char** error) {
    if (!config) {
        set_error(error, config.error());
        return nullptr;
    }
    try {
        auto h = std::make_unique<devlist_handle>();
        h->config = std::move(*config);
        auto engine = devlist::engine::create(h->io.get_executor(), h->config, make_hooks(h.get()));
        if (!engine) {
            set_error(error, engine.error());
            return nullptr;
        }
        h->engine.emplace(std::move(*engine));
        return h.release();
    } catch (const std::exception& e) {
        set_error(error, std::string("internal error: ") + e.what());
        return nullptr;
    }
}

// engine::wait_for_sync in the shape of the other waiting calls.
asio::awaitable<result<devlist::status>> status_after_sync(devlist::engine* engine,
                                                           std::chrono::milliseconds timeout) {
    co_return co_await engine->wait_for_sync(timeout);
}

// The engine's run, ended: why, for devlist_stop.
void record_end(devlist_handle* h, std::exception_ptr e, const result<void>& r) {
    h->running = false;
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            h->failure = std::string("a callback threw: ") + ex.what();
        } catch (...) {
            h->failure = "a callback threw";
        }
    } else if (!r) {
        h->failure = r.error().message();
    }
}

}  // namespace

extern "C" {

const char* devlist_version(void) {
    return devlist::library_version();
}

devlist_handle* devlist_create_from_config_file(const char* path, char** error) {
    if (!path) {
        set_error(error, "no configuration file given");
        return nullptr;
    }
    return create(devlist::load_engine_config(path), error);
}

devlist_handle* devlist_create_from_config_string(const char* toml, const char* base_dir,
                                                  char** error) {
    if (!toml) {
        set_error(error, "no configuration given");
        return nullptr;
    }
    std::error_code ec;
    std::filesystem::path base =
        base_dir ? std::filesystem::path(base_dir) : std::filesystem::current_path(ec);
    return create(devlist::parse_engine_config(toml, base), error);
}

int devlist_set_sync_callback(devlist_handle* d, devlist_sync_callback callback, void* user_data,
                              char** error) {
    return status_call(error, [&]() -> result<int> {
        auto lock = lock_settled(d);
        if (d->current != devlist_handle::state::created) {
            return devlist::error{errc::invalid_argument,
                                  "set the sync callback before devlist_start"};
        }
        d->sync_callback = callback;
        d->sync_user_data = user_data;
        return 0;
    });
}

int devlist_start(devlist_handle* d, char** error) {
    return status_call(error, [&]() -> result<int> {
        auto lock = lock_settled(d);
        if (d->current != devlist_handle::state::created) {
            return devlist::error{errc::invalid_argument,
                                  "the engine runs already or ran before; create a new handle"};
        }
        // Keeps the io thread alive until devlist_stop, also after the engine ended on its own,
        // so that posted calls are always answered.
        d->work.emplace(d->io.get_executor());
        d->running = true;
        asio::co_spawn(d->io, d->engine->run(),
                       asio::bind_cancellation_slot(d->stop_run.slot(),
                                                    [d](std::exception_ptr e, result<void> r) {
                                                        record_end(d, std::move(e), r);
                                                    }));
        d->thread = std::thread([d] { d->io.run(); });
        d->current = devlist_handle::state::running;
        return 0;
    });
}

int devlist_stop(devlist_handle* d, char** error) {
    return status_call(error, [&]() -> result<int> {
        {
            auto lock = lock_settled(d);
            if (d->current == devlist_handle::state::running) {
                if (on_io_thread(d)) {
                    return devlist::error{errc::invalid_argument,
                                          "devlist_stop cannot be called from a callback"};
                }
                d->current = devlist_handle::state::stopping;
            } else {
                if (d->current == devlist_handle::state::created) return 0;
                // Stopped before: report how the run ended once more.
                if (d->failure) return devlist::error{errc::invalid_argument, *d->failure};
                return 0;
            }
        }
        asio::post(d->io, [d] {
            d->stop_run.emit(asio::cancellation_type::terminal);
            for (auto& wait : d->waits)
                wait.emit(asio::cancellation_type::terminal);
        });
        d->work.reset();
        d->thread.join();
        {
            std::lock_guard lock(d->mutex);
            d->current = devlist_handle::state::stopped;
        }
        d->state_changed.notify_all();
        if (d->failure) return devlist::error{errc::invalid_argument, *d->failure};
        return 0;
    });
}

int devlist_is_running(devlist_handle* d) {
    return d->running ? 1 : 0;
}

void devlist_destroy(devlist_handle* d) {
    if (!d) return;
    char* ignored = nullptr;
    devlist_stop(d, &ignored);
    std::free(ignored);
    delete d;
}

void devlist_free_string(char* s) {
    std::free(s);
}

char* devlist_status(devlist_handle* d, char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        return std::optional<std::string>(
            devlist::to_json(on_library_thread(d, [&] { return d->engine->status(); })));
    });
}

char* devlist_wait_for_sync(devlist_handle* d, int64_t timeout_ms, char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        auto now = [&]() -> result<devlist::status> { return d->engine->status(); };
        if (timeout_ms <= 0) return rendered(on_library_thread(d, now));
        auto wait = std::chrono::milliseconds(timeout_ms);
        return rendered(waiting_call<devlist::status>(
            d, [&] { return status_after_sync(&*d->engine, wait); }, now));
    });
}

char* devlist_devices(devlist_handle* d, const char* user_id, int fresh, int64_t timeout_ms,
                      char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        if (!user_id) return devlist::error{errc::invalid_argument, "no user ID given"};
        std::string user(user_id);
        auto now = [&] { return d->engine->devices(user); };
        if (!fresh || timeout_ms <= 0) return rendered(on_library_thread(d, now));
        auto wait = std::chrono::milliseconds(timeout_ms);
        return rendered(waiting_call<devlist::user_devices>(
            d, [&] { return d->engine->fresh_devices(user, {wait}); }, now));
    });
}

char* devlist_device_by_curve25519(devlist_handle* d, const char* key, char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        if (!key) return devlist::error{errc::invalid_argument, "no key given"};
        auto found = on_library_thread(d, [&] { return d->engine->device_by_curve25519(key); });
        if (!found) return found.error();
        if (!*found) return std::optional<std::string>{};
        return std::optional<std::string>(devlist::to_json(**found));
    });
}

char* devlist_tracked(devlist_handle* d, char** error) {
    return json_answer(error, [&] {
        return rendered(on_library_thread(d, [&] { return d->engine->tracked_users(); }));
    });
}

int devlist_track(devlist_handle* d, const char* user_id, char** error) {
    return status_call(error, [&]() -> result<int> {
        if (!user_id) return devlist::error{errc::invalid_argument, "no user ID given"};
        auto r = on_library_thread(d, [&] { return d->engine->track(user_id); });
        if (!r) return r.error();
        return 0;
    });
}

int devlist_untrack(devlist_handle* d, const char* user_id, char** error) {
    return status_call(error, [&]() -> result<int> {
        if (!user_id) return devlist::error{errc::invalid_argument, "no user ID given"};
        auto r = on_library_thread(d, [&] { return d->engine->untrack(user_id); });
        if (!r) return r.error();
        return *r ? 1 : 0;
    });
}

int devlist_refresh(devlist_handle* d, const char* user_id, char** error) {
    return status_call(error, [&]() -> result<int> {
        if (!user_id) return devlist::error{errc::invalid_argument, "no user ID given"};
        auto r = on_library_thread(d, [&] { return d->engine->refresh(user_id); });
        if (!r) return r.error();
        return 0;
    });
}

char* devlist_events(devlist_handle* d, const char* consumer, int64_t after, int64_t timeout_ms,
                     int limit, char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        if (limit < 1 || limit > 1000) {
            return devlist::error{errc::invalid_argument, "limit must be 1 to 1000"};
        }
        const std::string name = consumer ? consumer : "default";
        const auto n = static_cast<std::size_t>(limit);
        std::int64_t start = after;
        if (after < 0) {
            auto cursor = on_library_thread(d, [&] { return d->engine->consumer_cursor(name); });
            if (!cursor) return cursor.error();
            start = *cursor;
        }
        auto now = [&] { return d->engine->events_after(start, n); };
        if (timeout_ms <= 0) return rendered(on_library_thread(d, now));
        auto wait = std::chrono::milliseconds(timeout_ms);
        return rendered(waiting_call<devlist::event_batch>(
            d, [&] { return d->engine->wait_for_events(start, wait, n); }, now));
    });
}

int64_t devlist_ack(devlist_handle* d, const char* consumer, int64_t cursor, char** error) {
    try {
        const std::string name = consumer ? consumer : "default";
        auto r = on_library_thread(d, [&] { return d->engine->acknowledge(name, cursor); });
        if (!r) {
            set_error(error, r.error());
            return -1;
        }
        return *r;
    } catch (const std::exception& e) {
        set_error(error, std::string("internal error: ") + e.what());
        return -1;
    }
}

int devlist_set_event_callback(devlist_handle* d, int64_t after, devlist_event_callback callback,
                               void* user_data, char** error) {
    return status_call(error, [&]() -> result<int> {
        on_library_thread(d, [&] {
            if (d->subscription) d->engine->unsubscribe(*d->subscription);
            d->subscription.reset();
            if (!callback) return 0;
            std::int64_t start = after >= 0 ? after : d->engine->status().last_event_cursor;
            d->subscription =
                d->engine->subscribe(start, [callback, user_data](const devlist::event_batch& b) {
                    callback(devlist::to_json(b).c_str(), user_data);
                });
            return 0;
        });
        return 0;
    });
}

char* devlist_take_one_time_key(devlist_handle* d, const char* which, int by_public_key,
                                char** error) {
    return json_answer(error, [&]() -> result<std::optional<std::string>> {
        if (!which) return devlist::error{errc::invalid_argument, "no key given"};
        auto taken = on_library_thread(d, [&] {
            return by_public_key ? d->engine->take_one_time_key_by_public_key(which)
                                 : d->engine->take_one_time_key(which);
        });
        if (!taken) return taken.error();
        if (!*taken) return std::optional<std::string>{};
        return std::optional<std::string>(devlist::to_json(**taken));
    });
}

char* devlist_fallback_keys(devlist_handle* d, char** error) {
    return json_answer(error, [&] {
        return rendered(on_library_thread(d, [&] { return d->engine->fallback_keys(); }));
    });
}

}  // extern "C"
