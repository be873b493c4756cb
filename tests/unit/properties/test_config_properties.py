"""
Properties of the config loader on generated hostile config files (and sidecars).

Invariants: the only exception is ``ConfigError``, and it starts with the path of the file the
problem is in (the config or its sidecar); a config that loads reads back exactly (the values of the
file, nothing changed); ``load_configs`` gives one outcome per file and never raises.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from personalize_logic.project_config import ConfigError, load_config, load_configs
from tests.unit.properties import strategies as hs

REPO = Path(__file__).resolve().parents[3]
BASE = json.loads((REPO / "tests" / "corpus" / "config" / "good" / "good-proj.json").read_text())


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of ``node`` (the root included)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node[path[0]] = replace(node[path[0]], path[1:], value)
    return node


@st.composite
def configs(draw: st.DrawFn, base: dict[str, Any] = BASE) -> dict[str, Any]:
    """The good config with a few nodes replaced by hostile values, keys dropped or added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(data)))
        action = draw(st.sampled_from(["replace", "drop", "add", "deep"]))
        if action == "replace":
            data = replace(data, where, draw(hs.json_values(4)))
        elif action == "drop" and where and isinstance(_at(data, where[:-1]), dict):
            del _at(data, where[:-1])[where[-1]]
        elif action == "add" and isinstance(_at(data, where), dict):
            _at(data, where)[draw(hs.text())] = draw(hs.json_values(3))
        elif action == "deep":
            data = replace(data, where, _nested(draw(hs.nesting_depth())))
    return data


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(min(depth, 50)):
        value = [value]
    return value if depth <= 50 else {"deep": hs.deep(depth)}  # the text form is added by encode


def encode(data: Any, style: str, deep: int) -> bytes:
    text = json.dumps(data, ensure_ascii=style == "ascii", indent=2)
    if deep:
        text = text.replace('"' + hs.deep(deep) + '"', hs.deep(deep), 1)
    if style == "latin-1":
        return text.encode("latin-1", "replace")
    if style == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


def _deep_in(data: Any) -> int:
    text = json.dumps(data)
    start = text.find('"[[[')
    return 0 if start < 0 else len(text[start + 1 :].split("]")[0])


styles = st.sampled_from(["ascii", "raw", "raw", "latin-1", "utf-16"])
pipeline_parts = st.fixed_dictionaries(
    {}, optional={"pipeline": st.just(BASE["pipeline"]) | hs.json_values(3)}
)


@given(configs(), styles, st.one_of(st.none(), pipeline_parts, hs.json_values(2)), st.binary(max_size=30))
def test_load_config_raises_only_config_error_naming_the_file(
    tmp_path_factory: Any, data: dict[str, Any], style: str, sidecar: Any, garbage: bytes
) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "project.json"
    side = folder / "project.pipeline.json"
    raw = encode(data, style, _deep_in(data))
    if garbage and style == "raw":
        raw = raw[:10] + garbage + raw[10:]
    path.write_bytes(raw)
    if sidecar is not None:
        side.write_bytes(encode(sidecar, "raw", 0))
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith((f"{path}: ", f"{side}: ")), message
        return
    # it loaded: the values of the file as written, read back exactly (a sidecar only adds keys)
    written = json.loads(raw.decode("utf-8"))
    assert cfg.name == written["datasetGroup"]["serviceConfig"]["name"]
    pipeline = written.get("pipeline") or (sidecar or {}).get("pipeline")
    default = "{{ var.value.personalize_bucket }}"  # a bare MPE file: project_config.default_pipeline
    assert cfg.pipeline.bucket == (pipeline["bucket"] if pipeline else default)
    assert (
        cfg.datasets.interactions.schema_.serviceConfig.schema_
        == (written["datasets"]["interactions"]["schema"]["serviceConfig"]["schema"])
    )
    assert load_config(path) == cfg  # the same file, the same config


@given(st.lists(st.tuples(configs(), st.sampled_from(["good-proj", "good_proj", "other", "x"])), max_size=4))
def test_load_configs_gives_one_outcome_per_file(
    tmp_path_factory: Any, files: list[tuple[dict, str]]
) -> None:
    folder = tmp_path_factory.mktemp("configs")
    written = []
    for index, (data, name) in enumerate(files):
        if isinstance(data, dict) and isinstance(data.get("datasetGroup"), dict):
            service = data["datasetGroup"].get("serviceConfig")
            if isinstance(service, dict):
                service["name"] = name
        path = folder / f"c{index}.json"
        path.write_text(json.dumps(data))
        written.append(path)
    loaded = load_configs(written)
    assert [item.path for item in loaded] == written
    ids: dict[str, list[Path]] = {}
    for item in loaded:
        assert (item.config is None) != (item.error is None)
        if item.error is not None:
            assert str(item.error).startswith(f"{item.path}: ")
        else:
            ids.setdefault(item.config.project_id(), []).append(item.path)  # type: ignore[union-attr]
    assert all(len(same) == 1 for same in ids.values()), "two loaded configs share a project id"
