"""
Amazon Connect Customer Profiles facts: status sets, limits and name rules of the segment-import
flow (upload jobs, segment definitions, estimates, snapshots), and how a failed job is reported.

The hook, the waiters (``plugins/waiters/customer_profiles.json``), the sensor, the trigger, the
operators and the emulator take them from this module. Pure: no Airflow import.

**Sources**

* The botocore service model ``botocore/data/customer-profiles/2020-08-15/service-2.json`` (in the
  virtualenv as ``service-2.json.gz``), cited as ``<Shape>.<member>``:

  * ``UploadJobStatus`` (``GetUploadJobResponse.Status``): ``CREATED, IN_PROGRESS,
    PARTIALLY_SUCCEEDED, SUCCEEDED, FAILED, STOPPED``. The three sets below are the whole enum; the
    unit tests check it. ``StatusReason``: ``VALIDATION_FAILURE, INTERNAL_FAILURE``.
    ``ResultsSummary``: ``UpdatedRecords``, ``CreatedRecords``, ``FailedRecords``.
  * ``expirationDaysInteger`` (``CreateUploadJobRequest.DataExpiry``): 1-1098.
  * ``name`` (``DomainName``, ``SegmentDefinitionName``): ``^[a-zA-Z0-9_-]+$``, 1-64 characters;
    ``string1To255`` (``DisplayName``): 1-255; ``fieldName`` (the keys of ``Fields``):
    ``^[a-zA-Z0-9_.-]+$``, 1-64; ``sensitiveString1To4000`` (``Description``): 1-4000.
  * ``EstimateStatus`` (``GetSegmentEstimateResponse.Status``): ``RUNNING, SUCCEEDED, FAILED``.
  * ``SegmentSnapshotStatus`` (``GetSegmentSnapshotResponse.Status``): ``COMPLETED, IN_PROGRESS,
    FAILED``.
  * ``ProfileAttributes``: the standard profile attributes a segment dimension can test (the
    string ones are :data:`STRING_PROFILE_ATTRIBUTES`) plus ``Attributes`` (custom attributes).

* ``CreateUploadJob`` (https://docs.aws.amazon.com/connect/latest/APIReference/API_connect-customer-profiles_CreateUploadJob.html):
  ``DataExpiry`` is "the expiry duration for the profiles ingested with the job. If not provided,
  the system default of 2 weeks is used" (:data:`DEFAULT_DATA_EXPIRY_DAYS`).
* Customer Profiles data expiration
  (https://docs.aws.amazon.com/connect/latest/adminguide/customer-profiles-data-expiration.html):
  profiles imported by segment import expire after 14 days without updates unless
  ``CreateUploadJob`` sets the expiry; when two imports touch the same profile "Customer profiles
  will always respect the longest expiry time".
* Create segments from imported files
  (https://docs.aws.amazon.com/connect/latest/adminguide/customer-segments-imported-files.html):
  the CSV must be under 1 GB (:data:`MAX_UPLOAD_BYTES`), have headers and be UTF-8.
* Create and ingest customer data
  (https://docs.aws.amazon.com/connect/latest/adminguide/customer-profiles-object-type-mappings.html):
  "Customer Profiles does not support ingesting data from CSV headers that contain dot notation"
  (:data:`CSV_HEADER_PATTERN`).
* ``GetUploadJobPath`` (boto3 reference): the upload is a PUT to the pre-signed ``Url`` with the
  headers ``x-amz-server-side-encryption-customer-algorithm: AES256``,
  ``x-amz-server-side-encryption-customer-key: <ClientToken>`` and
  ``x-amz-server-side-encryption-customer-key-MD5``; S3's SSE-C rules
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html):
  the key header is the base64 of a 256-bit key, the MD5 header the base64 of the 128-bit MD5
  digest of the key (:func:`sse_c_headers`).

**Decisions / assumptions** (the sources are silent):

* ``CREATED`` and ``IN_PROGRESS`` lead to one of the four terminal values.
* ``PARTIALLY_SUCCEEDED`` is a success: the profiles written are usable; the operator reports the
  ``ResultsSummary`` counts and can be told to fail on failed records.
* ``STOPPED`` (``StopUploadJob``) is a failure: a stopped job never finishes its file.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

UPLOAD_INTERMEDIATE_STATES: tuple[str, ...] = ("CREATED", "IN_PROGRESS")
UPLOAD_SUCCESS_STATES: tuple[str, ...] = ("SUCCEEDED", "PARTIALLY_SUCCEEDED")
UPLOAD_FAILURE_STATES: tuple[str, ...] = ("FAILED", "STOPPED")
UPLOAD_STATUS_REASONS: tuple[str, ...] = ("VALIDATION_FAILURE", "INTERNAL_FAILURE")
RESULTS_SUMMARY_COUNTS: tuple[str, ...] = ("CreatedRecords", "UpdatedRecords", "FailedRecords")

ESTIMATE_INTERMEDIATE_STATES: tuple[str, ...] = ("RUNNING",)
ESTIMATE_SUCCESS_STATES: tuple[str, ...] = ("SUCCEEDED",)
ESTIMATE_FAILURE_STATES: tuple[str, ...] = ("FAILED",)

SNAPSHOT_INTERMEDIATE_STATES: tuple[str, ...] = ("IN_PROGRESS",)
SNAPSHOT_SUCCESS_STATES: tuple[str, ...] = ("COMPLETED",)
SNAPSHOT_FAILURE_STATES: tuple[str, ...] = ("FAILED",)

MIN_DATA_EXPIRY_DAYS = 1
MAX_DATA_EXPIRY_DAYS = 1098
DEFAULT_DATA_EXPIRY_DAYS = 14
"""What AWS applies when ``DataExpiry`` is left out: profiles disappear two weeks later."""

MAX_UPLOAD_BYTES = 1_000_000_000
"""The upload CSV must be under 1 GB."""

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_NAME_LENGTH = 64
"""``DomainName`` and ``SegmentDefinitionName``."""
MAX_DISPLAY_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 4000
FIELD_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
CSV_HEADER_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""A CSV column name: a field name without dots (dot notation in headers is not ingested)."""
CUSTOM_ATTRIBUTE_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
"""The custom attribute names this project writes (``Attributes.<name>``; the model allows 1-255)."""

