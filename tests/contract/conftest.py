"""The emulator fixtures the contract tests share with the integration tests (imported, not copied)."""

from __future__ import annotations

from tests.integration.mparticle.conftest import mparticle  # noqa: F401
from tests.integration.personalize_emulator.conftest import (  # noqa: F401
    bingewatch,
    emulator,
    s3,
    s3_url,
    versions,
)
from tests.integration.pinpoint.conftest import moto_url, stack  # noqa: F401
