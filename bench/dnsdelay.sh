#!/usr/bin/env bash
# bench/dnsdelay.sh: what the SMTP client waits after its final dot when
# every DNS query costs a round trip, cold and warm, for authmilter alone.
#
#   bench/dnsdelay.sh [-D "20ms 80ms"] [-g GAP] [-s SIZE] [-k ROUNDS] [-r REV]
#
#   -D DELAYS: the per-query delays measured (milterload dns --delay; a
#      range such as 5ms-80ms works too) [20ms 80ms]
#   -g GAP: the pause between the envelope and the content (milterload
#      --gap), the client's DATA and transfer [60ms]
#   -s SIZE: the corpus size measured (2KB, 20KB or 200KB) [2KB]
#   -k ROUNDS: rounds per message, the median is reported [3]
#   -r REV: build authmilter from commit REV (git archive) rather than the
#      working tree (milterload and benchmail always come from the working
#      tree)
#
# For each delay and each message of the corpus (one per class, benchmail
# -per-class 1): cold, a freshly started authmilter judges the message
# once; warm, the same authmilter judges it a second time. authmilter's only
# DNS is `milterload dns` serving the corpus zone with that delay, which
# counts the queries. Printed per class: the wait after end of message
# (milterload's eom_wait_ms, median of the rounds) and the DNS queries of the
# message, cold and warm; then the medians over the classes.
#
# No root needed; loopback only; every wait is bounded; everything started
# here is stopped on exit. Short by design (a few seconds per message and
# delay): on a shared machine, compare runs made in the same sitting.
set -euo pipefail

DELAYS="20ms 80ms"
GAP=60ms
SIZE=2KB
ROUNDS=3
REV=
while getopts "D:g:s:k:r:h" o; do
	case $o in
	D) DELAYS=$OPTARG ;;
	g) GAP=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	k) ROUNDS=$OPTARG ;;
	r) REV=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
for tool in go jq; do
	command -v "$tool" >/dev/null || { echo "dnsdelay.sh: $tool is needed" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/authmilter-dnsdelay.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

SRC=$ROOT
BUILT="working tree of $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [ -n "$REV" ]; then
	SRC=$T/src
	mkdir "$SRC"
	git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	BUILT="commit $(git -C "$ROOT" rev-parse --short "$REV")"
fi
echo "building authmilter ($BUILT), milterload and benchmail (working tree)" >&2
(cd "$SRC" && timeout 600 go build -o "$T/authmilter" ./cmd/authmilter)
(cd "$ROOT" && timeout 600 go build -o "$T/milterload" ./cmd/milterload && timeout 600 go build -o "$T/benchmail" ./cmd/benchmail)
ML=$T/milterload
"$T/benchmail" -o "$T/corpus" -seed 1 -per-class 1 -sizes "$SIZE" >&2

# free_port prints a loopback port free for UDP and TCP.
free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); print(p)'
}

# wait_for FILE TEXT: until FILE contains TEXT, at most 10 s.
wait_for() {
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "dnsdelay.sh: no '$2' in $1 after 10 s:" >&2
	cat "$1" >&2
	return 1
}

# measure DELAY MESSAGE: one round; prints "cold_eom_ms cold_queries warm_eom_ms warm_queries".
measure() {
	local delay=$1 msg=$2 d dport mport dns am q1 q2
	d=$(mktemp -d "$T/run.XXXX")
	dport=$(free_port)
	mport=$(free_port)
	"$ML" dns --zone "$T/corpus/bench.zone" --listen "127.0.0.1:$dport" --delay "$delay" \
		--counts "$d/counts.json" --reset --max-time 120s 2>"$d/dns.log" &
	dns=$!
	PIDS+=("$dns")
	wait_for "$d/dns.log" listening
	printf 'listen: inet:127.0.0.1:%s\nauthserv_id: mx.inbound.example\nlog: {level: info}\ndns: {servers: ["127.0.0.1:%s"], zone_file: ""}\narc: {trusted_sealers: [list.example]}\n' \
		"$mport" "$dport" >"$d/authmilter.yaml"
	"$T/authmilter" serve --config "$d/authmilter.yaml" 2>"$d/authmilter.log" &
	am=$!
	PIDS+=("$am")
	wait_for "$d/authmilter.log" "authmilter listening"
	kill -USR1 "$dns" # forget authmilter's start-up, if any
	sleep 0.2
	for pass in cold warm; do
		timeout 60 "$ML" --milter "inet:127.0.0.1:$mport" -c 1 -n 1 --gap "$GAP" --match "^$msg\$" --json "$T/corpus" >"$d/$pass.json"
		sleep 0.2 # late speculative queries land in this message's count
		rm -f "$d/counts.json"
		kill -USR1 "$dns"
		for _ in $(seq 50); do [ -s "$d/counts.json" ] && break; sleep 0.1; done
		cp "$d/counts.json" "$d/$pass.counts.json"
	done
	kill "$am" "$dns"
	wait "$am" 2>/dev/null || true
	wait "$dns" 2>/dev/null || true
	echo "$(jq .eom_wait_ms.p50 "$d/cold.json") $(jq .total "$d/cold.counts.json") $(jq .eom_wait_ms.p50 "$d/warm.json") $(jq .total "$d/warm.counts.json")"
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }

echo "authmilter built from the $BUILT; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; envelope gap $GAP; $SIZE messages; median of $ROUNDS rounds"
for delay in $DELAYS; do
	echo
	echo "DNS delay $delay per query"
	printf '%-18s %14s %12s %14s %12s\n' class "cold wait ms" "cold queries" "warm wait ms" "warm queries"
	: >"$T/summary"
	for eml in "$T"/corpus/*."$SIZE".*.eml; do
		msg=$(basename "$eml" .eml)
		: >"$T/rounds"
		for _ in $(seq "$ROUNDS"); do measure "$delay" "$msg" >>"$T/rounds"; done
		row="$(awk '{print $1}' "$T/rounds" | median) $(awk '{print $2}' "$T/rounds" | median) $(awk '{print $3}' "$T/rounds" | median) $(awk '{print $4}' "$T/rounds" | median)"
		echo "$row" >>"$T/summary"
		# shellcheck disable=SC2086
		printf '%-18s %14s %12s %14s %12s\n' "${msg%%.*}" $row
	done
	printf '%-18s %14s %12s %14s %12s\n' median \
		"$(awk '{print $1}' "$T/summary" | median)" "$(awk '{print $2}' "$T/summary" | median)" \
		"$(awk '{print $3}' "$T/summary" | median)" "$(awk '{print $4}' "$T/summary" | median)"
done
