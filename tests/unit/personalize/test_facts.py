"""personalize_logic.facts.personalize checked against its source, the botocore Personalize model."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import botocore.session
import jmespath
import pytest

from personalize_logic.facts import personalize as facts
from personalize_logic.facts.personalize import JOB_KINDS, RESOURCE_KINDS, PersonalizeResourceKind

REPO = Path(__file__).resolve().parents[3]
MODEL = botocore.session.get_session().get_service_model("personalize")
KINDS = sorted(RESOURCE_KINDS)
#: A status value as the model's documentation spells it ("CREATE IN_PROGRESS", "IN PROGRESS", ...).
STATUS_VALUE = re.compile(
    r"(?:(?:CREATE|DELETE) )?(?:PENDING|IN_PROGRESS|IN PROGRESS|ACTIVE|FAILED|STOPPING|STOPPED)"
)


def operation(method: str):
    return MODEL.operation_model(MODEL.operation_names[[n.lower() for n in MODEL.operation_names].index(
        method.replace("_", ""))])  # fmt: skip


def resource_shape(resource: PersonalizeResourceKind):
    return operation(resource.describe_method).output_shape.members[resource.describe_key]


def documented_statuses(shape) -> set[str]:
    return set(STATUS_VALUE.findall(re.sub(r"<[^>]+>", " ", shape.members["status"].documentation)))


def test_every_kind_is_exported_under_its_own_name():
    for kind, resource in RESOURCE_KINDS.items():
        assert resource.kind == kind
        assert getattr(facts, kind.upper()) is resource
    assert set(JOB_KINDS) <= set(RESOURCE_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_describe_facts_match_the_model(kind):
    resource = RESOURCE_KINDS[kind]
    describe = operation(resource.describe_method)
    assert list(describe.input_shape.required_members) == [resource.arn_param]
    assert resource.arn_param in resource_shape(resource).members
    assert "status" in resource_shape(resource).members


@pytest.mark.parametrize("kind", KINDS)
def test_list_facts_match_the_model(kind):
    resource = RESOURCE_KINDS[kind]
    listing = operation(resource.list_method)
    if resource.list_parent_param is not None:
        assert resource.list_parent_param in listing.input_shape.members
    summary = listing.output_shape.members[resource.list_key].member
    assert resource.arn_param in summary.members
    if resource.name_key is None:
        assert not {"name", "jobName"} & set(summary.members)
    else:
        assert resource.name_key in summary.members


@pytest.mark.parametrize("kind", KINDS)
def test_status_queries_read_the_describe_response(kind):
    resource = RESOURCE_KINDS[kind]
    body = {"status": "CREATE FAILED", "failureReason": "Bad input"}
    response = {resource.describe_key: body}
    assert jmespath.search(resource.status_query, response) == "CREATE FAILED"
    assert jmespath.search(resource.failure_reason_query, response) == "Bad input"


def test_campaign_status_follows_the_latest_update():
    update = {"status": "CREATE IN_PROGRESS", "failureReason": None}
    response = {"campaign": {"status": "ACTIVE", "latestCampaignUpdate": update}}
    assert jmespath.search(facts.CAMPAIGN.status_query, response) == "CREATE IN_PROGRESS"
    assert "status" in MODEL.shape_for("CampaignUpdateSummary").members


@pytest.mark.parametrize("kind", KINDS)
def test_status_sets_classify_every_documented_status_once(kind):
    resource = RESOURCE_KINDS[kind]
    sets = (resource.intermediate_states, resource.failure_states, resource.success_states)
    everything = [state for states in sets for state in states]
    assert len(everything) == len(set(everything)), "a status is in two sets"
    documented = documented_statuses(resource_shape(resource))
    if kind == "campaign":
        documented |= documented_statuses(MODEL.shape_for("CampaignUpdateSummary"))
    if kind == "filter":
        # The model documents no filter status: the facts module assumes the named-resource machine.
        # If this fails, AWS documented them: check the filter's sets against the new text.
        assert documented == set()
    else:
        assert documented <= set(everything), documented - set(everything)
    assert resource.success_states == ("ACTIVE",)


def test_failure_reason_members_are_as_documented():
    """The module docstring names the shapes that have ``failureReason``; Dataset and Solution lack it."""
    with_reason = {kind for kind in KINDS if "failureReason" in resource_shape(RESOURCE_KINDS[kind]).members}
    assert set(KINDS) - with_reason == {"dataset", "solution"}


# ---------------------------------------------------------------------------- ownership


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_facts_modules_are_pure():
    for path in sorted((REPO / "plugins" / "personalize_logic" / "facts").glob("*.py")):
        airflow = {
            module for module in _imports(path) if module.split(".")[0] in ("airflow", "boto3", "botocore")
        }
        assert not airflow, f"{path.name} imports {airflow}"


def test_only_sensors_import_sensors():
    """Status sets live in the facts package: no operator, hook, trigger or DAG reaches into sensors/."""
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("plugins", "dags")
        for path in sorted((REPO / folder).rglob("*.py"))
        if "sensors" not in path.relative_to(REPO).parts
        and any(module == "sensors" or module.startswith("sensors.") for module in _imports(path))
    ]
    assert offenders == []
