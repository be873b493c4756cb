from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emulators.personalize.filters import FilterExpressionError, compile_filter
from emulators.personalize.recommender import Model, recipe_family, train
from personalize_logic.facts import recipes
from tests.unit.recommender.conftest import RECIPE

METRIC_KEYS = {
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
}
ALL_RECIPES = [
    "aws-user-personalization",
    "aws-user-personalization-v2",
    "aws-popularity-count",
    "aws-sims",
    "aws-similar-items",
    "aws-personalized-ranking",
    "aws-personalized-ranking-v2",
    "aws-item-affinity",
    "aws-item-attribute-affinity",
]


def cluster_of(item_or_user: str, n_clusters: int = 4) -> int:
    return int(item_or_user[1:]) % n_clusters


@pytest.fixture(scope="module")
def cluster_models(clusters) -> dict[str, tuple[Model, dict[str, float]]]:
    interactions, items = clusters
    return {
        name: train(RECIPE + name, interactions, items, seed=3)
        for name in (
            "aws-user-personalization",
            "aws-popularity-count",
            "aws-sims",
            "aws-item-attribute-affinity",
        )
    }


def test_recipe_family() -> None:
    assert recipe_family(RECIPE + "aws-user-personalization-v2") == "USER_PERSONALIZATION"
    assert recipe_family(RECIPE + "aws-similar-items") == "RELATED_ITEMS"
    assert recipe_family("aws-item-affinity") == "ITEM_AFFINITY"
    with pytest.raises(ValueError, match="aws-trending-now"):
        recipe_family(RECIPE + "aws-trending-now")


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_every_recipe_trains_on_bingewatch(bingewatch, recipe: str, tmp_path: Path) -> None:
    model, metrics = train(
        RECIPE + recipe, bingewatch["interactions"], bingewatch["items"], bingewatch["users"]
    )
    assert model.recipe_family == recipe_family(RECIPE + recipe)
    row = recipes.recipe(RECIPE + recipe)
    if row.recipe_type == recipes.USER_SEGMENTATION:
        # AWS reports hit and recall at K (top 1 % of users) for USER_SEGMENTATION versions
        assert set(metrics) == {"hit", "recall"} == set(row.metrics)
        assert metrics["hit"] >= 0
        assert 0.0 <= metrics["recall"] <= 1.0
    else:
        assert set(metrics) == METRIC_KEYS == set(row.metrics)
        assert all(0.0 <= v <= 1.0 and round(v, 4) == v for v in metrics.values())
        assert metrics["coverage"] > 0

    items, scores = model.recommend("1", 10)
    assert len(items) == 10 == len(set(items)) == len(scores)
    assert scores == sorted(scores, reverse=True)
    assert set(items) <= set(bingewatch["items"]["ITEM_ID"])

    related, _ = model.similar_items("11", 5)
    assert len(related) == 5
    assert "11" not in related

    ranked, rank_scores = model.rank("1", ["11", "14", "72", "86"])
    assert sorted(ranked) == ["11", "14", "72", "86"]
    assert sum(rank_scores) == pytest.approx(1.0, abs=1e-5)

    users = model.users_for_item("11", 7)
    assert len(users) == 7 == len(set(users))
    assert len(model.users_for_item_attributes('ITEMS.genres = "Action"', 5)) == 5

    model.save(tmp_path / "m")
    loaded = Model.load(tmp_path / "m")
    assert loaded.recommend("1", 10) == (items, scores)
    assert loaded.similar_items("11", 5)[0] == related
    assert loaded.users_for_item("11", 7) == users


def test_user_personalization_scores_look_like_personalize(bingewatch) -> None:
    model, _ = train(RECIPE + "aws-user-personalization", bingewatch["interactions"], bingewatch["items"])
    _, scores = model.recommend("1", 25)
    assert 0 < sum(scores) < 1  # probabilities over the catalog, like the documented examples
    cold_items, _ = model.recommend("no-such-user", 5)
    counts = bingewatch["interactions"]["ITEM_ID"].value_counts()
    assert cold_items[0] in set(counts[counts == counts.max()].index)


