#!/usr/bin/env bash
# kafka-run-class.sh CLASS ARGS...: runs a class of the broker's classpath.
# The tools log warnings to stderr; the broker (kafka-server-start.sh sets
# KAFKA_LOG4J_OPTS) logs to the console.
set -euo pipefail
read -ra heap <<<"${KAFKA_HEAP_OPTS:--Xmx256M}"
read -ra jvm <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
read -ra log <<<"${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/etc/kafka/docker/tools-log4j2.properties}"
read -ra opts <<<"${KAFKA_OPTS:-}"
exec java "${heap[@]}" "${jvm[@]}" -Djava.awt.headless=true "${log[@]}" "${opts[@]}" -cp '/opt/kafka/libs/*' "$@"
