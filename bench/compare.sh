#!/usr/bin/env bash
# bench/compare.sh: authmilter side by side with the Debian milters that do
# the same work (OpenDKIM, OpenDMARC, the OpenDKIM → OpenDMARC chain, rspamd
# in milter mode), on one corpus, in one run, on this machine.
#
#   sudo bench/compare.sh [-n MESSAGES] [-d DURATION] [-s SIZES] [-p PER-CLASS]
#                         [-w WARMUP] [-S "1 8"] [-m MILTERS] [-k ROUNDS] [-r REV]
#                         [-R REV] [-D "20ms 80ms" [-g GAP]] [--no-install] [--keep]
#
#   -r REV: build authmilter, milterload and benchmail from commit REV (git archive)
#   rather than from the working tree, uncommitted changes and all.
#   -R REV: also measure authmilter built from commit REV (the milter
#   authmilter-rev, added to MILTERS), in the same run: before and after.
#   MILTERS: a space-separated subset of: opendkim opendmarc rspamd
#   rspamd-seal authmilter authmilter-zonefile authmilter-seal
#   authmilter-1thread authmilter-rev null null-libmilter (default all).
#   -k ROUNDS: measure every milter ROUNDS times, in turn (round 1: each
#   milter, then round 2: each milter, ...); the tables show, for each
#   milter and session count, the round with the median CPU per message,
#   and a last table the A / B ratios of CPU per message round by round
#   (A and B measured minutes apart) with their median. On a machine whose
#   speed moves between runs, read that median.
#   authmilter-1thread is authmilter pinned to one scheduler thread
#   (GOMAXPROCS=1); the authmilter rows run the default, threads: auto
#   (the Go runtime's choice). The last two are floors, milters that
#   check nothing: `milterload null` (authmilter's protocol loop) and
#   bench/nullmilter.c (Sendmail's libmilter, which OpenDKIM and OpenDMARC
#   use; built with gcc and libmilter-dev, installed when missing).
#
#   -D DELAYS: slow DNS instead of CPU. Every milter resolves through
#   `milterload dns` on the resolver's address, which delays each reply by
#   each of DELAYS in turn (20ms, or a range 5ms-80ms) and counts the
#   queries. The corpus gives every message sender domains of its own
#   (benchmail --distinct-senders; -s defaults to 2KB). At each session
#   count, a freshly started milter judges every message once (cold), then
#   once more (warm); the load is paced as Postfix sends (milterload --gap
#   GAP, default 60ms: the envelope, a pause for the client's transfer,
#   then the content). Printed: the median wait after the client's final
#   dot (milterload's eom_wait_ms, from the content to the final reply) and the DNS
#   queries per message, per milter; the OpenDKIM → OpenDMARC chain as the
#   sum of the two; per class at one session; and issue #19's goals for
#   authmilter. Milters: opendkim opendmarc rspamd authmilter
#   authmilter-rev (the others are skipped); -n, -d and -k do not apply.
#   Unless -w 0, each milter first judges one message per class from other
#   sender domains (not measured), so that what a process does on its first
#   messages (rspamd's Lua, the caches of the top-level domain) is not taken
#   for DNS waits.
#
# What it does (see docs/performance.md, "Side by side"):
#  1. installs opendkim, opendmarc, rspamd and unbound (and python3-dkim,
#     python3-authres: dkimpy seals the corpus's ARC chains) from Debian when
#     missing (rspamd is skipped, and said so, when not installable) and stops
#     their system services: every daemon here is our own instance with a
#     private configuration in a temporary directory;
#  2. builds authmilter, milterload and benchmail, generates a corpus
#     (benchmail; milterload gen before it had a command of its own), ARC
#     chains sealed by dkimpy;
#  3. serves the corpus zone (bench.zone) from a private unbound on a
#     loopback address, port 53, answering only the corpus zones (everything
#     else REFUSED, no recursion); with -D, `milterload dns` there instead;
#  4. runs each milter on 127.0.0.1 with a minimal configuration doing the
#     same work, pointed at that unbound (OpenDMARC through the libc resolver,
#     in a private mount namespace with its own /etc/resolv.conf);
#  5. drives each with milterload at 1 and at 8 sessions (-n messages, capped
#     by -d), with the milter's processes as --pid, and prints one table with
#     the ratios authmilter/peer.
#
# Needs root (apt-get, port 53, unshare -m). Loopback only; every wait is
# bounded; everything started here is stopped on exit.
set -euo pipefail

CMDLINE="bench/compare.sh${*:+ $*}"
N=12000           # messages per measured run (capped by -d; the peers stop at -d)
DUR=20s           # longest measured run
SIZES=20KB        # corpus sizes (benchmail --sizes)
PER_CLASS=4       # messages per class and size
WARMUP=50         # messages sent before each measured run
SESSIONS="1 8"
MILTERS="opendkim opendmarc rspamd rspamd-seal authmilter authmilter-zonefile authmilter-seal authmilter-1thread null null-libmilter"
INSTALL=1
REV=
KEEP=0
ROUNDS=1
REV2=
DELAYS=
GAP=60ms
MILTERS_SET=0
SIZES_SET=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift 2 ;;
	-d) DUR=$2; shift 2 ;;
	-s) SIZES=$2; SIZES_SET=1; shift 2 ;;
	-p) PER_CLASS=$2; shift 2 ;;
	-w) WARMUP=$2; shift 2 ;;
	-S) SESSIONS=$2; shift 2 ;;
	-m) MILTERS=$2; MILTERS_SET=1; shift 2 ;;
	-k) ROUNDS=$2; shift 2 ;;
	-r) REV=$2; shift 2 ;;
	-R) REV2=$2; shift 2 ;;
	-D) DELAYS=$2; shift 2 ;;
	-g) GAP=$2; shift 2 ;;
	--no-install) INSTALL=0; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
case $ROUNDS in '' | *[!0-9]* | 0) echo "compare.sh: -k wants a count of rounds, got '$ROUNDS'" >&2; exit 2 ;; esac
if [ -n "$DELAYS" ]; then
	[ "$SIZES_SET" = 1 ] || SIZES=2KB
	if [ "$MILTERS_SET" = 0 ]; then MILTERS="opendkim opendmarc rspamd authmilter"; fi
fi
if [ -n "$REV2" ]; then
	case " $MILTERS " in *" authmilter-rev "*) ;; *) MILTERS="$MILTERS authmilter-rev" ;; esac
