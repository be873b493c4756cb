"""The recommender behind the Personalize emulator: real models from ``implicit`` and ``scipy``.

Recipe families and their models:

* ``USER_PERSONALIZATION`` / ``PERSONALIZED_RANKING`` / ``ITEM_AFFINITY`` /
  ``ITEM_ATTRIBUTE_AFFINITY``: ``implicit`` ALS on the user x item confidence matrix (interaction
  counts). Item scores are ``softmax(u.v / sigma)`` where ``sigma`` is the spread of the user's scores, so
  scores are small probabilities like the ones Personalize returns.
* ``POPULAR_ITEMS``: interaction counts.
* ``RELATED_ITEMS``: ``implicit`` item-item cosine neighbours, padded with popular items.

:func:`train` returns the model trained on all data plus offline metrics computed on a held-out
split (see :func:`train`). Models are saved as ``.npz`` / ``.parquet`` / ``.json`` (no pickle).

Training parameters (``params``; unknown keys are ignored):

* ``eventType``: train only on interactions of this event type (case-insensitive), like
  ``CreateSolution.eventType``.
* ``eventValueThreshold``: train only on interactions with ``EVENT_VALUE >= threshold``.
* ``factors`` (alias ``hidden_dimension``), ``regularization``, ``alpha``, ``iterations``: ALS.
* ``neighbours``: item-item neighbours kept per item (RELATED_ITEMS).
* ``num_threads``: training threads (0 = all cores).

Filters always see the whole interactions dataset (all event types), as in Personalize.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from emulators.personalize.filters import (
    CompiledFilter,
    FilterContext,
    FilterExpressionError,
    UserFilterContext,
    parse_item_attributes,
)
from emulators.personalize.metrics import segmentation_k, segmentation_metrics, solution_metrics
from personalize_logic.facts import recipes

log = logging.getLogger(__name__)

__all__ = ["FAMILIES", "Model", "recipe_family", "train"]

# The emulator's models, one per family; a recipe's family follows from its row in
# personalize_logic.facts.recipes (its type, and for USER_SEGMENTATION its batch input).
_FAMILY_BY_TYPE: dict[str, str] = {
    recipes.USER_PERSONALIZATION: "USER_PERSONALIZATION",
    recipes.POPULAR_ITEMS: "POPULAR_ITEMS",
    recipes.RELATED_ITEMS: "RELATED_ITEMS",
    recipes.PERSONALIZED_RANKING: "PERSONALIZED_RANKING",
}
FAMILIES = frozenset({*_FAMILY_BY_TYPE.values(), "ITEM_AFFINITY", "ITEM_ATTRIBUTE_AFFINITY"})
_ALS_FAMILIES = frozenset(
    {"USER_PERSONALIZATION", "PERSONALIZED_RANKING", "ITEM_AFFINITY", "ITEM_ATTRIBUTE_AFFINITY"}
)
_SEGMENT_FAMILIES = frozenset({"ITEM_AFFINITY", "ITEM_ATTRIBUTE_AFFINITY"})

DEFAULT_HYPERPARAMETERS: dict[str, float] = {
    "factors": 64,
    "regularization": 1.0,
    "alpha": 3.0,
    "iterations": 15,
    "neighbours": 100,
    "num_threads": 0,
}
MAX_FILTER_INTERACTIONS = recipes.FILTER_RECENT_INTERACTIONS_PER_EVENT_TYPE
METRICS_K = 25
FORMAT_VERSION = 1


def recipe_family(recipe_arn: str) -> str:
    """The emulator's model family of a recipe ARN (``arn:aws:personalize:::recipe/<name>``, or the name).

    Not emulated: recipes without batch jobs (Trending-Now, Next-Best-Action: the emulator serves
    batch jobs only) and recipes that do not need the Interactions dataset (Semantic-Similarity, built
    from item text: every model here trains from interactions).

    :raises ValueError: for unknown recipes and those the emulator does not model.
    """
    try:
        row = recipes.recipe(recipe_arn)
    except recipes.UnknownRecipeError as exc:
        raise ValueError(str(exc)) from None
    if row.recipe_type == recipes.USER_SEGMENTATION:
        return "ITEM_AFFINITY" if row.batch_input == ("itemId",) else "ITEM_ATTRIBUTE_AFFINITY"
    family = _FAMILY_BY_TYPE.get(row.recipe_type)
    no_batch_jobs = not (row.batch_inference or row.batch_segment)
    if family is None or no_batch_jobs or "INTERACTIONS" not in row.required_datasets:
        raise ValueError(f"the recipe {row.name} ({row.recipe_type}) is not emulated")
    return family


# --------------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------------


@dataclass
class _Data:
    user_ids: np.ndarray  # sorted str ids of every user in the interactions dataset
    item_ids: np.ndarray  # sorted str ids: interactions items union of items dataset
    # all interactions, sorted by (user, timestamp, original order)
    user: np.ndarray
    item: np.ndarray
    event: np.ndarray  # index into event_types
    ts: np.ndarray
    train_mask: np.ndarray  # rows used for training (eventType / eventValueThreshold)
    event_types: list[str]  # lower-cased
    items: pd.DataFrame | None  # aligned to item_ids
    users: pd.DataFrame | None  # aligned to user_ids


def _hyperparameters(params: dict[str, Any] | None) -> dict[str, Any]:
    hp: dict[str, Any] = dict(DEFAULT_HYPERPARAMETERS)
    params = params or {}
    if "hidden_dimension" in params:
        hp["factors"] = params["hidden_dimension"]
    for key in DEFAULT_HYPERPARAMETERS:
        if key in params:
            hp[key] = params[key]
    try:  # Personalize hyperparameter values are strings ("hidden_dimension": "100")
        for key in ("factors", "iterations", "neighbours", "num_threads"):
            hp[key] = int(float(hp[key]))
        for key in ("regularization", "alpha"):
            hp[key] = float(hp[key])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid hyperparameter value: {exc}") from None
    if hp["factors"] < 1 or hp["iterations"] < 1 or hp["neighbours"] < 1:
        raise ValueError("factors, iterations and neighbours must be at least 1")
    return hp


def _align_metadata(frame: pd.DataFrame | None, key: str, ids: np.ndarray) -> pd.DataFrame | None:
    if frame is None:
        return None
    if key not in frame.columns:
        raise ValueError(f"the {key.split('_')[0].lower()}s dataset has no {key} column")
    meta = frame.copy()
    meta[key] = meta[key].astype(str)
    meta = meta.drop_duplicates(subset=key, keep="last").set_index(key)
    return meta.reindex(pd.Index(ids, name=key)).reset_index()


def _interactions_frame(interactions: pd.DataFrame) -> pd.DataFrame:
    """USER_ID / ITEM_ID as strings, TIMESTAMP as int64 (0 when absent), EVENT_TYPE lower-cased."""
    missing = [c for c in ("USER_ID", "ITEM_ID") if c not in interactions.columns]
    if missing:
        raise ValueError(f"the interactions dataset has no {', '.join(missing)} column")
    if len(interactions) == 0:
        raise ValueError("the interactions dataset is empty")
    return pd.DataFrame(
        {
            "USER_ID": interactions["USER_ID"].astype(str).to_numpy(),
            "ITEM_ID": interactions["ITEM_ID"].astype(str).to_numpy(),
            "TIMESTAMP": (
                pd.to_numeric(interactions["TIMESTAMP"], errors="coerce").fillna(0).astype("int64").to_numpy()
                if "TIMESTAMP" in interactions.columns
                else np.zeros(len(interactions), dtype="int64")
            ),
            "EVENT_TYPE": (
                interactions["EVENT_TYPE"].astype(str).str.lower().to_numpy()
                if "EVENT_TYPE" in interactions.columns
                else np.full(len(interactions), "", dtype=object)
            ),
        }
    )


def _train_mask(frame: pd.DataFrame, interactions: pd.DataFrame, params: dict[str, Any]) -> np.ndarray:
    """The rows training uses: the solution's ``eventType`` and ``eventValueThreshold`` filters."""
    train_mask = np.ones(len(frame), dtype=bool)
    if params.get("eventType"):
        train_mask &= frame["EVENT_TYPE"].to_numpy() == str(params["eventType"]).lower()
    if params.get("eventValueThreshold") not in (None, ""):
        if "EVENT_VALUE" not in interactions.columns:
            raise ValueError(
                "eventValueThreshold is set but the interactions dataset has no EVENT_VALUE column"
            )
        values = pd.to_numeric(interactions["EVENT_VALUE"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            train_mask &= values >= float(params["eventValueThreshold"])
    if not train_mask.any():
        raise ValueError(
            "no interactions are left for training after the eventType / eventValueThreshold filter"
        )
    return train_mask


def _prepare(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    params: dict[str, Any] | None,
) -> _Data:
    frame = _interactions_frame(interactions)
    train_mask = _train_mask(frame, interactions, params or {})
    user_codes, user_uniques = pd.factorize(frame["USER_ID"], sort=True)
    user_ids = np.asarray(user_uniques, dtype=str)
    item_values = frame["ITEM_ID"]
    if items is not None and "ITEM_ID" in items.columns:
        item_values = pd.concat([item_values, items["ITEM_ID"].astype(str)], ignore_index=True)
    item_codes, item_uniques = pd.factorize(item_values, sort=True)
    item_ids = np.asarray(item_uniques, dtype=str)
    event_codes, event_uniques = pd.factorize(frame["EVENT_TYPE"], sort=True)
    event_types = [str(e) for e in event_uniques]

    user = user_codes.astype(np.int64)
    item = item_codes[: len(frame)].astype(np.int64)
    event = event_codes.astype(np.int32)
    ts = frame["TIMESTAMP"].to_numpy()
    order = np.lexsort((np.arange(len(frame)), ts, user))
    return _Data(
        user_ids=user_ids,
        item_ids=item_ids,
        user=user[order],
        item=item[order],
        event=event[order],
        ts=ts[order],
        train_mask=train_mask[order],
        event_types=event_types,
        items=_align_metadata(items, "ITEM_ID", item_ids),
        users=_align_metadata(users, "USER_ID", user_ids),
    )


def _confidence(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """User x item matrix of interaction counts (duplicates summed)."""
    data = np.ones(len(user), dtype=np.float32)
    matrix = sp.csr_matrix((data, (user, item)), shape=(n_users, n_items), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


# --------------------------------------------------------------------------------------------------
# Fitting with implicit
# --------------------------------------------------------------------------------------------------


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """implicit runs its own thread pool; BLAS must use one thread (implicit warns otherwise)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is an implicit dependency
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BLAS.*threads.*", category=RuntimeWarning)
            yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _fit_als(matrix: sp.csr_matrix, hp: dict[str, Any], seed: int) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    factors = max(2, min(hp["factors"], matrix.shape[0], matrix.shape[1]))
    with _single_threaded_blas():  # implicit checks the BLAS configuration in the constructor
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=hp["regularization"],
            alpha=hp["alpha"],
            iterations=hp["iterations"],
            num_threads=hp["num_threads"],
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    return model


def _fit_item_item(matrix: sp.csr_matrix, hp: dict[str, Any]) -> sp.csr_matrix:
    from implicit.nearest_neighbours import ItemItemRecommender, normalize

    # CosineRecommender.fit(matrix) without its CSC→COO round trip (which makes implicit warn):
    # cosine similarity is the item-item dot product of L2-normalised item columns.
    weighted = sp.csr_matrix(normalize(matrix.T.tocsr()).T)
    model = ItemItemRecommender(K=hp["neighbours"] + 1, num_threads=hp["num_threads"])
    with _single_threaded_blas():
        model.fit(weighted, show_progress=False)
    sim = sp.csr_matrix(model.similarity, dtype=np.float32)
    sim.setdiag(0)
    sim.eliminate_zeros()
    sim.sort_indices()
    return sim


def _top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores (ties: lower index first), restricted to ``allowed``."""
    if allowed is not None:
        candidates = np.flatnonzero(allowed)
        sub = scores[candidates]
    else:
        candidates = None
        sub = scores
    k = min(k, len(sub))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(sub):
        part = np.argpartition(-sub, k - 1)[:k]
        # include every tie of the k-th score so that ordering by index is deterministic
        kth = sub[part].min()
        part = np.flatnonzero(sub >= kth)
    else:
        part = np.arange(len(sub))
    order = part[np.lexsort((part, -sub[part]))][:k]
    return order if candidates is None else candidates[order]


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    if len(scores) == 0:
        return scores.astype(float)
    z = scores.astype(float) / (temperature if temperature > 0 else 1.0)
    z -= z.max()
    e = np.exp(z)
    return e / e.sum()


# --------------------------------------------------------------------------------------------------
# Evaluation (offline metrics)
# --------------------------------------------------------------------------------------------------


def _split(data: _Data, family: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (train_rows, test_users, heldout_rows) over the training rows of ``data``.

    Most recipes: 10 % of the users (those with >= 2 training interactions) are test users; their
    oldest 90 % of interactions are the model's input and the newest 10 % are held out.
    USER_SEGMENTATION recipes: every user with >= 2 interactions keeps the oldest 80 % for training
    and the newest 20 % are held out.
    """
    rows = np.flatnonzero(data.train_mask)
    user = data.user[rows]
    counts = np.bincount(user, minlength=len(data.user_ids))
    # position of each row within its user's (time-ordered) history
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(len(rows)) - starts[user]
    eligible = np.flatnonzero(counts >= 2)
    rng = np.random.default_rng(seed)
    if family in _SEGMENT_FAMILIES:
        test_users = eligible
        keep = np.maximum(1, np.floor(counts * 0.8).astype(np.int64))
    else:
        n_test = round(len(eligible) * 0.1)
        if n_test == 0 and len(eligible) >= 2:
            n_test = 1
        test_users = np.sort(rng.choice(eligible, size=n_test, replace=False)) if n_test else eligible[:0]
        keep = np.maximum(1, np.floor(counts * 0.9).astype(np.int64))
    is_test_user = np.zeros(len(data.user_ids), dtype=bool)
    is_test_user[test_users] = True
    heldout = is_test_user[user] & (pos >= keep[user])
    return rows[~heldout], test_users, rows[heldout]


def _evaluate(family: str, data: _Data, hp: dict[str, Any], seed: int) -> dict[str, float]:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    train_rows, test_users, heldout_rows = _split(data, family, seed)
    if len(test_users) == 0:
        return (
            segmentation_metrics([], [], 1)
            if family in _SEGMENT_FAMILIES
            else solution_metrics([], [], n_items)
        )
    relevant: dict[int, set[int]] = {}
    for u, i in zip(data.user[heldout_rows], data.item[heldout_rows], strict=True):
        relevant.setdefault(int(u), set()).add(int(i))

    is_test_user = np.zeros(n_users, dtype=bool)
    is_test_user[test_users] = True
    tr_user, tr_item = data.user[train_rows], data.item[train_rows]
    full = _confidence(tr_user, tr_item, n_users, n_items)
    if family in _SEGMENT_FAMILIES:
        fit_matrix = full  # the test users' oldest 80 % are training data
    else:
        model_rows = ~is_test_user[tr_user]
        fit_matrix = _confidence(tr_user[model_rows], tr_item[model_rows], n_users, n_items)
    input_matrix = full[test_users]  # the history each test user is scored from
    popularity = np.asarray(fit_matrix.sum(axis=0)).ravel()

    if family in _ALS_FAMILIES:
        als = _fit_als(fit_matrix, hp, seed)
        if family in _SEGMENT_FAMILIES:
            factors = np.asarray(als.user_factors)[test_users]
        else:
            with _single_threaded_blas():
                factors = np.asarray(als.recalculate_user(test_users, input_matrix))
        scores = factors @ np.asarray(als.item_factors).T
    elif family == "RELATED_ITEMS":
        sim = _fit_item_item(fit_matrix, hp)
        scores = (input_matrix @ sim).toarray()
        scores += 1e-9 * popularity / max(popularity.max(), 1.0)  # popularity fallback for ties/zeros
    else:  # POPULAR_ITEMS
        scores = np.tile(popularity.astype(float), (len(test_users), 1))

    if family in _SEGMENT_FAMILIES:
        return _segment_metrics(scores, test_users, input_matrix, relevant, n_users)
    warm = popularity > 0
    rec_lists: list[list[int]] = []
    rel_sets: list[set[int]] = []
    for row, u in enumerate(test_users):
        seen = input_matrix[row].indices
        rel = relevant.get(int(u), set()) - set(seen.tolist())
        if not rel:
            continue
        allowed = warm.copy()
        allowed[seen] = False
        rec_lists.append(_top_k(scores[row], METRICS_K, allowed).tolist())
        rel_sets.append(rel)
    return solution_metrics(rec_lists, rel_sets, n_items)


def _segment_metrics(
    scores: np.ndarray,
    test_users: np.ndarray,
    input_matrix: sp.csr_matrix,
    relevant: dict[int, set[int]],
    n_users: int,
) -> dict[str, float]:
    """``hit`` / ``recall`` at K over the held-out items: per item, the test users ranked by score
    (users who interacted with it in training excluded) against those who interacted with it in the
    held-out 20 % (see :func:`emulators.personalize.metrics.segmentation_metrics`)."""
    actual: dict[int, set[int]] = {}
    for row, user in enumerate(test_users):
        for item in relevant.get(int(user), ()):
            actual.setdefault(item, set()).add(row)
    k = segmentation_k(n_users)
    seen = input_matrix.tocsc()
    ranked: list[list[int]] = []
    truths: list[set[int]] = []
    for item, rows in sorted(actual.items()):
        column = scores[:, item].astype(float).copy()
        column[seen[:, item].indices] = -np.inf
        order = np.argsort(-column, kind="stable")[:k]
        ranked.append([int(r) for r in order if np.isfinite(column[r])])
        truths.append(rows)
    return segmentation_metrics(ranked, truths, k)


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """A trained solution version. Build with :func:`train` or :meth:`load`."""

    recipe_family: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    popularity: np.ndarray  # training interactions per item
    user_activity: np.ndarray  # training interactions per user
    # every interaction (all event types), sorted by user then timestamp; used by filters
    events_indptr: np.ndarray
    events_item: np.ndarray
    events_type: np.ndarray
    event_types: list[str]
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    similarity: sp.csr_matrix | None = None
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        self._item_index = {it: i for i, it in enumerate(self.item_ids.tolist())}
        self._warm = self.popularity > 0
        self._item_list = self.item_ids.tolist()
        self._user_list = self.user_ids.tolist()
        self._user_ctx: UserFilterContext | None = None
        self._item_table_ctx: FilterContext | None = None

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``model.json``, ``arrays.npz`` and optional ``similarity.npz`` / ``items.parquet`` /
        ``users.parquet`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "user_ids": self.user_ids.astype(str),
            "item_ids": self.item_ids.astype(str),
            "popularity": self.popularity,
            "user_activity": self.user_activity,
            "events_indptr": self.events_indptr,
            "events_item": self.events_item,
            "events_type": self.events_type,
        }
        if self.user_factors is not None and self.item_factors is not None:
            arrays["user_factors"] = self.user_factors
            arrays["item_factors"] = self.item_factors
        np.savez_compressed(directory / "arrays.npz", **arrays)  # type: ignore[arg-type]
        if self.similarity is not None:
            sp.save_npz(directory / "similarity.npz", self.similarity)
        for name, frame in (("items", self.items), ("users", self.users)):
            if frame is not None:
                _to_parquet_safe(frame).to_parquet(directory / f"{name}.parquet", index=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "recipe_family": self.recipe_family,
            "event_types": self.event_types,
            "info": self.info,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Model:
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {meta.get('format_version')!r} in {directory}")
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        sim_path = directory / "similarity.npz"
        items_path, users_path = directory / "items.parquet", directory / "users.parquet"
        return cls(
            recipe_family=meta["recipe_family"],
            user_ids=arrays["user_ids"],
            item_ids=arrays["item_ids"],
            popularity=arrays["popularity"],
            user_activity=arrays["user_activity"],
            events_indptr=arrays["events_indptr"],
            events_item=arrays["events_item"],
            events_type=arrays["events_type"],
            event_types=list(meta["event_types"]),
            user_factors=arrays.get("user_factors"),
            item_factors=arrays.get("item_factors"),
            similarity=sp.load_npz(sim_path).tocsr() if sim_path.exists() else None,
            items=pd.read_parquet(items_path) if items_path.exists() else None,
            users=pd.read_parquet(users_path) if users_path.exists() else None,
            info=dict(meta.get("info") or {}),
        )

    # ---- helpers --------------------------------------------------------------------------------
    @property
    def has_factors(self) -> bool:
        return self.user_factors is not None and self.item_factors is not None

    def _user_idx(self, user_id: str) -> int | None:
        idx = self._user_index.get(str(user_id))
        if idx is None or self.user_activity[idx] == 0:
            return None
        return idx

    def _user_events(self, uidx: int | None) -> dict[str, np.ndarray]:
        """Lower-cased event type → item indices of the user's most recent interactions."""
        if uidx is None:
            return {}
        start, end = int(self.events_indptr[uidx]), int(self.events_indptr[uidx + 1])
        items = self.events_item[start:end]
        types = self.events_type[start:end]
        out: dict[str, np.ndarray] = {}
        for code in np.unique(types):
            idx = items[types == code][-MAX_FILTER_INTERACTIONS:]  # rows are time-ordered
            out[self.event_types[int(code)]] = idx
        return out

    def _filter_mask(
        self,
        item_filter: CompiledFilter | None,
        filter_values: dict[str, Any] | None,
        user_id: str | None,
        current_item: int | None = None,
    ) -> np.ndarray | None:
        if item_filter is None:
            return None
        uidx = self._user_index.get(str(user_id)) if user_id is not None else None
        ctx = FilterContext(
            item_ids=self._item_list,
            items=self.items,
            user_events=self._user_events(uidx),
            current_item=current_item,
        )
        # share the parsed item columns between requests
        if self._item_table_ctx is None:
            self._item_table_ctx = FilterContext(item_ids=self._item_list, items=self.items)
        ctx._table = self._item_table_ctx.table()
        return item_filter.item_mask(ctx, filter_values)

    def _user_item_scores(self, uidx: int) -> np.ndarray:
        assert self.user_factors is not None
        assert self.item_factors is not None
        return self.item_factors @ self.user_factors[uidx]

    def _popular(
        self, num_results: int, allowed: np.ndarray | None, exclude: int | None = None
    ) -> tuple[list[str], list[float]]:
        mask = self._warm.copy() if allowed is None else (self._warm & allowed)
        if exclude is not None:
            mask[exclude] = False
        top = _top_k(self.popularity.astype(float), num_results, mask)
        total = float(self.popularity.sum()) or 1.0
        return [self._item_list[i] for i in top], [round(float(self.popularity[i]) / total, 7) for i in top]

    # ---- item recommendations -------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        num_results: int = 25,
        item_filter: CompiledFilter | None = None,
        filter_values: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[float]]:
        """Items for a user, best first, with scores.

        Like Personalize, items the user already interacted with are *not* excluded unless a filter
        says so. An unknown (cold) user, and every user of ``POPULAR_ITEMS``, gets popular items
        (score = share of all interactions). ALS scores are softmax probabilities over the eligible
        catalog, rounded to 7 decimals.
        """
        allowed = self._filter_mask(item_filter, filter_values, user_id)
        uidx = self._user_idx(user_id)
        if uidx is None or not self.has_factors:
            return self._popular(num_results, allowed)
        mask = self._warm if allowed is None else (self._warm & allowed)
        if not mask.any():
            return [], []
        scores = self._user_item_scores(uidx)
        eligible = scores[mask]
        probs_all = np.zeros(len(scores))
        probs_all[mask] = _softmax(eligible, float(eligible.std()))
        top = _top_k(scores, num_results, mask)
        return [self._item_list[i] for i in top], [round(float(probs_all[i]), 7) for i in top]

    def similar_items(
        self,
        item_id: str,
        num_results: int = 25,
        item_filter: CompiledFilter | None = None,
        filter_values: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> tuple[list[str], list[float]]:
        """Items related to ``item_id`` (never the item itself), padded with popular items.

        Item-item cosine similarity for ``RELATED_ITEMS``; cosine of ALS item factors for the ALS
        families; an unknown item gets popular items. ``user_id`` (optional, as in GetRecommendations)
        is the user whose interactions ``Interactions.EVENT_TYPE`` filters look at.
        """
        iidx = self._item_index.get(str(item_id))
        allowed = self._filter_mask(item_filter, filter_values, user_id, current_item=iidx)
        if iidx is None:
            return self._popular(num_results, allowed)
        mask = self._warm.copy() if allowed is None else (self._warm & allowed)
        mask[iidx] = False
        if self.similarity is not None:
            row = self.similarity[iidx]
            scores = np.zeros(len(self._item_list))
            scores[row.indices] = row.data
        elif self.has_factors:
            assert self.item_factors is not None
            norms = np.linalg.norm(self.item_factors, axis=1)
            norms[norms == 0] = 1.0
            scores = (self.item_factors @ self.item_factors[iidx]) / (norms * norms[iidx])
            if not self._warm[iidx]:
                scores = np.zeros(len(self._item_list))
        else:
            scores = np.zeros(len(self._item_list))
        related = mask & (scores > 0)
        top = _top_k(scores, num_results, related).tolist()
        names = [self._item_list[i] for i in top]
        values = [round(float(scores[i]), 7) for i in top]
        if len(top) < num_results:
            mask[top] = False
            pop_names, _ = self._popular(num_results - len(top), mask)
            names += pop_names
            values += [0.0] * len(pop_names)
        return names, values

    def rank(
        self,
        user_id: str,
        item_list: list[str],
        item_filter: CompiledFilter | None = None,
        filter_values: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[float]]:
        """Re-rank ``item_list`` for the user; scores are a softmax over the list (sum to 1).

        Duplicates keep their first occurrence; items unknown to the model come last in input
        order; filtered-out items are removed. A cold user gets the list ranked by popularity.
        """
        allowed = self._filter_mask(item_filter, filter_values, user_id)
        seen: set[str] = set()
        known: list[tuple[str, int]] = []
        unknown: list[str] = []
        for raw in item_list:
            it = str(raw)
            if it in seen:
                continue
            seen.add(it)
            idx = self._item_index.get(it)
            if allowed is not None and idx is not None and not allowed[idx]:
                continue
            if idx is None or not self._warm[idx]:
                if (
                    allowed is not None
                    and idx is None
                    and item_filter is not None
                    and _includes_only(item_filter)
                ):
                    continue  # an INCLUDE filter cannot vouch for an item it knows nothing about
                unknown.append(it)
            else:
                known.append((it, idx))
        uidx = self._user_idx(user_id)
        idxs = np.array([i for _, i in known], dtype=np.int64)
        if uidx is not None and self.has_factors:
            all_scores = self._user_item_scores(uidx)
            raw_scores = all_scores[idxs]
            temperature = float(all_scores[self._warm].std())
        else:
            raw_scores = np.log1p(self.popularity[idxs].astype(float))
            temperature = 1.0
        order = np.lexsort((np.arange(len(idxs)), -raw_scores)) if len(idxs) else np.empty(0, dtype=np.int64)
        names = [known[i][0] for i in order] + unknown
        n_total = len(names)
        if n_total == 0:
            return [], []
        # unknown items get the lowest score of the list (or a uniform share when nothing is known)
        floor = raw_scores.min() - 2 * (temperature or 1.0) if len(idxs) else 0.0
        logits = np.concatenate([raw_scores[order], np.full(len(unknown), floor)])
        probs = _softmax(logits, temperature)
        return names, [round(float(p), 7) for p in probs]

    # ---- user segments --------------------------------------------------------------------------
    def _user_filter_mask(
        self, user_filter: CompiledFilter | None, filter_values: dict[str, Any] | None
    ) -> np.ndarray | None:
        if user_filter is None:
            return None
        if self._user_ctx is None:
            has: dict[str, np.ndarray] = {}
            owners = np.repeat(np.arange(len(self._user_list)), np.diff(self.events_indptr))
            for code, name in enumerate(self.event_types):
                mask = np.zeros(len(self._user_list), dtype=bool)
                mask[owners[self.events_type == code]] = True
                has[name] = mask
            self._user_ctx = UserFilterContext(user_ids=self._user_list, users=self.users, user_has_event=has)
        return user_filter.user_mask(self._user_ctx, filter_values)

    def _rank_users(
        self,
        scores: np.ndarray,
        num_results: int,
        user_filter: CompiledFilter | None,
        filter_values: dict[str, Any] | None,
    ) -> list[str]:
        mask = self.user_activity > 0
        allowed = self._user_filter_mask(user_filter, filter_values)
        if allowed is not None:
            mask &= allowed
        candidates = np.flatnonzero(mask)
        if num_results <= 0 or len(candidates) == 0:
            return []
        order = np.lexsort((candidates, -self.user_activity[candidates], -scores[candidates]))
        return [self._user_list[i] for i in candidates[order[:num_results]]]

    def _user_scores_for_items(self, item_idx: np.ndarray) -> np.ndarray:
        if self.has_factors:
            assert self.user_factors is not None
            assert self.item_factors is not None
            warm = item_idx[self._warm[item_idx]]
            if len(warm) == 0:
                return np.zeros(len(self._user_list))
            return self.user_factors @ self.item_factors[warm].mean(axis=0)
        # no latent factors (POPULAR_ITEMS / RELATED_ITEMS): count interactions with the items
        hit = np.zeros(len(self._item_list), dtype=bool)
        hit[item_idx] = True
        owners = np.repeat(np.arange(len(self._user_list)), np.diff(self.events_indptr))
        return np.bincount(owners[hit[self.events_item]], minlength=len(self._user_list)).astype(float)

    def users_for_item(
        self,
        item_id: str,
        num_results: int,
        user_filter: CompiledFilter | None = None,
        filter_values: dict[str, Any] | None = None,
    ) -> list[str]:
        """Users by descending predicted affinity for ``item_id`` (Item-Affinity).

        Only users with at least one training interaction are returned. For an item without
        interactions (or unknown) every score is equal and users are ordered by activity.
        """
        iidx = self._item_index.get(str(item_id))
        if iidx is None:
            scores = np.zeros(len(self._user_list))
        else:
            scores = self._user_scores_for_items(np.array([iidx]))
        return self._rank_users(scores, num_results, user_filter, filter_values)

    def matching_items(self, expression: str) -> list[str]:
        """Item ids matching an ``itemAttributes`` query (every ``ITEMS.col = "v"`` term)."""
        return [self._item_list[i] for i in self._match_attributes(expression)]

    def _match_attributes(self, expression: str) -> np.ndarray:
        terms = parse_item_attributes(expression)
        if self.items is None:
            raise FilterExpressionError("itemAttributes needs an items dataset, and the model has none")
        ctx = FilterContext(item_ids=self._item_list, items=self.items)
        table = ctx.table()
        mask = np.ones(len(self._item_list), dtype=bool)
        for column, value in terms:
            if column.upper() == "ITEM_ID" or not table.has_column(column):
                known = ", ".join(c for c in self.items.columns if c != "ITEM_ID")
                raise FilterExpressionError(
                    f"ITEMS.{column} is not a column of the items dataset (columns: {known})"
                )
            wanted = {value}
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isnan(number) and number.is_integer():
                wanted |= {str(int(number)), repr(number)}
            tokens = table.tokens(column, "Items")
            mask &= np.fromiter((bool(t & wanted) for t in tokens), dtype=bool, count=len(tokens))
        return np.flatnonzero(mask)

    def users_for_item_attributes(
        self,
        expression: str,
        num_results: int,
        user_filter: CompiledFilter | None = None,
        filter_values: dict[str, Any] | None = None,
    ) -> list[str]:
        """Users by descending affinity for the items matching ``expression`` (Item-Attribute-Affinity).

        The affinity is the user's mean ALS score over the matching items. No matching item → ``[]``.

        :raises FilterExpressionError: bad expression or unknown column.
        """
        matched = self._match_attributes(expression)
        if len(matched) == 0:
            return []
        return self._rank_users(self._user_scores_for_items(matched), num_results, user_filter, filter_values)


def _includes_only(item_filter: CompiledFilter) -> bool:
    return any(e.action == "INCLUDE" for e in item_filter.expressions)


def _to_parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(
                lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            )
    return out


# --------------------------------------------------------------------------------------------------
# Public training entry point
# --------------------------------------------------------------------------------------------------


def _fit_model(
    family: str, recipe_arn: str, data: _Data, hp: dict[str, Any], seed: int, params: dict[str, Any]
) -> Model:
    n_users, n_items = len(data.user_ids), len(data.item_ids)
    rows = data.train_mask
    matrix = _confidence(data.user[rows], data.item[rows], n_users, n_items)
    popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
    activity = np.bincount(data.user[rows], minlength=n_users).astype(np.int64)
    user_factors = item_factors = None
    similarity = None
    if family in _ALS_FAMILIES:
        als = _fit_als(matrix, hp, seed)
        user_factors = np.ascontiguousarray(als.user_factors, dtype=np.float32)
        item_factors = np.ascontiguousarray(als.item_factors, dtype=np.float32)
    elif family == "RELATED_ITEMS":
        similarity = _fit_item_item(matrix, hp)
    indptr = np.r_[0, np.cumsum(np.bincount(data.user, minlength=n_users))].astype(np.int64)
    return Model(
        recipe_family=family,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        popularity=popularity,
        user_activity=activity,
        events_indptr=indptr,
        events_item=data.item.astype(np.int64),
        events_type=data.event.astype(np.int32),
        event_types=data.event_types,
        user_factors=user_factors,
        item_factors=item_factors,
        similarity=similarity,
        items=data.items,
        users=data.users,
        info={
            "recipe_arn": recipe_arn,
            "seed": seed,
            "hyperparameters": hp,
            "params": {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)},
        },
    )


def train(
    recipe_arn: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    seed: int = 42,
    params: dict[str, Any] | None = None,
) -> tuple[Model, dict[str, float]]:
    """Train a solution version.

    :param recipe_arn: ``arn:aws:personalize:::recipe/<name>``.
    :param interactions: columns ``USER_ID``, ``ITEM_ID``, ``TIMESTAMP`` and optionally
        ``EVENT_TYPE`` / ``EVENT_VALUE`` (ids are used as strings).
    :param items: items metadata (``ITEM_ID`` + columns; categorical multi-values ``A|B``).
    :param users: users metadata (``USER_ID`` + columns), used by user filters.
    :param seed: random seed; the same seed and data give the same model and metrics.
    :param params: see the module docstring.
    :return: the model trained on all data, and the GetSolutionMetrics-style metrics of a model
        trained on the training part of the split (see :func:`_split`), rounded to 4 decimals.
        Evaluation ranks only items the test user has not interacted with in the input part.
    :raises ValueError: unsupported recipe or unusable data.
    """
    family = recipe_family(recipe_arn)
    params = dict(params or {})
    hp = _hyperparameters(params)
    data = _prepare(interactions, items, users, params)
    metrics = _evaluate(family, data, hp, seed)
    model = _fit_model(family, recipe_arn, data, hp, seed, params)
    log.info(
        "trained %s model: %d users, %d items, metrics %s",
        family,
        len(data.user_ids),
        len(data.item_ids),
        metrics,
    )
    return model, metrics
