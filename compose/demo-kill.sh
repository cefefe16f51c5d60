#!/usr/bin/env bash
# Shows what the bridge guarantees when a process dies, on a real broker: it
# runs one carrier's profile of docker-compose.yml with a producer that
# generates numbered messages, kills the consumer container with SIGKILL a
# third of the way through, starts it again, and, where the producer keeps
# a durable queue (amqp, kafka: BRIDGE_DURABLE_DIR), kills the producer with
# SIGKILL two thirds of the way through and starts it again: what it had
# taken is in its queue, and the new producer resends it before the messages
# it generates itself, numbered from 1 again. Then it stops the producer
# (SIGTERM: it delivers what it took, and exits) and counts what the
# consumer printed. Every message taken must arrive at least once and in
# order (a killed consumer is sent again what it had not confirmed, so some
# arrive twice); the script exits 1 if any is missing or out of order, or
# the producer did not finish cleanly.
#
# A work-pulling profile (consumer-PROFILE-1, -2, ...: competing workers)
# runs the same way: the first worker is the one killed, and what it had not
# confirmed goes to the others. Every message must then be printed by some
# worker at least once and every worker must have printed some; the order is
# not checked, as work pulling orders only what one worker is handed.
#
#   compose/demo-kill.sh [PROFILE]   amqp (default), kafka, jetstream, nats,
#                                    tcp, work-pulling: any profile with the
#                                    services producer-PROFILE and
#                                    consumer-PROFILE or consumer-PROFILE-N
#
#   DEMO_COUNT  about how many messages (default 3000): the stages are when
#               the consumer has printed a third, two thirds and all of it
#   DEMO_RATE   messages a second (default 200)
#   DEMO_KEEP=1 leave the containers running at the end (default: removed)
#   DEMO_BUILD=0  use the bridge image as it is (default: up --build)
#   DEMO_PROJECT  the compose project (default bridge-demo-kill)
#   DEMO_COMPOSE  the compose command (default: `docker compose`, else
#               `docker-compose`); COMPOSE_FILE as usual, e.g.
#               docker-compose.yml:docker-compose.local.yml
#   DEMO_ENGINE   the engine's command for inspect and logs (default: docker
#               if installed, else podman; with Podman, say podman)
#
# It runs as its own compose project, from a clean state (its volumes are
# removed first: no queue, topic or durable file left from a previous run),
# so it leaves the volumes of your other demo runs alone; stop those first,
# as they publish the same host ports. Needs Docker with Compose (v2, or
# docker-compose 1.28 or later), or Podman's Docker API with docker-compose
# (.ci/demo-test runs it so), and curl; runs from any directory.
set -euo pipefail

profile=${1:-amqp}
target=${DEMO_COUNT:-3000}
export DEMO_RATE=${DEMO_RATE:-200}
# The producer generates until it is stopped: the script says when.
export DEMO_COUNT=0
if ! [[ $target =~ ^[1-9][0-9]*$ ]]; then
	echo "DEMO_COUNT must be a positive number, not '$target'" >&2
	exit 2
fi
project=${DEMO_PROJECT:-bridge-demo-kill}
producer=producer-$profile
cd "$(dirname "$0")/.."

