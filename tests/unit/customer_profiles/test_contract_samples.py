"""The Customer Profiles samples of ``tests/contract/customer_profiles/`` (shapes AWS documents) are
valid for botocore's model, and the operators build and read exactly these shapes."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest

from emulators.aws_service import validate
from operators.customer_profiles import _estimate_size, membership_segment_groups, upload_fields
from personalize_logic.facts import customer_profiles as facts

SAMPLES = Path(__file__).resolve().parents[2] / "contract" / "customer_profiles"
MODEL = botocore.session.get_session().get_service_model("customer-profiles")


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_sample_is_valid_for_the_model(path: Path) -> None:
    operation, kind = path.name.split(".")[:2]
    op = MODEL.operation_model("".join(part.title() for part in operation.split("_")))
    shape = op.input_shape if kind == "request" else op.output_shape
    validate(json.loads(path.read_text()), shape, patterns=kind == "request")
    assert path.name in (SAMPLES / "README.md").read_text()


def test_the_upload_request_is_what_the_operator_sends() -> None:
    request = _sample("create_upload_job.request.json")
    assert request["Fields"] == upload_fields("Attributes.personalize_user_id", "ap_segment_9f86d081")
    assert request["UniqueKey"] == "user_id"


def test_the_segment_definition_is_what_the_operator_sends() -> None:
    request = _sample("create_segment_definition.request.json")
    name = request["SegmentDefinitionName"]
    assert request["SegmentGroups"] == membership_segment_groups("ap_segment_9f86d081", name)


def test_the_responses_are_read_as_documented() -> None:
    job = _sample("get_upload_job.response.json")
    assert facts.results_summary(job) == {"CreatedRecords": 0, "UpdatedRecords": 48, "FailedRecords": 2}
    assert job["Status"] in facts.UPLOAD_SUCCESS_STATES
    assert _estimate_size(_sample("get_segment_estimate.response.json")["Estimate"]) == 48
    headers = facts.sse_c_headers(_sample("get_upload_job_path.response.json")["ClientToken"])
    assert set(headers) == {facts.SSE_C_ALGORITHM_HEADER, facts.SSE_C_KEY_HEADER, facts.SSE_C_KEY_MD5_HEADER}
    assert _sample("get_segment_snapshot.response.json")["Status"] in facts.SNAPSHOT_SUCCESS_STATES
