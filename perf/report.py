#!/usr/bin/env python3
"""Summary and plots of one benchmark run.

    python3 perf/report.py RESULTS_DIR

Reads RESULTS_DIR/results.jsonl: one JSON object per line, told apart by
their "kind" field:
  probe    what the link emulator achieved (rtt_ms, rate_mbit) against what
           was configured (target_rtt_ms, target_mbit) for one scenario;
  coll     one collective benchmark row (scenario, impl, coll, algo, codec,
           bytes, time_us, busbw_gbps, wrong, pct_bound, link_mbps, ...);
  overlap  communication/computation overlap of one implementation
           (overlap_pct, OSU's; overlap_strict_pct when present);
  codec    one row of lc-codec-bench (codec, op, data, gbps, vs_memcpy,
           ratio, relerr);
  meta     date, host, mode, commit and elapsed time of the run (optional).
Blank lines and unknown kinds are ignored; malformed lines are reported on
stderr and skipped.

Writes RESULTS_DIR/summary.md (GitHub Markdown: links, collectives per
scenario, headline, overlap, codecs, list of plots) and PNG plots, drawn by
gnuplot's pngcairo terminal, in RESULTS_DIR/plots/:
  busbw_<scenario>_<coll>.png   bus bandwidth against size, one line per variant
  speedup_vs_bandwidth.png      Laconic's all-reduce speedup over the best
                                baseline against the link bandwidth
  ratio_vs_error.png            wire ratio against relative error per codec
gnuplot's data files live in a temporary directory that is always removed.
Without gnuplot, summary.md is still written and says the plots were skipped.

A variant is (impl, algo): "mpi", "gloo/ring", ... Laconic picks its
algorithm itself, so its rows are "lc" unless several lc algorithms appear at
one size of a table ("lc/ring", "lc/tree", ...). Rows with a codec other than
"none" get "+<codec>" appended. Where a table compares Laconic with the
baselines, "lc" is the fastest lc variant at that size and the best baseline
the fastest other variant, both among the rows without wrong results (a fast
wrong row is never the speedup); speedup = baseline time / lc time (>1:
Laconic is faster). A %bound above 100 is marked "(!)": the link rate the
harness measured underestimates the link.

Exit status: 0 on success, 1 if results.jsonl is missing, unreadable or has no
usable rows, 2 on bad usage. Standard library only (Python 3.7 or later).
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROG = "report.py"
RTT_TOL = 0.10   # achieved RTT within 10 % of the configured one is ok
RATE_TOL = 0.05  # achieved rate within 5 % of the configured one is ok
KNOWN_KINDS = ("probe", "coll", "overlap", "codec", "meta")


def warn(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr)


def die(msg):
    warn(msg)
    sys.exit(1)


# ---------------------------------------------------------------- reading

def _num(v):
    """A finite number, or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _str(v):
    return v if isinstance(v, str) and v != "" else None


# kind -> (required string fields, required numeric fields)
REQUIRED = {
    "probe": (("scenario",), ()),
    "coll": (("scenario", "impl", "coll"), ("bytes", "time_us")),
    "overlap": (("scenario", "impl"), ("bytes",)),
    "codec": (("codec", "op"), ()),
    "meta": ((), ()),
}


def validate(obj):
    """Returns an error string, or None if obj is usable for its kind."""
    kind = obj.get("kind")
    strs, nums = REQUIRED[kind]
    for f in strs:
        if _str(obj.get(f)) is None:
            return "%s row without a string '%s'" % (kind, f)
    for f in nums:
        if _num(obj.get(f)) is None:
            return "%s row without a finite number '%s'" % (kind, f)
    if kind == "coll":
        if obj["bytes"] <= 0:
            return "coll row with bytes <= 0"
        if obj["time_us"] <= 0:
            return "coll row with time_us <= 0"
    return None


