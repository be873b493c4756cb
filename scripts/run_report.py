"""
The HTML run report of the demo: one self-contained page (inline CSS, plots as base64 PNG).

``render_report(summary, out_path)`` writes it; ``python -m scripts.run_report summary.json out.html``
does the same from a JSON file. Every section of the summary is optional: a missing one renders as
"not run". Every value coming from the summary is HTML-escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2")

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Run report: {{ project }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
         color: #1f2937; background: #f3f4f6; }
  header { padding: 24px 32px; color: #fff; background: {{ status_color }}; }
  header h1 { margin: 0 0 6px; font-size: 26px; }
  header .meta { opacity: .92; font-size: 14px; }
  .badge { display: inline-block; padding: 2px 10px; border-radius: 999px; background: rgba(255,255,255,.25);
           font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  main { padding: 24px 32px; max-width: 1200px; }
  section { background: #fff; border-radius: 10px; padding: 16px 20px; margin-bottom: 18px;
            box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  h2 { margin: 0 0 12px; font-size: 18px; }
  h3 { margin: 14px 0 8px; font-size: 15px; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
  th { background: #f9fafb; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; }
  .card { flex: 1 1 150px; background: #f9fafb; border-radius: 8px; padding: 10px 14px; }
  .card .v { font-size: 22px; font-weight: 700; }
  .card .k { font-size: 12px; color: #6b7280; text-transform: uppercase; letter-spacing: .04em; }
  .ok { color: #15803d; font-weight: 600; } .bad { color: #b91c1c; font-weight: 600; }
  .warn { color: #b45309; font-weight: 600; }
  .notrun { color: #9ca3af; font-style: italic; }
  code { font-size: 12px; background: #f3f4f6; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
  .plots { display: flex; flex-wrap: wrap; gap: 16px; }
  .plot { flex: 1 1 480px; }
  .plot img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; border-radius: 6px; }
  footer { padding: 0 32px 24px; color: #9ca3af; font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>{{ project }} <span class="badge">{{ status }}</span></h1>
  <div class="meta">Started {{ started_at }} &middot; finished {{ finished_at }} &middot; took {{ duration }} &middot; Apache Airflow {{ airflow_version }}</div>
</header>
<main>

<section>
  <h2>At a glance</h2>
  <div class="cards">
  {% for card in cards %}
    <div class="card"><div class="v">{{ card.value }}</div><div class="k">{{ card.label }}</div></div>
  {% endfor %}
  </div>
</section>

<section>
  <h2>Stages</h2>
  <table>
    <tr><th>Stage</th><th>Status</th><th>Details</th></tr>
    {% for stage in stages %}
    <tr>
      <td>{{ stage.name }}</td>
      <td>{% if stage.ran %}<span class="{{ stage.css }}">{{ stage.status }}</span>{% else %}<span class="notrun">not run</span>{% endif %}</td>
      <td>{% for key, value in stage.details %}{{ key }}: <b>{{ value }}</b>{% if not loop.last %} &middot; {% endif %}{% endfor %}</td>
    </tr>
    {% endfor %}
  </table>
</section>

<section>
  <h2>Training</h2>
  {% if training %}
    {% for solution in training %}
    <h3>{{ solution.solution }} <small>({{ solution.recipe }})</small></h3>
    <p>Quality gate{% if solution.gate_metric %} on <code>{{ solution.gate_metric }}</code>{% endif %}:
      {% if solution.accepted is none %}<span class="notrun">not evaluated</span>
      {% elif solution.accepted %}<span class="ok">accepted</span>{% else %}<span class="bad">rejected</span>{% endif %}
      {% if solution.baseline_ratio %} ({{ solution.baseline_ratio }}&times; the Popularity-Count baseline){% endif %}
      {% if solution.reason %} &mdash; {{ solution.reason }}{% endif %}</p>
    {% if solution.arn %}<p>Solution version: <code>{{ solution.arn }}</code></p>{% endif %}
    {% if solution.metrics %}
    <table>
      <tr><th>Metric</th><th>Value</th></tr>
      {% for name, value in solution.metrics %}<tr><td>{{ name }}</td><td class="num">{{ value }}</td></tr>{% endfor %}
    </table>
    {% else %}<p class="notrun">no metrics</p>{% endif %}
    {% endfor %}
  {% else %}<p class="notrun">not run</p>{% endif %}
</section>

<section>
  <h2>Segments</h2>
  {% if segments %}
  <table>
    <tr><th>Destination</th><th>Segment</th><th>Query</th><th>Users</th><th>Matched</th><th>Without a match</th>
        <th>Domain / project</th><th>Segment id</th><th>Size</th><th>Files</th></tr>
    {% for seg in segments %}
    <tr>
      <td>{{ seg.destination }}</td>
      <td>{{ seg.name }}</td><td><code>{{ seg.query }}</code></td>
      <td class="num">{{ seg.users }}</td><td class="num">{{ seg.matched }}</td>
      <td class="num">{{ seg.users_without_match }}</td>
      <td>{{ seg.domain }}</td>
      <td>{% if seg.segment_id %}<code>{{ seg.segment_id }}</code>{% if seg.segment_arn %}<br><code>{{ seg.segment_arn }}</code>{% endif %}{% else %}<span class="notrun">not activated</span>{% endif %}</td>
      <td class="num">{{ seg.size }}</td>
      <td>{% for uri in seg.csv_uris %}<code>{{ uri }}</code>{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
    </tr>
    {% endfor %}
  </table>
  <p>Matched: users with a Customer Profiles profile (or a Pinpoint endpoint). Users without one are
  counted and left out of the segment.</p>
  {% else %}<p class="notrun">not run</p>{% endif %}
</section>

<section>
  <h2>mParticle</h2>
  {% if mparticle %}
  <table>
    {% for key, value in mparticle.rows %}<tr><th>{{ key }}</th><td class="num">{{ value }}</td></tr>{% endfor %}
  </table>
  {% if mparticle.sample %}<h3>Sample profile</h3><pre><code>{{ mparticle.sample }}</code></pre>{% endif %}
  {% else %}<p class="notrun">not run</p>{% endif %}
</section>

<section>
  <h2>Plots</h2>
  <div class="plots">
  {% for plot in plots %}
    <div class="plot"><h3>{{ plot.title }}</h3>
    {% if plot.data_uri %}<img alt="{{ plot.title }}" src="{{ plot.data_uri }}">{% else %}<p class="notrun">not run</p>{% endif %}
    </div>
  {% endfor %}
  </div>
</section>

<section>
  <h2>Where the outputs are</h2>
  {% if outputs %}
  <table>
    <tr><th>Output</th><th>Location</th></tr>
    {% for name, uri in outputs %}<tr><td>{{ name }}</td><td><code>{{ uri }}</code></td></tr>{% endfor %}
  </table>
  {% else %}<p class="notrun">no outputs recorded</p>{% endif %}
</section>

</main>
<footer>Generated by scripts/run_report.py on {{ generated_at }}.</footer>
</body>
</html>
"""


