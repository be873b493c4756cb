"""Seed Pinpoint endpoints from a CSV in the Pinpoint segment-file layout (e.g. include/data/bingewatch/endpoints.csv).

Works against the emulator and against AWS alike (it only calls ``UpdateEndpointsBatch``).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

BATCH_SIZE = 100  # UpdateEndpointsBatch accepts at most 100 endpoints per call


def endpoint_id_for(user_id: str, channel_type: str, address: str) -> str:
    """A deterministic endpoint id (re-seeding updates the same endpoints instead of adding new ones)."""
    return hashlib.sha256(f"{user_id}\x1f{channel_type}\x1f{address}".encode()).hexdigest()[:27]


def seed_endpoints_from_csv(
    client: Any,
    application_id: str,
    csv_path: Path | str,
    user_id_map: dict[str, str] | None = None,
) -> int:
    """
    Register every row of ``csv_path`` as an endpoint through ``UpdateEndpointsBatch``.

    Columns follow the Pinpoint import layout: ``Id`` (optional; derived from user, channel and
    address when missing), ``ChannelType``, ``Address``, ``User.UserId``, ``User.UserAttributes.<x>``,
    ``Attributes.<x>``, ``Metrics.<x>``.

    :param client: A boto3 ``pinpoint`` client.
    :param application_id: The Pinpoint project id.
    :param csv_path: The CSV file.
    :param user_id_map: Optional ``{csv user id: Personalize user id}`` (rows whose user is not in the
        map keep their id).
    :return: The number of endpoints written.
    """
    items: list[dict[str, Any]] = []
    written = 0
    with Path(csv_path).open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            item: dict[str, Any] = {}
            user: dict[str, Any] = {}
            for column, value in row.items():
                if value in (None, ""):
                    continue
                if column == "User.UserId":
                    user["UserId"] = (user_id_map or {}).get(value, value)
                elif column.startswith("User.UserAttributes."):
                    user.setdefault("UserAttributes", {})[column.split(".", 2)[2]] = [value]
                elif column.startswith("Attributes."):
                    item.setdefault("Attributes", {})[column.split(".", 1)[1]] = [value]
                elif column.startswith("Metrics."):
                    item.setdefault("Metrics", {})[column.split(".", 1)[1]] = float(value)
                elif column in ("Id", "ChannelType", "Address", "OptOut", "EndpointStatus"):
                    item[column] = value
                else:
                    raise ValueError(f"{csv_path}, line {number}: unsupported column {column!r}")
            if user:
                item["User"] = user
            if "ChannelType" not in item or "Address" not in item:
                raise ValueError(f"{csv_path}, line {number}: ChannelType and Address are required")
            item.setdefault(
                "Id", endpoint_id_for(str(user.get("UserId", "")), item["ChannelType"], item["Address"])
            )
            items.append(item)
            if len(items) == BATCH_SIZE:
                client.update_endpoints_batch(
                    ApplicationId=application_id, EndpointBatchRequest={"Item": items}
                )
                written += len(items)
                items = []
    if items:
        client.update_endpoints_batch(ApplicationId=application_id, EndpointBatchRequest={"Item": items})
        written += len(items)
    return written
