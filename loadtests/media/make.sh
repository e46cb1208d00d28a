#!/bin/sh
# Creates the media the load tool loops (cached, gitignored): a 10 s VP8 test pattern
# in IVF (~500 kbit/s, 30 fps, keyframe every 2.5 s) and 10 s of Opus in Ogg (48 kHz,
# 20 ms frames). Needs ffmpeg (apt-get install -y ffmpeg).
set -eu
cd "$(dirname "$0")"
command -v ffmpeg >/dev/null || { echo "make.sh: ffmpeg not found (apt-get install -y ffmpeg)" >&2; exit 1; }
[ -s video.ivf ] || ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i testsrc2=size=640x360:rate=30 -t 10 \
  -c:v libvpx -b:v 500k -minrate 500k -maxrate 500k -bufsize 500k \
  -g 75 -keyint_min 75 -deadline realtime -cpu-used 8 -auto-alt-ref 0 -lag-in-frames 0 \
  -f ivf video.ivf
[ -s audio.ogg ] || ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 \
  -c:a libopus -b:a 48k -frame_duration 20 -application voip -f ogg audio.ogg
ls -l video.ivf audio.ogg
