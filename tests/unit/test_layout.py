"""The bucket layout: one owner for every S3 key, the keys themselves, and the table in docs/design.md."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from personalize_logic import layout as L

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"
OWNER = Path("plugins/personalize_logic/layout.py")
SCANNED = ("dags", "plugins", "scripts")

RUN_ID = "manual__2026-11-22T17:26:49.100398+00:00"


# ------------------------------------------------------------------------------------ run identity
# Expected strings were produced by the code before the layout module existed: keys in S3 must not move.
def test_attempt_key_is_per_attempt() -> None:
    assert (
        L.attempt_key("scheduled__2024-01-01T00:00:00+00:00", 1)
        == "scheduled__2024-01-01T00-00-00-00-00.try1"
    )
    assert L.attempt_key(RUN_ID) == "manual__2026-11-22T17-26-49.100398-00-00"
    assert L.attempt_key(RUN_ID, 1) != L.attempt_key(RUN_ID, 2)


def test_attempt_key_from_context_reads_run_id_and_try_number() -> None:
    context = {"run_id": RUN_ID, "ti": SimpleNamespace(try_number=3)}
    assert L.attempt_key_from_context(context) == "manual__2026-11-22T17-26-49.100398-00-00.try3"


def test_dag_run_key_is_per_run_and_is_the_template_macro() -> None:
    assert L.dag_run_key(RUN_ID) == "manual_2026-11-22T17-26-49-100398-00-00-797ab9be"
    assert (
        L.dag_run_key("scheduled__2026-09-01T00:00:00+00:00")
        == "scheduled_2026-09-01T00-00-00-00-00-edb90f60"
    )
    import jinja2

    rendered = jinja2.Template(L.DAG_RUN_KEY_TEMPLATE).render(run_id=RUN_ID, **L.dag_run_key_macros())
    assert rendered == L.dag_run_key(RUN_ID)


def test_task_run_key_is_shared_by_attempts() -> None:
    ti = SimpleNamespace(
        dag_id="p_activate_mparticle", run_id=RUN_ID, task_id="upload_recommendations", try_number=2
    )
    assert L.task_run_key_from_context({"ti": ti}) == f"p_activate_mparticle/{RUN_ID}/upload_recommendations"


# ------------------------------------------------------------------------------------- URIs and keys
def test_split_and_build_uris() -> None:
    assert L.split_s3("s3://bkt/a/b.json") == ("bkt", "a/b.json")
    assert L.split_s3("s3://bkt") == ("bkt", "")
    assert L.s3_uri("bkt", "a/b") == "s3://bkt/a/b"
    for bad in ("bkt/a", "https://bkt.s3.amazonaws.com/a", "S3://bkt/a"):
        with pytest.raises(ValueError, match="not an s3:// URI"):
            L.split_s3(bad)


def test_join_drops_empty_parts_and_doubled_slashes() -> None:
    assert L.join("s3://bkt/state/", "checkpoints", "x.json") == "s3://bkt/state/checkpoints/x.json"
    assert L.join("", "/interactions/", "dt=2024-01-01") == "interactions/dt=2024-01-01"
    assert L.folder("s3://bkt/a") == L.folder("s3://bkt/a/") == "s3://bkt/a/"


def test_pipeline_uris() -> None:
    where = L.BucketLayout("bkt", "proj")
    assert where.batch_inference_input_uri("sol", "rk") == "s3://bkt/proj/batch/sol/input/rk/users.json"
    assert where.batch_segment_input_uri("sol", "rk") == "s3://bkt/proj/batch/sol/input/rk/queries.json"
    assert where.dataset_source_uri("items") == "s3://bkt/proj/datasets/items/"
    assert where.segment_csvs_uri("rk") == "s3://bkt/proj/pinpoint/rk"
    assert L.BucketLayout("bkt").solution_state_uri("sol") == "s3://bkt/state/sol"
    assert L.batch_job_output_uri("s3://bkt/out/", "job-1") == "s3://bkt/out/job-1/"


def test_export_and_snapshot_keys() -> None:
    run = L.run_prefix("p", "interactions", "2026-09-01", "scheduled__2026-09-01T00-00-00-00-00.try1")
    assert run == "p/interactions/dt=2026-09-01/run=scheduled__2026-09-01T00-00-00-00-00.try1/"
    assert L.snapshot_file_key(
        "p", "2026-09-30-lb30-r.try1", "interactions", "2026-09-01", run + "part-00000.csv"
    ) == ("p/snapshots/2026-09-30-lb30-r.try1/interactions/2026-09-01-part-00000.csv")
    assert L.snapshot_manifest_key("p", "k", "interactions") == "p/snapshots/k/_manifest.interactions.json"
    assert L.default_snapshot_key("2026-09-30", 30, "r.try1") == "2026-09-30-lb30-r.try1"
    with pytest.raises(ValueError, match="invalid run key"):
        L.run_prefix("p", "interactions", "2026-09-01", "a/b")


def test_an_unload_target_gives_back_its_run_folder_and_attempt_key() -> None:
    run = L.run_prefix("p", "interactions", "2026-09-01", "scheduled__x.try2")
    assert L.unload_run_folder(L.unload_file_prefix(run)) == run
    assert L.run_key_of(run) == "scheduled__x.try2"
    assert L.unload_manifest_key(run) == run + "part-manifest"
    for bad in ("p/interactions/dt=2026-09-01/part-", "p/run=a/b/part-", "p/run=a/other-"):
        with pytest.raises(ValueError, match="not an UNLOAD target"):
            L.unload_run_folder(bad)
    with pytest.raises(ValueError, match="not a run folder"):
        L.run_key_of("p/interactions/dt=2026-09-01/")


def test_only_partition_pointers_are_manifest_keys() -> None:
    assert L.is_manifest_key("p/interactions/dt=2026-09-01/_manifest.json", "p", "interactions")
    assert not L.is_manifest_key(
        "p/interactions/dt=2026-09-01/run=r.try1/_manifest.json", "p", "interactions"
    )
    assert not L.is_manifest_key("p/users/dt=2026-09-01/_manifest.json", "p", "interactions")


def test_mparticle_state_keys_are_per_task_run_and_file() -> None:
    state = "s3://bkt/p/state/mparticle"
    file_uri = "s3://bkt/p/batch/sol/inference/job-1/users.json.out"
    run_key = f"p_activate_mparticle/{RUN_ID}/upload_recommendations"
    run_folder = (
        "p_activate_mparticle-manual_2026-11-22T17-26-49-100398-00-00-upload_recommendations-57d2d61fa2"
    )
    assert L.checkpoint_uri(state, run_key, file_uri) == (
        f"{state}/checkpoints/{run_folder}/users-json-out-b89d6eebc8.json"
    )
    dead = L.dead_letter_uri(state, run_key, file_uri)
    assert dead == f"{state}/dead_letter/{run_folder}/users-json-out-b89d6eebc8"
    assert L.dead_letter_part_uri(dead, 3) == f"{dead}/part-00003.jsonl"


# ------------------------------------------------------------------------------ the table in the docs
def _doc_table() -> dict[str, list[str]]:
    section = DESIGN.read_text(encoding="utf-8").split("\n## Bucket layout\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = {}
    for line in lines[2:]:  # header and separator
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, line
        rows[cells[0]] = cells[1:]
    return rows


def test_the_design_doc_table_shows_every_pattern_layout_builds_and_no_other() -> None:
    table = _doc_table()
    documented = {name: cells[0].strip("`") for name, cells in table.items()}
    assert documented == L.documented_patterns()
    assert [name for name, cells in table.items() if not all(cells)] == []  # every column filled


# Public functions of layout that build no key of their own: URI helpers, run identity, and the roots
# every documented pattern lies under.
NOT_PATTERNS = {
    "is_s3_uri", "split_s3", "s3_uri", "join", "folder", "check_ds", "is_manifest_key", "documented_patterns",
    "dataset_root_prefix",
    "unload_run_folder", "run_key_of",
    "attempt_key", "attempt_key_from_context", "dag_run_key", "dag_run_key_macros", "task_run_key",
    "task_run_key_from_context", "default_snapshot_key",
    "dataset_root_uri", "partitions_pattern", "snapshots_uri", "batch_root_uri", "state_root_uri", "segment_root_uri",
}  # fmt: skip


def test_every_key_builder_is_in_the_documented_patterns() -> None:
    called: set[str] = set()

    def profile(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "call" and frame.f_globals.get("__name__") == L.__name__:
            called.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        L.documented_patterns()
    finally:
        sys.setprofile(None)
    public = {
        name
        for name, member in [*inspect.getmembers(L, inspect.isfunction), *inspect.getmembers(L.BucketLayout)]
        if not name.startswith("_") and inspect.isfunction(member) and member.__module__ == L.__name__
    }
    assert public - NOT_PATTERNS - called == set(), "add these builders to layout.documented_patterns()"
    assert public >= NOT_PATTERNS  # no stale names


# ------------------------------------------------------------------------------- one owner, kept so
# A string literal holding one of these is a key built by hand.
SEGMENTS = (
    "s3://", "dt=", "run=", "_manifest.", "_quarantine.", "snapshots/", "checkpoints", "dead_letter/", "verdicts",
    "accepted/", "latest.json", "_errors.jsonl", "_endpoint_export", "job_config.json", "users.json", "queries.json",
)  # fmt: skip
# The demo reads the sample's local ``job_config.json``; the MWAA startup script's comment names the
# MWAA environment's own DAGs bucket, which is not part of the pipeline's layout.
ALLOWED = {
    ("scripts/demo.py", "job_config.json"),
    ("scripts/build_dist.py", "s3://"),
}


def hand_built_keys(source: str, path: str = "<source>") -> list[str]:
    """Where ``source`` builds or splits an S3 key or URI by hand (docstrings and comments excepted)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [
                f"{path}:{node.lineno}: literal with {segment!r}"
                for segment in SEGMENTS
                if segment in node.value and (path, segment) not in ALLOWED
            ]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr, args = node.func.attr, node.args
            if attr == "parse_s3_url" or (attr == "join" and ast.unparse(node.func.value) == "posixpath"):
                found.append(f"{path}:{node.lineno}: {attr}()")
            elif attr == "partition" and args and isinstance(args[0], ast.Constant) and args[0].value == "/":
                found.append(f"{path}:{node.lineno}: partition('/')")
    return found


def test_the_guard_flags_hand_built_keys() -> None:
    assert hand_built_keys('bucket, _, key = uri[5:].partition("/")')
    assert hand_built_keys('uri = f"s3://{bucket}/{key}"')
    assert hand_built_keys('key = f"{prefix}/dt={ds}/_manifest.json"')
    assert hand_built_keys("import posixpath\nx = posixpath.join(a, b)")
    assert hand_built_keys("b, k = S3Hook.parse_s3_url(uri)")
    assert not hand_built_keys(
        'def f():\n    """Reads ``s3://bucket/dt=YYYY-MM-DD/``."""\n    return layout.split_s3(uri)'
    )


def test_no_module_but_layout_builds_or_splits_s3_keys() -> None:
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO)
            if relative != OWNER:
                found += hand_built_keys(path.read_text(encoding="utf-8"), relative.as_posix())
    assert found == []
