"""Fixtures for the recommender tests: the Bingewatch sample and a synthetic planted-cluster dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BINGEWATCH = Path(__file__).resolve().parents[3] / "include" / "data" / "bingewatch"
RECIPE = "arn:aws:personalize:::recipe/"


@pytest.fixture(scope="session")
def bingewatch() -> dict[str, pd.DataFrame]:
    interactions = pd.read_csv(BINGEWATCH / "interactions.csv", dtype=str)
    interactions["TIMESTAMP"] = interactions["TIMESTAMP"].astype(int)
    return {
        "interactions": interactions,
        "items": pd.read_csv(BINGEWATCH / "items.csv", dtype=str),
        "users": pd.read_csv(BINGEWATCH / "users.csv", dtype=str),
    }


def planted_clusters(
    n_users: int = 400, n_items: int = 200, n_clusters: int = 4, per_user: int = 20, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users of cluster c interact only with items of cluster c (items ``i`` with ``i % n_clusters == c``).

    Items carry a GENRES column ``G<c>`` and item 0 of every cluster is also tagged ``Shared``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        c = u % n_clusters
        pool = np.arange(c, n_items, n_clusters)
        for t, i in enumerate(rng.choice(pool, size=per_user, replace=False)):
            rows.append((f"u{u}", f"i{i}", 1_600_000_000 + t, "click" if t % 2 else "watch"))
    interactions = pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])
    items = pd.DataFrame(
        {
            "ITEM_ID": [f"i{i}" for i in range(n_items)],
            "GENRES": [f"G{i % n_clusters}" + ("|Shared" if i < n_clusters else "") for i in range(n_items)],
            "RELEASE_YEAR": [str(1990 + i % 30) for i in range(n_items)],
        }
    )
    return interactions, items


@pytest.fixture(scope="session")
def clusters() -> tuple[pd.DataFrame, pd.DataFrame]:
    return planted_clusters()
