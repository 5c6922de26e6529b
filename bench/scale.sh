#!/usr/bin/env bash
# bench/scale.sh: authmilter under many concurrent sessions with a DNS
# round trip on every query not in its cache: throughput, latency, memory,
# and a burst of new connections.
#
#   bench/scale.sh [-c SESSIONS] [-s SIZE] [-p PER-CLASS] [-D DELAY] [-d DURATION]
#                  [-g GAP] [-b BURST] [-r REV] [--keep]
#
#   -c SESSIONS: concurrent milter sessions [128]
#   -s SIZE: message size of the load (2KB, 20KB or 200KB) [200KB]
#   -p PER-CLASS: messages per class of the cold corpus [100: 900 messages]
#   -D DELAY: the delay of every DNS reply (milterload dns --delay) [20ms]
#   -d DURATION: the warm run [20s]
#   -g GAP: pause between envelope and content (milterload --gap) [0]
#   -b BURST: connections opened at once, each for one 2 KB message [1000]
#   -r REV: build authmilter from commit REV (git archive) rather than the
#      working tree (milterload and benchmail always come from the tree)
#
# authmilter's only DNS is `milterload dns` on loopback, serving the
# corpus's zone with the delay; the corpus gives every message sender
# domains of its own (benchmail --distinct-senders). Three runs against one
# freshly started authmilter (its default GOGC and memory limit):
#  1. cold: every message of the corpus once, SESSIONS at a time, so each
#     waits for its own DNS answers;
#  2. warm: the same messages again for DURATION (answers in the cache);
#  3. burst: BURST sessions that all connect at once, one message each;
#     none may be refused or fail (the listen backlog is the kernel's
#     net.core.somaxconn; its overflow counters are read around the run).
# For each: messages/s, latency from MAIL to the final reply (p50, p99),
# the wait after end of message, the milter's CPU per message, its RSS
# before the run and its peak during it (VmHWM, reset before each run
# through /proc/PID/clear_refs), and the peak's growth per concurrent
# session.
#
# No root needed; loopback only; every wait is bounded; everything started
# here is stopped on exit. About a minute plus corpus generation.
set -euo pipefail

CMDLINE="bench/scale.sh${*:+ $*}"
SESSIONS=128
SIZE=200KB
PER_CLASS=100
DELAY=20ms
DUR=20s
GAP=0s
BURST=1000
REV=
KEEP=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	-c) SESSIONS=$2; shift 2 ;;
	-s) SIZE=$2; shift 2 ;;
	-p) PER_CLASS=$2; shift 2 ;;
	-D) DELAY=$2; shift 2 ;;
	-d) DUR=$2; shift 2 ;;
	-g) GAP=$2; shift 2 ;;
	-b) BURST=$2; shift 2 ;;
	-r) REV=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "scale.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
for tool in go jq python3; do
	command -v "$tool" >/dev/null || { echo "scale.sh: $tool is needed" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/authmilter-scale.XXXXXX)
PIDS=()
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ] || [ $rc != 0 ]; then
		say "logs, corpus and JSON results kept in $T"
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SRC=$ROOT
BUILT="working tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
if [ -n "$REV" ]; then
	SRC=$T/src
	mkdir "$SRC"
	git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	BUILT="commit $(git -C "$ROOT" rev-parse --short "$REV")"
fi
say "building authmilter ($BUILT), milterload and benchmail (working tree)"
(cd "$SRC" && timeout 600 go build -o "$T/authmilter" ./cmd/authmilter)
(cd "$ROOT" && timeout 600 go build -o "$T/milterload" ./cmd/milterload && timeout 600 go build -o "$T/benchmail" ./cmd/benchmail)
ML=$T/milterload
say "generating the corpus ($SIZE, $PER_CLASS per class, sender domains of their own; 2KB for the burst)"
timeout 600 "$T/benchmail" -o "$T/corpus" -seed 1 -per-class "$PER_CLASS" -sizes "$SIZE,2KB" -distinct-senders >&2
MSGS=$(find "$T/corpus" -name "*.$SIZE.*.eml" | wc -l)