fi
[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (apt-get, port 53, unshare -m)" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/authmilter-compare.XXXXXX)
chmod 711 "$T" # rspamd's workers run as _rspamd and read their files below
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
		say "logs, configs and JSON results kept in $T"
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. peers
NOTES=()
note() { NOTES+=("$*"); say "$*"; }
installable() { # package has a candidate version in the configured archive
	local c
	c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	[ -n "$c" ] && [ "$c" != "(none)" ]
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

HAVE_RSPAMD=1
WANT=()
# python3-dkim and python3-authres: dkimpy seals the corpus's ARC chains.
PKGS="opendkim opendmarc rspamd unbound python3-dkim python3-authres"
case " $MILTERS " in *" null-libmilter "*) PKGS="$PKGS gcc libc6-dev libmilter-dev" ;; esac
for pkg in $PKGS; do
	if installed "$pkg"; then continue; fi
	if ! installable "$pkg"; then
		if [ "$pkg" = rspamd ]; then
			note "rspamd: not installable from the configured Debian archive (apt-cache policy: no candidate); skipped"
			HAVE_RSPAMD=0
			continue
		fi
		echo "compare.sh: $pkg is not installable from the configured Debian archive" >&2
		exit 1
	fi
	[ "$INSTALL" = 1 ] || { echo "compare.sh: $pkg is missing (--no-install)" >&2; exit 1; }
	WANT+=("$pkg")
done
if [ ${#WANT[@]} -gt 0 ]; then
	say "installing ${WANT[*]}"
	# policy-rc.d may or may not let the packages start their services; they
	# are stopped below either way.
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends "${WANT[@]}" >"$T/apt.log" 2>&1 ||
		{ tail -20 "$T/apt.log" >&2; exit 1; }
fi
for svc in opendkim opendmarc rspamd unbound; do
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		timeout 60 systemctl stop "$svc" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$svc" ]; then
		timeout 60 "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
	fi
done
for exe in opendkim opendmarc rspamd unbound; do
	if pgrep -x "$exe" >/dev/null; then
		echo "compare.sh: a $exe not started by this script is still running (pids $(pgrep -x "$exe" | tr '\n' ' ')): stop it first" >&2
		exit 1
	fi
done

# ------------------------------------------------- 2. build, corpus, ports
command -v go >/dev/null || { echo "compare.sh: go not found" >&2; exit 1; }
SRC=$REPO
if [ -n "$REV" ]; then
	REV=$(cd "$REPO" && git rev-parse --verify "$REV^{commit}")
	mkdir "$T/src"
	(cd "$REPO" && git archive "$REV") | tar -x -C "$T/src"
	SRC=$T/src
	BUILT="commit $(cd "$REPO" && git rev-parse --short "$REV")"
else
	BUILT="working tree at $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
fi
say "building authmilter, milterload and benchmail ($BUILT)"
(cd "$SRC" && timeout 600 go build -o "$T/authmilter" ./cmd/authmilter && timeout 600 go build -o "$T/milterload" ./cmd/milterload)
ML=$T/milterload
REV2_SHORT=
if [ -n "$REV2" ]; then
	REV2=$(cd "$REPO" && git rev-parse --verify "$REV2^{commit}")
	REV2_SHORT=$(cd "$REPO" && git rev-parse --short "$REV2")
	mkdir "$T/src-rev"
	(cd "$REPO" && git archive "$REV2") | tar -x -C "$T/src-rev"
	say "building authmilter-rev (commit $REV2_SHORT)"
	(cd "$T/src-rev" && timeout 600 go build -o "$T/authmilter-rev" ./cmd/authmilter)
fi
# The corpus generator: cmd/benchmail, or `milterload gen` in a tree from
# before it was split out.
if [ -d "$SRC/cmd/benchmail" ]; then
	(cd "$SRC" && timeout 600 go build -o "$T/benchmail" ./cmd/benchmail)
	GENCMD=("$T/benchmail")
else
	GENCMD=("$ML" gen)
fi
case " $MILTERS " in *" null-libmilter "*)
	timeout 120 gcc -O2 -o "$T/nullmilter" "$SRC/bench/nullmilter.c" -lmilter -lpthread ;;
esac

in_use() { ss -Htuan "( sport = :$1 )" 2>/dev/null | grep -q .; }
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 20000))
		in_use "$p" || { echo "$p"; return; }
	done
	echo "compare.sh: no free port" >&2
	exit 1
}
# The resolver: a loopback address of its own (port 53, which resolv.conf
# and OpenDKIM's Nameservers imply).
DNS_IP=
for _ in $(seq 50); do
	ip=127.$((RANDOM % 200 + 30)).$((RANDOM % 250 + 1)).53
	ss -Htuan "( sport = :53 )" | grep -qF " $ip:53 " || { DNS_IP=$ip; break; }
done
[ -n "$DNS_IP" ] || { echo "compare.sh: no free loopback address for the resolver" >&2; exit 1; }

GENFLAGS=()
if [ -n "$DELAYS" ]; then
	case $("${GENCMD[@]}" -h 2>&1 || true) in *-distinct-senders*) ;; *) false ;; esac ||
		{ echo "compare.sh: -D needs benchmail --distinct-senders (a newer -r)" >&2; exit 1; }
	GENFLAGS=(--distinct-senders)
fi
say "generating the corpus (sizes $SIZES, $PER_CLASS per class${GENFLAGS:+, ${GENFLAGS[*]}})"
GEN=$(timeout 300 "${GENCMD[@]}" -o "$T/corpus" --seed 1 --per-class "$PER_CLASS" --sizes "$SIZES" "${GENFLAGS[@]}")
if [ -n "$DELAYS" ] && [ "$WARMUP" -gt 0 ]; then
	# The warm-up messages of -D: one per class from the senders of the
	# plain corpus (same seed, same keys), whose records the distinct
	# corpus's zone holds too but no message of it uses.
	timeout 300 "${GENCMD[@]}" -o "$T/warmup" --seed 1 --per-class 1 --sizes "$SIZES" >/dev/null
fi
say "corpus: $GEN"
C=$T/corpus
MSGS=$(find "$C" -name '*.eml' | wc -l)