def read_results(path):
    rows = {k: [] for k in KNOWN_KINDS}
    skipped = 0
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        die("%s: no such file (expected the results of a benchmark run)" % path)
    except OSError as e:
        die("%s: cannot read: %s" % (path, e.strerror))
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                warn("%s:%d: skipped malformed line (invalid JSON: %s)" % (path, lineno, e))
                skipped += 1
                continue
            if not isinstance(obj, dict):
                warn("%s:%d: skipped malformed line (not a JSON object)" % (path, lineno))
                skipped += 1
                continue
            kind = obj.get("kind")
            if kind not in KNOWN_KINDS:
                continue  # unknown (or absent) kinds are someone else's rows
            err = validate(obj)
            if err:
                warn("%s:%d: skipped malformed line (%s)" % (path, lineno, err))
                skipped += 1
                continue
            rows[kind].append(obj)
    return rows, skipped


# ---------------------------------------------------------------- formatting

def fmt(x, sig=3):
    """x with about sig significant digits, never in exponent form for
    ordinary magnitudes; '–' for None."""
    x = _num(x)
    if x is None:
        return "–"
    if x == 0:
        return "0"
    a = abs(x)
    if a < 1e-3:
        return "%.2e" % x
    if a >= 10 ** (sig - 1):
        return "%.0f" % x
    dec = sig - 1 - int(math.floor(math.log10(a)))
    return "%.*f" % (max(dec, 0), x)


def fmt_e(x):
    x = _num(x)
    if x is None:
        return "–"
    return "0" if x == 0 else "%.2e" % x


def fmt_ms(us):
    us = _num(us)
    return "–" if us is None else fmt(us / 1000.0)


def fmt_pct(x):
    x = _num(x)
    return "–" if x is None else "%.1f%%" % x


def fmt_bound(x):
    """A %bound: above 100 marked, as the measured link rate was too low."""
    x = _num(x)
    return fmt_pct(x) + (" (!)" if x is not None and x > 100.0 else "")


def fmt_x(x):
    x = _num(x)
    return "–" if x is None else "%.2fx" % x


def fmt_bytes(n):
    n = int(n)
    for unit, sh in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << sh:
            v = n / float(1 << sh)
            return ("%d %s" % (v, unit)) if n % (1 << sh) == 0 else ("%.1f %s" % (v, unit))
    return "%d B" % n


def short_bytes(n):
    """For axis tics: 4K, 1M, 2G."""
    n = int(n)
    for unit, sh in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << sh and n % (1 << sh) == 0:
            return "%d%s" % (n >> sh, unit)
    return str(n) if n < 1024 else fmt_bytes(n).replace(" ", "")