free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); print(p)'
}
wait_for() { # FILE TEXT: until FILE contains TEXT, at most 20 s
	for _ in $(seq 200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "scale.sh: no '$2' in $1 after 20 s:" >&2
	cat "$1" >&2
	return 1
}
# listen_drops: the kernel's counts of connections dropped or refused for a
# full accept queue (ListenOverflows, ListenDrops in /proc/net/netstat).
listen_drops() {
	awk '/^TcpExt:/ { if (!h) { for (i = 2; i <= NF; i++) n[$i] = i; h = 1 } else print $n["ListenOverflows"] + $n["ListenDrops"] }' /proc/net/netstat
}

DPORT=$(free_port)
MPORT=$(free_port)
"$ML" dns --zone "$T/corpus/bench.zone" --listen "127.0.0.1:$DPORT" --delay "$DELAY" \
	--counts "$T/counts.json" --reset --max-time 1h 2>"$T/dns.log" &
PIDS+=("$!")
DNSPID=$!
wait_for "$T/dns.log" listening
printf 'listen: inet:127.0.0.1:%s\nauthserv_id: mx.inbound.example\nlog: {level: warn}\ndns: {servers: ["127.0.0.1:%s"], zone_file: ""}\narc: {trusted_sealers: [%s]}\n' \
	"$MPORT" "$DPORT" "$(sed -n 's/^  trusted_sealers: \[\(.*\)\]$/\1/p' "$T/corpus/authmilter.yaml")" >"$T/authmilter.yaml"
"$T/authmilter" serve --config "$T/authmilter.yaml" 2>"$T/authmilter.log" &
AM=$!
PIDS+=("$AM")
for _ in $(seq 200); do
	ss -Htln "( sport = :$MPORT )" | grep -q . && break
	kill -0 "$AM" 2>/dev/null || { cat "$T/authmilter.log" >&2; exit 1; }
	sleep 0.1
done
ss -Htln "( sport = :$MPORT )" | grep -q . || { echo "scale.sh: authmilter does not listen on 127.0.0.1:$MPORT" >&2; exit 1; }
BACKLOG=$(ss -Htln "( sport = :$MPORT )" | awk '{print $3; exit}')

dns_counts() { # OUT: the queries since the last call, and a new count
	rm -f "$T/counts.json"
	kill -USR1 "$DNSPID"
	for _ in $(seq 100); do [ -s "$T/counts.json" ] && { cp "$T/counts.json" "$1"; return 0; }; sleep 0.1; done
	echo "scale.sh: no query counts from milterload dns after 10 s" >&2
	exit 1
}
# run NAME SESSIONS MATCH MILTERLOAD-ARGS...: one measured run.
run() {
	local name=$1 c=$2 match=$3 d0 d1
	shift 3
	echo 5 >"/proc/$AM/clear_refs" # VmHWM from here on (proc(5))
	d0=$(listen_drops)
	say "$name: $c sessions ($*)"
	if ! timeout 900 "$ML" --milter "inet:127.0.0.1:$MPORT" -c "$c" --match "$match" --gap "$GAP" --pid "$AM" --json "$@" \
		"$T/corpus" >"$T/$name.json" 2>"$T/$name.err"; then
		cat "$T/$name.err" >&2
		exit 1
	fi
	d1=$(listen_drops)
	sleep 0.5
	dns_counts "$T/$name.counts.json"
	echo $((d1 - d0)) >"$T/$name.drops"
	jq -r '"  \(.messages) messages, \(.errors) errors\(if .first_error then " (first: \(.first_error))" else "" end), \(.messages_per_second|floor)/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, RSS \(.milter.rss_kb_before) → peak \(.milter.rss_kb_peak) kB"' "$T/$name.json" >&2
}

# A few messages at one session first, so that the runs measure load, not
# the process's first use; their DNS answers are other messages' than the
# cold run's only for the burst's 2 KB ones, which come from the same pool.
"$ML" --milter "inet:127.0.0.1:$MPORT" -c 1 -n 4 --match '\.2KB\.00[0-3]\.' "$T/corpus" >/dev/null 2>&1 || true
dns_counts "$T/startup.counts.json"

run cold "$SESSIONS" "\\.$SIZE\\." -n "$MSGS" -d 600s
run warm "$SESSIONS" "\\.$SIZE\\." -d "$DUR"
run burst "$BURST" '\.2KB\.' -n "$BURST" -d 120s --timeout 60s

row() { # RUN LABEL SESSIONS
	jq -r --arg n "$2" --argjson c "$3" --slurpfile q "$T/$1.counts.json" --arg drops "$(cat "$T/$1.drops")" '
		(.messages - .errors) as $done |
		"| \($n) | \($c) | \(.messages) | \(.errors) | \($drops) | \(.messages_per_second * 10 | round / 10) | \(.latency_ms.p50) | \(.latency_ms.p99) | \(.eom_wait_ms.p99) | \(.milter.cpu_ms_per_message * 1000 | round / 1000) | \(.milter.rss_kb_before / 1024 * 10 | round / 10) | \(.milter.rss_kb_peak / 1024 * 10 | round / 10) | \((.milter.rss_kb_peak - .milter.rss_kb_before) / $c | round) | \(if $done > 0 then ($q[0].total / $done * 100 | round / 100) else 0 end) |"' "$T/$1.json"
}
{
	echo
	echo "authmilter built from the $BUILT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)); $(go version | awk '{print $3}')"
	echo "command: $CMDLINE"
	echo "corpus: $MSGS messages of $SIZE with sender domains of their own (seed 1); DNS delay $DELAY per query; envelope gap $GAP;"
	echo "listen backlog $BACKLOG (net.core.somaxconn $(cat /proc/sys/net/core/somaxconn)); one connection per message"
	echo
	echo "| run | sessions | messages | errors | listen drops | msgs/s | p50 ms | p99 ms | wait after dot p99 ms | CPU ms/msg | RSS before MiB | peak RSS MiB | peak growth per session KiB | DNS queries/msg |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	row cold "cold, $SIZE" "$SESSIONS"
	row warm "warm, $SIZE, $DUR" "$SESSIONS"
	row burst "burst, 2KB" "$BURST"
	echo
	echo "Latency is from MAIL to the final reply, the wait after the dot from the content to it; peak RSS is the process's VmHWM during the run; its growth per session"
	echo "is (peak − before) ÷ sessions. Listen drops: the kernel's ListenOverflows + ListenDrops over the run (all sockets)."
} | tee "$T/table.md"
