#!/usr/bin/env bash
# Shows what the bridge guarantees when the consumer process dies, on a real
# broker: it runs one carrier's profile of docker-compose.yml with a producer
# that sends a fixed number of numbered messages, kills the consumer
# container with SIGKILL mid-stream, starts it again, lets the stream finish,
# and counts what the consumer printed. Every message must arrive at least
# once and in order (a killed consumer is sent again what it had not
# confirmed, so some arrive twice); the script exits 1 if any is missing or
# out of order, or the producer did not finish cleanly.
#
#   compose/demo-kill.sh [PROFILE]   amqp (default), kafka, jetstream, nats or tcp
#
#   DEMO_COUNT  messages to send (default 3000)
#   DEMO_RATE   messages a second (default 200)
#   DEMO_KEEP=1 leave the containers running at the end (default: removed)
#
# It runs as its own compose project (bridge-demo-kill), from a clean state
# (its volumes are removed first: no queue, topic or durable file left from
# a previous run), so it leaves the volumes of your other demo runs alone;
# stop those first, as they publish the same host ports. Needs Docker with
# Compose v2, and runs from any directory.
set -euo pipefail

profile=${1:-amqp}
case $profile in
tcp | nats | jetstream | amqp | kafka) ;;
*)
	echo "usage: $0 [amqp|kafka|jetstream|nats|tcp]" >&2
	exit 2
	;;
esac
export DEMO_COUNT=${DEMO_COUNT:-3000} DEMO_RATE=${DEMO_RATE:-200}
if ! [[ $DEMO_COUNT =~ ^[1-9][0-9]*$ ]]; then
	echo "DEMO_COUNT must be a positive number, not '$DEMO_COUNT'" >&2
	exit 2
fi
project=bridge-demo-kill
producer=producer-$profile
consumer=consumer-$profile
cd "$(dirname "$0")/.."

compose() { docker compose --project-name "$project" --profile "$profile" "$@"; }
say() { printf '%s demo-kill: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
	if [ "${DEMO_KEEP:-0}" = 1 ]; then
		say "left running; remove with: docker compose -p $project --profile $profile down -v"
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

# received prints the number of each message the consumer printed, a line
# each, in the order printed, across all its lifetimes: the container keeps
# its log when it is killed and started again. A generated message is
# "<number> <unix nanoseconds> " padded with x; the bridge's own log lines
# (stderr, in the same log) start with time= and are skipped.
received() {
	compose logs --no-color --no-log-prefix "$consumer" 2>/dev/null |
		awk '/^[0-9]+ [0-9]+ x*$/ { print $1 }'
}
received_count() { received | wc -l | tr -d ' '; }
received_at_least() { (($(received_count) >= $1)); }
received_all() { (($(received | sort -un | wc -l) >= DEMO_COUNT)); }

producer_exited() {
	[ "$(docker inspect --format '{{.State.Status}}' "$1")" = exited ]
}

# consumer_metric NAME prints the consumer's current value of a metric (this
# lifetime's: a counter starts again at 0 after the kill), if curl is here.
consumer_metric() {
	command -v curl >/dev/null || return 0
	local addr
	addr=$(compose port "$consumer" 8080 2>/dev/null | head -n 1) || return 0
	[ -n "$addr" ] || return 0
	curl -fsS "http://127.0.0.1:${addr##*:}/metrics" 2>/dev/null | awk -v m="$1" '$1 ~ "^"m"([{]|$)" { print $2 }'
}

trap cleanup EXIT
say "profile $profile: $DEMO_COUNT messages at $DEMO_RATE/s"
compose down --volumes --remove-orphans >/dev/null 2>&1 || true
compose up --detach --build

kill_at=$((DEMO_COUNT / 3))
wait_until 300 "the consumer to print $kill_at messages" received_at_least "$kill_at" || exit 1
say "the consumer has printed $(received_count) messages: killing it with SIGKILL"
compose kill --signal SIGKILL "$consumer"
# While it is down the producer goes on: a broker keeps what it is sent
# (tcp and core NATS drop it, and the producer sends it again).
sleep 5
say "starting the consumer again"
compose start "$consumer"

producer_id=$(compose ps --all --quiet "$producer")
wait_until 600 "the producer to have every message confirmed and exit" producer_exited "$producer_id" || exit 1
producer_status=$(docker inspect --format '{{.State.ExitCode}}' "$producer_id")
confirmed=$(compose logs --no-color --no-log-prefix "$producer" 2>/dev/null |
	grep 'producer stopped' | tail -n 1 | sed -n 's/.* confirmed=\([0-9]*\).*/\1/p') || true
# The producer exits once the consumer confirmed everything, and the consumer
# confirms a message only after printing it; allow the log a moment to catch up.
wait_until 30 "the consumer's log to show every message" received_all || true

# One pass over what the consumer printed: how many lines, how many
# different messages, what is missing, and whether the order held. At least
# once and in order means each number is the next one, or (after the
# restart) goes back to one already printed, never forward past a missing one.
read -r total distinct missing skips outside rewinds < <(received | awk -v n="$DEMO_COUNT" '
	{
		if ($1 < 1 || $1 > n) { outside++; next }
		total++
		if (!seen[$1]++) distinct++
		if ($1 > prev + 1) { skips++; if (skips <= 5) printf "out of order: %d after %d\n", $1, prev > "/dev/stderr" }
		if ($1 <= prev) rewinds++
		prev = $1
	}
	END {
		for (i = 1; i <= n; i++) if (!(i in seen)) missing++
		printf "%d %d %d %d %d %d\n", total, distinct, missing, skips, outside, rewinds
	}')

echo
echo "carrier:                $profile"
echo "messages sent:          $DEMO_COUNT (producer: ${confirmed:-?} confirmed, exit status $producer_status)"
echo "lines printed:          $total"
echo "different messages:     $distinct"
echo "printed twice or more:  $((total - distinct)) (redelivered after the kill: at least once)"
echo "missing:                $missing"
echo "out of order:           $skips"
echo "rewinds (restarts):     $rewinds"
delivered=$(consumer_metric bridge_messages_delivered_total) || true
duplicates=$(consumer_metric bridge_duplicates_dropped_total) || true
if [ -n "$delivered" ]; then
	echo "consumer /metrics since the restart: delivered $delivered, duplicates dropped $duplicates"
fi
echo

if ((missing > 0 || skips > 0 || outside > 0)) || [ "$producer_status" != 0 ] || [ "${confirmed:-}" != "$DEMO_COUNT" ]; then
	say "FAILED: not every message arrived in order, or the producer did not finish"
	exit 1
fi
say "OK: all $DEMO_COUNT messages arrived, in order, across a SIGKILL of the consumer"
