"""mParticle Events API emulator of the embedded stack."""

from __future__ import annotations

from emulators.mparticle.responses import Faults, MParticleEmulator, create_app

__all__ = ["Faults", "MParticleEmulator", "create_app"]