STRING_PROFILE_ATTRIBUTES: tuple[str, ...] = (
    "AccountNumber",
    "FirstName",
    "LastName",
    "MiddleName",
    "GenderString",
    "PartyTypeString",
    "PhoneNumber",
    "BusinessName",
    "BusinessPhoneNumber",
    "HomePhoneNumber",
    "MobilePhoneNumber",
    "EmailAddress",
    "PersonalEmailAddress",
    "BusinessEmailAddress",
)
"""``ProfileAttributes`` members whose dimension is a ``ProfileDimension`` (a string test)."""

CUSTOM_ATTRIBUTES_PREFIX = "Attributes."
PROFILE_TARGET_PREFIX = "_profile."
SOURCE_PREFIX = "_source."
PROFILE_TYPES: tuple[str, ...] = ("PROFILE", "ACCOUNT_PROFILE")

SSE_C_ALGORITHM = "AES256"
SSE_C_ALGORITHM_HEADER = "x-amz-server-side-encryption-customer-algorithm"
SSE_C_KEY_HEADER = "x-amz-server-side-encryption-customer-key"
SSE_C_KEY_MD5_HEADER = "x-amz-server-side-encryption-customer-key-MD5"


def is_profile_key(value: str) -> bool:
    """Whether ``value`` names a profile attribute that can hold a user id and be segmented on:
    a standard string attribute (``AccountNumber``) or a custom one (``Attributes.<name>``)."""
    if value.startswith(CUSTOM_ATTRIBUTES_PREFIX):
        return CUSTOM_ATTRIBUTE_PATTERN.match(value.removeprefix(CUSTOM_ATTRIBUTES_PREFIX)) is not None
    return value in STRING_PROFILE_ATTRIBUTES


def sse_c_headers(client_token: str) -> dict[str, str]:
    """
    The SSE-C headers of the PUT to a ``GetUploadJobPath`` URL.

    :param client_token: ``GetUploadJobPath``'s ``ClientToken`` (the base64 of the data key).
    :raises ValueError: when the token is not base64 (the MD5 is taken over the decoded key).
    """
    try:
        key = base64.b64decode(client_token, validate=True)
    except ValueError as exc:
        raise ValueError("the upload job's ClientToken is not base64") from exc
    return {
        SSE_C_ALGORITHM_HEADER: SSE_C_ALGORITHM,
        SSE_C_KEY_HEADER: client_token,
        SSE_C_KEY_MD5_HEADER: base64.b64encode(hashlib.md5(key).digest()).decode("ascii"),
    }


def results_summary(job: dict[str, Any]) -> dict[str, int]:
    """``ResultsSummary`` of a ``GetUploadJob`` answer, every count present (0 when AWS left it out)."""
    summary = job.get("ResultsSummary") or {}
    return {name: int(summary.get(name) or 0) for name in RESULTS_SUMMARY_COUNTS}


def describe_failure(job: dict[str, Any]) -> str:
    """
    One-line summary of an upload job that did not succeed: status, reason, the record counts.

    >>> describe_failure({"Status": "FAILED", "StatusReason": "VALIDATION_FAILURE",
    ...                   "ResultsSummary": {"FailedRecords": 3}})
    "status 'FAILED', StatusReason='VALIDATION_FAILURE', CreatedRecords=0, UpdatedRecords=0, FailedRecords=3"
    """
    counts = ", ".join(f"{name}={value}" for name, value in results_summary(job).items())
    return f"status {job.get('Status')!r}, StatusReason={job.get('StatusReason')!r}, {counts}"