# wait_listen PID ADDR PORT SECONDS NAME: the process is alive and listens.
wait_listen() {
	local pid=$1 addr=$2 port=$3 secs=$4 name=$5 i
	for i in $(seq $((secs * 10))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "compare.sh: $name exited; its log:" >&2
			tail -30 "$T/$name.log" >&2 2>/dev/null || true
			exit 1
		fi
		ss -Htln "( sport = :$port )" | grep -qF "$addr:$port" && return 0
		sleep 0.1
	done
	echo "compare.sh: $name does not listen on $addr:$port after ${secs}s" >&2
	tail -30 "$T/$name.log" >&2 2>/dev/null || true
	exit 1
}
stop_pid() {
	local p=$1
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
}

# ------------------------------------------------------------ 3. unbound
# bench.zone → local-zone/local-data: one static local zone per $ORIGIN,
# names made absolute, parenthesised TXT strings joined, "." refused.
zone_to_unbound() {
	awk '
	function abs(n) { if (n == "@") return origin; if (n ~ /\.$/) return n; return n "." origin }
	/^[ \t]*;/ || /^[ \t]*$/ { next }
	/^\$TTL/ { ttl = $2; next }
	/^\$ORIGIN/ { origin = $2; printf "\tlocal-zone: \"%s\" static\n", origin; next }
	{
		line = $0
		if (line ~ /\(/ && line !~ /\)/) { pending = line; next }
		if (pending != "") { sub(/^[ \t]+/, " ", line); pending = pending line; if (line !~ /\)/) next; line = pending; pending = "" }
		split(line, f, /[ \t]+/)
		owner = f[1]; type = f[2]
		rest = line; sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", rest)
		sub(/^\([ \t]*/, "", rest); sub(/[ \t]*\)[ \t]*$/, "", rest)
		if (type == "MX") { split(rest, m, /[ \t]+/); rest = m[1] " " abs(m[2]) }
		printf "\tlocal-data: '\''%s %s IN %s %s'\''\n", abs(owner), ttl, type, rest
	}' "$1"
}
# With -D, `milterload dns` takes unbound's place (started per delay, below).
if [ -z "$DELAYS" ]; then
mkdir -p "$T/unbound"
{
	cat <<EOF
server:
	interface: $DNS_IP
	port: 53
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$T/unbound"
	pidfile: ""
	use-syslog: no
	logfile: "$T/unbound.log"
	verbosity: 1
	num-threads: 1
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	local-zone: "." refuse
EOF
	zone_to_unbound "$C/bench.zone"
	printf 'remote-control:\n\tcontrol-enable: no\n'
} >"$T/unbound/unbound.conf"
timeout 30 unbound-checkconf "$T/unbound/unbound.conf" >/dev/null
unbound -d -c "$T/unbound/unbound.conf" >>"$T/unbound.log" 2>&1 &
UNBOUND=$!
PIDS+=("$UNBOUND")
for _ in $(seq 100); do
	ss -Hluan "( sport = :53 )" | grep -qF "$DNS_IP:53" && break
	kill -0 "$UNBOUND" 2>/dev/null || { cat "$T/unbound.log" >&2; exit 1; }
	sleep 0.1
done
ss -Hluan "( sport = :53 )" | grep -qF "$DNS_IP:53" || { echo "compare.sh: unbound does not listen on $DNS_IP:53" >&2; exit 1; }
say "unbound on $DNS_IP:53 serving $(grep -c local-data "$T/unbound/unbound.conf") records of bench.zone"
fi # not with -D: there milterload dns is the resolver
printf 'nameserver %s\noptions attempts:1 timeout:2\n' "$DNS_IP" >"$T/resolv.conf"

# ------------------------------------------------------------ 4. milters
AUTHSERV=mx.inbound.example

# authmilter configurations: the generated ones answer DNS from the zone
# file; the -unbound variants ask the private unbound, as the peers do.
mk_authmilter_conf() { # SRC DST PORT DNS(zone|unbound)
	sed -e "s|^listen: .*|listen: inet:127.0.0.1:$3|" -e 's|^  level: info|  level: warn|' "$1" >"$2"
	if [ "$4" = unbound ]; then
		sed -i -e "s|^  zone_file: .*|  servers: [\"$DNS_IP:53\"]|" "$2"
	fi
}

start_opendkim() { # PORT
	cat >"$T/opendkim.conf" <<EOF
Mode			v
Socket			inet:$1@127.0.0.1
PidFile			$T/opendkim.pid
Syslog			no
Nameservers		$DNS_IP
AuthservID		$AUTHSERV
AlwaysAddARHeader	yes
SoftwareHeader		no
MinimumKeyBits		1024
EOF
	opendkim -f -x "$T/opendkim.conf" >>"$T/opendkim.log" 2>&1 &
	MPID=$!
	MPIDS=$MPID
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$1" 20 opendkim
}

start_opendmarc() { # PORT
	: >"$T/opendmarc-ignore"
	cat >"$T/opendmarc.conf" <<EOF
Socket			inet:$1@127.0.0.1
PidFile			$T/opendmarc.pid
Syslog			false
AuthservID		$AUTHSERV
TrustedAuthservIDs	$AUTHSERV
SPFSelfValidate		true
SPFIgnoreResults	true
RejectFailures		true
FailureReports		false
IgnoreHosts		$T/opendmarc-ignore
SoftwareHeader		false
EOF
	# OpenDMARC and libspf2 ask the libc resolver: give it a private
	# /etc/resolv.conf naming unbound (mount namespace, nothing changes
	# outside). unshare execs, so $! is OpenDMARC itself.
	unshare -m --propagation private sh -c 'mount --bind "$1" /etc/resolv.conf && exec opendmarc -f -c "$2"' sh \
		"$T/resolv.conf" "$T/opendmarc.conf" >>"$T/opendmarc.log" 2>&1 &
	MPID=$!
	MPIDS=$MPID
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$1" 20 opendmarc
}

