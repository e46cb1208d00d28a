#!/usr/bin/env bash
# Start Janus (apt package `janus`, 1.1.x) as the comparison SFU for theraroom-load.
#
# Run it INSIDE a private network namespace (`unshare -n`; this script brings lo up).
# It:
#   1. creates the interface Janus gathers its ICE candidate on: a veth pair
#      jns0/jns1 (no `dummy` module here), with on jns0:
#        10.99.0.1/32  Janus's only ICE host candidate (ice_enforce_list = this IP)
#        127.0.0.1/32  so Janus can answer clients bound to 127.0.0.1 (see below)
#        10.99.0.2/32  an alternative, non-loopback address clients may bind
#   2. writes a config (videoroom plugin + websockets transport only) into a temp dir,
#      from copies of /etc/janus/*.jcfg;
#   3. starts Janus in the background, writes its pid to $JANUS_DIR/janus.pid, and waits
#      (bounded) until the WebSocket port accepts connections;
#   4. prints KEY=VALUE lines, the last one `JANUS_WS_URL=ws://IP:PORT`, and exits 0.
# Stop: loadtests/janus/stop.sh JANUS_DIR   (or: kill "$(cat JANUS_DIR/janus.pid)")
#
# Why the extra addresses: Janus never gathers candidates on a loopback interface
# (it skips IFF_LOOPBACK), and libnice pins its ICE sockets to the candidate's
# interface with IP_UNICAST_IF (ifindex of jns0). Every packet Janus sends is routed
# as if it had to leave through jns0: to 127.0.0.1 that finds no route (the
# `local 127.0.0.0/8 dev lo` route belongs to lo) unless jns0 also owns 127.0.0.1;
# the local route `local 127.0.0.1 dev jns0` then matches the pinned interface and
# the packet is delivered locally (through lo) to the client's 127.0.0.1 socket.
# The client's own packets to 10.99.0.1 take the plain local path; nothing ever
# crosses the veth wire (so no ARP, no accept_local, no route_localnet needed).
#
# Usage: start.sh [WS_PORT]
# Environment (all optional):
#   JANUS_WS_PORT      WebSocket port (default 8188; the first argument wins)
#   JANUS_WS_IP        address the WebSocket server binds (default 127.0.0.1)
#   JANUS_DIR          work dir for config, log, pid (default: mktemp -d /tmp/janus.XXXXXX)
#   JANUS_ICE_IF       interface for ICE (default jns0; its veth peer is ${JANUS_ICE_IF}p)
#   JANUS_ICE_IP       Janus's ICE address (default 10.99.0.1)
#   JANUS_CLIENT_IPS   addresses clients may bind their ICE sockets to; each is added
#                      as /32 on JANUS_ICE_IF (default "127.0.0.1 10.99.0.2")
#   JANUS_RTP_RANGE    RTP/RTCP (ICE) UDP port range (default 20000-40000)
#   JANUS_DEBUG_LEVEL  0-7 (default 2: fatal/errors only... Janus's own default is 4)
#   JANUS_EVENT_LOOPS  if set, a fixed number of media event loops (default: Janus's
#                      default, one loop thread per handle)
#   JANUS_SESSION_TIMEOUT  seconds without any request (keepalive) before a session is
#                      dropped (default 60)
#   JANUS_START_TIMEOUT    seconds to wait for the port (default 20)
set -euo pipefail

WS_PORT="${1:-${JANUS_WS_PORT:-8188}}"
WS_IP="${JANUS_WS_IP:-127.0.0.1}"
ICE_IF="${JANUS_ICE_IF:-jns0}"
PEER_IF="${ICE_IF}p"
ICE_IP="${JANUS_ICE_IP:-10.99.0.1}"
CLIENT_IPS="${JANUS_CLIENT_IPS:-127.0.0.1 10.99.0.2}"
RTP_RANGE="${JANUS_RTP_RANGE:-20000-40000}"
DEBUG_LEVEL="${JANUS_DEBUG_LEVEL:-2}"
SESSION_TIMEOUT="${JANUS_SESSION_TIMEOUT:-60}"
START_TIMEOUT="${JANUS_START_TIMEOUT:-20}"
LIBDIR=/usr/lib/x86_64-linux-gnu/janus

command -v janus >/dev/null || { echo "start.sh: janus not installed (apt-get install -y janus)" >&2; exit 1; }
[ -d "$LIBDIR/plugins" ] || LIBDIR="$(dirname "$(dirname "$(dpkg -L janus | grep -m1 '/plugins/libjanus_videoroom.so$')")")"

# --- Guard: refuse to touch a namespace with real interfaces or routes. -------------
if ip route show | grep -q . || ip link show | grep -qE '^[0-9]+: (eth|en|wl|br|docker)'; then
    echo "start.sh: this namespace has routes or real interfaces; run inside 'unshare -n'" >&2
    exit 1
fi
ip link set lo up
port_open() {
    # bash's /dev/tcp: succeeds once something accepts on WS_IP:WS_PORT.
    (exec 3<>"/dev/tcp/$WS_IP/$WS_PORT") 2>/dev/null
}
if port_open; then
    # Janus would start anyway, without its WebSocket server, and we would talk to
    # whatever already listens there.
    echo "start.sh: $WS_IP:$WS_PORT is already in use in this namespace" >&2
    exit 1
fi
JANUS_DIR="${JANUS_DIR:-$(mktemp -d /tmp/janus.XXXXXX)}"

