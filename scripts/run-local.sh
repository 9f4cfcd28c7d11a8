#!/usr/bin/env bash
# Runs the whole shop on this machine without Docker: every gRPC service, both Raft
# groups (books_db and order_executor, three replicas each) and the web server, each
# log line prefixed with its process's name, each process serving its Prometheus
# metrics on the port map's metrics port (`make observe` scrapes them). Ctrl-C (or
# SIGTERM) stops everything cleanly. It says where the shop is only once every
# process is running and the web server answers /readyz; a process that could not
# start (its port taken) is named instead. If one process dies (or is killed, to
# watch the Raft groups fail over), the rest keep running, and the line to restart
# it is printed.
#
# Expects release binaries (make run builds them first). Data lives under
# $DATA_DIR (default .data/). Settings come from .env if present (see .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release}
binaries=("$BIN/services")
[ -n "${SERVICES_ONLY:-}" ] || binaries+=("$BIN/server")
for binary in "${binaries[@]}"; do
  [ -x "$binary" ] || { echo "run-local: $binary is missing; run 'make run' (it builds first)" >&2; exit 1; }
done

# The port map, from its one source (platform/src/ports.rs).
eval "$("$BIN/services" ports)"
# "1=127.0.0.1:p1,2=127.0.0.1:p2,3=…" and "http://127.0.0.1:p1,…" for a group's ports.
members() { local id=0 out=() port; for port in $1; do id=$((id + 1)); out+=("$id=127.0.0.1:$port"); done; (IFS=,; echo "${out[*]}"); }
urls() { local out=() port; for port in $1; do out+=("http://127.0.0.1:$port"); done; (IFS=,; echo "${out[*]}"); }

export DATA_DIR=${DATA_DIR:-.data}
export ORDER_QUEUE_DATA_DIR=${ORDER_QUEUE_DATA_DIR:-$DATA_DIR/order_queue}
export PAYMENT_DATA_DIR=${PAYMENT_DATA_DIR:-$DATA_DIR/payment}
export BOOKS_DB_MEMBERS=${BOOKS_DB_MEMBERS:-$(members "$BOOKS_DB_PORTS")}
export BOOKS_DB_URLS=${BOOKS_DB_URLS:-$(urls "$BOOKS_DB_PORTS")}
export LEPTOS_SITE_ROOT=${LEPTOS_SITE_ROOT:-target/site}
export LEPTOS_SITE_ADDR=${LEPTOS_SITE_ADDR:-127.0.0.1:$WEB_PORT}

pids=()
declare -A names commands
start() { # start NAME COMMAND...: runs COMMAND with its output prefixed by [NAME]
  local name=$1; shift
  local prefix
  prefix=$(printf '%-26s' "[$name]")
  "$@" > >(sed -u "s/^/$prefix /") 2>&1 &
  pids+=("$!")
  names[$!]=$name
  commands[$!]="$*"
}

stop() {
  trap - INT TERM EXIT
  echo "[run-local] stopping ${#pids[@]} processes"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "[run-local] stopped"
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

export ORDER_EXECUTOR_MEMBERS=${ORDER_EXECUTOR_MEMBERS:-$(members "$ORDER_EXECUTOR_PORTS")}
read -r -a books_db_ports <<< "$BOOKS_DB_PORTS"
read -r -a executor_ports <<< "$ORDER_EXECUTOR_PORTS"
read -r -a books_db_metrics <<< "$BOOKS_DB_METRICS_PORTS"
read -r -a executor_metrics <<< "$ORDER_EXECUTOR_METRICS_PORTS"
for id in 1 2 3; do
  start "books_db_$id" "$BIN/services" books-db --id "$id" --listen "127.0.0.1:${books_db_ports[id - 1]}" \
    --metrics-listen "127.0.0.1:${books_db_metrics[id - 1]}" \
    --members "$BOOKS_DB_MEMBERS" --data-dir "$DATA_DIR/books_db/$id"
done
start fraud_detection "$BIN/services" fraud-detection
start transaction_verification "$BIN/services" transaction-verification
start suggestions "$BIN/services" suggestions
start order_queue "$BIN/services" order-queue
start payment "$BIN/services" payment
for id in 1 2 3; do
  start "order_executor_$id" "$BIN/services" order-executor --id "$id" --listen "127.0.0.1:${executor_ports[id - 1]}" \
    --metrics-listen "127.0.0.1:${executor_metrics[id - 1]}" \
    --members "$ORDER_EXECUTOR_MEMBERS" --books-db "$BOOKS_DB_URLS" --data-dir "$DATA_DIR/order_executor/$id"
done
[ -n "${SERVICES_ONLY:-}" ] || start web "$BIN/server"

# Announced only once it is so: every process still running and, with the web
# server, its /readyz answering (every service a checkout calls serves). A process
# that could not start (its port taken, its data unreadable) exits within moments,
# and the loop at the end names it with the line that restarts it.
running() { local state; state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]; }
if [ -n "${SERVICES_ONLY:-}" ]; then tries=20; else tries=600; fi
startup=waiting
for _ in $(seq 1 "$tries"); do
  for pid in "${pids[@]}"; do running "$pid" || { startup=stopped; break 2; }; done
  if [ -z "${SERVICES_ONLY:-}" ] && curl -fsS -o /dev/null "http://$LEPTOS_SITE_ADDR/readyz" 2>/dev/null; then
    startup=ready
    break
  fi
  sleep 0.1
done
case "$startup" in
  stopped) echo "[run-local] the shop did not start whole: below, which process stopped and how to restart it" ;;
  ready) echo "[run-local] the shop is at http://$LEPTOS_SITE_ADDR (Ctrl-C stops everything)" ;;
  # The services alone have no readiness to ask here: still running after two seconds is started.
  *) if [ -n "${SERVICES_ONLY:-}" ]; then
      echo "[run-local] services running; start the web server with 'cargo leptos watch' (Ctrl-C stops them)"
    else
      echo "[run-local] every process is running but http://$LEPTOS_SITE_ADDR/readyz has not answered in a minute: see their lines"
    fi ;;
esac
set +e
alive=("${pids[@]}")
while [ "${#alive[@]}" -gt 0 ]; do
  exited=
  wait -n -p exited "${alive[@]}"
  status=$?
  [ -n "$exited" ] || break
  remaining=()
  for pid in "${alive[@]}"; do [ "$pid" = "$exited" ] || remaining+=("$pid"); done
  alive=("${remaining[@]}")
  echo "[run-local] ${names[$exited]} exited (status $status); the rest keep running. Restart it with:"
  echo "[run-local]   ${commands[$exited]}"
done
