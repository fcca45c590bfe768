#!/usr/bin/env bash
# Soak (bench, not CI; issue 12): `saemon demo --tokens 0 --rate R` with the
# demo rules firing and two sinks — a JSONL file and a webhook (spool) to a
# loopback receiver — for DURATION seconds. Every 10 s: RSS, open fds, alerts
# so far, and the p99 of raise->receive delay over that window. At the end:
# alerts lost (in the JSONL file, never received) and duplicated (same key
# twice) — both must be 0.
# Usage: bench/soak/soak.sh SAEMON_BINARY RATE DURATION_S OUTDIR
set -euo pipefail
bin=$1 rate=$2 dur=$3 out=$4
mkdir -p "$out"; rm -rf "$out/spool" "$out"/*.jsonl "$out"/*.log "$out"/samples.tsv
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$here/receiver.py" "$out/received.log" > "$out/port" &
rpid=$!
trap 'kill $rpid 2>/dev/null || true' EXIT
for _ in $(seq 50); do [[ -s $out/port ]] && break; sleep 0.1; done
port=$(cat "$out/port")
"$bin" demo --tokens 0 --rate "$rate" --resolved --alerts "$out/alerts.jsonl" \
  --webhook "http://127.0.0.1:$port/hook" --spool "$out/spool" >"$out/demo.out" 2>"$out/demo.err" &
pid=$!
printf 't_s\trss_kb\tfds\talerts_jsonl\treceived\tp99_ms_window\n' > "$out/samples.tsv"
start=$(date +%s); last=0
while (( $(date +%s) - start < dur )); do
  sleep 10
  t=$(( $(date +%s) - start ))
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  fds=$(ls /proc/$pid/fd | wc -l)
  n_j=$(wc -l < "$out/alerts.jsonl")
  n_r=$(wc -l < "$out/received.log")
  # (awk picks the window itself: a `tail | head` pipe dies of SIGPIPE under
  # pipefail while the receiver appends, which ended an earlier soak early.)
  p99=$(awk -F'\t' -v a="$last" -v b="$n_r" 'NR > a && NR <= b {print $2}' "$out/received.log" | sort -g |
        awk '{v[NR]=$1} END {if (NR) {i=int(0.99*NR); if (i<1) i=1; printf "%.1f", v[i]*1000} else print "-"}')
  last=$n_r
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rss" "$fds" "$n_j" "$n_r" "$p99" | tee -a "$out/samples.tsv"
done
kill -TERM $pid; wait $pid || echo "demo exit status $?"
# What the drain timeout left in the spool is not lost: a restart on the same
# spool (raising almost nothing itself) delivers it.
printf 'sinks:\n  - {type: webhook, url: "http://127.0.0.1:%s/hook", spool: "%s/spool/webhook", drain_timeout: 3600}\n' \
  "$port" "$out" > "$out/drain.yaml"
"$bin" demo --tokens 1 --resolved --run-id drain --alerts "$out/after.jsonl" --sinks "$out/drain.yaml" \
  >/dev/null 2>"$out/drain.err" || echo "drain run exit status $?"
cat "$out/after.jsonl" >> "$out/alerts.jsonl"
sleep 1
cut -f3 "$out/received.log" | sort > "$out/recv.events"
python3 - "$out" <<'PY'
import json, sys, collections
out = sys.argv[1]
raised = collections.Counter()
for line in open(out + "/alerts.jsonl"):
    a = json.loads(line)
    raised["%s|%s|%s|%s" % (a["rule"], a["stream"], a["token"], a["status"])] += 1
keys = collections.Counter(); got = collections.Counter()
for line in open(out + "/received.log"):
    k, _, ev = line.rstrip("\n").split("\t")
    keys[k] += 1
    if keys[k] == 1:
        got[ev] += 1
lost = sum((raised - got).values()); extra = sum((got - raised).values())
dup = sum(c - 1 for c in keys.values() if c > 1)
print("raised %d, received %d distinct keys, lost %d, unexpected %d, duplicated by key %d"
      % (sum(raised.values()), len(keys), lost, extra, dup))
PY
tail -n 3 "$out/demo.err"
