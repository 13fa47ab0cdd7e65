#!/usr/bin/env python3
"""An example bot on libdevlist's C API (devlist/devlist.h) through ctypes.

    python_bot.py LIBDEVLIST CONFIG USER_ID [--until-new-device]

It starts the engine from devlistd's configuration format, waits until the first sync is in,
tracks USER_ID, prints the user's devices once the list is fresh, and then prints the events
the library's callback delivers. With --until-new-device it stops once a device it had not
listed appears. LIBDEVLIST is the path of libdevlist.so (or just "libdevlist.so.0" when it is
installed where the dynamic linker looks).
"""

import ctypes
import json
import queue
import sys

EVENT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


class DevlistError(Exception):
    pass


class Devlist:
    """One engine on the library's own thread; every method may be called from any thread."""

    def __init__(self, library, config_path):
        self._lib = lib = ctypes.CDLL(library)
        handle, text, error = ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
        # Strings the library returns are malloc'd: take them as pointers, copy, free.
        lib.devlist_version.restype = ctypes.c_char_p
        lib.devlist_create_from_config_file.argtypes = [ctypes.c_char_p, error]
        lib.devlist_create_from_config_file.restype = handle
        lib.devlist_start.argtypes = [handle, error]
        lib.devlist_stop.argtypes = [handle, error]
        lib.devlist_destroy.argtypes = [handle]
        lib.devlist_free_string.argtypes = [ctypes.c_void_p]
        lib.devlist_status.argtypes = [handle, error]
        lib.devlist_status.restype = text
        lib.devlist_wait_for_sync.argtypes = [handle, ctypes.c_int64, error]
        lib.devlist_wait_for_sync.restype = text
        lib.devlist_devices.argtypes = [handle, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64,
                                        error]
        lib.devlist_devices.restype = text
        lib.devlist_track.argtypes = [handle, ctypes.c_char_p, error]
        lib.devlist_set_event_callback.argtypes = [handle, ctypes.c_int64, EVENT_CALLBACK,
                                                   ctypes.c_void_p, error]
        self._callback = None  # ctypes must keep the C function pointer alive
        self._handle = self._call(lib.devlist_create_from_config_file, config_path.encode())
        if not self._handle:
            raise DevlistError("devlist_create_from_config_file failed")

    def _call(self, function, *args):
        """Calls function(*args, &error); raises with the library's message on failure."""
        error = ctypes.c_void_p()
        result = function(*args, ctypes.byref(error))
        if error.value:
            message = ctypes.string_at(error.value).decode()
            self._lib.devlist_free_string(error)
            raise DevlistError(message)
        return result

    def _json(self, function, *args):
        pointer = self._call(function, self._handle, *args)
        if not pointer:
            return None  # "not found"
        try:
            return json.loads(ctypes.string_at(pointer).decode())
        finally:
            self._lib.devlist_free_string(pointer)

    def version(self):
        return self._lib.devlist_version().decode()

    def start(self):
        self._call(self._lib.devlist_start, self._handle)

    def stop(self):
        self._call(self._lib.devlist_stop, self._handle)

    def close(self):
        self._lib.devlist_destroy(self._handle)
        self._handle = None

    def status(self):
        return self._json(self._lib.devlist_status)

    def wait_for_sync(self, timeout_ms):
        """The status once the first sync since start() is in (or at the timeout)."""
        return self._json(self._lib.devlist_wait_for_sync, timeout_ms)

    def devices(self, user_id, fresh=False, timeout_ms=10000):
        return self._json(self._lib.devlist_devices, user_id.encode(), int(fresh), timeout_ms)

    def track(self, user_id):
        self._call(self._lib.devlist_track, self._handle, user_id.encode())

    def on_events(self, function, after=-1):
        """function(batch) for each batch of events committed after `after` (-1: from now on),
        called on the library's thread: hand work over to your own thread, as below."""
        def trampoline(events_json, _user_data):
            function(json.loads(events_json.decode()))
        self._callback = EVENT_CALLBACK(trampoline)
        self._call(self._lib.devlist_set_event_callback, self._handle, after, self._callback,
                   None)


def main(argv):
    if len(argv) not in (4, 5) or (len(argv) == 5 and argv[4] != "--until-new-device"):
        print(__doc__, file=sys.stderr)
        return 2
    library, config, user = argv[1:4]
    until_new_device = len(argv) == 5

    bot = Devlist(library, config)
    print("libdevlist", bot.version())
    bot.start()
    try:
        status = bot.wait_for_sync(30000)
        if status["sync"]["syncs"] < 1:
            raise DevlistError("no sync within 30 s: %s" % status["last_error"])
        print("synced as %s on %s: %d sync(s), next_batch %s" % (
            status["user_id"], status["device_id"], status["sync"]["syncs"],
            status["sync"]["next_batch"]))

        bot.track(user)
        answer = bot.devices(user, fresh=True, timeout_ms=30000)
        print("%s has %d device(s)%s" % (user, len(answer["devices"]),
                                         " (the list may be outdated)" if answer["outdated"]
                                         else ""))
        known = set()
        for device in answer["devices"]:
            print("device %s ed25519=%s curve25519=%s name=%s" % (
                device["device_id"], device["ed25519"], device["curve25519"],
                device["display_name"] or "-"))
            known.add(device["device_id"])

        batches = queue.Queue()
        bot.on_events(batches.put)
        print("ready", flush=True)
        while True:
            batch = batches.get(timeout=120)
            new_device = False
            for event in batch["events"]:
                data = event["data"]
                print("event %d %s %s" % (event["cursor"], event["type"],
                                         json.dumps(data, sort_keys=True)))
                if (event["type"] == "device_added" and data.get("user_id") == user
                        and data.get("device_id") not in known):
                    print("new device %s ed25519=%s" % (data["device_id"], data["ed25519"]))
                    new_device = True
            sys.stdout.flush()
            if new_device and until_new_device:
                return 0
    finally:
        bot.stop()
        bot.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