# The ARC sealers the corpus's configurations trust, as an rspamd list.
RSPAMD_SEALERS=$(sed -n 's/^  trusted_sealers: \[\(.*\)\]$/\1/p' "$C/authmilter.yaml" | sed 's/[^, ][^, ]*/"&"/g')
start_rspamd() { # PORT SEAL(0|1)
	local d=$T/rspamd
	# db/ (compiled regular expressions, the symbol cache) is kept from one
	# start to the next: it holds no DNS answers and saves a long start.
	rm -rf "$d/run" "$d/keys" "$d/rspamd.conf"
	mkdir -p "$d/db" "$d/run" "$d/keys"
	local arc_sign=
	if [ "$2" = 1 ]; then
		cp "$C/seal-rsa.pem" "$d/keys/inbound.example.mx2048.key"
		arc_sign="sign_inbound = true; use_domain = \"recipient\"; use_esld = true; allow_hdrfrom_mismatch = true; allow_envfrom_empty = true; selector = \"mx2048\"; path = \"$d/keys/\$domain.\$selector.key\";"
	else
		arc_sign="sign_inbound = false; sign_local = false; sign_authenticated = false;"
	fi
	chown -R _rspamd:_rspamd "$d"
	# A minimal configuration: only the dkim, spf, dmarc, arc,
	# force_actions and milter_headers modules have a section, so every
	# other module stays disabled; no rules file (rspamd.lua), no Redis, no
	# statistics, no controller or normal worker (the proxy scans itself).
	cat >"$d/rspamd.conf" <<EOF
modules {
	path = "\${PLUGINSDIR}";
}
options {
	pidfile = "$d/run/rspamd.pid";
	filters = "dkim";
	dns {
		nameserver = ["$DNS_IP:53"];
		timeout = 1s;
		retransmits = 2;
	}
	hs_cache_dir = "$d/db";
	cache_file = "$d/db/symbols.cache";
	control_socket = "$d/run/rspamd.sock mode=0600";
	local_addrs = [];
	task_timeout = 8s;
}
logging {
	type = "file";
	filename = "$T/rspamd.log";
	level = "warning";
}
actions {
	reject = 15;
	add_header = 6;
	greylist = null;
}
worker "rspamd_proxy" {
	bind_socket = "127.0.0.1:$1";
	milter = yes;
	timeout = 120s;
	count = 1;
	upstream "local" {
		default = yes;
		self_scan = yes;
	}
}
dkim { }
spf { }
dmarc { }
# DMARC policy as the others apply it: reject p=reject failures unless a
# trusted ARC sealer vouches (dmarc's own "actions" would ignore ARC trust),
# tag p=quarantine failures.
force_actions {
	rules {
		DMARC_REJECT {
			action = "reject";
			expression = "DMARC_POLICY_REJECT & !ARC_ALLOW_TRUSTED";
			message = "5.7.1 DMARC policy of the author domain";
		}
		DMARC_QUARANTINE {
			action = "add header";
			expression = "DMARC_POLICY_QUARANTINE";
		}
	}
}
arc {
	whitelisted_signers_map = [$RSPAMD_SEALERS];
	$arc_sign
}
milter_headers {
	use = ["authentication-results"];
	authenticated_headers = ["authentication-results"];
	routines {
		authentication-results {
			header = "Authentication-Results";
			remove = 0;
		}
	}
}
EOF
	rspamd -f -u _rspamd -g _rspamd -c "$d/rspamd.conf" \
		--var "DBDIR=$d/db" --var "RUNDIR=$d/run" --var "LOGDIR=$T" --var "LOCAL_CONFDIR=$d" >>"$T/rspamd.log" 2>&1 &
	MPID=$!
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$1" 300 rspamd
	sleep 2 # let the workers settle (hyperscan helper, symbol cache)
	MPIDS=$(printf '%s\n' "$MPID" $(pgrep -P "$MPID") | paste -sd,)
}

start_authmilter() { # NAME CONF [GOMAXPROCS]
	local bin=$T/authmilter
	[ "$1" = authmilter-rev ] && bin=$T/authmilter-rev
	GOMAXPROCS=${3:-} "$bin" serve --config "$2" >>"$T/$1.log" 2>&1 &
	MPID=$!
	MPIDS=$MPID
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$(sed -n 's|^listen: inet:127.0.0.1:||p' "$2")" 20 "$1"
}

# The floors: milters that check nothing.
start_null() { # PORT
	"$ML" null --listen "inet:127.0.0.1:$1" >>"$T/null.log" 2>&1 &
	MPID=$!
	MPIDS=$MPID
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$1" 20 null
}
start_null_libmilter() { # PORT
	"$T/nullmilter" "inet:$1@127.0.0.1" >>"$T/null-libmilter.log" 2>&1 &
	MPID=$!
	MPIDS=$MPID
	PIDS+=("$MPID")
	wait_listen "$MPID" 127.0.0.1 "$1" 20 null-libmilter
}

wanted() { case " $MILTERS " in *" $1 "*) return 0 ;; esac; return 1; }
# label NAME: the row name of a milter in the tables.
label() {
	case $1 in
	opendkim) echo "OpenDKIM 2.11 (DKIM verify)" ;;
	opendmarc) echo "OpenDMARC 1.4 (SPF + DMARC)" ;;
	chain) echo "OpenDKIM → OpenDMARC (sum of the two)" ;;
	rspamd) echo "rspamd 3.4 (DKIM, SPF, DMARC, ARC verify)" ;;
	rspamd-seal) echo "rspamd 3.4 + ARC seal RSA" ;;
	authmilter) if [ -n "$REV2" ]; then echo "authmilter ${BUILT#commit } (DNS via unbound)"; else echo "authmilter (DNS via unbound)"; fi ;;
	authmilter-rev) echo "authmilter $REV2_SHORT (DNS via unbound)" ;;
	authmilter-zonefile) echo "authmilter (DNS from zone file)" ;;
	authmilter-seal) echo "authmilter + ARC seal RSA (unbound)" ;;
	authmilter-1thread) echo "authmilter, GOMAXPROCS=1 (unbound)" ;;
	null) echo "floor: authmilter's protocol loop, no checks (milterload null)" ;;
	null-libmilter) echo "floor: libmilter, no checks (bench/nullmilter.c)" ;;
	esac
}

