#!/usr/bin/env python3
"""The main job's table and chart: compressed all-reduce against the baselines.

    python3 perf/headline.py RESULTS.jsonl [--png FILE] [--md FILE] [--title TEXT]

Reads the rows lc-bench --json wrote for one all-reduce size (the largest
in the file): Laconic once per codec ("none" is uncompressed), Open MPI and
Gloo (one row per Gloo algorithm) uncompressed, all in the same processes.
Prints one line per codec:

  codec      the codec spec of Laconic's row ("uncompressed" for none)
  laconic    Laconic's time (median over iterations of the slowest rank)
             and the algorithm it chose
  best       the fastest baseline row of that size that was right, and its
             time; the baselines do not compress, so it is the same on
             every line
  speedup    best baseline's time / Laconic's (> 1: Laconic is faster)
  wire       wire reduction: uncompressed bytes / bytes sent (lc-bench's
             ratio, the lowest over ranks)
  relerr     ||got - exact|| / ||exact|| of one call from zero residuals
  %bound     the link's bound for the bytes Laconic sent / its time (needs
             lc-bench --link-mbps; "-" on loopback)

A row that lc-bench found wrong (#wrong > 0) is marked WRONG and a wrong
baseline is never the best one. --md writes the same table in Markdown,
--png a bar chart of every implementation's time (log scale) with the
speedups over the best baseline, drawn by gnuplot (skipped, with a
message, when gnuplot is missing). Exit status: 0 on success, 1 when the
file has no Laconic all-reduce row or no baseline row, 2 on bad usage.
Standard library only.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (read_results, gnuplot helpers, number formats)

PROG = "headline.py"


def label(codec):
    if codec == "none":
        return "uncompressed"
    if codec.startswith("topk:"):
        try:
            d = float(codec.split(":")[1])
            return "topk %g%%" % (d * 100) if d < 1 else codec
        except ValueError:
            return codec
    return codec


def relerr(x):
    x = report._num(x)
    return "-" if x is None else "0" if x == 0 else "%.2g" % x


NAMES = {"lc": "Laconic", "mpi": "Open MPI", "gloo": "Gloo"}


def impl_name(r):
    name = NAMES.get(r["impl"], r["impl"])
    return name if r.get("algo") in (None, "-") else "%s %s" % (name, r["algo"])


def select(rows):
    """The all-reduce rows of the largest size: (size, Laconic rows, baseline rows)."""
    ar = [r for r in rows if r.get("coll") == "allreduce"]
    if not ar:
        return None, [], []
    size = max(r["bytes"] for r in ar)
    at = [r for r in ar if r["bytes"] == size]
    return size, [r for r in at if r["impl"] == "lc"], [r for r in at if r["impl"] != "lc"]


def table(lc, base):
    ok = [b for b in base if not b.get("wrong")]
    best = min(ok, key=lambda b: b["time_us"]) if ok else None
    out = []
    for r in lc:
        t = r["time_us"]
        out.append({
            "codec": label(r.get("codec") or "none"),
            "laconic": "%s ms (%s)" % (report.fmt_ms(t), r.get("algo") or "-"),
            "best": impl_name(best) if best else "-",
            "best_time": report.fmt_ms(best["time_us"]) + " ms" if best else "-",
            "speedup": "%.2fx" % (best["time_us"] / t) if best else "-",
            "wire": "%.1fx" % r["ratio"] if report._num(r.get("ratio")) else "-",
            "relerr": relerr(r.get("relerr")),
            "bound": report.fmt_pct(r.get("pct_bound")),
            "wrong": bool(r.get("wrong")),
            "_t": t,
            "_x": best["time_us"] / t if best else None,
        })
    return out, best


HEAD = ("codec", "Laconic (algorithm)", "best baseline", "its time", "speedup",
        "wire reduction", "relerr", "% of link bound")
KEYS = ("codec", "laconic", "best", "best_time", "speedup", "wire", "relerr", "bound")


def cells(t):
    return [t[k] + (" WRONG" if k == "codec" and t["wrong"] else "") for k in KEYS]


def print_text(rows, base, title):
    if title:
        print(title)
    body = [cells(t) for t in rows]
    w = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(HEAD)]
    line = lambda cs: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cs))
    print(line(HEAD))
    print(line(["-" * x for x in w]))
    for b in body:
        print(line(b))
    print("baselines (uncompressed, same processes): " + ", ".join(
        "%s %s ms%s" % (impl_name(b), report.fmt_ms(b["time_us"]), " WRONG" if b.get("wrong") else "")
        for b in base))


def write_md(path, rows, base, title):
    with open(path, "w", encoding="utf-8") as f:
        if title:
            f.write(title + "\n\n")
        f.write("| " + " | ".join(HEAD) + " |\n|" + "---|" * len(HEAD) + "\n")
        for t in rows:
            f.write("| " + " | ".join(cells(t)) + " |\n")
        f.write("\nBaselines (uncompressed, same processes): " + ", ".join(
            "%s %s ms" % (impl_name(b), report.fmt_ms(b["time_us"])) for b in base) + ".\n")


def write_png(path, rows, base, title):
    gp = shutil.which("gnuplot")
    if gp is None:
        print("%s: gnuplot not found: no chart (apt-get install gnuplot-nox)" % PROG, file=sys.stderr)
        return False
    with tempfile.TemporaryDirectory(prefix="lc-headline-") as tmp:
        P = report.Plotter(gp, os.path.dirname(os.path.abspath(path)), tmp)
        lines = []
        for t in rows:  # x label, time in ms, colour index, text above the bar
            lines.append('"Laconic\\n%s" %.3f 0 "%s"' % (t["codec"], t["_t"] / 1e3,
                                                         "%.1fx" % t["_x"] if t["_x"] else ""))
        for b in base:
            lines.append('"%s" %.3f 1 ""' % (impl_name(b).replace(" ", "\\n"), b["time_us"] / 1e3))
        d = P.data(lines)
        script = (
            "set title %s\n" % report.gq(title or "all-reduce") +
            "set ylabel 'time per all-reduce (ms, log scale)'\nset logscale y\nset bmargin 4.5\n"
            "set label 1 'above the bars: speedup over the best baseline' at graph 0.01, graph 0.97 "
            "font ',9'\n"
            "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset grid ytics\n"
            "set xtics nomirror font ',9'\nunset key\nset yrange [*:*]\n"
            "set offsets 0.5, 0.5, 0, 0\n"
            "plot %s using 0:2:($3 == 0 ? 0x0072b2 : 0x999999):xtic(1) with boxes lc rgb variable, \\\n"
            "     '' using 0:2:4 with labels offset 0,0.8 font ',10'\n" % report.gq(d))
        P.run(os.path.basename(path), title, script)
        return not P.failed


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG, description="The main job's table and chart.")
    ap.add_argument("results")
    ap.add_argument("--png")
    ap.add_argument("--md")
    ap.add_argument("--title", default="")
    a = ap.parse_args(argv)
    rows, _ = report.read_results(a.results)
    size, lc, base = select(rows["coll"])
    if not lc or not base:
        print("%s: %s: need Laconic and baseline all-reduce rows of one size" % (PROG, a.results),
              file=sys.stderr)
        return 1
    t, best = table(lc, base)
    title = a.title or "all-reduce, %s per rank, %d ranks" % (report.fmt_bytes(size), lc[0]["nranks"])
    print_text(t, base, title)
    if a.md:
        write_md(a.md, t, base, title)
    if a.png and write_png(a.png, t, base, title):
        print("chart: %s" % a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
