/* libdevlist's C API: devlistd's engine in a bot's own process, for any language that can call
 * C (Python's ctypes, Go's cgo, Rust's FFI...). Link with -ldevlist (pkg-config devlist).
 *
 *   char *err = NULL;
 *   devlist_handle *d = devlist_create_from_config_file("bot.toml", &err);
 *   if (!d || devlist_start(d, &err) != 0) { fprintf(stderr, "%s\n", err); ... }
 *   char *json = devlist_devices(d, "@alice:example.org", 1, 10000, &err);
 *   ...
 *   devlist_free_string(json);
 *   devlist_destroy(d);   (stops it first)
 *
 * Answers are the JSON documents of devlistd's socket API (README, "Socket API"), as UTF-8
 * strings the caller owns and frees with devlist_free_string(). A call that fails returns NULL
 * (or -1) and, if `error` is not NULL, sets *error to a message the caller frees with
 * devlist_free_string(); on success *error is left alone.
 *
 * Threads: devlist_start() runs the engine on a thread of its own (the library's thread). Every
 * call may be made from any thread, also concurrently: it is carried out on the library's thread
 * and waits for the answer there. Callbacks run on the library's thread; they may call the
 * non-waiting functions (timeout 0), but a call that waits (timeout_ms > 0) from a callback
 * fails at once, since it would wait for the thread it blocks; so does devlist_stop(). Before
 * devlist_start() and after devlist_stop(), calls run on the calling thread and answer at once
 * (nothing could change while they waited); make them from one thread at a time.
 *
 * Stopping: devlist_stop() cancels the engine and joins its thread; nothing half-done is
 * committed. Calls waiting at that moment return early with what they have. */
#ifndef DEVLIST_DEVLIST_H
#define DEVLIST_DEVLIST_H

#include <stddef.h>
#include <stdint.h>

#include "devlist/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct devlist_handle devlist_handle;

/* "0.1.0". */
DEVLIST_API const char* devlist_version(void);

/* ---- creating and running ---- */

/* A configuration file in devlistd's TOML format (plus `sync_filter`, see engine.hpp); relative
 * paths are relative to its folder. Reads the secret files, opens the database (one process at a
 * time) and loads or creates the sealing key; nothing touches the network yet. Log lines at or
 * above the file's log_level (default notice) go to standard error. NULL on error. */
DEVLIST_API devlist_handle* devlist_create_from_config_file(const char* path, char** error);
/* The same from TOML text; relative paths are relative to base_dir (NULL: the working folder). */
DEVLIST_API devlist_handle* devlist_create_from_config_string(const char* toml,
                                                              const char* base_dir, char** error);

/* Called with each /sync response body (JSON, `size` bytes, not NUL-terminated) before the
 * engine commits its batch. Return 0 when the bot took the batch; anything else leaves it
 * uncommitted and the same batch is offered again after a backoff, so the bot misses nothing.
 * Runs on the library's thread and holds up the sync loop while it runs. Before devlist_start()
 * only; NULL removes it. */
typedef int (*devlist_sync_callback)(const char* body, size_t size, void* user_data);
DEVLIST_API int devlist_set_sync_callback(devlist_handle* d, devlist_sync_callback callback,
                                          void* user_data, char** error);

/* Starts the engine on the library's thread: it logs in, syncs and keeps the device lists and
 * keys. 0, or -1 if it runs already or ran before (create a new handle to run again). */
DEVLIST_API int devlist_start(devlist_handle* d, char** error);
/* Stops the engine and joins the library's thread. 0 when the engine stopped cleanly or was
 * not running; -1 with the reason when the engine had stopped on its own with an error (the
 * credential was refused, the database failed...), and -1 when called from a callback. */
DEVLIST_API int devlist_stop(devlist_handle* d, char** error);
/* 1 while the engine runs, 0 once it stopped (on its own: see devlist_stop for why). */
DEVLIST_API int devlist_is_running(devlist_handle* d);
/* Stops the engine if it runs and frees the handle. NULL is ignored. */
DEVLIST_API void devlist_destroy(devlist_handle* d);

DEVLIST_API void devlist_free_string(char* s);

/* ---- queries: JSON answers ---- */

/* GET /v1/status. */
DEVLIST_API char* devlist_status(devlist_handle* d, char** error);
/* The status once the engine committed its first /sync batch since devlist_start(), or at the
 * timeout, or when the engine stopped: "sync"."syncs" and "phase" say which. Until the first
 * sync the engine knows only what its database held. On a database that synced before, the first
 * sync is a long-poll: it comes when something happened, or after sync_timeout_ms. */
DEVLIST_API char* devlist_wait_for_sync(devlist_handle* d, int64_t timeout_ms, char** error);
/* GET /v1/users/{user_id}/devices; with fresh != 0, waits up to timeout_ms until the list is
 * fresh ("outdated" says whether it is). */
DEVLIST_API char* devlist_devices(devlist_handle* d, const char* user_id, int fresh,
                                  int64_t timeout_ms, char** error);
/* GET /v1/devices/by-curve25519/{key}. NULL without an error when no known device has the
 * key (check *error). */
DEVLIST_API char* devlist_device_by_curve25519(devlist_handle* d, const char* curve25519_key,
                                               char** error);
/* GET /v1/tracked. */
DEVLIST_API char* devlist_tracked(devlist_handle* d, char** error);

/* ---- tracking: 0 or -1 ---- */

DEVLIST_API int devlist_track(devlist_handle* d, const char* user_id, char** error);
/* 1 if the user was tracked on request (that reason is dropped), 0 if not, -1 on error. */
DEVLIST_API int devlist_untrack(devlist_handle* d, const char* user_id, char** error);
DEVLIST_API int devlist_refresh(devlist_handle* d, const char* user_id, char** error);

/* ---- the event stream ---- */

/* GET /v1/events: {"events": [...], "next": cursor}. Events after `after`, or after the
 * consumer's acknowledged cursor when `after` is negative (consumer NULL: "default"; a new name
 * is registered and starts after the last event so far). Waits up to timeout_ms for an event
 * when there is none yet; limit 1 to 1000. */
DEVLIST_API char* devlist_events(devlist_handle* d, const char* consumer, int64_t after,
                                 int64_t timeout_ms, int limit, char** error);
/* The consumer (NULL: "default") handled every event up to `cursor`. The consumer's cursor
 * afterwards, or -1. */
DEVLIST_API int64_t devlist_ack(devlist_handle* d, const char* consumer, int64_t cursor,
                                char** error);

/* Called with {"events": [...], "next": cursor} for each batch of events committed after
 * `after` (negative: after the last event so far), in order, while the engine runs. Delivery is
 * in memory; acknowledge through a consumer to survive restarts. Replaces the callback set
 * before; NULL removes it. */
typedef void (*devlist_event_callback)(const char* events_json, void* user_data);
DEVLIST_API int devlist_set_event_callback(devlist_handle* d, int64_t after,
                                           devlist_event_callback callback, void* user_data,
                                           char** error);

/* ---- the own device's private keys ---- */

/* POST /v1/keys/one-time/take: {"key_id", "public_key", "private_key"}, erased from the
 * database as it is handed out. `which` is a key ID (by_public_key 0) or a public key (1). NULL
 * without an error when there is no such key. */
DEVLIST_API char* devlist_take_one_time_key(devlist_handle* d, const char* which, int by_public_key,
                                            char** error);
/* GET /v1/keys/fallback. */
DEVLIST_API char* devlist_fallback_keys(devlist_handle* d, char** error);

#ifdef __cplusplus
}
#endif

#endif /* DEVLIST_DEVLIST_H */
