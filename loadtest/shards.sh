#!/bin/bash
# commands/s through 1, 2, 3 region shards: one engine node per shard (its
# own gpuxd process, role engine, lease), one closed-loop load test per
# shard against its engine node with that shard's markets; Redis AOF everysec.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-/tmp/gpuxd-shards}; LT=${LT:-/tmp/lt-shards}
go build -o "$BIN" ./cmd/gpuxd && go build -o "$LT" ./loadtest || exit 1
rm -rf /tmp/r-shards; mkdir -p /tmp/r-shards
redis-server --port 16520 --bind 127.0.0.1 --appendonly yes --appendfsync everysec --save "" --dir /tmp/r-shards --daemonize yes >/dev/null
sleep 0.5
regions=(us-east us-west eu-west)
for n in 1 2 3; do
  redis-cli -p 16520 flushall >/dev/null
  pids=()
  for i in $(seq 0 $((n-1))); do
    r=${regions[$i]}
    GPUX_ADMIN_KEY=lt-admin $BIN --addr 127.0.0.1:$((18700+i)) --rate-limit 0 --log-level warn --role engine --shard $r \
      --redis redis://127.0.0.1:16520/0 >/tmp/gpuxd-shard-$r.log 2>&1 &
    pids+=($!)
  done
  for i in $(seq 0 $((n-1))); do for k in $(seq 100); do curl -sf http://127.0.0.1:$((18700+i))/readyz >/dev/null && break; sleep 0.1; done; done
  echo "=== $n shard(s) $(date +%T) $(uptime | sed 's/.*load/load/')"
  lts=()
  for i in $(seq 0 $((n-1))); do
    r=${regions[$i]}
    $LT -target http://127.0.0.1:$((18700+i)) -admin-key lt-admin -mode closed -concurrency 16 -buyers 16 -owners 4 \
      -markets h100-sxm.$r,l40s.$r -duration 10s > /tmp/shard$n-$r.out 2>&1 &
    lts+=($!)
  done
  wait ${lts[@]}
  for i in $(seq 0 $((n-1))); do r=${regions[$i]}; grep -E "acknowledged orders/s|CPU during|verify:" /tmp/shard$n-$r.out | sed "s/^/  $r: /"; done
  kill ${pids[@]}; wait ${pids[@]} 2>/dev/null
done
redis-cli -p 16520 shutdown nosave >/dev/null 2>&1