# ------------------------------------------------------------------------------------ helpers


def _section(summary: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = summary.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _list(summary: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = summary.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [dict(item) for item in value if isinstance(item, Mapping)]


def _fmt(value: Any) -> str:
    """Numbers with thousands separators and 4 significant decimals; ``—`` for missing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _duration(started: Any, finished: Any) -> str:
    start, end = _parse_time(started), _parse_time(finished)
    if start is None or end is None:
        return "—"
    try:
        seconds = int((end - start).total_seconds())
    except TypeError:  # naive vs aware
        return "—"
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return []
    out = []
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append(float(value))
    return out


# ------------------------------------------------------------------------------------ plots


def _figure_to_data_uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_solution_metrics(training: list[dict[str, Any]]) -> str | None:
    """Grouped bars: metric names on x, one bar per solution."""
    series = []
    for entry in training:
        metrics = entry.get("metrics")
        if isinstance(metrics, Mapping):
            values = {str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            if values:
                series.append((str(entry.get("solution", "solution")), values))
    if not series:
        return None
    names = sorted({name for _, values in series for name in values})
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series):
        xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(names))]
        ax.bar(
            xs, [values.get(n, 0.0) for n in names], width, label=label, color=PALETTE[index % len(PALETTE)]
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("value (higher is better)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _figure_to_data_uri(fig)


def plot_segment_sizes(segments: list[dict[str, Any]]) -> str | None:
    """Per segment: users vs matched (profiles / endpoints) vs users without a match."""
    if not segments:
        return None
    labels = [str(seg.get("name", f"segment {i + 1}")) for i, seg in enumerate(segments)]
    kinds = (("users", "users"), ("matched", "matched"), ("users_without_match", "without a match"))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(labels) + 2), 4))
    width = 0.8 / len(kinds)
    for index, (key, label) in enumerate(kinds):
        xs = [i + (index - 1) * width for i in range(len(labels))]
        values = [float(seg.get(key) or 0) for seg in segments]
        ax.bar(xs, values, width, label=label, color=PALETTE[index])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _figure_to_data_uri(fig)


def plot_score_distribution(scores: list[float]) -> str | None:
    """Histogram of the batch-inference recommendation scores."""
    if not scores:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(scores, bins=min(40, max(5, int(math.sqrt(len(scores))))), color=PALETTE[0], edgecolor="white")
    ax.set_xlabel("score")
    ax.set_ylabel("recommendations")
    ax.grid(axis="y", alpha=0.3)
    return _figure_to_data_uri(fig)


# ------------------------------------------------------------------------------------ the page


def _per_interval(counts: Any) -> str | None:
    """``{"2026-09-01": 3, ...}`` as ``2026-09-01: 3, ...`` (the intervals with late events; None if none ran)."""
    if not isinstance(counts, Mapping) or not counts:
        return None
    shown = [f"{day}: {count}" for day, count in counts.items() if count]
    return ", ".join(shown) if shown else "none"


def _stages(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    export = _section(summary, "export")
    imp = _section(summary, "import")
    training = _list(summary, "training")
    batch = _section(summary, "batch_inference")
    segments = _list(summary, "segments")
    mparticle = _section(summary, "mparticle")
    destinations = sorted({str(s["destination"]) for s in segments if s.get("destination")})

    def stage(name: str, ran: bool, status: str, css: str, details: list[tuple[str, Any]]) -> dict[str, Any]:
        shown = [(key, _fmt(value)) for key, value in details if value is not None]
        return {"name": name, "ran": ran, "status": status, "css": css, "details": shown}

    quarantined = export.get("quarantined") or 0
    gates = [t.get("gate") for t in training if isinstance(t.get("gate"), Mapping)]
    accepted = sum(1 for gate in gates if gate.get("accepted"))
    import_status = str(imp.get("status", "done"))
    dead = (mparticle.get("dead_lettered") or 0) + (mparticle.get("errors_in_output") or 0)
    return [
        stage(
            "Export interactions",
            bool(export),
            "with quarantine" if quarantined else "ok",
            "warn" if quarantined else "ok",
            [
                ("intervals", export.get("intervals")),
                ("rows", export.get("rows")),
                ("quarantined", export.get("quarantined")),
                ("out of interval", export.get("out_of_interval")),
                ("late events (landed after their day, exported)", export.get("late_events")),
                ("late events per interval", _per_interval(export.get("late_events_by_interval"))),
                ("events beyond the lateness window", export.get("events_beyond_lateness")),
                ("partitions", export.get("partitions_uri")),
            ],
        ),
        stage(
            "Dataset import",
            bool(imp),
            import_status,
            "ok" if import_status in ("ACTIVE", "done") else "bad",
            [("mode", imp.get("mode")), ("rows", imp.get("rows")), ("job", imp.get("job_arn"))],
        ),
        stage(
            "Training",
            bool(training),
            f"{accepted}/{len(gates)} accepted" if gates else "trained",
            "ok" if gates and accepted == len(gates) else ("bad" if gates else "ok"),
            [("solutions", len(training))],
        ),
        stage(
            "Batch inference",
            bool(batch),
            "ok",
            "ok",
            [
                ("users", batch.get("users")),
                ("output", batch.get("output_uri")),
                ("job", batch.get("job_arn")),
            ],
        ),
        stage(
            "Batch segments → " + (", ".join(destinations) or "audience destinations"),
            bool(segments),
            "ok",
            "ok",
            [
                ("segments", len(segments)),
                ("users", sum(int(s.get("users") or 0) for s in segments)),
                ("activated", sum(1 for s in segments if s.get("segment_id"))),
                ("in", ", ".join(sorted({str(s["domain"]) for s in segments if s.get("domain")})) or None),
            ],
        ),
        stage(
            "mParticle upload",
            bool(mparticle),
            "with dead letters" if dead else "ok",
            "warn" if dead else "ok",
            [
                ("users uploaded", mparticle.get("users_uploaded")),
                ("requests", mparticle.get("requests")),
                ("dead-lettered", mparticle.get("dead_lettered")),
                ("errors in output", mparticle.get("errors_in_output")),
            ],
        ),
    ]


def _outputs(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    outputs: dict[str, str] = {}
    for name, uri in _section(summary, "outputs").items():
        outputs[str(name)] = str(uri)
    fallbacks = (
        ("export partitions", _section(summary, "export").get("partitions_uri")),
        ("batch inference output", _section(summary, "batch_inference").get("output_uri")),
    )
    for name, uri in fallbacks:
        if uri and str(uri) not in outputs.values():
            outputs[name] = str(uri)
    for seg in _list(summary, "segments"):
        for uri in seg.get("csv_uris") or []:
            if str(uri) not in outputs.values():
                outputs[f"segment {seg.get('name', '')}".strip()] = str(uri)
    return list(outputs.items())


def build_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template shows (plain values; escaping is the template's job)."""
    status = str(summary.get("status") or "unknown")
    export = _section(summary, "export")
    batch = _section(summary, "batch_inference")
    mparticle = _section(summary, "mparticle")
    training = _list(summary, "training")
    segments = _list(summary, "segments")
    scores = _numbers(batch.get("scores"))

    training_rows = []
    for entry in training:
        gate = entry.get("gate") if isinstance(entry.get("gate"), Mapping) else {}
        metrics = entry.get("metrics") if isinstance(entry.get("metrics"), Mapping) else {}
        training_rows.append(
            {
                "solution": entry.get("solution", "—"),
                "recipe": entry.get("recipe", "—"),
                "arn": entry.get("solution_version_arn"),
                "accepted": gate.get("accepted"),
                "reason": gate.get("reason"),
                "gate_metric": gate.get("metric"),
                "baseline_ratio": _fmt(gate["baseline_ratio"])
                if gate.get("baseline_ratio") is not None
                else None,
                "metrics": [(str(k), _fmt(v)) for k, v in sorted(metrics.items())],
            }
        )

    segment_rows = [
        {
            "destination": seg.get("destination", "—"),
            "name": seg.get("name", "—"),
            "query": seg.get("query", "—"),
            "users": _fmt(seg.get("users")),
            "matched": _fmt(seg.get("matched")),
            "users_without_match": _fmt(seg.get("users_without_match")),
            "domain": seg.get("domain", "—"),
            "segment_id": seg.get("segment_id"),
            "segment_arn": seg.get("segment_arn"),
            "size": _fmt(seg.get("size")),
            "csv_uris": [str(uri) for uri in seg.get("csv_uris") or []],
        }
        for seg in segments
    ]

    mparticle_view = None
    if mparticle:
        rows = [
            ("users uploaded", _fmt(mparticle.get("users_uploaded"))),
            ("requests", _fmt(mparticle.get("requests"))),
            ("dead-lettered", _fmt(mparticle.get("dead_lettered"))),
            ("errors in output", _fmt(mparticle.get("errors_in_output"))),
        ]
        sample = mparticle.get("sample_profile")
        mparticle_view = {
            "rows": rows,
            "sample": json.dumps(sample, indent=2, ensure_ascii=False, default=str) if sample else None,
        }

    cards = [
        {"label": "rows exported", "value": _fmt(export.get("rows"))},
        {"label": "quarantined", "value": _fmt(export.get("quarantined"))},
        {"label": "solutions trained", "value": _fmt(len(training)) if training else "—"},
        {"label": "users scored", "value": _fmt(batch.get("users"))},
        {"label": "segments", "value": _fmt(len(segments)) if segments else "—"},
        {"label": "mParticle users", "value": _fmt(mparticle.get("users_uploaded"))},
    ]

    return {
        "project": summary.get("project") or "airflow-personalize",
        "status": status,
        "status_color": {"success": "#15803d", "failed": "#b91c1c"}.get(status, "#4b5563"),
        "started_at": summary.get("started_at") or "—",
        "finished_at": summary.get("finished_at") or "—",
        "duration": _duration(summary.get("started_at"), summary.get("finished_at")),
        # The version the running Airflow reported (demo_summary: GET /api/v2/version).
        "airflow_version": _section(summary, "airflow").get("version") or "unknown",
        "cards": cards,
        "stages": _stages(summary),
        "training": training_rows,
        "segments": segment_rows,
        "mparticle": mparticle_view,
        "plots": [
            {"title": "Solution metrics", "data_uri": plot_solution_metrics(training)},
            {"title": "Segment sizes", "data_uri": plot_segment_sizes(segments)},
            {"title": "Batch inference score distribution", "data_uri": plot_score_distribution(scores)},
        ],
        "outputs": _outputs(summary),
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def render_html(summary: Mapping[str, Any]) -> str:
    """Return the report page for ``summary`` as a string."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(TEMPLATE).render(**build_context(summary))


def render_report(summary: dict, out_path: Path) -> Path:
    """
    Write the self-contained HTML run report of ``summary`` to ``out_path`` and return the path.

    :param summary: The demo's run summary (``project``, ``started_at``, ``finished_at``, ``status``,
        ``export``, ``import``, ``training``, ``batch_inference``, ``segments``, ``mparticle``,
        ``outputs``); every key is optional and a missing section renders as "not run".
    :param out_path: Where to write the page (parent folders are created).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_html(summary or {}), encoding="utf-8")
    return out_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.run_report", description=__doc__.splitlines()[1])
    parser.add_argument("summary", type=Path, help="run summary JSON written by the demo")
    parser.add_argument("out", type=Path, help="HTML file to write")
    args = parser.parse_args(argv)
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        parser.error(f"{args.summary}: expected a JSON object")
    path = render_report(summary, args.out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