def md_table(header, rows):
    """A GitHub table; columns whose cells all look numeric are right-aligned."""
    def cell(c):
        return str(c).replace("|", "\\|").replace("\n", " ")

    def numeric(i):
        return bool(rows) and all(re.match(r"[-+–*]*[0-9–]", str(r[i])) for r in rows)

    out = ["| " + " | ".join(cell(h) for h in header) + " |",
           "|" + "|".join("---:" if i > 0 and numeric(i) else "---" for i in range(len(header))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(cell(c) for c in r) + " |")
    return "\n".join(out)


def slug(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(s)).strip("-") or "x"


def ordered_unique(seq):
    seen, out = set(), []
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# ---------------------------------------------------------------- model

class Group:
    """The coll rows of one table: one scenario, one collective (and, when
    they vary, one rank count / dtype / op)."""

    def __init__(self, scenario, coll, sub, label):
        self.scenario, self.coll, self.sub, self.label = scenario, coll, sub, label
        self.cells = {}      # (variant, bytes) -> row
        self.variants = []
        self.sizes = []

    def lc_variants(self):
        return [v for v in self.variants if is_lc(v)]

    def baselines(self):
        return [v for v in self.variants if not is_lc(v)]

    def best(self, size, variants):
        """(variant, row) of the fastest of variants at size among the rows
        without wrong results, or (None, None)."""
        best = (None, None)
        for v in variants:
            r = self.cells.get((v, size))
            if r is None or wrong_count(r):
                continue
            if best[1] is None or r["time_us"] < best[1]["time_us"]:
                best = (v, r)
        return best

    def compare(self, size):
        """(lc variant, lc row, baseline variant, baseline row, speedup)."""
        lv, lr = self.best(size, self.lc_variants())
        bv, br = self.best(size, self.baselines())
        sp = br["time_us"] / lr["time_us"] if lr and br else None
        return lv, lr, bv, br, sp

    def headline_size(self):
        """The largest size at which every variant has a row (and a correct lc
        and baseline row can be compared), else the largest at which a correct
        lc and a correct baseline row both exist."""
        full = [s for s in self.sizes if all((v, s) in self.cells for v in self.variants)
                and self.compare(s)[4] is not None]
        if full and self.lc_variants() and self.baselines():
            return full[-1]
        both = [s for s in self.sizes if self.compare(s)[4] is not None]
        return both[-1] if both else None


def is_lc(variant):
    return variant == "lc" or variant.startswith("lc/") or variant.startswith("lc+")


def build_groups(colls):
    scenarios = ordered_unique(r["scenario"] for r in colls)
    groups = []
    for sc in scenarios:
        srows = [r for r in colls if r["scenario"] == sc]
        for coll in ordered_unique(r["coll"] for r in srows):
            crows = [r for r in srows if r["coll"] == coll]
            subs = ordered_unique((r.get("nranks"), r.get("dtype"), r.get("op")) for r in crows)
            for sub in subs:
                g = Group(sc, coll, sub, coll)
                if len(subs) > 1:
                    nr, dt, op = sub
                    bits = []
                    if nr is not None:
                        bits.append("%s ranks" % nr)
                    bits += [str(x) for x in (dt, op) if x is not None]
                    g.label = "%s (%s)" % (coll, ", ".join(bits))
                fill_group(g, [r for r in crows if (r.get("nranks"), r.get("dtype"), r.get("op")) == sub])
                groups.append(g)
    return groups


def fill_group(g, rows):
    # Several lc algorithms at one size: name lc rows by their algorithm.
    lc_algos = {}
    for r in rows:
        if r["impl"] == "lc":
            lc_algos.setdefault((r["bytes"], r.get("codec", "none")), set()).add(r.get("algo", "-"))
    split_lc = any(len(a) > 1 for a in lc_algos.values())
    dups = 0
    for r in rows:
        impl, algo = r["impl"], _str(r.get("algo")) or "-"
        if impl == "lc":
            name = "lc/" + algo if split_lc else "lc"
        elif impl == "mpi" or algo == "-":
            name = impl
        else:
            name = impl + "/" + algo
        codec = _str(r.get("codec")) or "none"
        if codec != "none":
            name += "+" + codec
        size = int(r["bytes"])
        if (name, size) in g.cells:
            dups += 1
        g.cells[(name, size)] = r  # a repeated measurement: the last one counts
    if dups:
        warn("%s/%s: %d repeated row(s); the last of each is used" % (g.scenario, g.label, dups))
    g.variants = sorted(ordered_unique(v for v, _ in g.cells),
                        key=lambda v: (0 if is_lc(v) else 1, v))
    g.sizes = sorted(set(s for _, s in g.cells))


def scenario_bandwidth(scenario, colls, probes):
    """Link bandwidth of a scenario in Mbit/s: the rows' link_mbps, else the
    probe's achieved rate; None if unshaped (loopback)."""
    for r in colls:
        if r["scenario"] == scenario:
            v = _num(r.get("link_mbps"))
            if v and v > 0:
                return v
    for p in probes:
        if p["scenario"] == scenario:
            v = _num(p.get("rate_mbit"))
            if v and v > 0:
                return v
    return None


# ---------------------------------------------------------------- summary

def probe_row(p):
    trtt, rtt = _num(p.get("target_rtt_ms")), _num(p.get("rtt_ms"))
    trate, rate = _num(p.get("target_mbit")), _num(p.get("rate_mbit"))
    misses = []

    def err(target, got, tol, what):
        if target is None or target <= 0:
            return "–"  # nothing configured: not judged
        if got is None:
            misses.append("%s not measured" % what)
            return "–"
        e = (got - target) / target * 100.0
        if abs(e) > tol * 100.0:
            misses.append("%s %+.1f%%" % (what, e))
        return "%+.1f%%" % e

    rtt_err = err(trtt, rtt, RTT_TOL, "RTT")
    # The emulator and tbf count IP bytes; TCP carries at most MSS/MTU of
    # them as payload, so when the harness says what that is, the rate is
    # judged against it (e.g. 96.5 Mbit/s of goodput on 100 at MTU 1500).
    rate_err = err(_num(p.get("goodput_max_mbit")) or trate, rate, RATE_TOL, "rate")
    status = "**MISS** (%s)" % "; ".join(misses) if misses else "ok"
    hosts = _num(p.get("hosts"))
    return [p["scenario"], "%d" % hosts if hosts is not None else "–",
            fmt(trtt) if trtt is not None else "–", fmt(rtt), rtt_err,
            fmt(trate, 4) if trate is not None else "unshaped", fmt(rate, 4) if rate is not None else "–",
            rate_err, status], bool(misses)


def wrong_count(r):
    w = _num(r.get("wrong"))
    return int(w) if w else 0


def write_summary(out, meta, rows, groups, skipped, plots, plot_note):
    probes, colls, overlaps, codecs = rows["probe"], rows["coll"], rows["overlap"], rows["codec"]
    L = []
    L.append("# Laconic benchmark summary")
    L.append("")
    if meta:
        m = meta[-1]
        bits = []
        for key, label in (("date", "Date"), ("host", "Host"), ("mode", "Mode"), ("commit", "Commit")):
            v = m.get(key)
            if v not in (None, ""):
                bits.append("**%s:** %s" % (label, ("`%s`" % v) if key == "commit" else v))
        el = _num(m.get("elapsed_s"))
        if el is not None:
            bits.append("**Elapsed:** %s" % (("%.0f s" % el) if el < 120 else ("%.1f min" % (el / 60.0))))
        if bits:
            L.append(" · ".join(bits))
            L.append("")
    nwrong = sum(1 for r in colls + overlaps if wrong_count(r) > 0)
    if nwrong:
        L.append("> **WARNING: %d row(s) reported WRONG results** (marked below)." % nwrong)
        L.append("")
    if skipped:
        L.append("> %d malformed line(s) of results.jsonl were skipped (see stderr of report.py)." % skipped)
        L.append("")

    # Links
    L.append("## Links")
    L.append("")
    if probes:
        table, nmiss = [], 0
        for p in probes:
            r, miss = probe_row(p)
            table.append(r)
            nmiss += miss
        L.append(md_table(["scenario", "hosts", "RTT set (ms)", "RTT got (ms)", "RTT err",
                           "rate set (Mbit/s)", "rate got (Mbit/s)", "rate err", "status"], table))
        L.append("")
        L.append("RTT within %d%% and rate within %d%% of the configured value count as ok%s. "
                 "Rates are TCP goodput; where the harness gives the most the link allows "
                 "(configured IP rate x (MTU - 52) / MTU), the rate error is against that."
                 % (RTT_TOL * 100, RATE_TOL * 100,
                    "; **%d link(s) missed**" % nmiss if nmiss else "; all links ok"))
    else:
        L.append("_No probe rows._")
    L.append("")

    # Collectives
    L.append("## Collectives")
    L.append("")
    if not groups:
        L.append("_No collective rows._")
        L.append("")
    over_bound = 0
    for g in groups:
        L.append("### %s: %s" % (g.scenario, g.label))
        L.append("")
        header = ["size"] + ["%s ms (GB/s)" % v for v in g.variants]
        has_cmp = bool(g.lc_variants() and g.baselines())
        if g.lc_variants():
            header.append("%bound (lc)")
        if has_cmp:
            header.append("lc vs best baseline")
        header.append("check")
        table = []
        split = len(g.lc_variants()) > 1
        for s in g.sizes:
            row = [fmt_bytes(s)]
            wrong = []
            for v in g.variants:
                r = g.cells.get((v, s))
                if r is None:
                    row.append("–")
                    continue
                row.append("%s (%s)" % (fmt_ms(r["time_us"]), fmt(r.get("busbw_gbps"))))
                if wrong_count(r):
                    wrong.append("%s: %d" % (v, wrong_count(r)))
            lv, lr, bv, br, sp = g.compare(s)
            if g.lc_variants():
                pb = fmt_bound(lr.get("pct_bound")) if lr else "–"
                over_bound += pb.endswith("(!)")
                row.append(pb + (" (%s)" % lv if split and lr and pb != "–" else ""))
            if has_cmp:
                row.append("%s (%s%s)" % (fmt_x(sp), bv, " vs " + lv if split else "") if sp else "–")
            row.append("**WRONG** (%s)" % ", ".join(wrong) if wrong else "ok")
            table.append(row)
        L.append(md_table(header, table))
        L.append("")
    if groups:
        L.append("Cells: median time in ms (bus bandwidth in GB/s). %bound: the lc time against the "
                 "link bound. lc vs best baseline: fastest non-lc time / lc time (>1: Laconic faster); "
                 "rows with wrong results are left out of the comparison.")
        if over_bound:
            L.append("")
            L.append("(!) above 100%: the measured link rate B underestimates the link "
                     "(the lc time beat the bound computed from it).")
        L.append("")

    # Headline
    L.append("## Headline")
    L.append("")
    head = []
    for g in groups:
        if g.coll != "allreduce" or not g.lc_variants():
            continue
        s = g.headline_size()
        if s is None:
            s = g.sizes[-1]
        lv, lr, bv, br, sp = g.compare(s)
        if lr is None:
            continue
        head.append([g.scenario + ("" if g.label == g.coll else " " + g.label[len(g.coll):].strip()),
                     fmt_bytes(s), lv + " " + fmt_ms(lr["time_us"]) if lv != "lc" else fmt_ms(lr["time_us"]),
                     fmt_bound(lr.get("pct_bound")), bv or "–",
                     fmt_ms(br["time_us"]) if br else "–", "**%s**" % fmt_x(sp) if sp else "–"])
    if head:
        L.append(md_table(["scenario", "allreduce size", "lc (ms)", "%bound", "best baseline",
                           "baseline (ms)", "speedup"], head))
    else:
        L.append("_No Laconic all-reduce rows._")
    L.append("")

    # Overlap
    L.append("## Overlap")
    L.append("")
    if overlaps:
        sc_order = ordered_unique([r["scenario"] for r in colls] + [r["scenario"] for r in overlaps])
        ov = sorted(overlaps, key=lambda r: (sc_order.index(r["scenario"]), str(r.get("coll", "")),
                                             r["bytes"], r["impl"]))
        table = []
        strict = any(_num(r.get("overlap_strict_pct")) is not None for r in ov)
        for r in ov:
            w = wrong_count(r)
            row = [r["scenario"], r.get("coll", "–"), fmt_bytes(r["bytes"]), r["impl"],
                   fmt_ms(r.get("t_pure_us")), fmt_ms(r.get("t_compute_us")),
                   fmt_ms(r.get("t_overall_us")), fmt_pct(r.get("overlap_pct"))]
            if strict:
                row.append(fmt_pct(r.get("overlap_strict_pct")))
            table.append(row + ["**WRONG** (%d)" % w if w else "ok"])
        L.append(md_table(["scenario", "coll", "size", "impl", "t_pure (ms)", "t_compute (ms)",
                           "t_overall (ms)", "overlap"] + (["strict"] if strict else []) + ["check"],
                          table))
        if strict:
            L.append("")
            L.append("overlap: OSU's figure, 100 − 100 × (t_overall − t_compute) / t_pure (the "
                     "difference taken per iteration, its max over ranks, the median), with "
                     "t_compute measured while the collective runs (CPU taken from the "
                     "computation counts as compute). strict: 100 − 100 × (t_overall − "
                     "t_compute alone) / t_pure, against the computation timed alone.")
    else:
        L.append("_No overlap rows._")
    L.append("")

    # Codecs
    if codecs:
        data = "gradient" if any(r.get("data") == "gradient" for r in codecs) else None
        crow = [r for r in codecs if data is None or r.get("data") == data]
        datas = ordered_unique(str(r.get("data")) for r in crow if r.get("data"))
        L.append("## Codecs")
        L.append("")
        names = ordered_unique(r["codec"] for r in crow
                               if r["codec"] != "memcpy" and r["op"] != "zstd-stage")
        table = []
        for name in names:
            rs = [r for r in crow if r["codec"] == name]
            enc = next((r for r in rs if r["op"].startswith("encode")), None)
            dec = next((r for r in rs if r["op"] == "decode"), None)
            ref = enc or dec or rs[0]
            zname = "zstd:force" if name == "none" else name + "+zstd:force"
            z = next((r for r in crow if r["codec"] == zname and r["op"] == "zstd-stage"), None)
            table.append([name, fmt_x(ref.get("ratio")), fmt_e(ref.get("relerr")),
                          fmt(enc.get("gbps")) if enc else "–",
                          fmt_x(enc.get("vs_memcpy")) if enc else "–",
                          fmt_x(dec.get("vs_memcpy")) if dec else "–",
                          fmt_x(z.get("ratio")) if z else "–"])
        L.append(md_table(["codec", "wire ratio", "relerr", "encode GB/s", "encode vs memcpy",
                           "decode vs memcpy", "+zstd ratio"], table))
        L.append("")
        L.append("Data: %s. wire ratio = f32 bytes / encoded bytes; relerr = ‖decode(encode(x)) − x‖ / ‖x‖; "
                 "vs memcpy = GB/s against memcpy of the same buffer." % (", ".join(datas) or "–"))
        L.append("")

    # Plots
    L.append("## Plots")
    L.append("")
    if plot_note:
        L.append("_%s_" % plot_note)
        L.append("")
    for name, title in plots:
        L.append("- [%s](plots/%s)" % (title, name))
    if not plots and not plot_note:
        L.append("_No plots._")
    L.append("")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(L))


