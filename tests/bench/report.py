"""Prints the benchmark table (Markdown) from tests/bench/out/results.jsonl.

    python3 report.py out/results.jsonl

Absolute figures per client (medians over the rounds), then the ratios claw / peer with the
issue's targets (the median of the per-round ratios: claw and its peer ran minutes apart, in the
same round), then the memory check (RSS after 10,000 calls vs after the first 1,000).
"""

from __future__ import annotations

import json
import sys

# (metric key, label, higher is better)
METRICS = {
    "seq_cps": ("sequential calls/s", True),
    "conc_cps": ("calls/s, 64 in flight", True),
    "seq_cpu_us": ("CPU µs/call, sequential", False),
    "conc_cpu_us": ("CPU µs/call, 64 in flight", False),
    "stream_cps": ("stream chunks/s", True),
    "embed_ps": ("embeddings/s", True),
}

# (lang, claw client, peer client, metric, target ratio claw/peer or None for information).
# For CPU (lower is better) the target is a ceiling on claw/peer, for the rest a floor.
TARGETS = [
    ("node", "claw", "fetch", "seq_cps", 8.0),
    ("node", "claw", "fetch", "conc_cps", 10.0),
    ("node", "claw", "fetch", "conc_cpu_us", 1 / 8),
    ("node", "claw", "fetch", "seq_cpu_us", 1 / 8),
    ("node", "claw", "openai", "stream_cps", 3.0),
    ("node", "claw", "fetch", "embed_ps", None),
    ("node", "claw", "openai", "seq_cps", None),
    ("node", "claw", "openai", "conc_cps", None),
    ("node", "claw-client", "fetch", "seq_cps", 8.0),
    ("node", "claw-client", "fetch", "conc_cps", 10.0),
    ("node", "claw-client", "fetch", "conc_cpu_us", 1 / 8),
    ("node", "claw-client", "fetch", "seq_cpu_us", 1 / 8),
    ("node", "claw-client", "openai", "stream_cps", 3.0),
    ("python", "claw-sync", "openai-sync", "seq_cps", 10.0),
    ("python", "claw-sync", "openai-sync", "conc_cps", 10.0),
    ("python", "claw-sync", "openai-sync", "stream_cps", 20.0),
    ("python", "claw-sync", "openai-sync", "embed_ps", 20.0),
    ("python", "claw-async", "openai-async", "seq_cps", 10.0),
    ("python", "claw-async", "openai-async", "conc_cps", 10.0),
    ("python", "claw-async", "openai-async", "stream_cps", 20.0),
    ("python", "claw-async", "openai-async", "embed_ps", 20.0),
    ("python", "claw-sync", "httpx-sync", "seq_cps", None),
    ("python", "claw-sync", "httpx-sync", "conc_cps", None),
    ("python", "claw-sync", "httpx-sync", "stream_cps", None),
    ("python", "claw-sync", "httpx-sync", "embed_ps", None),
    ("python", "claw-async", "httpx-async", "conc_cps", None),
    ("rust", "claw", "reqwest", "seq_cps", 1 / 1.1),
    ("rust", "claw", "reqwest", "conc_cps", 1 / 1.1),
    ("rust", "claw", "reqwest", "seq_cpu_us", None),
    ("rust", "claw", "reqwest", "conc_cpu_us", None),
    ("rust", "claw", "reqwest", "stream_cps", 2.0),
    ("rust", "claw", "reqwest", "embed_ps", None),
    ("rust", "claw", "async-openai", "seq_cps", None),
    ("rust", "claw", "async-openai", "conc_cps", None),
    ("rust", "claw", "async-openai", "stream_cps", None),
]
PEER_LABEL = {("rust", "reqwest", "stream_cps"): "reqwest + eventsource-stream"}
MEMORY_LIMIT = 1.10