say() { printf '%s demo-kill: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
if [ -n "${DEMO_COMPOSE:-}" ]; then
	read -ra compose_cmd <<<"$DEMO_COMPOSE"
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose_cmd=(docker-compose)
else
	say "neither docker compose nor docker-compose is installed"
	exit 2
fi
engine=${DEMO_ENGINE:-$(command -v docker >/dev/null && echo docker || echo podman)}
command -v curl >/dev/null || { say "curl is not installed: it checks the bridges are ready"; exit 2; }
compose() { "${compose_cmd[@]}" --project-name "$project" --profile "$profile" "$@"; }
inspect() { "$engine" inspect --format "$2" "$1"; }

services=$(compose config --services) || exit 2
mapfile -t consumers < <(grep -E "^consumer-$profile(-[0-9]+)?\$" <<<"$services" | sort)
if ! grep -qx "$producer" <<<"$services" || ((${#consumers[@]} == 0)); then
	echo "usage: $0 [PROFILE]: profile $profile has no services $producer and consumer-$profile" >&2
	exit 2
fi
# The consumer killed; in work pulling, the first of the workers.
consumer=${consumers[0]}
work=
((${#consumers[@]} > 1)) && work=1

cleanup() {
	if [ "${DEMO_KEEP:-0}" = 1 ]; then
		say "left running; remove with: ${compose_cmd[*]} -p $project --profile $profile down -v"
	else
		compose down --volumes --remove-orphans >/dev/null 2>&1 || true
	fi
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND once a second until it
# succeeds; after SECONDS it says what it waited for and fails.
wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			say "gave up after ${limit}s waiting for $what"
			compose ps --all >&2 || true
			return 1
		fi
		sleep 1
	done
}

# id_of SERVICE: its container's id, which a kill and a start keep (asked of
# compose once: each call of compose takes a second or more).
declare -A ids=() ports=()
id_of() {
	[ -n "${ids[$1]:-}" ] || ids[$1]=$(compose ps --all --quiet "$1")
	echo "${ids[$1]}"
}

# received prints the number and time of each message the consumer printed,
# a line each, in the order printed, across all its lifetimes: the container
# keeps its log when it is killed and started again. A generated message is
# "<number> <unix nanoseconds> " padded with x. The engine's logs, stdout
# alone: the bridge's own log is on stderr, and Podman's Docker API (which
# compose logs reads) joins a stdout line that reached the log in two parts
# with a stderr line written between them; podman logs does not.
received() {
	local c
	for c in "${consumers[@]}"; do
		"$engine" logs "$(id_of "$c")" 2>/dev/null | awk '/^[0-9]+ [0-9]+ x*$/ { print $1, $2 }'
	done
}
received_at_least() { (($(received | wc -l) >= $1)); }

exited() { [ "$(inspect "$(id_of "$1")" '{{.State.Status}}')" = exited ]; }

# http SERVICE PATH: GET PATH of SERVICE's HTTP server, through the host port
# compose published it on.
http() {
	local addr
	if [ -z "${ports[$1]:-}" ]; then
		addr=$(compose port "$1" 8080 2>/dev/null | head -n 1) || return 1
		[ -n "$addr" ] || return 1
		ports[$1]=${addr##*:}
	fi
	curl -fsS --max-time 5 "http://127.0.0.1:${ports[$1]}$2" 2>/dev/null
}

# metric SERVICE NAME prints SERVICE's current value of a metric (this
# lifetime's: a counter starts again at 0 after a kill).
metric() { http "$1" /metrics | awk -v m="$2" '$1 ~ "^"m"([{]|$)" { print $2 }'; }

# healthy: every container of the profile runs, those with a health check
# (the broker) are healthy, and both bridges answer /readyz: connected.
healthy() {
	local id state
	for id in $(compose ps --quiet); do
		# Docker has no .State.Health without a health check; Podman has
		# one with no status.
		state=$(inspect "$id" '{{.State.Status}}{{with .State.Health}}{{with .Status}} {{.}}{{end}}{{end}}')
		[ "$state" = running ] || [ "$state" = "running healthy" ] || return 1
	done
	http "$producer" /readyz >/dev/null || return 1
	for id in "${consumers[@]}"; do
		http "$id" /readyz >/dev/null || return 1
	done
}

# delivering: the consumer has handed a message to its sink in this
# lifetime: the stream goes on after a restart.
delivering() { local n; n=$(metric "$consumer" bridge_messages_delivered_total) && [[ $n =~ ^[1-9] ]]; }

# durable: the producer keeps a durable queue (BRIDGE_DURABLE_DIR set in the
# resolved configuration). awk reads it all: an early exit would fail
# compose's write, and so the pipeline.
durable() {
	compose config 2>/dev/null | awk -v s="  $producer:" '
		$0 == s { in_s = 1; next }
		/^  [^ ]/ { in_s = 0 }
		in_s && /BRIDGE_DURABLE_DIR/ { found = 1 }
		END { exit !found }'
}

# kill_and_start SERVICE: SIGKILL, a pause, and a start of the same container.
kill_and_start() {
	compose kill -s SIGKILL "$1" >/dev/null 2>&1
	# While the consumer is down the producer goes on: a broker keeps what
	# it is sent (tcp and core NATS drop it, and the producer sends it
	# again). Once the kill returns a producer is dead: what is generated
	# from now on is the next one's.
	restarted_ns=$(date +%s%N)
	sleep "$2"
	say "starting $1 again"
	compose start "$1" >/dev/null 2>&1
}

trap cleanup EXIT
restart_producer=
durable && restart_producer=1
say "profile $profile: about $target messages at $DEMO_RATE/s${work:+ to ${#consumers[@]} workers}${restart_producer:+; the producer is durable, and is killed too}"
compose down --volumes --remove-orphans >/dev/null 2>&1 || true
if [ "${DEMO_BUILD:-1}" = 1 ]; then compose up --detach --build; else compose up --detach --no-build; fi
# up returns once the broker is healthy (the bridges wait for that); this
# waits for the bridges to be connected too.
wait_until 120 "every container to run and be healthy, and every bridge ready" healthy || exit 1
say "every container runs, the broker is healthy, every bridge is ready"

stage=$((target / 3))
wait_until 300 "the consumer to print $stage messages" received_at_least "$stage" || exit 1
say "the consumer has printed $(received | wc -l) messages: killing it with SIGKILL"
kill_and_start "$consumer" 5
wait_until 120 "the restarted consumer to deliver" delivering || exit 1

# The first producer's messages are told from the second's by when they
# were generated (a message carries its time, in unix nanoseconds).
cut=
taken_before=0
if [ -n "$restart_producer" ]; then
	wait_until 300 "the consumer to print $((2 * stage)) messages" received_at_least "$((2 * stage))" || exit 1
	# What the producer had taken by now at the least: each of these must
	# arrive, whatever it took after and before the kill.
	confirmed_seq=$(metric "$producer" bridge_confirmed_seq_nr) && unconfirmed=$(metric "$producer" bridge_unconfirmed) &&
		[[ $confirmed_seq =~ ^[0-9]+$ && $unconfirmed =~ ^[0-9]+$ ]] || { say "the producer's /metrics did not answer"; exit 1; }
	taken_before=$((confirmed_seq + unconfirmed))
	say "the producer has taken $taken_before messages: killing it with SIGKILL"
	lines=$(received | wc -l)
	kill_and_start "$producer" 2
	cut=$restarted_ns
	wait_until 120 "the restarted producer's messages to reach the consumer" received_at_least "$((lines + 1))" || exit 1
fi

wait_until 300 "the consumer to print $target messages" received_at_least "$target" || exit 1
say "the consumer has printed $(received | wc -l) messages: stopping the producer (SIGTERM: it delivers what it took, then exits)"
compose stop "$producer" >/dev/null 2>&1
wait_until 60 "the producer to exit" exited "$producer" || exit 1
producer_status=$(inspect "$(id_of "$producer")" '{{.State.ExitCode}}')
read -r taken confirmed < <(compose logs --no-color --no-log-prefix "$producer" 2>/dev/null | grep 'producer stopped' | tail -n 1 |
	sed -n 's/.* taken=\([0-9]*\) confirmed=\([0-9]*\).*/\1 \2/p') || true

# tally: one pass over what the consumer printed: how many lines, how many
# different messages, what is missing, and whether the order held. Each
# message is placed in the one stream the producer's lifetimes make, as the
# durable queue numbers it: the first producer's message i is i, the
# restarted one's is first + i (first: the highest number the first one's
# messages reached the consumer with). At least once and in order means
# each message is the next one, or (after a restart) goes back to one
# already printed, never forward past a missing one.
tally() {
	received | awk -v cut="$cut" -v want="${taken:-0}" -v quiet="${1:-}${work}" '
	{ num[NR] = $1; second[NR] = cut != "" && $2 >= cut; if (!second[NR] && $1 > first) first = $1 }
	END {
		for (r = 1; r <= NR; r++) {
			k = second[r] ? first + num[r] : num[r]
			if (k < 1 || k > want) { outside++; continue }
			total++
			if (!seen[k]++) distinct++
			if (k > prev + 1) { skips++; if (skips <= 5 && !quiet) printf "out of order: %d after %d\n", k, prev > "/dev/stderr" }
			if (k <= prev) rewinds++
			prev = k
		}
		for (i = 1; i <= want; i++) if (!(i in seen)) missing++
		printf "%d %d %d %d %d %d %d\n", total, distinct, missing, skips, outside, rewinds, first
	}'
}
received_all() {
	local missing
	read -r _ _ missing _ < <(tally quiet)
	((missing == 0))
}
# The producer exits once the consumer confirmed everything, and the consumer
# confirms a message only after printing it; allow the log a moment to catch up.
wait_until 30 "the consumer's log to show every message" received_all || true
read -r total distinct missing skips outside rewinds first < <(tally)
# In work pulling each worker prints its share, and every one must have
# had some: the producer spreads the work.
idle=0
spread=
if [ -n "$work" ]; then
	for c in "${consumers[@]}"; do
		n=$("$engine" logs "$(id_of "$c")" 2>/dev/null | grep -cE '^[0-9]+ [0-9]+ x*$' || true)
		spread+="$c $n, "
		((n > 0)) || idle=$((idle + 1))
	done
	skips=0 # the order across workers is not one stream's
fi

echo
echo "carrier:                $profile"
echo "messages taken:         ${taken:-?} (producer: ${confirmed:-?} confirmed, exit status $producer_status)"
if [ -n "$restart_producer" ]; then
	echo "                        $first by the first producer (it had taken $taken_before when read), $((${taken:-0} - first)) by the second"
fi
echo "lines printed:          $total${work:+ (${spread%, })}"
echo "different messages:     $distinct"
echo "printed twice or more:  $((total - distinct)) (redelivered after a kill: at least once)"
echo "missing:                $missing"
[ -n "$work" ] || echo "out of order:           $skips"
echo "not taken:              $outside"
echo "rewinds (restarts):     $rewinds"
delivered=$(metric "$consumer" bridge_messages_delivered_total) || true
duplicates=$(metric "$consumer" bridge_duplicates_dropped_total) || true
if [ -n "$delivered" ]; then
	echo "consumer /metrics since the restart: delivered $delivered, duplicates dropped $duplicates"
fi
echo

# The durable queue numbers the stream across the producer's lifetimes: the
# second producer's last sequence number is the first's messages and its
# own, so a message of the first that was lost at its end shows here.
if [ -z "${taken:-}" ] || ((missing > 0 || skips > 0 || outside > 0 || first < taken_before)) ||
	((idle > 0)) || [ "$producer_status" != 0 ] || [ "$confirmed" != "$taken" ]; then
	say "the producer's log, the end:"
	compose logs --no-color --no-log-prefix --tail 20 "$producer" >&2 || true
	say "FAILED: not every message arrived${work:+ or a worker got none}${work:- in order}, or the producer did not finish"
	exit 1
fi
if [ -n "$work" ]; then
	say "OK: all $taken messages arrived across ${#consumers[@]} workers, every worker had some, across a SIGKILL of $consumer"
else
	say "OK: all $taken messages arrived, in order, across a SIGKILL of the consumer${restart_producer:+ and one of the producer}"
fi
