"""The audit report: one self-contained HTML file drawn from a replay result (``valuedrift.ops.replay``).

No external assets and no JavaScript: plots are inline SVG written here. Per monitored key:
S(t) with its 95% confidence band (S ± 1.96·SE) and the alerts marked on the timeline, ΔS with
its 95% interval, and the stacked category shares of every window. Then a table of dS/dt per key
(γ_eff and drift suppression against a reference key when one was given) with CIs and p-values, the
alerts, the classifier's model card, the input summary, the versions and the config hash.

Every text that comes from the input (keys, ids, messages) is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Z95 = 1.959963984540054
PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac")
SEVERITY_COLOR = {"info": "#9aa0a6", "warning": "#f28e2b", "critical": "#d62728"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

WIDTH = 920
LEFT, RIGHT = 64, 16
PANEL_S, PANEL_D, PANEL_SH = 190, 110, 120
GAP = 34

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#202124;max-width:980px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5}td.l,th.l{text-align:left}pre{background:#f8f8f8;padding:8px;font-size:.8em;overflow:auto}
svg{display:block;margin:8px 0}.muted{color:#666;font-size:.9em}.sig{font-weight:bold;color:#c5221f}
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return esc(x)
    if isinstance(x, int):
        return str(x)
    if x != 0 and abs(x) < 10 ** -digits:
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def pval(p: float | None) -> str:
    if p is None:
        return "–"
    return "<1e-12" if p < 1e-12 else (f"{p:.2e}" if p < 1e-3 else f"{p:.3f}")


def tlabel(t: float, span: float) -> str:
    d = datetime.fromtimestamp(t, tz=UTC)
    if span <= 2 * 86400:
        return d.strftime("%H:%M")
    return d.strftime("%m-%d %H:%M") if span <= 20 * 86400 else d.strftime("%Y-%m-%d")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** _floor_log10(raw)
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = step * _ceil(lo / step)
    out = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 50:
        out.append(round(v, 12))
        v += step
    return out


def _floor_log10(x: float) -> int:
    import math

    return math.floor(math.log10(x)) if x > 0 else 0


def _ceil(x: float) -> int:
    import math

    return math.ceil(x - 1e-9)


class _Axis:
    """Linear map from data to pixels."""

    def __init__(self, d0: float, d1: float, p0: float, p1: float) -> None:
        if d1 == d0:
            d0, d1 = d0 - 0.5, d1 + 0.5
        self.d0, self.d1, self.p0, self.p1 = d0, d1, p0, p1

    def __call__(self, v: float) -> float:
        return self.p0 + (v - self.d0) * (self.p1 - self.p0) / (self.d1 - self.d0)


def _f(v: float) -> str:
    return f"{v:.1f}"


def _segments(ws: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs of contiguous windows (a gap where a key had no events breaks the line)."""
    out: list[list[dict[str, Any]]] = []
    for w in ws:
        if out and abs(out[-1][-1]["window_end"] - w["window_start"]) < 1e-6:
            out[-1].append(w)
        else:
            out.append([w])
    return out


