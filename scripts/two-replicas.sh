#!/usr/bin/env bash
# Load test of two `sigillo serve` replicas sharing one PostgreSQL and one
# SoftHSM2 token, against one replica and then against both
# (docs/BENCHMARKS.md, "Two replicas").
#
#   scripts/two-replicas.sh [OUTDIR]
#
# Starts a private PostgreSQL (scripts/postgres-start.sh, loopback only),
# a private SoftHSM2 token (softhsm-test/mktoken.sh), replicas A and B on
# free loopback ports, then runs `sigillo loadtest --scenario signhash
# --key rsa-2048 --raw-hsm` with 100 and with 1 hash per call, each first
# with --server A and then with --servers A,B. Reports (result.json,
# report.html) and the replicas' logs go to OUTDIR (default a new
# /tmp/sigillo-two-replicas.* directory); everything else is removed.
# Every process it starts is stopped on exit, also on error or Ctrl-C;
# each step is bounded by a timeout.
#
# Environment: COUNT_BATCH (signatures per batched run, default 20000),
# COUNT_SINGLE (per single-hash run, default 10000), KEY (default
# rsa-2048), WORKERS (concurrent clients, default the load test's: 2 ×
# cores), RUNS (which runs, default "100:1 100:2 1:1 1:2" =
# batch:replicas).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

out=${1:-$(mktemp -d /tmp/sigillo-two-replicas.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
count_batch=${COUNT_BATCH:-20000}
count_single=${COUNT_SINGLE:-10000}
key=${KEY:-rsa-2048}
runs=${RUNS:-"100:1 100:2 1:1 1:2"}
workers=()
[ -n "${WORKERS:-}" ] && workers=(--workers "$WORKERS")

work=$(mktemp -d /tmp/sigillo-2r.XXXXXX)
# Directly under /tmp: as root, postgres-start.sh runs PostgreSQL as the
# postgres user, who cannot enter $work (mode 0700, owned by us).
pgdir=$(mktemp -d /tmp/sigillo-2r-pg.XXXXXX)
pids=()

cleanup() {
  set +e
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  "$repo/scripts/postgres-start.sh" --stop "$pgdir"
  rm -rf "$work" "$pgdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "two-replicas: building sigillo" >&2
go build -o "$work/sigillo" ./cmd/sigillo

echo "two-replicas: starting PostgreSQL" >&2
pgurl=$(timeout 120 scripts/postgres-start.sh "$pgdir" "$(freeport)")

echo "two-replicas: making a SoftHSM2 token" >&2
eval "$(sh softhsm-test/mktoken.sh "$work/token" sigillo 2>/dev/null)"

admin=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

# start_replica NAME: starts a replica on a free loopback port and waits
# (at most 60 s) until /readyz answers 200; sets $url.
start_replica() {
  local name=$1 port
  port=$(freeport)
  mkdir -p "$work/$name"
  (
    cd "$work/$name"
    exec env SIGILLO_MODE=dev SIGILLO_LISTEN="127.0.0.1:$port" SIGILLO_PUBLIC_URL=http://sigillo.test \
      SIGILLO_DATA_DIR="$work/$name" SIGILLO_DATABASE="$pgurl" SIGILLO_DATABASE_MAX_CONNS=20 \
      SIGILLO_ADMIN_TOKEN="$admin" SIGILLO_AUTH_SECRET_KEY="$secret" SIGILLO_LOG_LEVEL=warn \
      SIGILLO_CA_KEY_ALGO=ecdsa-p256 \
      "$work/sigillo" serve
  ) >"$out/replica-$name.log" 2>&1 &
  pids+=($!)
  url=http://127.0.0.1:$port
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null; then
      echo "two-replicas: replica $name ready at $url" >&2
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "two-replicas: replica $name exited:" >&2; tail -n 20 "$out/replica-$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "two-replicas: replica $name not ready within 60s" >&2
  return 1
}

# A first: it creates the CA key and certificate; B finds them.
start_replica A
urlA=$url
start_replica B
urlB=$url

status=0
for run in $runs; do
  batch=${run%%:*}
  n=${run##*:}
  count=$count_batch
  [ "$batch" = 1 ] && count=$count_single
  servers=$urlA
  [ "$n" = 2 ] && servers=$urlA,$urlB
  name=$key-batch$batch-replicas$n${WORKERS:+-workers$WORKERS}
  echo "two-replicas: $name: $(cut -d' ' -f1-3 /proc/loadavg) (load average)" | tee -a "$out/summary.txt" >&2
  if ! timeout 900 "$work/sigillo" loadtest --servers "$servers" --admin-token "$admin" \
    --scenario signhash --key "$key" --batch "$batch" --count "$count" "${workers[@]}" \
    --raw-hsm --pkcs11-module "$SIGILLO_PKCS11_MODULE" --pkcs11-token "$SIGILLO_PKCS11_TOKEN" --pkcs11-pin "$SIGILLO_PKCS11_PIN" \
    --out "$out/$name" 2>"$out/$name.stderr" | tee -a "$out/summary.txt"; then
    echo "two-replicas: $name failed (see $out/$name.stderr)" | tee -a "$out/summary.txt" >&2
    status=1
  fi
done
echo "two-replicas: reports in $out" >&2
exit $status