def test_als_recommends_in_cluster_far_above_chance(cluster_models) -> None:
    model, metrics = cluster_models["aws-user-personalization"]
    pop_metrics = cluster_models["aws-popularity-count"][1]
    in_cluster = []
    for u in range(0, 400, 7):
        items, _ = model.recommend(f"u{u}", 10)
        in_cluster += [cluster_of(i) == cluster_of(f"u{u}") for i in items]
    assert np.mean(in_cluster) > 0.9  # chance is 0.25
    assert (
        metrics["normalized_discounted_cumulative_gain_at_10"]
        > 1.5 * pop_metrics["normalized_discounted_cumulative_gain_at_10"]
    )


def test_related_items_and_ranking_follow_clusters(cluster_models, clusters) -> None:
    sims, _ = cluster_models["aws-sims"]
    related, scores = sims.similar_items("i5", 10)
    assert all(cluster_of(i) == cluster_of("i5") for i in related)
    assert all(s > 0 for s in scores)
    unknown, _ = sims.similar_items("no-such-item", 3)
    assert len(unknown) == 3

    als, _ = cluster_models["aws-user-personalization"]
    interactions, _ = clusters
    seen = sorted(set(interactions.loc[interactions["USER_ID"] == "u1", "ITEM_ID"]))[:3]  # cluster 1
    ranked, scores = als.rank("u1", ["i4", "nope", "i8", *seen, "i12", "i4"])
    assert sorted(ranked[:3]) == seen  # the user's own items first, duplicates dropped
    assert ranked[-1] == "nope"
    assert len(ranked) == 7
    assert scores == sorted(scores, reverse=True)
    als_sim, _ = als.similar_items("i5", 10)
    assert np.mean([cluster_of(i) == 1 for i in als_sim]) > 0.8


def test_item_attribute_affinity_ranks_users_who_watched_the_genre(cluster_models, clusters) -> None:
    model, _ = cluster_models["aws-item-attribute-affinity"]
    users = model.users_for_item_attributes('ITEMS.GENRES = "G2"', 60)
    assert len(users) == 60
    assert all(cluster_of(u) == 2 for u in users)
    both = model.users_for_item_attributes('ITEMS.genres = "G3" AND ITEMS.genres = "Shared"', 10)
    assert all(cluster_of(u) == 3 for u in both)
    assert model.matching_items('ITEMS.genres = "G3" AND ITEMS.genres = "Shared"') == ["i3"]
    assert model.users_for_item_attributes('ITEMS.genres = "Nothing"', 10) == []
    assert len(model.users_for_item_attributes('ITEMS.RELEASE_YEAR = "1995"', 10)) == 10
    with pytest.raises(FilterExpressionError, match="not a column"):
        model.users_for_item_attributes('ITEMS.COLOR = "red"', 10)
    with pytest.raises(FilterExpressionError):
        model.users_for_item_attributes('ITEMS.GENRES IN ("G1")', 10)
    # numResults caps, and every user in the data can be returned
    assert len(model.users_for_item_attributes('ITEMS.GENRES = "G1"', 10_000)) == 400


def test_item_affinity(clusters) -> None:
    interactions, items = clusters
    model, _ = train(RECIPE + "aws-item-affinity", interactions, items, seed=1)
    users = model.users_for_item("i6", 50)  # cluster 2
    assert np.mean([cluster_of(u) == 2 for u in users]) > 0.9
    f = compile_filter('INCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("nothing")')
    assert model.users_for_item("i6", 10, user_filter=f) == []


