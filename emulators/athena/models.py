"""The Athena emulator's backend: query executions run by DuckDB over the stack's S3, tables in Glue.

No HTTP and no botocore shapes here (that is :mod:`emulators.athena.responses`). Sources:

* API (https://docs.aws.amazon.com/athena/latest/APIReference/): ``StartQueryExecution`` answers a
  ``QueryExecutionId`` and runs the query asynchronously; the same ``ClientRequestToken`` gives the
  same execution ("the request … is idempotent (executes only once)"); ``QueryExecution.Status.State``
  walks ``QUEUED`` → ``RUNNING`` → ``SUCCEEDED`` | ``FAILED`` | ``CANCELLED`` (the
  ``QueryExecutionState`` enum), with ``StateChangeReason`` / ``AthenaError`` on failure;
  ``StopQueryExecution`` cancels; ``GetQueryResults`` pages rows of ``VarCharValue`` (up to 1000),
  the first row of a ``SELECT`` result being the column names; ``GetQueryResults`` before the query
  succeeded is ``InvalidRequestException``.
* Query results (https://docs.aws.amazon.com/athena/latest/ug/querying.html, "Identifying query
  output files"): DML results are ``<OutputLocation>/<QueryID>.csv`` (CSV, the column names as the
  first row) with ``<QueryID>.csv.metadata``; DDL results ``<QueryID>.txt``. A query without an
  output location (no ``ResultConfiguration.OutputLocation``) fails.
* Tables are in the AWS Glue Data Catalog (here: moto's Glue on the stack's endpoint, so
  ``glue.get_table`` shows what a DDL created); ``CREATE EXTERNAL TABLE`` with a SerDe, ``LOCATION``
  and ``TBLPROPERTIES``; partitions from ``ALTER TABLE ADD PARTITION``, ``MSCK REPAIR TABLE``
  (Hive-style ``key=value/`` folders under the location) or partition projection
  (``projection.enabled``, https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html,
  with ``storage.location.template``). Athena ignores objects whose name starts with ``_`` or ``.``
  (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html).

Assumptions (``docs/emulators.md`` lists them): only the JSON SerDes are read (``org.openx.data.
jsonserde.JsonSerDe`` and ``org.apache.hive.hcatalog.data.JsonSerDe``: one JSON object per line, gzip
by the ``.gz`` extension); a value that does not fit its declared type fails the query (as
``HIVE_BAD_DATA`` does); a projected partition is a ``<key>=<value>/`` folder that exists under the
location (Athena computes them from the projection range; the rows are the same); result CSV quotes
every value, writes NULL as an empty field, doubles as Python's shortest round-trip form; a query
stays ``RUNNING`` at least ``min_query_seconds``; a query running when the emulator stops is
``FAILED`` when it starts again. ``DataScannedInBytes`` is the bytes of the objects read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from emulators.athena.sql import (
    AddPartitions,
    AthenaSqlError,
    CreateDatabase,
    CreateTable,
    DropTable,
    Query,
    RepairTable,
    hive_to_duckdb,
    parse_statement,
    partition_values,
    referenced_tables,
    to_duckdb,
)
from emulators.errors import ServiceError
from emulators.statements import (
    Cancelled,
    CancelToken,
    Lifecycle,
    StatementRunner,
    StatementStore,
    run_statement,
)

log = logging.getLogger(__name__)

RUNNING = ("QUEUED", "RUNNING")
JSON_SERDES = ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe")
MAX_RESULTS = 1000
USER_ERROR, SYSTEM_ERROR = 2, 1  # AthenaError.ErrorCategory


class AthenaBackend:
    """
    Every query execution of one emulator, persisted in ``<state_dir>/athena.sqlite3``; results and
    the S3 object cache under ``state_dir``.

    :param s3_endpoint_url: the stack's moto server: S3 (data, results) and Glue (the catalog).
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        s3_endpoint_url: str,
        min_query_seconds: float = 0.5,
        region: str = "us-east-1",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.s3_endpoint_url = s3_endpoint_url
        self.min_query_seconds = min_query_seconds
        self.region = region
        self.results_dir = self.state_dir / "results"
        self.cache_dir = self.state_dir / "s3-cache"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.store = StatementStore(self.state_dir / "athena.sqlite3")
        self.store.fail_unfinished(
            RUNNING, status="FAILED", reason="the emulator stopped while the query ran", category=SYSTEM_ERROR
        )
        self._tokens_lock = threading.Lock()
        self.runner = StatementRunner(self._run, workers=2, name="athena")

    def close(self) -> None:
        self.runner.stop()
        self.store.close()

    # -- clients -----------------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service, endpoint_url=self.s3_endpoint_url, region_name=self.region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    # -- API ---------------------------------------------------------------------------------------
    def start_query_execution(self, params: dict[str, Any]) -> str:
        token = params.get("ClientRequestToken")
        with self._tokens_lock:
            if token:
                for doc in self.store.all():
                    if doc.get("token") == token:
                        if doc["query"] != params["QueryString"]:
                            raise ServiceError(
                                "InvalidRequestException", "ClientRequestToken was used with another query"
                            )
                        return doc["id"]
            context = params.get("QueryExecutionContext") or {}
            location = (params.get("ResultConfiguration") or {}).get("OutputLocation")
            if not location:
                raise ServiceError(
                    "InvalidRequestException",
                    "No output location provided. An output location is required either through the "
                    "Workgroup result configuration setting or as an API input.",
                )
            now = time.time()
            doc = {
                "id": str(uuid.uuid4()),
                "token": token,
                "query": params["QueryString"],
                "database": (context.get("Database") or "default").lower(),
                "catalog": context.get("Catalog") or "AwsDataCatalog",
                "workgroup": params.get("WorkGroup") or "primary",
                "output_location": location,
                "status": "QUEUED",
                "statement_type": None,
                "submitted": now,
                "completed": None,
                "reason": None,
                "category": None,
                "scanned": 0,
                "input_rows": 0,
                "output_rows": 0,
                "output_bytes": 0,
                "result_key": None,
            }
            self.store.put(doc["id"], doc)
        self.runner.submit(doc["id"])
        return doc["id"]

    def get_query_execution(self, query_id: str) -> dict[str, Any]:
        doc = self._get(query_id)
        status: dict[str, Any] = {"State": doc["status"], "SubmissionDateTime": _ts(doc["submitted"])}
        if doc["completed"]:
            status["CompletionDateTime"] = _ts(doc["completed"])
        if doc["reason"]:
            status["StateChangeReason"] = doc["reason"]
        if doc["status"] == "FAILED":
            status["AthenaError"] = {"ErrorCategory": doc["category"] or USER_ERROR, "ErrorType": 1000,
                                     "Retryable": False, "ErrorMessage": doc["reason"] or ""}  # fmt: skip
        elapsed = int(((doc["completed"] or time.time()) - doc["submitted"]) * 1000)
        out = {
            "QueryExecutionId": doc["id"],
            "Query": doc["query"],
            "ResultConfiguration": {"OutputLocation": self._result_uri(doc)},
            "QueryExecutionContext": {"Database": doc["database"], "Catalog": doc["catalog"]},
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": elapsed,
                "TotalExecutionTimeInMillis": elapsed,
                "DataScannedInBytes": doc["scanned"],
            },
            "WorkGroup": doc["workgroup"],
            "EngineVersion": {
                "SelectedEngineVersion": "AUTO",
                "EffectiveEngineVersion": "Athena engine version 3",
            },
        }
        if doc["statement_type"]:
            out["StatementType"] = doc["statement_type"]
        return out

    def stop_query_execution(self, query_id: str) -> None:
        doc = self._get(query_id)
        if doc["status"] in RUNNING:
            self.store.transition(query_id, RUNNING, status="CANCELLED", completed=time.time(),
                                  reason="Query cancelled by user")  # fmt: skip
            self.runner.cancel(query_id)

    def get_query_results(
        self, query_id: str, next_token: str | None, max_results: int | None
    ) -> dict[str, Any]:
        doc = self._get(query_id)
        if doc["status"] != "SUCCEEDED":
            raise ServiceError(
                "InvalidRequestException", f"Query has not yet finished. Current state: {doc['status']}"
            )
        limit = min(max_results or MAX_RESULTS, MAX_RESULTS)
        start = int(next_token or 0)
        rows: list[list[str | None]] = []
        total = 0
        path = self.results_dir / f"{query_id}.jsonl"
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for index, line in enumerate(fh):
                    total = index + 1
                    if start <= index < start + limit:
                        rows.append(json.loads(line))
        data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
        out: dict[str, Any] = {
            "ResultSet": {"Rows": data, "ResultSetMetadata": {"ColumnInfo": doc.get("columns") or []}},
            "UpdateCount": 0,
        }
        if start + limit < total:
            out["NextToken"] = str(start + limit)
        return out

    def get_query_runtime_statistics(self, query_id: str) -> dict[str, Any]:
        doc = self._get(query_id)
        return {"Rows": {"InputRows": doc["input_rows"], "InputBytes": doc["scanned"],
                         "OutputBytes": doc["output_bytes"], "OutputRows": doc["output_rows"]}}  # fmt: skip

    # -- helpers -----------------------------------------------------------------------------------
    def _get(self, query_id: str) -> dict[str, Any]:
        doc = self.store.get(query_id)
        if doc is None:
            raise ServiceError("InvalidRequestException", f"QueryExecution {query_id} was not found")
        return doc

    @staticmethod
    def _result_uri(doc: dict[str, Any]) -> str:
        suffix = ".txt" if doc["statement_type"] in ("DDL", "UTILITY") else ".csv"
        return doc["output_location"].rstrip("/") + "/" + doc["id"] + suffix

    # -- the work ----------------------------------------------------------------------------------
    def _run(self, query_id: str, token: CancelToken) -> None:
        run_statement(self.store, query_id, token, self._execute, self._lifecycle)

    @property
    def _lifecycle(self) -> Lifecycle:
        def failure(exc: BaseException) -> dict[str, Any]:
            if isinstance(exc, ServiceError | AthenaSqlError):
                reason = exc.message if isinstance(exc, ServiceError) else str(exc)
            else:
                log.info("athena query failed: %s", exc)
                reason = f"{type(exc).__name__}: {str(exc).strip()}"
            return {"status": "FAILED", "completed": time.time(), "reason": reason, "category": USER_ERROR}

        return Lifecycle(
            steps=("RUNNING",),
            running=RUNNING,
            succeeded=lambda: {"status": "SUCCEEDED", "completed": time.time()},
            cancelled=lambda: {
                "status": "CANCELLED",
                "completed": time.time(),
                "reason": "Query cancelled by user",
            },
            failure=failure,
            min_seconds=self.min_query_seconds,
        )

    def _execute(self, doc: dict[str, Any], token: CancelToken) -> dict[str, Any]:
        statement = parse_statement(doc["query"], doc["database"])
        statement_type = "DML" if isinstance(statement, Query) else "DDL"
        self.store.update(doc["id"], statement_type=statement_type)
        doc["statement_type"] = statement_type
        if isinstance(statement, Query):
            return self._select(doc, statement, token)
        glue = self._client("glue")
        if isinstance(statement, CreateDatabase):
            self._create_database(glue, statement.name, statement.if_not_exists)
        elif isinstance(statement, CreateTable):
            self._create_table(glue, statement)
        elif isinstance(statement, DropTable):
            self._drop_table(glue, statement)
        elif isinstance(statement, AddPartitions):
            self._add_partitions(glue, statement)
        elif isinstance(statement, RepairTable):
            self._repair(glue, statement)
        self._put_result(doc, b"")
        return {}

    # -- DDL (Glue) --------------------------------------------------------------------------------
    @staticmethod
    def _create_database(glue: Any, name: str, if_not_exists: bool) -> None:
        try:
            glue.create_database(DatabaseInput={"Name": name})
        except glue.exceptions.AlreadyExistsException:
            if not if_not_exists:
                raise AthenaSqlError(f"FAILED: Database {name} already exists") from None

    def _table(self, glue: Any, database: str, name: str) -> dict[str, Any]:
        try:
            return glue.get_table(DatabaseName=database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            raise AthenaSqlError(f"Table {database}.{name} does not exist") from None

    def _create_table(self, glue: Any, ddl: CreateTable) -> None:
        try:
            glue.get_database(Name=ddl.database)
        except glue.exceptions.EntityNotFoundException:
            raise AthenaSqlError(
                f"FAILED: SemanticException [Error 10072]: Database does not exist: {ddl.database}"
            ) from None
        table_input = {
            "Name": ddl.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", **ddl.table_properties},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in ddl.partition_keys],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in ddl.columns],
                "Location": ddl.location,
                "SerdeInfo": {"SerializationLibrary": ddl.serde or "", "Parameters": ddl.serde_properties},
            },
        }
        try:
            glue.create_table(DatabaseName=ddl.database, TableInput=table_input)
        except glue.exceptions.AlreadyExistsException:
            if not ddl.if_not_exists:
                raise AthenaSqlError(
                    f"FAILED: AlreadyExistsException: Table {ddl.database}.{ddl.name} already exists"
                ) from None

    @staticmethod
    def _drop_table(glue: Any, ddl: DropTable) -> None:
        try:
            glue.delete_table(DatabaseName=ddl.database, Name=ddl.name)
        except glue.exceptions.EntityNotFoundException:
            if not ddl.if_exists:
                raise AthenaSqlError(
                    f"FAILED: SemanticException [Error 10001]: Table not found {ddl.database}.{ddl.name}"
                ) from None

    def _add_partitions(self, glue: Any, ddl: AddPartitions) -> None:
        table = self._table(glue, ddl.database, ddl.name)
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        for values, location in ddl.partitions:
            if sorted(values) != sorted(keys):
                raise AthenaSqlError(f"partition spec {values} does not match the partition keys {keys}")
            where = (
                location
                or _folder(table["StorageDescriptor"]["Location"])
                + "/".join(f"{k}={values[k]}" for k in keys)
                + "/"
            )
            self._create_partition(
                glue, ddl.database, table, [values[k] for k in keys], where, ddl.if_not_exists
            )

    @staticmethod
    def _create_partition(glue: Any, database: str, table: dict[str, Any], values: list[str], location: str,
                          if_not_exists: bool) -> None:  # fmt: skip
        descriptor = {**table["StorageDescriptor"], "Location": location}
        try:
            glue.create_partition(DatabaseName=database, TableName=table["Name"],
                                  PartitionInput={"Values": values, "StorageDescriptor": descriptor})  # fmt: skip
        except glue.exceptions.AlreadyExistsException:
            if not if_not_exists:
                raise AthenaSqlError(
                    f"FAILED: AlreadyExistsException: Partition already exists: {values}"
                ) from None

    def _repair(self, glue: Any, ddl: RepairTable) -> None:
        table = self._table(glue, ddl.database, ddl.name)
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        for values, location in self._discover(table["StorageDescriptor"]["Location"], keys):
            self._create_partition(glue, ddl.database, table, values, location, True)

    def _discover(self, location: str, keys: list[str]) -> list[tuple[list[str], str]]:
        """Hive-style ``k1=v1/k2=v2/`` folders under ``location`` (what MSCK REPAIR TABLE adds)."""
        s3 = self._client("s3")
        found: list[tuple[list[str], str]] = [([], _folder(location))]
        for key in keys:
            deeper = []
            for values, folder in found:
                bucket, prefix = _split(folder)
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix, Delimiter="/"
                )
                for page in pages:
                    for common in page.get("CommonPrefixes", []):
                        name = common["Prefix"][len(prefix) :].rstrip("/")
                        if name.startswith(f"{key}="):
                            deeper.append(
                                ([*values, name[len(key) + 1 :]], f"s3://{bucket}/{common['Prefix']}")
                            )
            found = deeper
        return found

    # -- queries (DuckDB) --------------------------------------------------------------------------
    def _select(self, doc: dict[str, Any], statement: Query, token: CancelToken) -> dict[str, Any]:
        import duckdb

        glue, s3 = self._client("glue"), self._client("s3")
        con = duckdb.connect()
        token.on_cancel(con.interrupt)
        scanned = 0
        input_rows = 0
        try:
            for database, name in referenced_tables(statement.tree, doc["database"]):
                table = self._table(glue, database, name)
                scanned += self._register(con, s3, glue, database, table, statement)
                if token.cancelled:
                    raise Cancelled()
                input_rows += con.execute(f'SELECT count(*) FROM "{database}"."{name}"').fetchone()[0]
            cursor = con.execute(to_duckdb(statement.tree))
            columns = [{"Name": d[0], "Label": d[0], "Type": _athena_type(str(d[1])), "CatalogName": "hive",
                        "Nullable": "UNKNOWN", "CaseSensitive": False} for d in cursor.description]  # fmt: skip
            result = (self.results_dir / f"{doc['id']}.csv").open("w", encoding="utf-8", newline="")
            pages = (self.results_dir / f"{doc['id']}.jsonl").open("w", encoding="utf-8")
            with result, pages:
                names = [c["Name"] for c in columns]
                result.write(_csv_line(names))
                pages.write(json.dumps(names) + "\n")
                rows = 0
                while batch := cursor.fetchmany(10_000):
                    for row in batch:
                        values = [None if v is None else _text(v) for v in row]
                        result.write(_csv_line(values))
                        pages.write(json.dumps(values) + "\n")
                    rows += len(batch)
                    if token.cancelled:
                        raise Cancelled()
                size = result.tell()
        finally:
            con.close()
        self._upload_result(doc, self.results_dir / f"{doc['id']}.csv")
        return {"scanned": scanned, "input_rows": input_rows, "output_rows": rows, "output_bytes": size,
                "columns": columns}  # fmt: skip

    def _register(
        self, con: Any, s3: Any, glue: Any, database: str, table: dict[str, Any], statement: Query
    ) -> int:
        """A DuckDB view ``"<database>"."<table>"`` over the table's objects (downloaded once into the
        cache); returns the bytes those objects hold."""
        descriptor = table["StorageDescriptor"]
        serde = (descriptor.get("SerdeInfo") or {}).get("SerializationLibrary")
        if serde not in JSON_SERDES:
            raise AthenaSqlError(f"the emulator reads JSON SerDe tables only, {table['Name']} uses {serde!r}")
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        partitions = self._partitions(glue, database, table, keys)
        for key in keys:
            wanted = partition_values(statement.tree, key)
            if wanted is not None:
                partitions = [(v, loc) for v, loc in partitions if v[keys.index(key)] in wanted]
        columns = {c["Name"]: hive_to_duckdb(c["Type"]) for c in descriptor["Columns"]}
        serde_params = (descriptor.get("SerdeInfo") or {}).get("Parameters") or {}
        # ignore.malformed.json (OpenX JSON SerDe): a malformed line is skipped instead of failing the query
        ignore = (
            ", ignore_errors=true" if serde_params.get("ignore.malformed.json", "").lower() == "true" else ""
        )
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        selects, scanned = [], 0
        for values, location in partitions:
            files, size = self._download(s3, location)
            scanned += size
            if not files:
                continue
            extra = ", ".join(
                f"'{v.replace(chr(39), chr(39) * 2)}' AS \"{k}\"" for k, v in zip(keys, values, strict=True)
            )
            listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
            selects.append(f"SELECT *{', ' + extra if extra else ''} FROM read_json({listing}, "
                           f"format='newline_delimited', columns={columns!r}{ignore})")  # fmt: skip
        if not selects:  # no data: the view still has the table's columns
            typed = ", ".join([*(f'CAST(NULL AS {t}) AS "{n}"' for n, t in columns.items()),
                               *(f'CAST(NULL AS VARCHAR) AS "{k}"' for k in keys)])  # fmt: skip
            selects = [f"SELECT {typed} WHERE false"]
        con.execute(
            f'CREATE OR REPLACE VIEW "{database}"."{table["Name"]}" AS ' + " UNION ALL ".join(selects)
        )
        return scanned

    def _partitions(
        self, glue: Any, database: str, table: dict[str, Any], keys: list[str]
    ) -> list[tuple[list[str], str]]:
        location = table["StorageDescriptor"]["Location"]
        if not keys:
            return [([], location)]
        if (table.get("Parameters") or {}).get("projection.enabled", "").lower() == "true":
            template = table["Parameters"].get("storage.location.template")
            found = self._discover(location, keys)
            if template:
                found = [(v, _render(template, keys, v)) for v, _ in found]
            return found
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table["Name"])
        return [
            (p["Values"], p["StorageDescriptor"]["Location"]) for page in pages for p in page["Partitions"]
        ]

    def _download(self, s3: Any, location: str) -> tuple[list[str], int]:
        """The objects under ``location`` as local files (cached by ETag); names starting with ``_`` or
        ``.`` are skipped, as Athena does."""
        bucket, prefix = _split(_folder(location))
        files, size = [], 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if not name or name.startswith(("_", ".")) or item["Key"].endswith("/"):
                    continue
                digest = hashlib.sha256(f"{bucket}/{item['Key']}/{item['ETag']}".encode()).hexdigest()[:24]
                suffix = ".gz" if name.endswith(".gz") else ".json"
                path = self.cache_dir / digest[:2] / f"{digest}{suffix}"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".part")
                    with tmp.open("wb") as fh:
                        shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"], fh)
                    tmp.rename(path)
                files.append(str(path))
                size += item["Size"]
        return files, size

    def _put_result(self, doc: dict[str, Any], body: bytes) -> None:
        """A DDL statement's (empty) result file."""
        path = self.results_dir / f"{doc['id']}.csv"
        path.write_bytes(body)
        self._upload_result(doc, path)

    def _upload_result(self, doc: dict[str, Any], path: Path) -> None:
        """The result file and its metadata file at the query's output location."""
        bucket, key = _split(self._result_uri(doc))
        s3 = self._client("s3")
        s3.upload_file(str(path), bucket, key)
        s3.put_object(
            Bucket=bucket, Key=key + ".metadata", Body=b"emulator: query metadata is not modelled\n"
        )


def _csv_line(values: list[str | None]) -> str:
    """Athena's result CSV: every value in quotation marks (doubled inside), NULL an empty field."""
    return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n"


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _athena_type(duckdb_type: str) -> str:
    name = duckdb_type.upper()
    for prefix, athena in (("BIGINT", "bigint"), ("INTEGER", "integer"), ("DOUBLE", "double"), ("FLOAT", "real"),
                           ("BOOLEAN", "boolean"), ("DATE", "date"), ("TIMESTAMP", "timestamp"),
                           ("DECIMAL", "decimal"), ("SMALLINT", "smallint"), ("TINYINT", "tinyint")):  # fmt: skip
        if name.startswith(prefix):
            return athena
    if name.endswith("[]"):
        return "array"
    if name.startswith(("STRUCT", "MAP")):
        return "row" if name.startswith("STRUCT") else "map"
    return "varchar"


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise AthenaSqlError(f"not an S3 location: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _folder(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def _render(template: str, keys: list[str], values: list[str]) -> str:
    for key, value in zip(keys, values, strict=True):
        template = template.replace("${" + key + "}", value)
    return template


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
