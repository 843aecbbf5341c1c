#!/bin/bash
# Cold-backlog A/B on one build: pull bodies copied vs spliced (`--splice-pulls false|true`).
# Produces a backlog (-w 128 -s 1024 for 12 s) into a 2-shard standalone broker, then for each
# mode given: evicts the data files from the page cache, restarts the broker in that mode,
# drains the backlog with a new consumer group (-w 20, 20 s) and prints messages received and
# the broker's CPU (utime+stime ticks, 10 ms each) per message.
#
#   perf/scripts/splice-ab.sh [bin-dir] false true false true    (bin-dir: target/release)
#
# Uses 127.0.0.1:19979 (NameServer) and 24911 (broker) and /tmp/splice-bench (removed after).
set -u
BIN=${1:-target/release}; shift || true
[ $# -gt 0 ] || set -- false true
D=/tmp/splice-bench
NS=19979; PORT=24911
rm -rf $D; mkdir -p $D
evict() {
  python3 - "$D/data" <<'PY'
import os,sys
for root,_,files in os.walk(sys.argv[1]):
    for f in files:
        fd=os.open(os.path.join(root,f),os.O_RDONLY)
        os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)
PY
}
start() {
  $BIN/ringmq-broker standalone --namesrv-port $NS --port $PORT --data $D/data --shards 2 --splice-pulls $1 > $D/broker-$2.log 2>&1 &
  BPID=$!
  for i in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
  sleep 1
}
stopb() { kill $BPID; wait $BPID 2>/dev/null; }
ticks() { awk '{print $14+$15}' /proc/$BPID/stat; }
start false produce
timeout 60 $BIN/ringmq-perf producer -n 127.0.0.1:$NS -t Backlog -w 128 -s 1024 --duration 12 -ri 5000 --json > $D/produce.json 2>&1
tail -3 $D/produce.json
stopb
sync
run=0
for mode in "$@"; do
  run=$((run+1))
  evict
  start $mode $run
  t0=$(ticks); 
  timeout 60 $BIN/ringmq-perf consumer -n 127.0.0.1:$NS -t Backlog -g cold_${run}_$mode -w 20 --duration 20 -ri 2000 --json > $D/consume-$run.txt 2>&1
  t1=$(ticks)
  tps=$(grep -o 'Consume TPS: [0-9]*' $D/consume-$run.txt | head -12 | sed 's/Consume TPS: //' | tr '\n' ' ')
  recv=$(grep -o '"received":[0-9]*' $D/consume-$run.txt | cut -d: -f2)
  echo "run $run splice=$mode received=$recv ticks=$((t1-t0)) us/msg=$(python3 -c "print(round(($t1-$t0)*10000/max(1,${recv:-0}),2))") load=$(cut -d' ' -f1-3 /proc/loadavg) tps: $tps"
  stopb
done
du -sh $D/data
rm -rf $D
