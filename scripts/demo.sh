#!/usr/bin/env bash
# The demo: devlistd against the bundled test homeserver — no Matrix account needed.
#
# The test homeserver plays a lively scenario (people joining and leaving encrypted rooms,
# adding and removing devices, a forged device, a changed key, an unreachable server) while
# devlistd tracks it. At the end it prints what devlistd tracks and what it rejected, then stops.
# Ctrl-C stops it at any time. Usage: scripts/demo.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

scripts/bootstrap.sh
build=${DEVLIST_BUILD_DIR:-build}
echo "demo: building devlistd and the test homeserver (the first build takes a few minutes)..."
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target devlistd devlistctl devlist-test-homeserver \
  >/dev/null

work=$(mktemp -d -t devlistd-demo.XXXXXX)
hs_pid=""
devlistd_pid=""
stop() {
  trap - EXIT INT TERM
  [ -n "$devlistd_pid" ] && kill -TERM "$devlistd_pid" 2>/dev/null || true
  [ -n "$hs_pid" ] && kill -TERM "$hs_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "demo: stopped. Logs and the database are in $work"
}
trap stop EXIT
trap 'echo; stop; exit 130' INT TERM

# The homeserver picks a free port and prints its address first. Only the scenario's own lines
# are shown; every request it served is in homeserver.log.
"$build/tests/homeserver/devlist-test-homeserver" --listen 127.0.0.1:0 --scenario demo \
  --user "@bot:localhost:bot-password" >"$work/homeserver.log" 2>&1 &
hs_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -m1 -o 'http://127\.0\.0\.1:[0-9]*' "$work/homeserver.log" || true)
  [ -n "$url" ] && break
  kill -0 "$hs_pid" 2>/dev/null || { cat "$work/homeserver.log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "demo: the test homeserver did not start"; exit 1; }
tail -n +1 -f --pid="$hs_pid" "$work/homeserver.log" | grep --line-buffered '^\[demo' &

printf 'bot-password\n' >"$work/password"
chmod 600 "$work/password"
cat >"$work/devlistd.toml" <<TOML
homeserver = "$url"
user_id = "@bot:localhost"
device_id = "DEMOBOT"
password_file = "password"
database = "devlistd.db"
socket = "devlistd.sock"
sync_timeout_ms = 5000
TOML
echo "demo: homeserver at $url; devlistd config at $work/devlistd.toml"
"$build/daemon/devlistd" --config "$work/devlistd.toml" 2>&1 | tee "$work/devlistd.log" |
  sed -u 's/^/    devlistd | /' &
devlistd_pid=$(pgrep -n -f "devlistd --config $work/devlistd.toml" || true)

# Wait for the scenario to finish, and a few seconds more for devlistd to catch up.
until grep -q 'scenario complete' "$work/homeserver.log"; do
  kill -0 "$hs_pid" 2>/dev/null || exit 1
  sleep 0.5
done
sleep 4

# What devlistd knows, asked the way a program or a person would: devlistctl over the socket.
ctl() { "$build/daemon/devlistctl" --socket "$work/devlistd.sock" "$@"; }
echo
echo "=== devlistctl status ==="
ctl status
echo
echo "=== devlistctl tracked: who devlistd tracks ==="
ctl tracked
for user in @alice:localhost @bob:localhost @dave:localhost; do
  echo
  echo "=== devlistctl devices $user --fresh: verified devices ==="
  ctl devices "$user" --fresh --timeout 5000
done
echo
echo "=== What devlistd rejected or flagged (its security log, from the socket API) ==="
curl -s --unix-socket "$work/devlistd.sock" http://devlistd/v1/security-events
echo
echo
echo "=== devlistctl events --limit 8: the first events kept for local programs ==="
ctl events --limit 8
echo
