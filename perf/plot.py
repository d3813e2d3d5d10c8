#!/usr/bin/env python3
"""Latency-distribution SVG from LoadGen --histogram-out CSVs (stdlib only, no matplotlib).

Usage: perf/plot.py --scenario NAME --input DIR --output FILE.svg [--targets "direct chronoguard squid"]
Reads DIR/NAME-<target>.csv (percentile,latency_us) for each target and draws one line per target:
x on a "nines" scale (0, 90, 99, 99.9, 99.99: x = -log10(1 - p/100)), y = latency in µs, log scale.
"""
import argparse
import csv
import html
import math
import os

COLORS = {"direct": "#7f7f7f", "chronoguard": "#d62728", "squid": "#1f77b4", "tinyproxy": "#2ca02c", "dante": "#ff7f0e",
          "tinyproxy-quiet": "#98df8a"}
FALLBACK = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
W, H = 760, 460
ML, MR, MT, MB = 78, 24, 64, 64  # margins (the legend is one row above the plot)
X_MAX = 4.0  # 99.99


def nines(p):
    return X_MAX if p >= 99.99 else -math.log10(1 - p / 100.0)


def read(path):
    pts = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            p, v = float(row["percentile"]), float(row["latency_us"])
            if p <= 99.99:
                pts.append((nines(p), max(v, 1.0)))
    return pts


def y_ticks(lo, hi):
    ticks = []
    d = 10 ** math.floor(math.log10(lo))
    while d <= hi * 10:
        for m in (1, 2, 5):
            v = m * d
            if lo <= v <= hi:
                ticks.append(v)
        d *= 10
    return ticks


def label_us(v):
    if v >= 1e6:
        return f"{v / 1e6:g} s"
    if v >= 1e3:
        return f"{v / 1e3:g} ms"
    return f"{v:g} µs"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--targets", default="direct chronoguard squid tinyproxy")
    ap.add_argument("--title")
    a = ap.parse_args()

    series = []
    for t in a.targets.split():
        p = os.path.join(a.input, f"{a.scenario}-{t}.csv")
        if os.path.exists(p):
            pts = read(p)
            if pts:
                series.append((t, pts))
    if not series:
        raise SystemExit(f"no CSVs for scenario {a.scenario} in {a.input}")

    lo = min(v for _, pts in series for _, v in pts)
    hi = max(v for _, pts in series for _, v in pts)
    lo_l = math.floor(math.log10(lo) * 4) / 4 - 0.05
    hi_l = math.ceil(math.log10(hi) * 4) / 4 + 0.05
    if hi_l - lo_l < 1:
        hi_l = lo_l + 1
    pw, ph = W - ML - MR, H - MT - MB

    def sx(x):
        return ML + x / X_MAX * pw

    def sy(v):
        return MT + ph - (math.log10(v) - lo_l) / (hi_l - lo_l) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    title = a.title or f"{a.scenario}: latency by percentile"
    out.append(f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">{html.escape(title)}</text>')
    # grid and axes
    for x, lab in ((0, "0"), (1, "90"), (2, "99"), (3, "99.9"), (4, "99.99")):
        out.append(f'<line x1="{sx(x):.1f}" y1="{MT}" x2="{sx(x):.1f}" y2="{MT + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{MT + ph + 18}" text-anchor="middle">{lab}</text>')
    for v in y_ticks(10 ** lo_l, 10 ** hi_l):
        major = str(int(v))[0] == "1"
        out.append(f'<line x1="{ML}" y1="{sy(v):.1f}" x2="{ML + pw}" y2="{sy(v):.1f}" '
                   f'stroke="{"#ccc" if major else "#eee"}"/>')
        out.append(f'<text x="{ML - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{label_us(v)}</text>')
    out.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{ML + pw / 2}" y="{H - 22}" text-anchor="middle">percentile ("nines" scale)</text>')
    out.append(f'<text x="18" y="{MT + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {MT + ph / 2})">latency (log scale)</text>')
    # lines
    for i, (t, pts) in enumerate(series):
        color = COLORS.get(t, FALLBACK[i % len(FALLBACK)])
        d = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"/>')
    # legend: one row between the title and the plot, so it never hides a line
    lx, ly = ML, MT - 14
    for i, (t, _) in enumerate(series):
        color = COLORS.get(t, FALLBACK[i % len(FALLBACK)])
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 28}" y="{ly}">{html.escape(t)}</text>')
        lx += 28 + 8 * len(t) + 24
    out.append("</svg>")
    with open(a.output, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
