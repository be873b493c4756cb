"""
The IAM policy documents under ``include/iam`` are valid and cover what the plugins call.

The valuable check is :func:`test_execution_policy_allows_every_call_the_plugins_make`: it scans
``plugins/`` for Personalize, Pinpoint and Customer Profiles API calls (``.conn.<op>(``, ``client.<op>(``, operation
names kept as strings for ``getattr`` dispatch, and the ``operation`` of every custom waiter) and
asserts that ``airflow-execution-policy.json`` allows each one. A new call without a policy entry
fails here, not in production with an ``AccessDeniedException``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

REPO = Path(__file__).resolve().parents[2]
IAM_DIR = REPO / "include" / "iam"
PLUGINS = REPO / "plugins"
EXECUTION_POLICY = IAM_DIR / "airflow-execution-policy.json"
README = IAM_DIR / "README.md"

POLICY_FILES = sorted(IAM_DIR.glob("*.json"))

REQUIRED_FILES = {
    "airflow-execution-policy.json",
    "personalize-service-role-trust.json",
    "personalize-service-role-policy.json",
    "pinpoint-import-role-trust.json",
    "pinpoint-import-role-policy.json",
    "customer-profiles-snapshot-role-trust.json",
    "customer-profiles-snapshot-role-policy.json",
    "redshift-unload-role-policy.json",
}

# IAM service prefix -> botocore service name (for the API-call scan and the action-name check).
BOTOCORE_SERVICES = {
    "personalize": "personalize",
    "mobiletargeting": "pinpoint",
    "profile": "customer-profiles",
}
# Module stem (``hooks/pinpoint.py``, ``waiters/personalize.json``) -> IAM prefix of its client.
MODULE_SERVICE = {"personalize": "personalize", "pinpoint": "mobiletargeting", "customer_profiles": "profile"}

KNOWN_PREFIXES = {
    "personalize",
    "mobiletargeting",
    "profile",
    "s3",
    "iam",
    "sts",
    "sns",
    "redshift",
    "redshift-data",
    "redshift-serverless",
    "athena",
    "glue",
    "kms",
    "secretsmanager",
}

TRUSTED_SERVICE = {
    "personalize-service-role-trust.json": "personalize.amazonaws.com",
    "pinpoint-import-role-trust.json": "pinpoint.amazonaws.com",
    "customer-profiles-snapshot-role-trust.json": "profile.amazonaws.com",
    "redshift-unload-role-trust.json": "redshift.amazonaws.com",
}

ACTION_RE = re.compile(r"^(?P<prefix>[a-z0-9-]+):(?P<op>[A-Za-z0-9*?]+)$")
SID_RE = re.compile(r"^[A-Za-z0-9]+$")
PLACEHOLDER_RE = re.compile(r"\$\{([^}]+)\}")
CALL_RE = re.compile(r"(?:\.conn|\bclient)\s*\.\s*([a-z][a-z0-9_]*)\s*\(")
GETATTR_RE = re.compile(r"getattr\(\s*[\w.]*(?:conn|client)\s*,\s*[\"']([a-z][a-z0-9_]*)[\"']")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@cache
def _operations(iam_prefix: str) -> dict[str, str]:
    """``snake_case`` -> ``PascalCase`` of every operation of the service's botocore model."""
    model = botocore.session.get_session().get_service_model(BOTOCORE_SERVICES[iam_prefix])
    return {xform_name(name): name for name in model.operation_names}


def _is_trust(path: Path) -> bool:
    return path.name.endswith("-trust.json")


def _is_resource_policy(path: Path) -> bool:
    return path.name.endswith("-bucket-policy.json")


# ------------------------------------------------------------------------------------ the scanner