# ---------------------------------------------------------------- plots

def gq(s):
    """A gnuplot single-quoted string."""
    return "'" + str(s).replace("'", "''") + "'"


COLORS = ("#9400d3", "#009e73", "#56b4e9", "#e69f00", "#0072b2", "#e51e10", "#000000", "#f0e442")
TERM = "set terminal pngcairo size 900,600 noenhanced font 'Sans,11'\n"


class Plotter:
    def __init__(self, gnuplot, plotdir, tmp):
        self.gnuplot, self.plotdir, self.tmp = gnuplot, plotdir, tmp
        self.n = 0
        self.made = []     # (file name, title)
        self.failed = []

    def data(self, lines):
        self.n += 1
        p = os.path.join(self.tmp, "d%d.dat" % self.n)
        with open(p, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return p

    def run(self, name, title, script):
        out = os.path.join(self.plotdir, name)
        full = TERM + "set output %s\n%s\nset output\n" % (gq(out), script)
        sp = os.path.join(self.tmp, "p%d.gp" % self.n)
        self.n += 1
        with open(sp, "w", encoding="utf-8") as f:
            f.write(full)
        try:
            res = subprocess.run([self.gnuplot, sp], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 universal_newlines=True, timeout=60)
            ok = res.returncode == 0 and os.path.getsize(out) > 0 if os.path.exists(out) else False
            msg = res.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            ok, msg = False, str(e)
        if ok:
            self.made.append((name, title))
        else:
            warn("gnuplot failed on %s: %s" % (name, msg or "no output"))
            self.failed.append(name)
            try:
                os.remove(out)
            except OSError:
                pass


def log_tics(axis, lo, hi):
    """1-2-5 tics on a log axis spanning less than three decades (gnuplot
    would label only the powers of ten, maybe none); '' otherwise."""
    if lo <= 0 or hi / lo >= 1000:
        return ""
    for mants in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        tics = []
        for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
            for m in mants:
                v = m * 10.0 ** e
                if lo <= v <= hi:
                    tics.append(v)
        if len(tics) >= 3:
            break
    if len(tics) < 2:
        return ""
    return "set %stics (%s)\n" % (axis, ", ".join("%s %.9g" % (gq("%g" % v), v) for v in tics))


def size_tics(sizes):
    sizes = sorted(set(sizes))
    if len(sizes) > 12:  # every other power of two at most ~12 tics
        step = (len(sizes) + 11) // 12
        sizes = sizes[::step]
    return "set xtics (%s)\n" % ", ".join("%s %d" % (gq(short_bytes(s)), s) for s in sizes)


def plot_busbw(P, g, fname):
    series = []
    vals = []
    for v in g.variants:
        pts = [(s, _num(g.cells[(v, s)].get("busbw_gbps"))) for s in g.sizes if (v, s) in g.cells]
        pts = [(s, b) for s, b in pts if b is not None and b > 0]
        if pts:
            series.append((v, P.data(["%d %.9g" % p for p in pts])))
            vals += [b for _, b in pts]
    if not series:
        return
    logy = max(vals) / min(vals) > 50
    s = ("set title %s\nset xlabel 'message size (bytes)'\nset ylabel 'bus bandwidth (GB/s)'\n"
         "set logscale x 2\n%s%sset grid\nset key top left\nset xrange [%d:%d]\n"
         % (gq("%s: %s bus bandwidth" % (g.scenario, g.label)), size_tics(g.sizes),
            "set logscale y 10\n" if logy else "set yrange [0:*]\n",
            g.sizes[0] / 1.3 if len(g.sizes) > 1 else g.sizes[0] / 2,
            g.sizes[-1] * 1.3 if len(g.sizes) > 1 else g.sizes[0] * 2))
    s += "plot " + ", \\\n     ".join("%s using 1:2 with linespoints lw 2 pt 7 ps 0.8 title %s"
                                     % (gq(p), gq(v)) for v, p in series)
    P.run(fname, "%s: %s bus bandwidth" % (g.scenario, g.label), s)


def plot_speedup(P, groups, colls, probes):
    pts = []
    for g in groups:
        if g.coll != "allreduce":
            continue
        s = g.headline_size()
        if s is None:
            continue
        sp = g.compare(s)[4]
        bw = scenario_bandwidth(g.scenario, colls, probes)
        if sp is None or bw is None:
            continue
        label = g.scenario + ("" if g.label == g.coll else " " + g.label[len(g.coll):].strip())
        pts.append((bw, sp, "%s (%s)" % (label, short_bytes(s))))
    if not pts:
        return False
    d = P.data(['%.9g %.9g "%s"' % (b, sp, lab.replace('"', "'")) for b, sp, lab in pts])
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    s = ("set title 'all-reduce: Laconic speedup over the best baseline (largest common size)'\n"
         "set xlabel 'link bandwidth (Mbit/s)'\nset ylabel 'speedup (baseline time / lc time)'\n"
         "set logscale x 10\nset grid\nset key top right\n"
         "set xrange [%.9g:%.9g]\nset yrange [0:%.9g]\n%s"
         "plot %s using 1:2 with points pt 7 ps 1.6 lc rgb '#1f77b4' title 'lc vs best baseline', \\\n"
         "     '' using 1:2:3 with labels offset char 0,1.2 notitle, \\\n"
         "     1 with lines dt 2 lc rgb '#888888' title 'parity'\n"
         % (min(xs) / 3, max(xs) * 3, max(max(ys) * 1.25, 1.5), log_tics("x", min(xs) / 3, max(xs) * 3),
            gq(d)))
    P.run("speedup_vs_bandwidth.png", "all-reduce speedup vs link bandwidth", s)
    return True


def plot_ratio_error(P, codecs, colls):
    series = []  # (title, [(ratio, relerr)])
    data = "gradient" if any(r.get("data") == "gradient" for r in codecs) else None
    crow = [r for r in codecs if (data is None or r.get("data") == data)
            and r["codec"] not in ("memcpy", "none") and r["op"] != "zstd-stage"]
    for name in ordered_unique(r["codec"] for r in crow):
        rs = [r for r in crow if r["codec"] == name]
        ref = next((r for r in rs if r["op"].startswith("encode")), rs[0])
        pts = [(_num(ref.get("ratio")), _num(ref.get("relerr")))]
        series.append((name, pts))
    cc = [r for r in colls if (_str(r.get("codec")) or "none") != "none"]
    for name in ordered_unique(r["codec"] for r in cc):
        pts = [(_num(r.get("ratio")), _num(r.get("relerr"))) for r in cc if r["codec"] == name]
        series.append(("%s (in collectives)" % name, pts))
    series = [(t, [(x, y) for x, y in pts if x and y and x > 0 and y > 0]) for t, pts in series]
    series = [(t, pts) for t, pts in series if pts]
    if not series:
        return False
    plots = []
    for i, (t, pts) in enumerate(series):
        d = P.data(['%.9g %.9g "%s"' % (x, y, t.split(" ")[0].replace('"', "'")) for x, y in pts])
        plots.append("%s using 1:2 with points pt %d ps 1.6 lc rgb '%s' title %s"
                     % (gq(d), 5 + 2 * (i % 4), COLORS[i % len(COLORS)], gq(t)))
        plots.append("%s using 1:2:3 with labels offset char 0,1 font ',9' notitle" % gq(d))
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    xlo, xhi, ylo, yhi = min(xs) / 1.5, max(xs) * 1.5, min(ys) / 3, max(ys) * 3
    s = ("set title %s\nset xlabel 'wire ratio (f32 bytes / encoded bytes)'\n"
         "set ylabel 'relative error'\nset logscale xy 10\nset grid\nset key outside right\n"
         "set xrange [%.9g:%.9g]\nset yrange [%.9g:%.9g]\nset format y '%%g'\n%s%s"
         "plot %s\n" % (gq("codecs: compression against error" + (" (%s data)" % data if data else "")),
                        xlo, xhi, ylo, yhi, log_tics("x", xlo, xhi), log_tics("y", ylo, yhi),
                        ", \\\n     ".join(plots)))
    P.run("ratio_vs_error.png", "codec wire ratio vs relative error", s)
    return True


def make_plots(rdir, groups, rows):
    """Returns (list of (file, title), note for summary.md or None)."""
    gp = shutil.which("gnuplot")
    if gp is None:
        msg = "gnuplot was not found: plots were skipped (apt-get install gnuplot-nox)."
        warn(msg)
        return [], msg
    plotdir = os.path.join(rdir, "plots")
    os.makedirs(plotdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lc-report-") as tmp:
        P = Plotter(gp, plotdir, tmp)
        names = {}
        for g in groups:
            base = "busbw_%s_%s" % (slug(g.scenario), slug(g.coll))
            names[base] = names.get(base, 0) + 1
            suffix = "" if names[base] == 1 else "_%d" % names[base]
            plot_busbw(P, g, base + suffix + ".png")
        plot_speedup(P, groups, rows["coll"], rows["probe"])
        plot_ratio_error(P, rows["codec"], rows["coll"])
    note = None
    if P.failed:
        note = "gnuplot failed on %s (see stderr of report.py)." % ", ".join(P.failed)
    return P.made, note


# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: python3 perf/report.py RESULTS_DIR   (reads RESULTS_DIR/results.jsonl)",
              file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 2 if len(argv) != 2 else 0
    rdir = argv[1]
    if not os.path.isdir(rdir):
        die("%s: not a directory" % rdir)
    path = os.path.join(rdir, "results.jsonl")
    rows, skipped = read_results(path)
    usable = sum(len(rows[k]) for k in ("probe", "coll", "overlap", "codec"))
    if usable == 0:
        die("%s: no usable rows (probe, coll, overlap or codec)%s" % (
            path, "; %d malformed line(s) skipped" % skipped if skipped else ""))
    groups = build_groups(rows["coll"])
    plots, note = make_plots(rdir, groups, rows)
    out = os.path.join(rdir, "summary.md")
    write_summary(out, rows["meta"], rows, groups, skipped, plots, note)
    print("%s: wrote %s (%d rows%s) and %d plot(s)" % (
        PROG, out, usable, ", %d malformed skipped" % skipped if skipped else "", len(plots)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