# ------------------------------------------------ 5a. slow DNS (-D)
# For each delay: `milterload dns` answers the corpus zone on the
# resolver's address after that delay; each milter, freshly started at
# each session count, judges every message once (cold), then once more
# (warm). Between runs SIGUSR1 makes the server write its counts and start
# new ones.
if [ -n "$DELAYS" ]; then
	mkdir -p "$T/results"
	MSGS=$(find "$C" -name '*.eml' | wc -l)
	start_dns() { # DELAY
		: >"$T/dns.log"
		"$ML" dns --zone "$C/bench.zone" --listen "$DNS_IP:53" --delay "$1" --counts "$T/dns.counts.json" \
			--reset --max-time 1h >>"$T/dns.log" 2>&1 &
		DNSPID=$!
		PIDS+=("$DNSPID")
		for _ in $(seq 100); do
			grep -q listening "$T/dns.log" && return 0
			kill -0 "$DNSPID" 2>/dev/null || break
			sleep 0.1
		done
		echo "compare.sh: milterload dns does not listen on $DNS_IP:53:" >&2
		cat "$T/dns.log" >&2
		exit 1
	}
	dns_counts() { # OUT: the queries since the last call, and a new count
		rm -f "$T/dns.counts.json"
		kill -USR1 "$DNSPID"
		for _ in $(seq 100); do [ -s "$T/dns.counts.json" ] && { cp "$T/dns.counts.json" "$1"; return 0; }; sleep 0.1; done
		echo "compare.sh: no query counts from milterload dns after 10 s" >&2
		exit 1
	}
	# slow_run NAME OUT: one pass over the corpus, paced as Postfix sends.
	slow_run() {
		if ! timeout 900 "$ML" --milter "inet:127.0.0.1:$PORT" -c "$c" -n "$MSGS" -d 600s --gap "$GAP" \
			--pid "$MPIDS" --json "$C" >"$2.json" 2>"$2.err"; then
			echo "compare.sh: milterload against $1 failed:" >&2
			cat "$2.err" >&2
			exit 1
		fi
		sleep 0.5 # queries still under way (speculation, retries) count for this run
		dns_counts "$2.counts.json"
		jq -r --slurpfile q "$2.counts.json" '"    \(.messages) messages, \(.errors) errors, wait after the dot p50 \(.eom_wait_ms.p50) ms p99 \(.eom_wait_ms.p99) ms, \($q[0].total) DNS queries, actions \(.actions|to_entries|map(select(.value>0)|"\(.key) \(.value)")|join(", "))"' "$2.json" >&2
	}
	SLOW=()
	for m in opendkim opendmarc rspamd authmilter authmilter-rev; do
		wanted "$m" || continue
		[ "$m" = rspamd ] && [ "$HAVE_RSPAMD" = 0 ] && continue
		SLOW+=("$m")
	done
	for m in $MILTERS; do
		case " ${SLOW[*]} " in *" $m "*) ;; *) note "-D: $m not measured (slow DNS compares opendkim opendmarc rspamd authmilter authmilter-rev)" ;; esac
	done
	say "slow DNS: $MSGS messages with sender domains of their own, delays $DELAYS, envelope gap $GAP, sessions $SESSIONS; milters: ${SLOW[*]}"
	for delay in $DELAYS; do
		start_dns "$delay"
		for m in "${SLOW[@]}"; do
			for c in $SESSIONS; do
				PORT=$(free_port)
				case $m in
				opendkim) start_opendkim "$PORT" ;;
				opendmarc) start_opendmarc "$PORT" ;;
				rspamd) start_rspamd "$PORT" 0 ;;
				authmilter*)
					mk_authmilter_conf "$C/authmilter.yaml" "$T/$m.yaml" "$PORT" unbound
					start_authmilter "$m" "$T/$m.yaml"
					;;
				esac
				if [ "$WARMUP" -gt 0 ]; then
					timeout 300 "$ML" --milter "inet:127.0.0.1:$PORT" -c 1 -n "$(find "$T/warmup" -name '*.eml' | wc -l)" \
						"$T/warmup" >"$T/results/$m.$delay.c$c.warmup.txt" 2>&1 ||
						{ cat "$T/results/$m.$delay.c$c.warmup.txt" >&2; exit 1; }
				fi
				sleep 1
				dns_counts "$T/results/$m.$delay.c$c.startup.counts.json" # start-up and warm-up are no message's
				say "  $m, DNS $delay, $c session(s): cold"
				slow_run "$m" "$T/results/$m.$delay.c$c.cold"
				say "  $m, DNS $delay, $c session(s): warm"
				slow_run "$m" "$T/results/$m.$delay.c$c.warm"
				stop_pid "$MPID"
			done
		done
		stop_pid "$DNSPID"
	done

	# sval NAME DELAY SESSIONS PASS FIELD(wait|q|class:CLASS): a figure of
	# the runs; the chain's is the sum of OpenDKIM's and OpenDMARC's.
	sval() {
		local f=$T/results/$1.$2.c$3.$4
		if [ "$1" = chain ]; then
			awk -v a="$(sval opendkim "$2" "$3" "$4" "$5")" -v b="$(sval opendmarc "$2" "$3" "$4" "$5")" 'BEGIN { printf "%.1f", a + b }'
			return
		fi
		case $5 in
		wait) jq -r '.eom_wait_ms.p50' "$f.json" ;;
		q) jq -r --slurpfile q "$f.counts.json" 'if (.messages - .errors) > 0 then $q[0].total / (.messages - .errors) else 0 end' "$f.json" ;;
		class:*) jq -r --arg c "${5#class:}" '[.classes[] | select(.class == $c) | .eom_wait_ms.p50][0] // 0' "$f.json" ;;
		esac
	}
	shave() { [ -s "$T/results/$1.$2.c$3.warm.json" ]; }
	slabel() {
		case $1 in
		chain) echo "OpenDKIM → OpenDMARC (sum)" ;;
		authmilter) if [ -n "$REV2" ]; then echo "authmilter ${BUILT#commit }"; else echo "authmilter"; fi ;;
		authmilter-rev) echo "authmilter $REV2_SHORT" ;;
		*) label "$1" ;;
		esac
	}
	{
		echo
		echo "authmilter and milterload built from the $BUILT${REV2_SHORT:+, authmilter-rev from commit $REV2_SHORT}; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)); Debian $(cat /etc/debian_version); $(go version | awk '{print $3}')"
		echo "command: $CMDLINE"
		echo "corpus: $MSGS messages ($SIZES, seed 1, $PER_CLASS per class, sender domains of their own); envelope gap $GAP; every milter's DNS through milterload dns"
		if [ "$WARMUP" -gt 0 ]; then
			echo "cold: a freshly started milter (warmed up on one message per class from other sender domains) judges each message once; warm: the same milter, each message again"
		else
			echo "cold: a freshly started milter judges each message once; warm: the same milter, each message again"
		fi
		c1=${SESSIONS%% *}
		ROWS2=()
		for m in "${SLOW[@]}"; do
			ROWS2+=("$m")
			[ "$m" = opendmarc ] && case " ${SLOW[*]} " in *" opendkim "*) ROWS2+=(chain) ;; esac
		done
		for delay in $DELAYS; do
			echo
			echo "DNS delay $delay per query. The wait after the client's final dot (content to final reply), median (ms), and DNS queries per message:"
			echo
			printf '| milter |'
			for k in "wait cold" "wait warm" "queries cold" "queries warm"; do for c in $SESSIONS; do printf ' %s @%s |' "$k" "$c"; done; done
			echo
			printf '|---|'
			for _ in 1 2 3 4; do for _ in $SESSIONS; do printf -- '---:|'; done; done
			echo
			for m in "${ROWS2[@]}"; do
				printf '| %s |' "$(slabel "$m")"
				for k in "cold wait" "warm wait" "cold q" "warm q"; do
					for c in $SESSIONS; do
						# shellcheck disable=SC2086
						printf ' %.1f |' "$(sval "$m" "$delay" "$c" $k)"
					done
				done
				echo
			done
			echo
			echo "Cold, $c1 session(s), median wait after the final dot per class (ms):"
			echo
			printf '| class |'; for m in "${ROWS2[@]}"; do printf ' %s |' "$(slabel "$m")"; done; echo
			printf '|---|'; for _ in "${ROWS2[@]}"; do printf -- '---:|'; done; echo
			first=${SLOW[0]}
			for cl in $(jq -r '.classes[].class' "$T/results/$first.$delay.c$c1.cold.json"); do
				printf '| %s |' "$cl"
				for m in "${ROWS2[@]}"; do printf ' %.1f |' "$(sval "$m" "$delay" "$c1" cold "class:$cl")"; done
				echo
			done
			case " ${SLOW[*]} " in *" authmilter "*) ;; *) continue ;; esac
			case " ${ROWS2[*]} " in *" chain "*) have_chain=1 ;; *) have_chain=0 ;; esac
			rtt=$(echo "$delay" | sed 's/^[^-]*-//; s/ms$//')
			case $delay in *-*) rtt_say="the longest round trip, ${rtt} ms" ;; *) rtt_say="one round trip" ;; esac
			echo
			for c in $SESSIONS; do
				a=$(sval authmilter "$delay" "$c" cold wait)
				line="Issue #19's goals (set for 20 ms), cold, $c session(s): authmilter waits $a ms; ≤ $rtt_say + 5 ms ($((rtt + 5)) ms): $(awk -v a="$a" -v b="$((rtt + 5))" 'BEGIN { print (a <= b) ? "met" : "missed" }')"
				if [ "$have_chain" = 1 ]; then
					ch=$(sval chain "$delay" "$c" cold wait)
					line="$line; ≤ half the chain's ($ch / 2 = $(awk -v x="$ch" 'BEGIN { printf "%.1f", x / 2 }') ms): $(awk -v a="$a" -v x="$ch" 'BEGIN { print (a <= x / 2) ? "met" : "missed" }')"
				fi
				echo "$line."
			done
		done
		echo
		echo "The chain adds OpenDKIM's and OpenDMARC's medians, each measured on its own (Postfix calls them in series)."
		echo "Queries per message count everything the server answered between the start of a pass and half a second"
		echo "after its end, over the messages of the pass (speculative lookups included). OpenDMARC asks the libc resolver,"
		echo "which keeps no cache; OpenDKIM asks libunbound, which does."
		for n in "${NOTES[@]}"; do echo "Note: $n"; done
	} | tee "$T/results/table.md"
	exit 0