def _string_literals(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a file being written in parallel: the regexes still see its calls
        return set()
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def api_calls_in_module(source: str, stem: str) -> set[str]:
    """
    Return the IAM actions (``personalize:DescribeDataset``) a Python module of ``plugins/`` needs.

    In a module named after a service (``personalize.py``, ``pinpoint.py``) every ``.conn.<op>(``
    / ``client.<op>(`` call, ``getattr(conn, "<op>")`` and every string literal that is an operation
    name of that service counts (the hooks dispatch ``list_*`` / ``describe_*`` by name). Elsewhere
    only explicit calls count, attributed to every service whose model has the operation.
    """
    owner = MODULE_SERVICE.get(stem)
    names = set(CALL_RE.findall(source)) | set(GETATTR_RE.findall(source))
    actions: set[str] = set()
    if owner is not None:
        ops = _operations(owner)
        names |= {literal for literal in _string_literals(source) if literal in ops}
        actions |= {f"{owner}:{ops[name]}" for name in names if name in ops}
        return actions
    for prefix in BOTOCORE_SERVICES:
        ops = _operations(prefix)
        actions |= {f"{prefix}:{ops[name]}" for name in names if name in ops}
    return actions


def api_calls_in_waiters(document: dict[str, Any], stem: str) -> set[str]:
    """IAM actions the custom waiters of ``waiters/<stem>.json`` poll with."""
    prefix = MODULE_SERVICE.get(stem)
    if prefix is None:
        return set()
    return {f"{prefix}:{waiter['operation']}" for waiter in document.get("waiters", {}).values()}


def plugin_api_calls() -> dict[str, set[str]]:
    """IAM action -> the files of ``plugins/`` that need it."""
    found: dict[str, set[str]] = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        for action in api_calls_in_module(path.read_text(encoding="utf-8"), path.stem):
            found.setdefault(action, set()).add(str(path.relative_to(REPO)))
    for path in sorted((PLUGINS / "waiters").glob("*.json")):
        for action in api_calls_in_waiters(_load(path), path.stem):
            found.setdefault(action, set()).add(str(path.relative_to(REPO)))
    return found


def allowed(policy: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement matches ``action`` (IAM wildcards, case-insensitive) and no Deny does."""

    def matches(statement: dict[str, Any]) -> bool:
        patterns = _as_list(statement.get("Action", []))
        return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)

    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and matches(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) for s in statements)


# ------------------------------------------------------------------------------------ the tests


def test_required_documents_exist() -> None:
    assert {path.name for path in POLICY_FILES} >= REQUIRED_FILES
    assert README.exists()


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_document_structure(path: Path) -> None:
    document = _load(path)
    assert set(document) <= {"Version", "Id", "Statement"}, path.name
    assert document["Version"] == "2012-10-17"
    statements = document["Statement"]
    assert isinstance(statements, list)
    assert statements
    sids = [statement.get("Sid") for statement in statements]
    assert len(set(sids)) == len(sids), f"{path.name}: duplicate Sid"
    for statement in statements:
        sid = statement.get("Sid")
        assert isinstance(sid, str), f"{path.name}: statement without Sid"
        assert SID_RE.match(sid), f"{path.name}: Sid {sid!r} must be alphanumeric"
        assert statement.get("Effect") in ("Allow", "Deny"), f"{path.name}/{sid}"
        assert _as_list(statement.get("Action", [])), f"{path.name}/{sid}: no Action"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        if _is_trust(path):
            assert "Resource" not in statement, f"{path.name}/{sid}: trust policies have no Resource"
            assert set(statement["Principal"]) == {"Service"}
            assert _as_list(statement["Action"]) == ["sts:AssumeRole"]
        else:
            resources = _as_list(statement["Resource"])
            assert resources, f"{path.name}/{sid}: no Resource"
            for resource in resources:
                assert resource == "*" or resource.startswith("arn:aws:"), f"{path.name}/{sid}: {resource}"
            if _is_resource_policy(path):
                assert "Principal" in statement, f"{path.name}/{sid}: a bucket policy names a Principal"
            else:
                assert "Principal" not in statement, f"{path.name}/{sid}: identity policies have no Principal"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_actions_are_service_operations(path: Path) -> None:
    for statement in _load(path)["Statement"]:
        for action in _as_list(statement["Action"]):
            match = ACTION_RE.match(action)
            assert match, f"{path.name}/{statement['Sid']}: {action!r} is not service:Operation"
            prefix, op = match["prefix"], match["op"]
            assert prefix in KNOWN_PREFIXES, f"{path.name}: unknown service prefix in {action!r}"
            if prefix in BOTOCORE_SERVICES and "*" not in op and "?" not in op:
                # IAM action names of these services are their API operation names: catches typos.
                assert op in _operations(prefix).values(), f"{path.name}: {action!r} is no API operation"


@pytest.mark.parametrize("name", sorted(TRUSTED_SERVICE))
def test_trust_policies_trust_their_service(name: str) -> None:
    path = IAM_DIR / name
    if not path.exists():
        pytest.fail(f"{name} missing")
    services = {statement["Principal"]["Service"] for statement in _load(path)["Statement"]}
    assert services == {TRUSTED_SERVICE[name]}


def test_pass_role_is_limited_to_its_service() -> None:
    for statement in _load(EXECUTION_POLICY)["Statement"]:
        if "iam:PassRole" in _as_list(statement["Action"]):
            passed_to = statement["Condition"]["StringEquals"]["iam:PassedToService"]
            assert passed_to in {
                "personalize.amazonaws.com",
                "pinpoint.amazonaws.com",
                "profile.amazonaws.com",
            }
            for resource in _as_list(statement["Resource"]):
                assert resource.startswith("arn:aws:iam::${AccountId}:role/"), resource


def test_every_placeholder_is_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    for path in POLICY_FILES:
        for placeholder in PLACEHOLDER_RE.findall(path.read_text(encoding="utf-8")):
            if ":" in placeholder:  # an IAM policy variable such as ${aws:userid}, evaluated by AWS
                continue
            assert f"${{{placeholder}}}" in readme, f"{path.name}: ${{{placeholder}}} not in README.md"


def test_scanner_sees_calls() -> None:
    """The scan below is only worth something if it finds calls: check it on known shapes."""
    source = (
        "def f(self, hook):\n"
        "    self.hook.conn.create_batch_segment_job(jobName='x')\n"
        "    client.describe_dataset(datasetArn='a')\n"
        "    getattr(self.conn, 'list_filters')(datasetGroupArn='a')\n"
        "KINDS = ('describe_campaign', 'not_an_operation')\n"
    )
    assert api_calls_in_module(source, "personalize") == {
        "personalize:CreateBatchSegmentJob",
        "personalize:DescribeDataset",
        "personalize:ListFilters",
        "personalize:DescribeCampaign",
    }
    assert api_calls_in_module("self.hook.conn.create_import_job(ApplicationId=a)", "pinpoint") == {
        "mobiletargeting:CreateImportJob"
    }
    # outside a service module only explicit calls count
    assert api_calls_in_module("x = 'describe_campaign'\nclient.get_user_endpoints()", "activation") == {
        "mobiletargeting:GetUserEndpoints"
    }
    waiters = {"version": 2, "waiters": {"done": {"operation": "GetImportJob"}}}
    assert api_calls_in_waiters(waiters, "pinpoint") == {"mobiletargeting:GetImportJob"}
    # and the policy check says no to what the policy does not grant
    policy = _load(EXECUTION_POLICY)
    assert not allowed(policy, "personalize:DeleteDatasetGroup")
    assert allowed(policy, "personalize:CreateBatchSegmentJob")


def test_execution_policy_allows_every_call_the_plugins_make() -> None:
    policy = _load(EXECUTION_POLICY)
    calls = plugin_api_calls()
    missing = {action: sorted(files) for action, files in calls.items() if not allowed(policy, action)}
    assert not missing, (
        "include/iam/airflow-execution-policy.json does not allow these API calls made under plugins/ "
        f"(add them, and to include/iam/README.md): {json.dumps(missing, indent=2)}"
    )


def test_execution_policy_covers_the_pipeline_steps() -> None:
    """The calls the pipeline will make even where the plugin code does not exist yet."""
    policy = _load(EXECUTION_POLICY)
    for action in (
        "personalize:CreateDatasetImportJob",
        "personalize:CreateSolutionVersion",
        "personalize:GetSolutionMetrics",
        "personalize:CreateBatchInferenceJob",
        "personalize:CreateBatchSegmentJob",
        "personalize:UpdateCampaign",
        "mobiletargeting:CreateImportJob",
        "mobiletargeting:GetImportJob",
        "mobiletargeting:GetUserEndpoints",
        "iam:PassRole",
        "s3:PutObject",
        "s3:ListBucket",
        "sns:Publish",
        "redshift-data:ExecuteStatement",
        "redshift-data:CancelStatement",
        "athena:StartQueryExecution",
        "athena:StopQueryExecution",
        "athena:GetQueryRuntimeStatistics",
        "glue:CreateTable",
    ):
        assert allowed(policy, action), action
