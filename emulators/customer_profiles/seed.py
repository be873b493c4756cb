"""Seed a Customer Profiles domain with one profile per user of a users CSV (e.g.
``include/data/bingewatch/users.csv``: ``USER_ID,GENDER,E_MAIL,AGE``).

Works against the emulator and against AWS alike (``CreateDomain`` when missing, ``CreateProfile``).
Each profile holds the Personalize user id in ``profile_key`` (``Attributes.<name>`` or a standard
string attribute such as ``AccountNumber``), the e-mail address and the gender.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

DEFAULT_EXPIRATION_DAYS = 365


def ensure_domain(client: Any, domain_name: str, expiration_days: int = DEFAULT_EXPIRATION_DAYS) -> None:
    """Create the domain unless it exists."""
    try:
        client.get_domain(DomainName=domain_name)
    except client.exceptions.ResourceNotFoundException:
        client.create_domain(DomainName=domain_name, DefaultExpirationDays=expiration_days)


def seed_profiles_from_users_csv(
    client: Any,
    domain_name: str,
    csv_path: Path | str,
    *,
    profile_key: str = "Attributes.personalize_user_id",
    user_id_map: dict[str, str] | None = None,
) -> int:
    """
    Create one profile per row of ``csv_path``; return how many.

    :param client: A boto3 ``customer-profiles`` client.
    :param user_id_map: Optional ``{csv user id: Personalize user id}`` (the demo's mpids).
    """
    ensure_domain(client, domain_name)
    created = 0
    with Path(csv_path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            user = (user_id_map or {}).get(row["USER_ID"], row["USER_ID"])
            profile: dict[str, Any] = {"DomainName": domain_name}
            if profile_key.startswith("Attributes."):
                profile["Attributes"] = {profile_key.removeprefix("Attributes."): user}
            else:
                profile[profile_key] = user
            if row.get("E_MAIL"):
                profile["EmailAddress"] = row["E_MAIL"]
            if row.get("GENDER"):
                profile["GenderString"] = row["GENDER"]
            client.create_profile(**profile)
            created += 1
    return created