def fmt(v, unit="") -> str:
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    if v >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def mb(kb) -> str:
    return "–" if kb is None else f"{kb / 1024:.1f}"


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def main() -> None:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    machine = next((r for r in rows if r.get("kind") == "machine"), {})
    after = next((r for r in rows if r.get("kind") == "machine_after"), {})
    ceilings = [r for r in rows if r.get("kind") == "ceiling"]
    runs = [r for r in rows if "client" in r]
    order, by_client = [], {}
    for r in runs:
        key = (r["lang"], r["client"])
        if key not in by_client:
            order.append(key)
            by_client[key] = []
        by_client[key].append(r)
    ok = {k: [r for r in v if "error" not in r] for k, v in by_client.items()}
    rounds = max((r.get("round", 1) for r in runs), default=1)

    def med(key, metric):
        return median(r.get(metric) for r in ok.get(key, []))

    def growth(r):
        return r["rss_end_kb"] / r["rss_mark_kb"] - 1 if r.get("rss_mark_kb") else None

    out = []
    p = out.append
    p(f"Machine: {machine.get('nproc', '?')} × {machine.get('cpu', '?')}; {machine.get('date', '?')}; "
      f"load average {machine.get('load_before', '?')} before, {after.get('load_after', '?')} after; "
      f"nginx {machine.get('nginx', '?')}, node {machine.get('node', '?')}, "
      f"python {machine.get('python', '?')}, rustc {machine.get('rustc', '?')}. "
      f"{rounds} round(s), clients interleaved; figures are medians over the rounds.")
    p("")
    p("### nginx's ceiling (wrk -t1, the same POST)")
    p("")
    p("| request | req/s |")
    p("|---|---:|")
    for c in ceilings:
        rps = float(c["rps"]) if c.get("rps") else None
        extra = f" ({fmt(rps * 1000)} chunks/s)" if rps and c["name"].startswith("stream") else ""
        p(f"| {c['name']} | {fmt(rps)}{extra} |")
    p("")
    p("### Absolute figures (each client in its own process; medians)")
    p("")
    p("| lang | client | seq calls/s | calls/s, 64 in flight | CPU µs/call seq | CPU µs/call 64 in flight "
      "| stream chunks/s | embeddings/s | peak RSS MB | RSS MB after 1k → 10k calls |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        lang, client = key
        if not ok[key]:
            err = next((r["error"] for r in by_client[key] if "error" in r), "?")
            p(f"| {lang} | {client} | error: {err[:120]} | | | | | | | |")
            continue
        g = median(growth(r) for r in ok[key])
        p(f"| {lang} | {client} | {fmt(med(key, 'seq_cps'))} | {fmt(med(key, 'conc_cps'))} "
          f"| {fmt(med(key, 'seq_cpu_us'))} | {fmt(med(key, 'conc_cpu_us'))} | {fmt(med(key, 'stream_cps'))} "
          f"| {fmt(med(key, 'embed_ps'))} | {mb(med(key, 'peak_rss_kb'))} "
          f"| {mb(med(key, 'rss_mark_kb'))} → {mb(med(key, 'rss_end_kb'))} ({g:+.1%}) |")
    p("")
    failover = [k for k in order if ok[k] and med(k, "failover_us")]
    if failover:
        p("### A call that fails over from a refused endpoint (connection refused → next endpoint)")
        p("")
        p("| lang | client | µs/call (wall) | CPU µs/call | plain call µs/call (wall) |")
        p("|---|---|---:|---:|---:|")
        for key in failover:
            plain = med(key, "seq_cps")
            p(f"| {key[0]} | {key[1]} | {fmt(med(key, 'failover_us'))} | {fmt(med(key, 'failover_cpu_us'))} "
              f"| {fmt(1e6 / plain) if plain else ''} |")
        p("")
    observed = [k for k in order if ok[k] and med(k, "listener_us")]
    if observed:
        p("### Observability: sequential calls with an event listener, and with OTLP export on")
        p("")
        p("| lang | client | plain µs/call (wall / CPU) | listener µs/call (wall / CPU) | OTLP on µs/call (wall / CPU) "
          "| listener costs (CPU µs) | OTLP costs (CPU µs) |")
        p("|---|---|---:|---:|---:|---:|---:|")
        for key in observed:
            plain, plain_cpu = 1e6 / med(key, "seq_cps"), med(key, "seq_cpu_us")
            l, l_cpu = med(key, "listener_us"), med(key, "listener_cpu_us")
            o, o_cpu = med(key, "otel_us"), med(key, "otel_cpu_us")
            p(f"| {key[0]} | {key[1]} | {fmt(plain)} / {fmt(plain_cpu)} | {fmt(l)} / {fmt(l_cpu)} "
              f"| {fmt(o)} / {fmt(o_cpu)} | {l_cpu - plain_cpu:+.1f} | {o_cpu - plain_cpu:+.1f} |")
        p("")
    p("### Ratios claw / peer (median of the per-round ratios, range in brackets) and targets")
    p("")
    p("| lang | claw | peer | metric | claw | peer | claw / peer | target | |")
    p("|---|---|---|---|---:|---:|---:|---:|---|")
    for lang, claw, peer, metric, target in TARGETS:
        a_key, b_key = (lang, claw), (lang, peer)
        label, higher = METRICS[metric]
        peer_name = PEER_LABEL.get((lang, peer, metric), peer)
        per_round = []
        for ra in ok.get(a_key, []):
            for rb in ok.get(b_key, []):
                if ra.get("round") == rb.get("round") and ra.get(metric) and rb.get(metric):
                    per_round.append(ra[metric] / rb[metric])
        if not per_round:
            p(f"| {lang} | {claw} | {peer_name} | {label} | | | n/a | | |")
            continue
        ratio = median(per_round)
        lo, hi = min(per_round), max(per_round)
        if target is None:
            tgt, verdict = "", ""
        elif higher:
            tgt, verdict = f"≥ {target:.2f}", "met" if ratio >= target else "**missed**"
        else:
            tgt, verdict = f"≤ 1/{1 / target:.0f}", "met" if ratio <= target else "**missed**"
        if higher:
            shown = f"{ratio:.2f}× [{lo:.2f}–{hi:.2f}]"
        else:
            shown = f"1/{1 / ratio:.1f} [1/{1 / lo:.1f}–1/{1 / hi:.1f}]"
        p(f"| {lang} | {claw} | {peer_name} | {label} | {fmt(med(a_key, metric))} | {fmt(med(b_key, metric))} "
          f"| {shown} | {tgt} | {verdict} |")
    p("")
    p(f"### Memory: RSS after 10,000 calls within {MEMORY_LIMIT - 1:.0%} of RSS after the first 1,000 "
      "(64-in-flight phase; median and worst round)")
    p("")
    p("| lang | client | after 1,000 MB | after 10,000 MB | growth (median) | growth (worst) | |")
    p("|---|---|---:|---:|---:|---:|---|")
    for key in order:
        gs = [growth(r) for r in ok[key] if growth(r) is not None]
        if not gs:
            continue
        g, worst = median(gs), max(gs)
        verdict = ("met" if worst <= MEMORY_LIMIT - 1 else "**missed**") if key[1].startswith("claw") else ""
        p(f"| {key[0]} | {key[1]} | {mb(med(key, 'rss_mark_kb'))} | {mb(med(key, 'rss_end_kb'))} "
          f"| {g:+.1%} | {worst:+.1%} | {verdict} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