# --- 1. The ICE interface (idempotent: a second Janus in the namespace reuses it). --
if ! ip link show "$ICE_IF" >/dev/null 2>&1; then
    ip link add "$ICE_IF" type veth peer name "$PEER_IF"
fi
for a in "$ICE_IP" $CLIENT_IPS; do
    ip addr replace "$a/32" dev "$ICE_IF"
done
# Both ends up, or jns0 has no carrier (not RUNNING) and Janus skips it.
ip link set "$PEER_IF" up
ip link set "$ICE_IF" up

# --- 2. Config: copies of /etc/janus/*.jcfg, then the few settings we need. --------
mkdir -p "$JANUS_DIR/conf" "$JANUS_DIR/plugins" "$JANUS_DIR/transports" \
         "$JANUS_DIR/events" "$JANUS_DIR/loggers"
cp /etc/janus/janus.jcfg /etc/janus/janus.plugin.videoroom.jcfg \
   /etc/janus/janus.transport.websockets.jcfg "$JANUS_DIR/conf/"
# Only these two modules are visible to Janus: nothing else is even dlopen'ed.
ln -sf "$LIBDIR/plugins/libjanus_videoroom.so" "$JANUS_DIR/plugins/"
ln -sf "$LIBDIR/transports/libjanus_websockets.so" "$JANUS_DIR/transports/"

C="$JANUS_DIR/conf/janus.jcfg"
# general: our folders, low debug level, no admin secret, session timeout.
sed -i \
    -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$JANUS_DIR/conf\"|" \
    -e "s|^\(\s*\)plugins_folder = .*|\1plugins_folder = \"$JANUS_DIR/plugins\"|" \
    -e "s|^\(\s*\)transports_folder = .*|\1transports_folder = \"$JANUS_DIR/transports\"|" \
    -e "s|^\(\s*\)events_folder = .*|\1events_folder = \"$JANUS_DIR/events\"|" \
    -e "s|^\(\s*\)loggers_folder = .*|\1loggers_folder = \"$JANUS_DIR/loggers\"|" \
    -e "s|^\(\s*\)debug_level = .*|\1debug_level = $DEBUG_LEVEL|" \
    -e "s|^\(\s*\)admin_secret = .*|\1#admin_secret disabled|" \
    -e "s|^\(\s*\)ice_ignore_list = .*|\1#ice_ignore_list unused with an enforce list|" \
    "$C"
sed -i "s|^general: {|general: {\n\tinterface = \"$ICE_IP\"\n\tsession_timeout = $SESSION_TIMEOUT\n\tdebug_timestamps = true\n\tdebug_colors = false${JANUS_EVENT_LOOPS:+\n\tevent_loops = $JANUS_EVENT_LOOPS}|" "$C"
sed -i "s|^media: {|media: {\n\trtp_port_range = \"$RTP_RANGE\"\n\tipv6 = false|" "$C"
sed -i "s|^nat: {|nat: {\n\tice_enforce_list = \"$ICE_IP\"\n\tignore_mdns = true|" "$C"
sed -i "s|^events: {|events: {\n\tbroadcast = false|" "$C"

W="$JANUS_DIR/conf/janus.transport.websockets.jcfg"
sed -i \
    -e "s|^\(\s*\)json = .*|\1json = \"compact\"|" \
    -e "s|^\(\s*\)ws_port = .*|\1ws_port = $WS_PORT|" \
    -e "s|^\(\s*\)wss = .*|\1wss = false|" \
    -e "s|^\(\s*\)admin_ws = .*|\1admin_ws = false|" \
    -e "s|^\(\s*\)admin_wss = .*|\1admin_wss = false|" \
    "$W"
sed -i "s|^general: {|general: {\n\tws_ip = \"$WS_IP\"\n\tws_logging = \"err\"|" "$W"

# videoroom: no demo rooms (room 1234 caps video at 128 kbit/s); clients create their own.
cat > "$JANUS_DIR/conf/janus.plugin.videoroom.jcfg" <<'EOF'
general: {
	# no admin_key: rooms can be created through the API without a key
	events = false
}
EOF

# --- 3. Start, bounded wait for the WebSocket port. --------------------------------
LOG="$JANUS_DIR/janus.log"
T0=$(date +%s.%N)
# -N: no stdout logging (logs go to the file); -o: no colours.
setsid janus -F "$JANUS_DIR/conf" -C "$C" -L "$LOG" -N -o </dev/null >/dev/null 2>&1 &
PID=$!
echo "$PID" > "$JANUS_DIR/janus.pid"

deadline=$(( $(date +%s) + START_TIMEOUT ))
until port_open; do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start.sh: janus exited during start; log: $LOG" >&2
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "start.sh: janus did not open $WS_IP:$WS_PORT within ${START_TIMEOUT}s; log: $LOG" >&2
        tail -n 30 "$LOG" >&2 || true
        kill "$PID" 2>/dev/null || true
        exit 1
    fi
    sleep 0.05
done
T1=$(date +%s.%N)

echo "JANUS_DIR=$JANUS_DIR"
echo "JANUS_PID=$PID"
echo "JANUS_LOG=$LOG"
echo "JANUS_ICE_IP=$ICE_IP"
echo "JANUS_CLIENT_IPS=\"$CLIENT_IPS\""
echo "JANUS_START_SECONDS=$(awk "BEGIN{printf \"%.2f\", $T1-$T0}")"
echo "JANUS_WS_URL=ws://$WS_IP:$WS_PORT"
