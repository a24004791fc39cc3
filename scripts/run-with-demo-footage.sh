#!/usr/bin/env bash
# `make run`: serve the app and, the first time, bring in demo footage the way a school
# does: the real dock agent offloads simulated cameras on a simulated USB bus, over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATA=${BWC_DATA_DIR:-./var}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
DOCK=$DATA/demo-dock
export BWC_DOCK_STATE_DIR=$DOCK

"$BIN/bwc" serve &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  if "$BIN/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://$HOST:$PORT/api/v1/health" 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { echo "make run: the server did not start" >&2; exit 1; }
  sleep 0.2
done

if [ ! -e "$DOCK/demo-footage.done" ]; then
  echo "make run: docking two simulated cameras (the real agent, simulated USB)..."
  mkdir -p "$DOCK"
  if [ ! -e "$DOCK/enrolment.json" ]; then
    token=$("$BIN/bwc" docks add "Demo dock" --school NHS | tail -1)
    "$BIN/bwc-dock" enroll --service "http://$HOST:$PORT" --token "$token" >/dev/null
  fi
  cams=$DOCK/cameras
  rm -rf "$cams" && mkdir -p "$cams"
  "$BIN/bwc-dock" simulate --out "$cams/cam-a" --serial BWC-0002 --badge SRO-0001 --clips 3 --seconds 8
  # The second camera records HEVC, which browsers cannot play: its clips get proxies.
  "$BIN/bwc-dock" simulate --out "$cams/cam-b" --serial BWC-0003 --badge SRO-0001 --clips 2 --seconds 6 --seed 1 --codec hevc
  cat > "$cams/usb.json" <<JSON
{"devices": [
  {"vid": "0xb0d1", "pid": "0xca01", "serial": "BWC-0002", "manufacturer": "ExampleCam",
   "product": "EC-1", "interfaces": ["mass_storage"], "volume": "cam-a"},
  {"vid": "0xb0d1", "pid": "0xca01", "serial": "BWC-0003", "manufacturer": "ExampleCam",
   "product": "EC-1", "interfaces": ["mass_storage"], "volume": "cam-b"}
]}
JSON
  sleep 2.5  # the profile's stability window: files written less than 2 s ago are skipped
  "$BIN/bwc-dock" run --once --simulated-usb "$cams/usb.json" --report-dir "$DOCK/reports"
  touch "$DOCK/demo-footage.done"
  echo "make run: demo footage ingested; session reports in $DOCK/reports"
fi
echo "make run: serving on http://$HOST:$PORT/ (Ctrl-C to stop)"
wait "$server"
