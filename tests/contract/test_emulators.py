"""
The emulators' answers against the samples AWS and mParticle document (``tests/contract/README.md``):
the same readers as ``test_parsers.py`` read the emulators' outputs, and the shapes must match.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from personalize_logic.batch_output import iter_output_records
from personalize_logic.facts import recipes
from personalize_logic.segments import EndpointIndex, iter_segment_lines
from tests.contract.test_parsers import PERSONALIZE, botocore_shape, fixture_lines, shared_mparticle
from tests.integration.mparticle.conftest import API_KEY, API_SECRET
from tests.integration.personalize_emulator.conftest import Emulator
from tests.integration.personalize_emulator.test_batch_jobs import run_batch

pytestmark = pytest.mark.integration


def _first(name: str) -> dict[str, Any]:
    return json.loads(fixture_lines(name)[0])


# ----------------------------------------------------------------------------------- Personalize
@pytest.mark.parametrize(
    ("recipe", "fixture", "line"),
    [
        ("aws-user-personalization", "batch_inference_user_personalization.out", {"userId": "1"}),
        ("aws-popularity-count", "batch_inference_popular_items.out", {"userId": "1"}),
        (
            "aws-personalized-ranking",
            "batch_inference_personalized_ranking.out",
            {"userId": "1", "itemList": ["11", "12", "13"]},
        ),
        ("aws-sims", "batch_inference_related_items.out", {"itemId": "11"}),
    ],
)
def test_batch_inference_output_has_the_documented_shape(
    emulator: Emulator, s3: Any, versions: dict[str, str], recipe: str, fixture: str, line: dict
) -> None:
    job, out, _ = run_batch(emulator, s3, versions[recipe], [line], numResults=3)
    assert job["status"] == "ACTIVE"
    documented = _first(fixture)
    produced = out[0]
    assert set(produced) - {"error"} == set(documented) - {"error"}
    assert produced.get("error") is None
    assert set(produced["input"]) == set(documented["input"])
    assert set(produced["output"]) == set(documented["output"])  # scores exactly where AWS shows them
    body = (json.dumps(produced) + "\n").encode()
    (record,) = iter_output_records([body])
    assert record.ok
    assert record.output == produced["output"]


@pytest.mark.parametrize(
    ("recipe", "fixture", "line"),
    [
        ("aws-item-affinity", "batch_segment_item_affinity.out", {"itemId": "11"}),
        (
            "aws-item-attribute-affinity",
            "batch_segment_item_attribute_affinity.out",
            {"itemAttributes": 'ITEMS.genres = "Action"'},
        ),
    ],
)
def test_batch_segment_output_reads_as_the_documented_sample(
    emulator: Emulator, s3: Any, versions: dict[str, str], recipe: str, fixture: str, line: dict
) -> None:
    """The emulator writes ``output.usersList`` / ``input.<query>`` (AWS's code reads these), the
    documentation prints ``recommendedUsers`` / a top-level ``itemAttributes``: the parser reads both
    to the same segment."""
    job, out, _ = run_batch(emulator, s3, versions[recipe], [line], segment=True, numResults=5)
    assert job["status"] == "ACTIVE"
    (produced,) = iter_segment_lines([json.dumps(out[0])])
    (documented, *_) = iter_segment_lines(fixture_lines(fixture))
    assert produced.ok
    assert documented.ok
    assert produced.query_kind == documented.query_kind
    assert produced.query == next(iter(line.values()))
    assert 0 < len(produced.users) <= 5


@pytest.mark.parametrize(
    ("recipe", "fixture"),
    [
        ("aws-user-personalization", "get_solution_metrics_user_personalization.json"),
        ("aws-popularity-count", "get_solution_metrics_user_personalization.json"),
        ("aws-item-affinity", "get_solution_metrics_user_segmentation.json"),
        ("aws-item-attribute-affinity", "get_solution_metrics_user_segmentation.json"),
    ],
)
def test_get_solution_metrics_has_the_documented_keys(
    emulator: Emulator, versions: dict[str, str], recipe: str, fixture: str
) -> None:
    documented = json.loads((PERSONALIZE / fixture).read_text())
    produced = emulator.client.get_solution_metrics(solutionVersionArn=versions[recipe])
    produced.pop("ResponseMetadata", None)
    assert set(produced) == set(documented)
    assert set(produced["metrics"]) == set(documented["metrics"]) == set(recipes.RECIPES[recipe].metrics)


# -------------------------------------------------------------------------------------- Pinpoint
def test_pinpoint_export_lines_have_the_documented_shape(stack: Any, tmp_path: Path) -> None:
    from emulators.pinpoint.seed import seed_endpoints_from_csv
    from tests.integration.pinpoint.test_emulator import ENDPOINTS_CSV, ROLE, _app, _wait

    pp = stack.pinpoint
    stack.s3.create_bucket(Bucket="contract-export")
    app_id = _app(stack)
    seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV)
    job = pp.create_export_job(
        ApplicationId=app_id, ExportJobRequest={"RoleArn": ROLE, "S3UrlPrefix": "s3://contract-export/x"}
    )
    done, _ = _wait(pp.get_export_job, app_id, job["ExportJobResponse"]["Id"], "ExportJobResponse")
    assert done["JobStatus"] == "COMPLETED"
    members = set(botocore_shape("pinpoint", "EndpointResponse")["members"])
    documented = json.loads(
        (PERSONALIZE.parent / "pinpoint" / "endpoint_export.jsonl").read_text().splitlines()[0]
    )
    files = []
    for n, obj in enumerate(stack.s3.list_objects_v2(Bucket="contract-export", Prefix="x/")["Contents"]):
        body = stack.s3.get_object(Bucket="contract-export", Key=obj["Key"])["Body"].read()
        for line in gzip.decompress(body).splitlines():
            produced = json.loads(line)
            assert set(produced) <= members
            assert {"Id", "ChannelType", "Address", "User"} <= set(produced) & set(documented)
        files.append(tmp_path / f"{n}.gz")
        files[-1].write_bytes(body)
    with EndpointIndex(files, tmp_path / "work") as index:
        assert index.size == 100


# ------------------------------------------------------------------------------------- mParticle
def test_the_mparticle_emulator_accepts_mparticles_sample_batch(mparticle: Any) -> None:
    sample = (shared_mparticle() / "sample_batch.json").read_bytes()
    response = requests.post(
        mparticle.url + "/v2/events", data=sample, auth=(API_KEY, API_SECRET), timeout=10
    )
    assert response.status_code == 202, response.text
