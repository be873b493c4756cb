"""Benchmark the Personalize emulator's recommender on a synthetic dataset with planted structure.

Data: ``--users`` x ``--items`` with ``--clusters`` taste clusters. Every item belongs to one
cluster and has a Zipf popularity; every user has a home cluster; each interaction comes from the
home cluster with probability ``--affinity`` (popular items more often) and otherwise from the
whole catalog by popularity. About ``--interactions`` rows in total.

Measured in one run, on the same held-out split (10 % of users, newest 10 % of their interactions,
the split :func:`emulators.personalize.recommender.train` reports metrics on):

* NDCG@10 of ``aws-user-personalization`` (implicit ALS) vs ``aws-popularity-count`` (goal >= 1.5x)
* NDCG@10 of ``aws-sims`` (item-item cosine over the user's history) vs popularity (reported)
* time of ``train()`` (evaluation model + final model) on the whole dataset: wall and CPU seconds;
  the goal (<= --max-train-cpu-seconds) is on CPU seconds so that a busy machine does not fail it

Run: ``PYTHONPATH=plugins:. .venv/bin/python benchmarks/bench_recommender.py``. Exits 1 when a goal
is missed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from emulators.personalize.recommender import train

RECIPE = "arn:aws:personalize:::recipe/"


def synthetic_interactions(
    n_users: int, n_items: int, n_interactions: int, n_clusters: int, affinity: float, seed: int
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, n_clusters, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]
    global_p = popularity / popularity.sum()
    cluster_items = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    cluster_p = [popularity[ix] / popularity[ix].sum() for ix in cluster_items]

    user_cluster = rng.integers(0, n_clusters, size=n_users)
    per_user = rng.lognormal(mean=0.0, sigma=0.6, size=n_users)
    per_user = np.maximum(2, np.round(per_user / per_user.sum() * n_interactions)).astype(np.int64)
    users = np.repeat(np.arange(n_users), per_user)
    n = len(users)
    from_cluster = rng.random(n) < affinity
    items = rng.choice(n_items, size=n, p=global_p)
    for c in range(n_clusters):
        sel = from_cluster & (user_cluster[users] == c)
        items[sel] = rng.choice(cluster_items[c], size=int(sel.sum()), p=cluster_p[c])
    timestamps = 1_600_000_000 + rng.integers(0, 86_400 * 365, size=n)
    return pd.DataFrame(
        {
            "USER_ID": users.astype(str),
            "ITEM_ID": items.astype(str),
            "TIMESTAMP": timestamps,
            "EVENT_TYPE": "watch",
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=25)
    parser.add_argument("--affinity", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--goal-ratio", type=float, default=1.5)
    parser.add_argument("--max-train-cpu-seconds", type=float, default=90.0)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    data = synthetic_interactions(
        args.users, args.items, args.interactions, args.clusters, args.affinity, args.seed
    )
    print(
        f"data: {len(data):,} interactions, {args.users:,} users x {args.items:,} items, "
        f"{args.clusters} clusters, affinity {args.affinity} (generated in {time.perf_counter() - t0:.1f}s)"
    )

    results: dict[str, tuple[dict[str, float], float, float]] = {}
    for recipe in ("aws-popularity-count", "aws-user-personalization", "aws-sims"):
        t, c = time.perf_counter(), time.process_time()
        _, metrics = train(RECIPE + recipe, data, seed=args.seed)
        results[recipe] = (metrics, time.perf_counter() - t, time.process_time() - c)
        print(
            f"{recipe:26s} train() wall={results[recipe][1]:5.1f}s cpu={results[recipe][2]:5.1f}s  "
            + "  ".join(
                f"{k.replace('normalized_discounted_cumulative_gain', 'ndcg')}={v:.4f}"
                for k, v in metrics.items()
            )
        )

    key = "normalized_discounted_cumulative_gain_at_10"
    pop = results["aws-popularity-count"][0][key]
    als = results["aws-user-personalization"][0][key]
    sims = results["aws-sims"][0][key]
    ratio = als / pop if pop else float("inf")
    sims_ratio = sims / pop if pop else float("inf")
    als_seconds, als_cpu = results["aws-user-personalization"][1:]
    ok_ratio = ratio >= args.goal_ratio
    ok_time = als_cpu <= args.max_train_cpu_seconds
    print()
    print(
        f"ndcg@10 als={als:.4f} popularity={pop:.4f} ratio={ratio:.2f}x (goal >= {args.goal_ratio}x) {'OK' if ok_ratio else 'MISSED'}"
    )
    print(f"ndcg@10 sims={sims:.4f} popularity={pop:.4f} ratio={sims_ratio:.2f}x (reported, no goal)")
    print(
        f"train() user-personalization on {len(data):,} interactions: wall {als_seconds:.1f}s, cpu {als_cpu:.1f}s "
        f"(eval model + final model; goal cpu <= {args.max_train_cpu_seconds:.0f}s) {'OK' if ok_time else 'MISSED'}"
    )
    return 0 if ok_ratio and ok_time else 1


if __name__ == "__main__":
    sys.exit(main())
