"""
Parse a DAG folder the way the dag-processor does, with parse-time I/O made to fail loudly.

Run as ``python -m tests.dags.parse_guard <dags folder>``; prints one JSON document with the
import errors, the forbidden accesses and the facts every DAG must carry. Reading a Variable, a
Connection or opening a network socket while a DAG file is parsed is recorded and raises
``ParseTimeAccessError`` inside the DAG file — it is not mocked away — so a file that does it
shows up both as a forbidden access and as an import error.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any


class ParseTimeAccessError(RuntimeError):
    """A DAG file touched a Variable, a Connection or the network while being parsed."""


FORBIDDEN: list[str] = []


def _forbid(what: str):  # type: ignore[no-untyped-def]
    def guard(*args: Any, **kwargs: Any) -> Any:
        detail = f"{what}({', '.join(repr(a) for a in args[:2] if isinstance(a, str | tuple))})"
        FORBIDDEN.append(detail)
        raise ParseTimeAccessError(f"parse-time access is forbidden: {detail}")

    return guard


def install_guards() -> None:
    import airflow.sdk.execution_time.context as ctx
    from airflow.sdk.bases.hook import BaseHook
    from airflow.sdk.definitions.connection import Connection
    from airflow.sdk.definitions.variable import Variable

    ctx._get_variable = _forbid("Variable.get")  # type: ignore[assignment]
    ctx._get_connection = _forbid("Connection.get")  # type: ignore[assignment]
    Variable.get = classmethod(_forbid("Variable.get"))  # type: ignore[method-assign,assignment]
    Connection.get = classmethod(_forbid("Connection.get"))  # type: ignore[method-assign,assignment]
    BaseHook.get_connection = classmethod(_forbid("BaseHook.get_connection"))  # type: ignore[method-assign,assignment]
    try:
        from airflow.models.connection import Connection as ModelConnection
        from airflow.models.variable import Variable as ModelVariable

        ModelVariable.get = classmethod(_forbid("Variable.get"))  # type: ignore[method-assign,assignment]
        ModelConnection.get_connection_from_secrets = classmethod(  # type: ignore[method-assign,assignment]
            _forbid("Connection.get_connection_from_secrets")
        )
    except ImportError:  # pragma: no cover
        pass
    socket.socket.connect = _forbid("socket.connect")  # type: ignore[method-assign]
    socket.create_connection = _forbid("socket.create_connection")  # type: ignore[assignment]
    socket.getaddrinfo = _forbid("socket.getaddrinfo")  # type: ignore[assignment]


def parse(dags_folder: Path) -> dict[str, Any]:
    try:  # Airflow >= 3.2
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    install_guards()
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dags_folder), safe_mode=False)
    elapsed = time.perf_counter() - started
    dags = {}
    for dag_id, dag in bag.dags.items():
        default_args = dag.default_args or {}
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags or []),
            "doc_md": bool((dag.doc_md or "").strip()),
            "owner": default_args.get("owner"),
            "retries": default_args.get("retries"),
            "task_retries": sorted({t.retries for t in dag.tasks}),
            "task_owners": sorted({t.owner for t in dag.tasks}),
            "tasks": len(dag.tasks),
        }
    return {
        "import_errors": {str(k): v for k, v in bag.import_errors.items()},
        "forbidden": FORBIDDEN,
        "dags": dags,
        "files": sorted(str(p) for p in dags_folder.rglob("*.py")),
        "parse_seconds": elapsed,
    }


if __name__ == "__main__":
    print(json.dumps(parse(Path(sys.argv[1]))))