def key_svg(key: str, ws: list[dict[str, Any]], alerts: list[dict[str, Any]], codes: list[str]) -> str:
    """Three panels for one key: S(t) with its CI band and alert markers, ΔS, and category shares."""
    ws = sorted(ws, key=lambda w: w["window_start"])
    t0, t1 = ws[0]["window_start"], ws[-1]["window_end"]
    x = _Axis(t0, t1, LEFT, WIDTH - RIGHT)
    height = 20 + PANEL_S + GAP + PANEL_D + GAP + PANEL_SH + 40
    parts = [f'<svg class="key-plot" data-key="{esc(key)}" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="entropy of {esc(key)}" '
             f'font-family="sans-serif" font-size="11">']
    span = t1 - t0

    def mid(w: dict[str, Any]) -> float:
        return x((w["window_start"] + w["window_end"]) / 2)

    def frame(top: float, h: float, y: _Axis, title: str, ticks: Iterable[float], fmt: str) -> None:
        parts.append(f'<text x="{LEFT}" y="{_f(top - 6)}" font-weight="bold">{esc(title)}</text>')
        parts.append(f'<rect x="{LEFT}" y="{_f(top)}" width="{WIDTH - LEFT - RIGHT}" height="{h}" fill="none" '
                     f'stroke="#ccc"/>')
        for v in ticks:
            py = y(v)
            if top - 0.5 <= py <= top + h + 0.5:
                parts.append(f'<line x1="{LEFT - 4}" x2="{WIDTH - RIGHT}" y1="{_f(py)}" y2="{_f(py)}" '
                             f'stroke="#eee"/><text x="{LEFT - 6}" y="{_f(py + 4)}" text-anchor="end">'
                             f'{format(v, fmt)}</text>')

    # --- panel 1: S with its 95% band
    top = 20.0
    lo = min(w["entropy"] - Z95 * w["entropy_se"] for w in ws)
    hi = max(w["entropy"] + Z95 * w["entropy_se"] for w in ws)
    lo, hi = max(0.0, lo), max(hi, lo + 1e-3)
    y = _Axis(lo, hi, top + PANEL_S, top)
    frame(top, PANEL_S, y, "S(t), nats — line: plug-in S; band: 95% CI (S ± 1.96·SE)", _nice_ticks(lo, hi), ".2f")
    for seg in _segments(ws):
        upper = [(mid(w), y(min(hi, w["entropy"] + Z95 * w["entropy_se"]))) for w in seg]
        lower = [(mid(w), y(max(lo, w["entropy"] - Z95 * w["entropy_se"]))) for w in seg]
        if len(seg) == 1:  # a lone window: a short vertical band
            (px, pu), (_, pl) = upper[0], lower[0]
            upper, lower = [(px - 2, pu), (px + 2, pu)], [(px - 2, pl), (px + 2, pl)]
        pts = upper + lower[::-1]
        parts.append('<path class="ci-band" fill="#4e79a7" fill-opacity="0.2" stroke="none" d="M'
                     + " L".join(f"{_f(a)},{_f(b)}" for a, b in pts) + ' Z"/>')
    for seg in _segments(ws):
        pts = [(mid(w), y(w["entropy"])) for w in seg]
        if len(pts) == 1:
            pts = [(pts[0][0] - 2, pts[0][1]), (pts[0][0] + 2, pts[0][1])]
        parts.append('<polyline class="s-line" fill="none" stroke="#1f4e79" stroke-width="1.6" points="'
                     + " ".join(f"{_f(a)},{_f(b)}" for a, b in pts) + '"/>')
    # alert markers: one per (window, severity), the rules and messages in its tooltip
    grouped: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        grouped[(a["window_start"], a["severity"])].append(a)
    for (ws0, sev), group in sorted(grouped.items(), key=lambda kv: (SEVERITY_RANK.get(kv[0][1], 0), kv[0][0])):
        w = next((w for w in ws if w["window_start"] == ws0), None)
        px = mid(w) if w else x(ws0)
        color = SEVERITY_COLOR.get(sev, "#444")
        rules = sorted({a["rule"] for a in group})
        tip = "\n".join(a["message"] for a in group)
        size = 3 if sev == "info" else 5
        ybase = top + PANEL_S if sev == "info" else top
        line = "" if sev == "info" else (f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_f(top)}" '
                                         f'y2="{_f(top + PANEL_S)}" stroke="{color}" stroke-dasharray="3,2"/>')
        tri = (f"{_f(px - size)},{_f(ybase - 2 * size if sev == 'info' else ybase)} "
               f"{_f(px + size)},{_f(ybase - 2 * size if sev == 'info' else ybase)} "
               f"{_f(px)},{_f(ybase if sev == 'info' else ybase + 2 * size)}")
        parts.append(f'<g class="alert-marker" data-severity="{esc(sev)}" data-rules="{esc(",".join(rules))}" '
                     f'data-window="{esc(ws0)}"><title>{esc(tip)}</title>{line}'
                     f'<polygon points="{tri}" fill="{color}"/></g>')

    # classifier changes: S before and after one comes from different classifiers, and the rules restarted
    for w in ws:
        if w.get("classifier_changed"):
            px = x(w["window_start"])
            parts.append(f'<g class="classifier-change"><title>the classifier changed to '
                         f'{esc(", ".join(w.get("classifier_versions", [])))}: S is not comparable across this '
                         f'line, and the alert rules restart here</title><line x1="{_f(px)}" x2="{_f(px)}" '
                         f'y1="{_f(top)}" y2="{_f(top + PANEL_S)}" stroke="#7f7f7f" stroke-width="2" '
                         f'stroke-dasharray="1,3"/><text x="{_f(px + 3)}" y="{_f(top + 11)}" fill="#7f7f7f">'
                         f'classifier</text></g>')

    # --- panel 2: ΔS with its 95% interval
    top = 20 + PANEL_S + GAP
    ds = [w for w in ws if w.get("delta_entropy") is not None]
    ext = max([abs(w["delta_entropy"]) + Z95 * (w.get("delta_se") or 0) for w in ds] + [1e-3])
    y = _Axis(-ext, ext, top + PANEL_D, top)
    frame(top, PANEL_D, y, "ΔS between consecutive windows, nats (whiskers: 95% CI)", _nice_ticks(-ext, ext, 4),
          "+.2f")
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_f(y(0))}" y2="{_f(y(0))}" stroke="#888"/>')
    bw = max(1.0, min(12.0, (WIDTH - LEFT - RIGHT) / max(len(ws), 1) * 0.6))
    for w in ds:
        d, se = w["delta_entropy"], w.get("delta_se") or 0.0
        px = mid(w)
        sig = se > 0 and abs(d) > Z95 * se
        color = "#e15759" if sig else "#4e79a7"
        parts.append(f'<rect class="delta-bar" x="{_f(px - bw / 2)}" y="{_f(min(y(0), y(d)))}" width="{_f(bw)}" '
                     f'height="{_f(abs(y(d) - y(0)))}" fill="{color}"><title>ΔS = {d:+.4f} ± {Z95 * se:.4f}'
                     f'</title></rect>')
        if se > 0:
            parts.append(f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_f(y(d - Z95 * se))}" y2="{_f(y(d + Z95 * se))}" '
                         f'stroke="#333" stroke-width="0.8"/>')

    # --- panel 3: stacked category shares
    top = 20 + PANEL_S + GAP + PANEL_D + GAP
    y = _Axis(0.0, 1.0, top + PANEL_SH, top)
    frame(top, PANEL_SH, y, "category shares per window", [0.0, 0.5, 1.0], ".1f")
    for w in ws:
        n = w["n"] or 1
        x0, x1 = x(w["window_start"]), x(w["window_end"])
        acc = 0.0
        for i, c in enumerate(codes):
            share = w["counts"].get(c, 0) / n
            if share <= 0:
                continue
            parts.append(f'<rect class="share" data-category="{esc(c)}" x="{_f(x0)}" y="{_f(y(acc + share))}" '
                         f'width="{_f(max(x1 - x0, 0.5))}" height="{_f(y(acc) - y(acc + share))}" '
                         f'fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(c)}: {w["counts"].get(c, 0)} of '
                         f'{w["n"]}</title></rect>')
            acc += share
    # legend and time axis
    ly = top + PANEL_SH + 30
    for i, c in enumerate(codes):
        lx = LEFT + i * 80
        parts.append(f'<rect x="{lx}" y="{_f(ly - 9)}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{lx + 14}" y="{_f(ly)}">{esc(c)}</text>')
    for t in _time_ticks(t0, t1):
        px = x(t)
        parts.append(f'<text x="{_f(px)}" y="{_f(top + PANEL_SH + 14)}" text-anchor="middle">'
                     f'{esc(tlabel(t, span))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _time_ticks(t0: float, t1: float, n: int = 6) -> list[float]:
    span = t1 - t0
    if span <= 0:
        return [t0]
    steps = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000)
    step = next((s for s in steps if span / s <= n), steps[-1] * max(1, round(span / steps[-1] / n)))
    first = (int(t0 // step) + 1) * step if t0 % step else t0
    out = []
    t = float(first)
    while t <= t1 and len(out) < 20:
        out.append(t)
        t += step
    return out


def _estimate_cells(e: dict[str, Any] | None, digits: int = 4) -> str:
    if not e:
        return '<td>–</td><td>–</td><td>–</td>'
    cls = ' class="sig"' if e["p_value"] < 0.05 else ""
    return (f'<td>{num(e["value"], digits)}</td><td>[{num(e["ci_low"], digits)}, {num(e["ci_high"], digits)}]</td>'
            f'<td{cls}>{pval(e["p_value"])}</td>')


def rates_table(rates: dict[str, Any], reference: str | None) -> str:
    head = ('<tr><th class="l">key</th><th>windows</th><th>events</th><th>mean S</th><th>dS/dt per window</th>'
            '<th>95% CI</th><th>p</th><th>dS/dt per hour</th><th>sampling share of var(S)</th>')
    if reference is not None:
        head += '<th>γ_eff per window</th><th>95% CI</th><th>p</th><th>suppression %</th><th>95% CI</th><th>p</th>'
    rows = [f'<table class="rates">{head}</tr>']
    for key, r in sorted(rates.items()):
        var = r.get("variance")
        per_hour = r.get("ds_dt_per_hour")
        change = r.get("classifier_change")
        since = f' (since the classifier change at {esc(change["at"])})' if change else ""
        row = (f'<tr data-key="{esc(key)}"><td class="l">{esc(key)}{" (reference)" if r.get("reference") else ""}'
               f'</td><td>{r["windows"]}{since}</td><td>{r["events"]}</td><td>{num(r["mean_entropy"])}</td>'
               f'{_estimate_cells(r.get("ds_dt_per_window"), 5)}<td>{num(per_hour and per_hour["value"])}</td>'
               f'<td>{num(var and var["sampling_share"], 2)}</td>')
        if reference is not None:
            row += _estimate_cells(r.get("gamma_eff_per_window"), 5) + _estimate_cells(r.get("suppression_percent"), 1)
        rows.append(row + "</tr>")
        note = r.get("note") or r.get("reference_note")
        if note:
            rows.append(f'<tr><td class="l muted" colspan="20">{esc(key)}: {esc(note)}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def moved(evidence: dict[str, Any]) -> str:
    """The top change of an alert, its share before and after with the interval, and the direction it means."""
    top = evidence.get("top_change")
    if not top:
        return "—"
    c = evidence["categories"][top]
    examples = evidence.get("examples", {}).get(top, [])
    return (f'<b>{esc(top)}</b> {c["baseline_share"]:.0%} → {c["share"]:.0%} '
            f'({c["delta"] * 100:+.0f} pts [{c["ci_low"] * 100:.0f}, {c["ci_high"] * 100:.0f}])'
            f'{"<br>" + esc(evidence["direction"]) if evidence.get("direction") else ""}'
            f'{"<br><span class=muted>e.g. " + esc(", ".join(examples[:3])) + "</span>" if examples else ""}')


def alerts_section(alerts: list[dict[str, Any]], limit: int = 300) -> str:
    if not alerts:
        return "<p>No alert fired.</p>"
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for a in alerts:
        counts[(a["monitor_key"], a["rule"], a["severity"])] += 1
    out = ['<table class="alert-counts"><tr><th class="l">key</th><th class="l">rule</th><th class="l">severity</th>'
           '<th>alerts</th></tr>']
    for (k, rule, sev), n in sorted(counts.items()):
        out.append(f'<tr><td class="l">{esc(k)}</td><td class="l">{esc(rule)}</td><td class="l">{esc(sev)}</td>'
                   f'<td>{n}</td></tr>')
    out.append("</table>")
    shown = [a for a in alerts if a["severity"] != "info"]
    if shown:
        out.append('<table class="alerts"><tr><th class="l">window start (UTC)</th><th class="l">key</th>'
                   '<th class="l">rule</th><th class="l">severity</th><th>statistic</th><th>p</th>'
                   '<th class="l">what moved</th><th class="l">message</th></tr>')
        for a in shown[:limit]:
            out.append(f'<tr><td class="l">{esc(_iso(a["window_start"]))}</td>'
                       f'<td class="l">{esc(a["monitor_key"])}</td>'
                       f'<td class="l">{esc(a["rule"])}</td><td class="l">{esc(a["severity"])}</td>'
                       f'<td>{num(a["statistic"])}</td><td>{pval(a.get("p_value"))}</td>'
                       f'<td class="l moved">{moved(a.get("evidence", {}))}</td>'
                       f'<td class="l">{esc(a["message"])}</td></tr>')
        out.append("</table>")
        if len(shown) > limit:
            out.append(f'<p class="muted">{len(shown) - limit} more warning/critical alerts are in the JSON.</p>')
    out.append('<p class="muted">Alerts of severity info (for example the method\'s |ΔS| &gt; ε rule) are counted '
               'above, drawn as grey ticks on the plots, and listed in the JSON.</p>')
    return "".join(out)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_value(v: Any, depth: int = 0) -> str:
    """A nested JSON value as HTML: dicts of dicts of scalars become tables, lists of lists matrices."""
    if isinstance(v, dict):
        if v and all(isinstance(x, dict) for x in v.values()) and \
                all(all(not isinstance(y, (dict, list)) for y in x.values()) for x in v.values()):
            cols = sorted({c for x in v.values() for c in x})
            rows = "".join(f'<tr><td class="l">{esc(k)}</td>' + "".join(f"<td>{num(x.get(c))}</td>" for c in cols)
                           + "</tr>" for k, x in v.items())
            return ('<table><tr><th></th>' + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>" + rows
                    + "</table>")
        if depth > 4:
            return f"<pre>{esc(json.dumps(v, sort_keys=True)[:2000])}</pre>"
        items = "".join(f'<tr><td class="l">{esc(k)}</td><td class="l">{render_value(x, depth + 1)}</td></tr>'
                        for k, x in v.items())
        return f"<table>{items}</table>"
    if isinstance(v, list):
        if v and all(isinstance(r, list) and all(isinstance(c, (int, float)) for c in r) for r in v):
            return "<table>" + "".join("<tr>" + "".join(f"<td>{num(c)}</td>" for c in r) + "</tr>" for r in v) \
                + "</table>"
        if len(v) > 50 or any(isinstance(x, (dict, list)) for x in v):
            return f"<pre>{esc(json.dumps(v, sort_keys=True)[:2000])}</pre>"
        return esc(", ".join(str(x) for x in v))
    return num(v) if isinstance(v, float) else esc(v)


def render_report(result: dict[str, Any]) -> str:
    """Return the whole report as one HTML document."""
    windows = result["windows"]
    alerts = result["alerts"]
    codes = result["classifier"]["taxonomy"]
    reference = result["config"]["replay"].get("reference")
    inp = result["input"]
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for w in windows:
        by_key[w["monitor_key"]].append(w)
    alerts_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        alerts_by_key[a["monitor_key"]].append(a)
    body = [f"<h1>valuedrift audit replay</h1><p>{len(by_key)} monitored key(s), {len(windows)} windows, "
            f"{inp['n_events']} events ({esc(inp['first_event_time'])} to {esc(inp['last_event_time'])}), "
            f"{len(alerts)} alerts. Config hash <code>{esc(result['config']['hash'])}</code>; valuedrift "
            f"{esc(result['versions']['valuedrift'])}; classifier {esc(result['versions']['classifier'])}.</p>"]
    body.append("<h2>Rates per key</h2>" + rates_table(result["rates"], reference))
    body.append('<p class="muted">dS/dt: OLS slope of S over the key\'s windows (by window position, so gaps '
                'count); SE the larger of the residual SE and the one implied by the windows\' own SEs; normal '
                '95% CIs and two-sided p-values against 0.'
                + (' γ_eff = σ_ref − dS/dt with σ_ref the reference key\'s slope; suppression = '
                   '100·(1 − dS/dt ÷ σ_ref).' if reference else "") + "</p>")
    body.append("<h2>Entropy per key</h2>")
    for key in sorted(by_key):
        body.append(f'<section class="key" data-key="{esc(key)}"><h3>{esc(key)}</h3>')
        body.append(key_svg(key, by_key[key], alerts_by_key.get(key, []), codes))
        body.append("</section>")
    body.append("<h2>Alerts</h2>" + alerts_section(alerts))
    clf = result["classifier"]
    body.append(f"<h2>Classifier</h2><p>{esc(clf.get('spec'))} — model version "
                f"<code>{esc(clf.get('model_version'))}</code>, categories {esc(', '.join(codes))}.</p>")
    if clf.get("evaluation"):
        body.append("<h3>Model card: measured evaluation</h3>" + render_value(clf["evaluation"]))
    else:
        body.append('<p class="muted">No evaluation card is available for this classifier.</p>')
    body.append("<h2>Input</h2>")
    src = "".join(f'<tr><td class="l">{esc(s["name"])}</td><td class="l"><code>{esc(s["sha256"])}</code></td>'
                  f'<td>{s["records"]}</td><td>{s["bad"]}</td><td>{s["events"]}</td></tr>' for s in inp["sources"])
    body.append('<table class="sources"><tr><th class="l">source</th><th class="l">sha256</th><th>records</th>'
                f'<th>bad</th><th>events</th></tr>{src}</table>')
    summary = {k: inp[k] for k in ("format", "n_records", "n_bad_lines", "n_events", "n_unknown_category",
                                   "n_outside_range", "n_late", "n_duplicate_ids", "first_event_time",
                                   "last_event_time")}
    body.append(render_value(summary))
    if inp.get("kafka"):
        body.append("<h3>Kafka</h3>" + render_value(inp["kafka"]))
    if inp["bad_examples"]:
        body.append("<h3>First bad records</h3><pre>" + esc("\n".join(inp["bad_examples"])) + "</pre>")
    body.append("<h2>Versions and configuration</h2>" + render_value(result["versions"]))
    body.append(f"<p>Config hash <code>{esc(result['config']['hash'])}</code></p><pre>"
                f"{esc(json.dumps(result['config'], sort_keys=True, indent=1, ensure_ascii=False))}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>valuedrift audit replay</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")