fi

# ------------------------------------------------------------ 5. load
mkdir -p "$T/results"
ROWS=()
# measure NAME: drives the milter on $PORT (processes $MPIDS) at each
# session count and keeps the JSON reports as results/NAME.cC.json.
# cpu_ticks PIDS: the CPU time (user + system, clock ticks) the processes
# have used (their comm may hold spaces: fields are counted after the ")").
cpu_ticks() {
	local p s=0 t
	for p in ${1//,/ }; do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
		s=$((s + ${t:-0}))
	done
	echo "$s"
}
IDLE_SECS=5
measure() {
	local name=$1 c out secs t0 first=1
	secs=${DUR%s}
	for c in $SESSIONS; do
		if [ "$first" = 0 ]; then
			# The milter's CPU with no load, measured once it is warm (after
			# the first run): background work that a run's CPU per message
			# includes, the more the fewer messages the run carried.
			t0=$(cpu_ticks "$MPIDS")
			sleep "$IDLE_SECS"
			awk -v a="$t0" -v b="$(cpu_ticks "$MPIDS")" -v hz="$(getconf CLK_TCK)" -v s="$IDLE_SECS" \
				'BEGIN { printf "%.3f\n", (b - a) * 1000 / hz / s }' >"$T/results/$name.idle"
			say "    idle: $(cat "$T/results/$name.idle") ms of CPU per second"
		fi
		first=0
		out=$T/results/$name.c$c.r$ROUND.json
		say "  $name: $c session(s), up to $N messages in $DUR (warm-up $WARMUP)${ROUNDS_SAY}"
		# The machine's speed just before and after the run (milterload
		# calibrate: a fixed piece of signature work), for the corrected table.
		"$ML" calibrate >"$T/results/$name.c$c.r$ROUND.calib0.json"
		if ! timeout $((secs + 120)) "$ML" --milter "inet:127.0.0.1:$PORT" -c "$c" -n "$N" -d "$DUR" \
			--warmup "$WARMUP" --pid "$MPIDS" --json "$C" >"$out" 2>"$T/results/$name.c$c.err"; then
			echo "compare.sh: milterload against $name failed:" >&2
			cat "$T/results/$name.c$c.err" >&2
			exit 1
		fi
		"$ML" calibrate >"$T/results/$name.c$c.r$ROUND.calib1.json"
		jq -r '"    \(.messages) messages, \(.errors) errors, \(.messages_per_second|floor)/s, p50 \(.latency_ms.p50) ms, CPU \(.milter.cpu_ms_per_message*1000|round/1000) ms/message, actions \(.actions|to_entries|map(select(.value>0)|"\(.key) \(.value)")|join(", ")), header changes \(.header_changes)"' "$out" >&2
	done
	[ "$ROUND" = 1 ] && ROWS+=("$name")
	return 0
}

say "milters on 127.0.0.1, DNS from unbound on $DNS_IP:53; $MSGS messages, sessions: $SESSIONS"

for ROUND in $(seq "$ROUNDS"); do
ROUNDS_SAY=
[ "$ROUNDS" -gt 1 ] && ROUNDS_SAY=", round $ROUND of $ROUNDS"
if wanted opendkim; then PORT=$(free_port); start_opendkim "$PORT"; measure opendkim; stop_pid "$MPID"; fi
if wanted opendmarc; then PORT=$(free_port); start_opendmarc "$PORT"; measure opendmarc; stop_pid "$MPID"; fi
if [ "$HAVE_RSPAMD" = 1 ]; then
	if wanted rspamd; then PORT=$(free_port); start_rspamd "$PORT" 0; measure rspamd; stop_pid "$MPID"; fi
	if wanted rspamd-seal; then PORT=$(free_port); start_rspamd "$PORT" 1; measure rspamd-seal; stop_pid "$MPID"; fi
fi
for v in "authmilter unbound authmilter.yaml" "authmilter-rev unbound authmilter.yaml" "authmilter-zonefile zone authmilter.yaml" "authmilter-seal unbound authmilter-seal-rsa.yaml" "authmilter-1thread unbound authmilter.yaml 1"; do
	set -- $v
	wanted "$1" || continue
	PORT=$(free_port)
	mk_authmilter_conf "$C/$3" "$T/$1.yaml" "$PORT" "$2"
	start_authmilter "$1" "$T/$1.yaml" "${4:-}"
	measure "$1"
	stop_pid "$MPID"
done
if wanted null; then PORT=$(free_port); start_null "$PORT"; measure null; stop_pid "$MPID"; fi
if wanted null-libmilter; then PORT=$(free_port); start_null_libmilter "$PORT"; measure null-libmilter; stop_pid "$MPID"; fi
done

# Each milter's figures for the tables: the round with the median CPU per
# message (the lower middle of an even count), copied to NAME.cC.json.
for name in "${ROWS[@]}"; do
	for c in $SESSIONS; do
		r=$(for k in $(seq "$ROUNDS"); do echo "$(jq -r .milter.cpu_ms_per_message "$T/results/$name.c$c.r$k.json") $k"; done |
			sort -g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
		cp "$T/results/$name.c$c.r$r.json" "$T/results/$name.c$c.json"
		cp "$T/results/$name.c$c.r$r.calib0.json" "$T/results/$name.c$c.calib0.json"
		cp "$T/results/$name.c$c.r$r.calib1.json" "$T/results/$name.c$c.calib1.json"
	done
done

# ------------------------------------------------------------ 6. table
c1=${SESSIONS%% *}
c8=${SESSIONS##* }
get() { jq -r "$2" "$T/results/$1.json"; }
val() { # NAME SESSIONS FIELD(cpu|p50|p99|rate)
	local f
	case $3 in
	cpu) f='.milter.cpu_ms_per_message' ;;
	p50) f='.latency_ms.p50' ;;
	p99) f='.latency_ms.p99' ;;
	rate) f='.messages_per_second' ;;
	calib | ccpu | idle | net) ;;
	esac
	if [ "$1" = chain ]; then
		# Two milters in series: CPU and latency add (measured separately).
		awk -v a="$(val opendkim "$2" "$3")" -v b="$(val opendmarc "$2" "$3")" -v k="$3" \
			'BEGIN { if (k == "rate") printf "%.6f", 1 / (1 / a + 1 / b); else printf "%.6f", a + b }'
	elif [ "$3" = calib ]; then
		# Mean of the calibrations before and after the run, µs per unit.
		awk -v a="$(get "$1.c$2.calib0" .unit_us)" -v b="$(get "$1.c$2.calib1" .unit_us)" 'BEGIN { printf "%.3f", (a + b) / 2 }'
	elif [ "$3" = idle ]; then
		cat "$T/results/$1.idle" 2>/dev/null || echo 0
	elif [ "$3" = net ]; then
		# CPU per message less the idle CPU the run's duration held.
		awk -v c="$(val "$1" "$2" cpu)" -v i="$(val "$1" "$2" idle)" -v r="$(val "$1" "$2" rate)" \
			'BEGIN { printf "%.6f", c - i / r }'
	elif [ "$3" = ccpu ]; then
		# CPU per message at the speed of the reference calibration.
		awk -v c="$(val "$1" "$2" cpu)" -v u="$(val "$1" "$2" calib)" -v r="$REF" 'BEGIN { printf "%.6f", c * r / u }'
	else
		get "$1.c$2" "$f"
	fi
}
have() { [ -s "$T/results/$1.c$c1.json" ] && [ -s "$T/results/$1.c$c8.json" ]; }
ALL=()
for m in opendkim opendmarc chain rspamd rspamd-seal authmilter authmilter-rev authmilter-zonefile authmilter-seal authmilter-1thread null null-libmilter; do
	if [ "$m" = chain ]; then
		have opendkim && have opendmarc && ALL+=(chain)
	elif have "$m"; then
		ALL+=("$m")
	fi
