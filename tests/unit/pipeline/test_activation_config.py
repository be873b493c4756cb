"""pipeline.activation: the segment destination blocks, each key working or rejected naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from personalize_logic.project_config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "include" / "config" / "bingewatch.json"


def _load(tmp_path: Path, **customer_profiles: object):
    sidecar = json.loads((CONFIG.parent / "bingewatch.pipeline.json").read_text())
    block = sidecar["pipeline"]["activation"]["customerProfiles"]
    block.update(customer_profiles)
    for key in [k for k, v in block.items() if v is None]:
        del block[key]
    shutil.copy(CONFIG, tmp_path / "bingewatch.json")
    (tmp_path / "bingewatch.pipeline.json").write_text(json.dumps(sidecar))
    return load_config(tmp_path / "bingewatch.json")


def test_the_shipped_block_activates_into_customer_profiles(tmp_path):
    block = _load(tmp_path).pipeline.activation.customerProfiles
    assert (block.profileKey, block.dataExpiryDays, block.createMissingProfiles) == (
        "Attributes.personalize_user_id",
        365,
        False,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataExpiryDays": 0}, "dataExpiryDays"),
        ({"dataExpiryDays": 1099}, "dataExpiryDays"),
        ({"dataExpiryDays": None}, "dataExpiryDays: required key is missing"),
        ({"profileKey": "Address"}, "profileKey: must name a string profile attribute"),
        ({"profileKey": "Attributes.a.b"}, "profileKey"),
        ({"domainName": "not a domain"}, "domainName"),
        ({"snapshotRoleArn": None}, "snapshotRoleArn: required when createMissingProfiles is false"),
        ({"segmentAttribute": "1bad"}, "segmentAttribute"),
        ({"listId": "x"}, "listId: unknown key"),
    ],
)
def test_a_bad_key_is_rejected_naming_it(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, **change)


def test_creating_missing_profiles_needs_no_snapshot_role_and_a_templated_domain_is_left_to_aws(tmp_path):
    block = _load(
        tmp_path, createMissingProfiles=True, snapshotRoleArn=None
    ).pipeline.activation.customerProfiles
    assert block.snapshotRoleArn is None
    assert _load(tmp_path).pipeline.activation.customerProfiles.domainName.startswith("{{")


def test_pinpoint_is_off_unless_enabled(tmp_path):
    activation = _load(tmp_path).pipeline.activation
    assert activation.pinpoint is not None
    assert "pinpoint" not in activation.segment_destinations()
