"""scripts/run_report.py renders a self-contained page from full, empty and hostile summaries."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scripts.run_report import main, render_report

FULL: dict[str, Any] = {
    "project": "bingewatch",
    "airflow": {"url": "http://127.0.0.1:8080", "version": "3.3.2"},
    "started_at": "2026-11-21T00:00:00+00:00",
    "finished_at": "2026-11-21T00:12:34+00:00",
    "status": "success",
    "export": {
        "intervals": 30,
        "rows": 1500,
        "quarantined": 7,
        "out_of_interval": 3,
        "late_events": 5,
        "late_events_by_interval": {"2026-09-01": 0, "2026-09-02": 5},
        "events_beyond_lateness": 2,
        "partitions_uri": "s3://demo-bucket/bw/interactions/",
    },
    "import": {
        "job_arn": "arn:aws:personalize:us-east-1:1:dataset-import-job/imp-1",
        "status": "ACTIVE",
        "rows": 1500,
        "mode": "FULL",
    },
    "training": [
        {
            "solution": "bw_aws-item-attribute-affinity",
            "recipe": "aws-item-attribute-affinity",
            "solution_version_arn": "arn:aws:personalize:us-east-1:1:solution/bw/sv-1",
            "metrics": {"hit": 1.25, "recall": 0.18},
            "gate": {
                "accepted": True,
                "reason": "hit=1.2500; first accepted version",
                "metric": "hit",
                "value": 1.25,
            },
        },
        {
            "solution": "bw_user-personalization",
            "recipe": "aws-user-personalization-v2",
            "solution_version_arn": "arn:aws:personalize:us-east-1:1:solution/bw2/sv-1",
            "metrics": {"coverage": 0.2, "normalized_discounted_cumulative_gain_at_10": 0.11},
            "gate": {
                "accepted": False,
                "reason": "ndcg below baseline",
                "metric": "normalized_discounted_cumulative_gain_at_10",
                "value": 0.11,
                "baseline_ratio": 0.55,
            },
        },
    ],
    "batch_inference": {
        "job_arn": "arn:aws:personalize:us-east-1:1:batch-inference-job/bi-1",
        "users": 100,
        "output_uri": "s3://demo-bucket/bw/batch/bi-1/",
        "scores": [0.01 * (i % 37) for i in range(500)],
    },
    "segments": [
        {
            "destination": "Customer Profiles",
            "name": "ITEMSgenresAction_20261121-000000",
            "domain": "bingewatch",
            "query": 'ITEMS.genres = "Action"',
            "users": 50,
            "matched": 48,
            "users_without_match": 2,
            "segment_id": "ITEMSgenresAction_20261121-000000",
            "segment_arn": "arn:aws:profile:us-east-1:1:domains/bingewatch/segment-definitions/ITEMSgenresAction_20261121-000000",
            "size": 48,
            "csv_uris": ["s3://demo-bucket/bw/segments/action.csv"],
        },
        {
            "destination": "Pinpoint",
            "name": "ITEMSgenresComedy_20261121-000000",
            "domain": "app-1",
            "query": 'ITEMS.genres = "Comedy"',
            "users": 40,
            "matched": 40,
            "users_without_match": 0,
            "segment_id": "seg-comedy-1",
            "size": 40,
            "csv_uris": ["s3://demo-bucket/bw/segments/comedy.csv"],
        },
    ],
    "mparticle": {
        "users_uploaded": 1234,
        "requests": 13,
        "dead_lettered": 1,
        "errors_in_output": 0,
        "sample_profile": {"mpid": "mp-42", "product_recs": ["1", "2"]},
    },
    "outputs": {"report inputs": "s3://demo-bucket/bw/report/"},
}

IMG_RE = re.compile(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _render(tmp_path: Path, summary: dict[str, Any]) -> str:
    out = render_report(summary, tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html"
    return out.read_text(encoding="utf-8")


def test_full_summary(tmp_path: Path) -> None:
    html = _render(tmp_path, copy.deepcopy(FULL))
    assert html.startswith("<!doctype html>")
    assert len(IMG_RE.findall(html)) == 3, "metrics, segment sizes and score histogram"
    for text in (
        "bingewatch",
        "success",
        "12m 34s",
        "1,500",
        "1,234",
        "ITEMSgenresAction_20261121-000000",
        "ITEMSgenresComedy_20261121-000000",
        "seg-comedy-1",
        # the Customer Profiles segment: its destination, domain, definition ARN and size
        "Customer Profiles",
        "arn:aws:profile:us-east-1:1:domains/bingewatch/segment-definitions/ITEMSgenresAction_20261121-000000",
        "<td>bingewatch</td>",
        "Batch segments → Customer Profiles, Pinpoint",
        "bw_aws-item-attribute-affinity",
        "aws-item-attribute-affinity",
        "1.25",
        "hit=1.2500; first accepted version",
        "accepted",
        "rejected",
        "ndcg below baseline",
        "s3://demo-bucket/bw/interactions/",
        "s3://demo-bucket/bw/batch/bi-1/",
        "s3://demo-bucket/bw/segments/action.csv",
        "s3://demo-bucket/bw/report/",
        "mp-42",
        "dead-lettered",
        "Apache Airflow 3.3.2",
    ):
        assert text in html, text
    # quoted values in the query are escaped, not dropped
    assert "ITEMS.genres = &#34;Action&#34;" in html
    # self-contained: no external assets
    assert not re.search(r'(?:src|href)="(?!data:)', html)
    assert "<link" not in html
    assert "<script" not in html


def test_empty_summary_renders_not_run(tmp_path: Path) -> None:
    html = _render(tmp_path, {})
    assert "not run" in html
    assert html.count("not run") >= 6
    assert not IMG_RE.findall(html)
    assert "unknown" in html
    assert "Apache Airflow unknown" in html


def test_partial_and_malformed_sections(tmp_path: Path) -> None:
    summary = {
        "status": "failed",
        "export": {"rows": 10},
        "training": [{"solution": "s", "metrics": {}}, "not a dict"],
        "batch_inference": {"scores": ["x", None, float("nan"), 0.5]},
        "segments": [{"name": "only-a-name"}],
        "mparticle": None,
        "started_at": "garbage",
    }
    html = _render(tmp_path, summary)
    assert "failed" in html
    assert "only-a-name" in html
    assert len(IMG_RE.findall(html)) == 2  # segment sizes + one finite score; no metrics


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    summary = copy.deepcopy(FULL)
    summary["project"] = "<b>proj</b>"
    summary["segments"][0]["query"] = 'ITEMS.genres = "<script>alert(1)</script>"'
    summary["segments"][0]["name"] = "<img src=x onerror=alert(2)>"
    summary["training"][0]["gate"]["reason"] = "</td><script>bad()</script>"
    summary["outputs"] = {"<i>x</i>": "s3://b/<script>"}
    html = _render(tmp_path, summary)
    assert "<script" not in html
    assert "<img src=x" not in html
    assert "<b>proj</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;proj&lt;/b&gt;" in html


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(FULL), encoding="utf-8")
    out = tmp_path / "out.html"
    assert main([str(summary_path), str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert len(IMG_RE.findall(out.read_text(encoding="utf-8"))) == 3


def test_the_gate_verdicts_name_the_metric_per_solution(tmp_path: Path) -> None:
    """Segmentation solutions are gated on hit, item solutions on NDCG: the report says which."""
    html = _render(tmp_path, copy.deepcopy(FULL))
    assert "Quality gate on <code>hit</code>" in html
    assert "Quality gate on <code>normalized_discounted_cumulative_gain_at_10</code>" in html
    assert "0.55&times; the Popularity-Count baseline" in html


def test_the_demo_summary_names_the_gate_metric_per_solution() -> None:
    from scripts.demo_summary import gate_line

    segments, recs = FULL["training"]
    assert gate_line(segments).startswith("gate on hit=1.25 — ACCEPTED: hit=1.2500")
    assert gate_line(recs).startswith(
        "gate on normalized_discounted_cumulative_gain_at_10=0.11, 0.55x the Popularity-Count baseline — REJECTED"
    )
    baseline = {"metrics": {"coverage": 0.1}, "gate": {}, "baseline": True}
    assert gate_line(baseline) == "no gate verdict (coverage=0.1) — the gate baseline"


def test_late_events_are_shown_per_interval(tmp_path: Path) -> None:
    html = render_report(FULL, tmp_path / "report.html").read_text()
    assert "late events (landed after their day, exported)" in html
    assert "2026-09-02: 5" in html
    assert "2026-09-01: 0" not in html  # intervals without late events are not listed
    assert "events beyond the lateness window" in html
