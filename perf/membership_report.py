#!/usr/bin/env python3
"""The membership figures' table (perf/bench-membership.sh).

    perf/membership_report.py OUT.md ROWS.jsonl [MORE.jsonl ...]

Reads lc-failover's JSON rows (several runs may be merged), writes the
tables to OUT.md and prints them.
"""
import json, sys
rows = [json.loads(line) for f in sys.argv[2:] for line in open(f) if line.strip()]
out = []
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
def table(title, head, body):
    out.append(f"\n{title}\n")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    out.extend("| " + " | ".join(str(c) for c in r) + " |" for r in body)
fails = [r for r in rows if r["mode"] == "fail"]
for sig, target in (("kill", "seen p99 <= 100 ms; 8 ranks: first step <= 1000 ms"),
                    ("stop", "seen <= 2200 ms; first step <= 3000 ms"),
                    ("linkdown", "seen <= 2200 ms")):
    body = []
    keys = sorted({(r["ranks"], r["algo"], r["codec"]) for r in fails if r["signal"] == sig})
    for k in keys:
        s = [r for r in fails if r["signal"] == sig and (r["ranks"], r["algo"], r["codec"]) == k]
        seen = [r["seen_ms"] for r in s]
        ok = [r["first_ok_ms"] for r in s]
        body.append([k[0], k[1], k[2], len(s), f"{pct(seen, 50):.1f}", f"{pct(seen, 99):.1f}",
                     f"{max(seen):.1f}", f"{pct(ok, 50):.1f}", f"{pct(ok, 99):.1f}", f"{max(ok):.1f}"])
    if body:
        allseen = [r["seen_ms"] for r in fails if r["signal"] == sig]
        name = "a link cut" if sig == "linkdown" else f"SIG{sig.upper()}"
        table(f"{name} (target: {target}); all survivors: seen p99 "
              f"{pct(allseen, 99):.1f} ms, max {max(allseen):.1f} ms over {len(allseen)}",
              ["ranks", "algorithm", "codec", "survivor reports", "seen p50 ms", "seen p99 ms",
               "seen max ms", "first step p50 ms", "first step p99 ms", "first step max ms"], body)
for r in (r for r in rows if r["mode"] == "agree"):
    d = r["step_commit_ms"] - r["step_ms"]
    table("lc_step_commit on dc (target: what it adds to a step <= 1 RTT + 2% of the step)",
          ["ranks", "size", "codec", "step ms", "step + commit ms", "their difference ms",
           "added ms", "bound ms", "verdict"],
          [[r["ranks"], f"{r['bytes'] >> 20} MiB", r["codec"], f"{r['step_ms']:.2f}",
            f"{r['step_commit_ms']:.2f}", f"{d:.2f}", f"{r['added_ms']:.3f}",
            f"{r['bound_ms']:.2f}", "within" if r["added_ms"] <= r["bound_ms"] else "OVER"]])
    out.append("\n*added*: from the last rank's end of the all-reduce to the last rank's outcome "
               "(median over steps; one clock for every rank of this host). The difference of "
               "the two step medians is noise: steps vary by tens of ms here.")
st = [r for r in rows if r["mode"] == "starve"]
if st:
    table("a rank at nice 19 beside busy ranks (target: 0 false removals)",
          ["runs", "seconds of computation", "rank reports", "reports of an aborted step or a "
           "changed view"],
          [[sum(r["starved"] for r in st), st[0]["seconds"], len(st),
            sum(r["removed"] for r in st)]])
text = "\n".join(out) + "\n"
open(sys.argv[1], "w").write(text)
print(text)