done

# The reference speed: the median of every calibration of this run.
REF=$(for name in "${ROWS[@]}"; do for c in $SESSIONS; do cat "$T/results/$name.c$c.calib0.json" "$T/results/$name.c$c.calib1.json"; done; done | jq -s 'map(.unit_us) | sort | .[length/2|floor]')

{
	echo
	echo "authmilter and milterload built from the $BUILT${REV2_SHORT:+, authmilter-rev from commit $REV2_SHORT}; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)); Debian $(cat /etc/debian_version); $(go version | awk '{print $3}')"
	echo "command: $CMDLINE"
	echo "corpus: $MSGS messages ($SIZES, seed 1, $PER_CLASS per class), one milter connection per message, warm-up $WARMUP, up to $N messages or $DUR per run"
	echo
	echo "| milter | CPU ms/msg @$c1 | CPU ms/msg @$c8 | p50 ms @$c1 | p99 ms @$c1 | p50 ms @$c8 | p99 ms @$c8 | msgs/s @$c1 | msgs/s @$c8 |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for m in "${ALL[@]}"; do
		printf '| %s | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |\n' "$(label "$m")" \
			"$(val "$m" "$c1" cpu)" "$(val "$m" "$c8" cpu)" "$(val "$m" "$c1" p50)" "$(val "$m" "$c1" p99)" \
			"$(val "$m" "$c8" p50)" "$(val "$m" "$c8" p99)" "$(val "$m" "$c1" rate)" "$(val "$m" "$c8" rate)"
	done
	echo
	echo "| A / B | CPU @$c1 | CPU @$c8 | p50 @$c1 | p50 @$c8 |"
	echo "|---|---:|---:|---:|---:|"
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "–" }'; }
	# pairs prints "A B" for each ratio row A / B: authmilter against each
	# peer; against rspamd with sealing, authmilter with sealing (the same
	# work) and authmilter without (issue #7's reading: its rspamd row is
	# rspamd's minimal milter configuration with ARC verify and seal, its
	# target for authmilter without sealing ≤ 1/20 of that); then the
	# floors: the null milter against the chain and rspamd (the share of a
	# peer's CPU that the protocol alone takes), authmilter against the null
	# milter, and the null milter against libmilter's.
	pairs() {
		local m
		for m in "${ALL[@]}"; do
			case $m in
			authmilter* | null*) continue ;;
			rspamd-seal)
				if have authmilter-seal; then echo "authmilter-seal $m"; fi
				if have authmilter; then echo "authmilter $m"; fi
				;;
			*) if have authmilter; then echo "authmilter $m"; fi ;;
			esac
		done
		if have authmilter-rev; then
			for m in chain rspamd; do
				case " ${ALL[*]} " in *" $m "*) echo "authmilter-rev $m" ;; esac
			done
			if have authmilter; then echo "authmilter authmilter-rev"; fi
		fi
		if have authmilter-1thread; then
			for m in chain rspamd; do
				case " ${ALL[*]} " in *" $m "*) echo "authmilter-1thread $m" ;; esac
			done
		fi
		have null || return 0
		for m in chain rspamd; do
			case " ${ALL[*]} " in *" $m "*) echo "null $m" ;; esac
		done
		if have authmilter; then echo "authmilter null"; fi
		if have null-libmilter; then echo "null null-libmilter"; fi
	}
	pairs | while read -r a m; do
		printf '| %s / %s | %s | %s | %s | %s |\n' "$a" "$m" \
			"$(ratio "$(val $a "$c1" cpu)" "$(val "$m" "$c1" cpu)")" "$(ratio "$(val $a "$c8" cpu)" "$(val "$m" "$c8" cpu)")" \
			"$(ratio "$(val $a "$c1" p50)" "$(val "$m" "$c1" p50)")" "$(ratio "$(val $a "$c8" p50)" "$(val "$m" "$c8" p50)")"
	done
	echo
	echo "The machine's speed during each run (\`milterload calibrate\` before and after it, µs per unit of signature"
	echo "work; the reference is their median, $REF µs) and the CPU per message corrected to the reference speed:"
	echo
	echo "| milter | calib µs @$c1 | calib µs @$c8 | corrected CPU ms/msg @$c1 | corrected CPU ms/msg @$c8 |"
	echo "|---|---:|---:|---:|---:|"
	for m in "${ALL[@]}"; do
		[ "$m" = chain ] && continue
		printf '| %s | %.1f | %.1f | %.3f | %.3f |\n' "$(label "$m")" \
			"$(val "$m" "$c1" calib)" "$(val "$m" "$c8" calib)" "$(val "$m" "$c1" ccpu)" "$(val "$m" "$c8" ccpu)"
	done
	echo
	# cpu_ratios TITLE FIELD: the A / B ratios of a CPU figure (ccpu, net);
	# val sums the chain's two figures as it does the raw ones.
	cpu_ratios() {
		echo "| A / B, $1 | CPU @$c1 | CPU @$c8 |"
		echo "|---|---:|---:|"
		pairs | while read -r a m; do
			printf '| %s / %s | %s | %s |\n' "$a" "$m" \
				"$(ratio "$(val $a "$c1" "$2")" "$(val "$m" "$c1" "$2")")" "$(ratio "$(val $a "$c8" "$2")" "$(val "$m" "$c8" "$2")")"
		done
	}
	cpu_ratios corrected ccpu
	echo
	echo "Each milter's CPU with no load (${IDLE_SECS} s, measured after its first run), and the CPU per message less"
	echo "that idle CPU over the run's duration (net = CPU per message - idle ms/s ÷ messages/s): a milter the"
	echo "MTA's writes slow to a few messages a second otherwise carries its background work in every message."
	echo
	echo "| milter | idle CPU ms/s | net CPU ms/msg @$c1 | net CPU ms/msg @$c8 |"
	echo "|---|---:|---:|---:|"
	for m in "${ALL[@]}"; do
		[ "$m" = chain ] && continue
		printf '| %s | %.2f | %.3f | %.3f |\n' "$(label "$m")" "$(val "$m" "$c1" idle)" "$(val "$m" "$c1" net)" "$(val "$m" "$c8" net)"
	done
	echo
	cpu_ratios "net of idle" net
	if [ "$ROUNDS" -gt 1 ]; then
		# rcpu NAME SESSIONS ROUND: a round's CPU per message (the chain's:
		# the sum of its two milters' in that round).
		rcpu() {
			if [ "$1" = chain ]; then
				awk -v a="$(rcpu opendkim "$2" "$3")" -v b="$(rcpu opendmarc "$2" "$3")" 'BEGIN { printf "%.6f", a + b }'
			else
				jq -r .milter.cpu_ms_per_message "$T/results/$1.c$2.r$3.json"
			fi
		}
		# rounds A B SESSIONS: "r1, r2, ... | median" of A / B by round.
		rounds() {
			local k list
			list=$(for k in $(seq "$ROUNDS"); do ratio "$(rcpu "$1" "$3" "$k")" "$(rcpu "$2" "$3" "$k")"; echo; done)
			printf '%s | %s' "$(echo "$list" | paste -sd, | sed 's/,/, /g')" \
				"$(echo "$list" | sort -g | awk -v n="$ROUNDS" '{ v[NR] = $1 } END { if (n % 2) print v[(n + 1) / 2]; else printf "%.3f", (v[n / 2] + v[n / 2 + 1]) / 2 }')"
		}
		echo
		echo "CPU per message, A / B round by round ($ROUNDS rounds, each measuring every milter in turn, so A and B"
		echo "minutes apart), and the median of those ratios:"
		echo
		echo "| A / B | by round @$c1 | median @$c1 | by round @$c8 | median @$c8 |"
		echo "|---|---|---:|---|---:|"
		pairs | while read -r a m; do
			printf '| %s / %s | %s | %s |\n' "$a" "$m" "$(rounds "$a" "$m" "$c1")" "$(rounds "$a" "$m" "$c8")"
		done
		echo
		echo "CPU per message by round (ms):"
		echo
		echo "| milter | by round @$c1 | by round @$c8 |"
		echo "|---|---|---|"
		for m in "${ALL[@]}"; do
			printf '| %s | %s | %s |\n' "$(label "$m")" \
				"$(for k in $(seq "$ROUNDS"); do printf '%.3f\n' "$(rcpu "$m" "$c1" "$k")"; done | paste -sd, | sed 's/,/, /g')" \
				"$(for k in $(seq "$ROUNDS"); do printf '%.3f\n' "$(rcpu "$m" "$c8" "$k")"; done | paste -sd, | sed 's/,/, /g')"
		done
	fi
	echo
	echo "Action mix and errors per run (milterload; the peers' verdicts are theirs, not checked; with -k, of the median round):"
	for m in "${ALL[@]}"; do
		[ "$m" = chain ] && continue
		for c in $SESSIONS; do
			jq -r --arg n "$m @$c" '"  \($n): \(.messages) messages, \(.errors) errors, \(.actions|to_entries|map(select(.value>0)|"\(.key) \(.value)")|join(", ")), header changes \(.header_changes), milter CPU resolution \(.milter.cpu_ms_resolution) ms over \(.milter.cpu_ms) ms"' "$T/results/$m.c$c.json"
		done
	done
	echo
	echo "The chain row adds the CPU and latency of OpenDKIM and OpenDMARC, each measured on its own (as Postfix calls"
	echo "two milters in series); its msgs/s is 1/(1/a+1/b). OpenDMARC alone sees no OpenDKIM Authentication-Results, so"
	echo "it decides DMARC on SPF alone. Ratios: authmilter (unbound) against each peer; against rspamd with RSA sealing"
	echo "(issue #7's rspamd row: ARC verify and seal) authmilter with RSA sealing (the same work) and authmilter without"
	echo "(the issue's target: without sealing, ≤ 1/20 of that rspamd). The floor rows check nothing: \`milterload null\` is authmilter's protocol loop"
	echo "alone, bench/nullmilter.c libmilter's (OpenDKIM's and OpenDMARC's library); null / rspamd is the share of"
	echo "rspamd's CPU per message that speaking the protocol over one connection per message takes on this machine."
	for n in "${NOTES[@]}"; do echo "Note: $n"; done
} | tee "$T/results/table.md"