def test_filters_through_the_model(cluster_models, clusters) -> None:
    interactions, _ = clusters
    model, _ = cluster_models["aws-user-personalization"]
    history = interactions[interactions["USER_ID"] == "u2"]
    watched = set(history.loc[history["EVENT_TYPE"] == "watch", "ITEM_ID"])
    clicked = set(history.loc[history["EVENT_TYPE"] == "click", "ITEM_ID"])

    unfiltered, _ = model.recommend("u2", 50)
    assert set(unfiltered) & (watched | clicked)  # like AWS, seen items are not excluded by default

    f = compile_filter('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("WATCH")')
    items, _ = model.recommend("u2", 30, f)
    assert not set(items) & watched
    assert set(items) & clicked

    f = compile_filter('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    items, _ = model.recommend("u2", 100, f)
    assert set(items) == watched | clicked

    f = compile_filter("EXCLUDE ItemID WHERE Items.GENRES IN ($GENRES)")
    items, _ = model.recommend("u2", 30, f, {"GENRES": '"G2","G0"'})
    assert items
    assert all(cluster_of(i) in (1, 3) for i in items)

    f = compile_filter('INCLUDE ItemID WHERE Items.GENRES IN ("G0")')
    assert all(cluster_of(i) == 0 for i in model.recommend("u2", 10, f)[0])
    assert all(cluster_of(i) == 0 for i in model.recommend("cold-user", 10, f)[0])
    assert all(cluster_of(i) == 0 for i in model.similar_items("i2", 10, f)[0])
    ranked, _ = model.rank("u2", ["i0", "i2", "i4"], f)
    assert sorted(ranked) == ["i0", "i4"]

    f = compile_filter("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES")
    assert all(cluster_of(i) == 2 for i in model.similar_items("i2", 10, f)[0])


def test_deterministic_for_a_seed(clusters, tmp_path: Path) -> None:
    interactions, items = clusters
    m1, metrics1 = train(RECIPE + "aws-user-personalization", interactions, items, seed=11)
    m2, metrics2 = train(RECIPE + "aws-user-personalization", interactions, items, seed=11)
    assert metrics1 == metrics2
    assert np.array_equal(m1.user_factors, m2.user_factors)
    assert [m1.recommend(f"u{u}", 10) for u in range(20)] == [m2.recommend(f"u{u}", 10) for u in range(20)]
    # shuffled input rows give the same model
    m3, metrics3 = train(
        RECIPE + "aws-user-personalization", interactions.sample(frac=1, random_state=5), items, seed=11
    )
    assert metrics3 == metrics1
    assert m3.recommend("u3", 10) == m1.recommend("u3", 10)


def test_training_params(bingewatch) -> None:
    inter = bingewatch["interactions"]
    model, _ = train(
        RECIPE + "aws-user-personalization",
        inter,
        params={"eventValueThreshold": 4, "hidden_dimension": "8", "iterations": "3", "bptt": "32"},
    )
    assert model.user_factors is not None
    assert model.user_factors.shape[1] == 8
    kept = pd.to_numeric(inter["EVENT_VALUE"]) >= 4
    assert model.popularity.sum() == kept.sum()
    with pytest.raises(ValueError, match="no interactions are left"):
        train(RECIPE + "aws-popularity-count", inter, params={"eventType": "purchase"})
    with pytest.raises(ValueError, match="no USER_ID"):
        train(RECIPE + "aws-popularity-count", inter.drop(columns=["USER_ID"]))
    with pytest.raises(ValueError, match="invalid hyperparameter"):
        train(RECIPE + "aws-user-personalization", inter, params={"hidden_dimension": "many"})


def test_filters_consider_the_100_most_recent_interactions_per_user_and_event_type() -> None:
    """ "Amazon Personalize considers up to 100 of the most recent interactions per user per event
    type" (Filter expressions): an item the user watched before their last 100 watches is not
    excluded by an interactions filter; one of the last 100 is."""
    rows = [("me", f"i{n:03d}", 1_600_000_000 + n, "watch") for n in range(150)]
    # other users make the items the user watched first the most popular
    rows += [(f"u{u}", f"i{n:03d}", 1_600_000_000, "watch") for u in range(30) for n in range(u % 10 + 1)]
    interactions = pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])
    model, _ = train(RECIPE + "aws-popularity-count", interactions)
    exclude = compile_filter('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    items, _ = model.recommend("me", 150, item_filter=exclude)
    assert recipes.FILTER_RECENT_INTERACTIONS_PER_EVENT_TYPE == 100
    assert set(items) == {f"i{n:03d}" for n in range(50)}  # the 50 oldest, beyond the last 100
