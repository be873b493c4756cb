"""
Amazon Personalize recipes: what each built-in custom recipe is, reports and accepts.

One row per recipe (:data:`RECIPES`), each citing the AWS page it comes from. Config validation
(``project_config``), the train DAG's Params and the batch DAG (``personalize_pipeline.factory``), the
metrics gate (``quality_gate``), the solution-version operator and the Personalize emulator all read
this table; none keeps a recipe list of its own. Pure: no Airflow import, nothing heavy (read at
every DAG parse).

Sources (the rows cite them by key):

* ``recipes``: "Choosing a recipe" — recipe types by use case (USER_PERSONALIZATION, POPULAR_ITEMS,
  PERSONALIZED_RANKING, RELATED_ITEMS, PERSONALIZED_ACTIONS, USER_SEGMENTATION),
  https://docs.aws.amazon.com/personalize/latest/dg/working-with-predefined-recipes.html
* ``metrics``: "Evaluating a solution version with metrics", section *Metric definitions*:
  ``coverage``, ``mean_reciprocal_rank_at_25``, ``normalized_discounted_cumulative_gain_at_5|10|25``,
  ``precision_at_5|10|25`` (the sample ``GetSolutionMetrics`` response on that page shows these exact
  keys), ``average_rewards_at_k`` (solutions with an optimization objective), and for
  USER_SEGMENTATION recipes **hit (hit at K)** and **recall (recall at K)**, "K is the top 1% of the
  most relevant users"; USER_SEGMENTATION solutions are split 80/20 per user instead of 90/10 of the
  users. https://docs.aws.amazon.com/personalize/latest/dg/working-with-training-metrics.html
  (archived copy: awsdocs/amazon-personalize-developer-guide ``doc_source/working-with-training-metrics.md``).
  The page shows no sample response of a USER_SEGMENTATION version, so the *keys* ``hit`` and
  ``recall`` are the metric names as the page writes them; the botocore model of Amazon Connect
  Customer Profiles, whose recommenders report Personalize's metrics, spells the same two keys
  ``hit`` and ``recall`` next to ``mean_reciprocal_rank_at_25`` … in its ``TrainingMetricName`` enum
  (``customer-profiles/2020-08-15/service-2.json``). **Assumption** where both are silent: a
  USER_SEGMENTATION version reports exactly ``hit`` and ``recall``.
* ``training-mode``: botocore ``CreateSolutionVersionRequest.trainingMode``: "If you use
  User-Personalization, you can specify a training mode of UPDATE", only with an ACTIVE version
  trained with FULL and "the input solution was trained with the User-Personalization recipe or the
  legacy HRNN-Coldstart recipe" (API reference, ``API_CreateSolutionVersion``). Every other recipe,
  User-Personalization-v2 included, trains FULL only.
* ``incremental``: botocore ``CreateSolutionRequest.performIncrementalUpdate``: "supported only for
  solutions that use the semantic-similarity recipe".
* ``batch``: "Getting batch recommendations and user segments": "You can't get batch recommendations
  with the Trending-Now recipe" (https://docs.aws.amazon.com/personalize/latest/dg/recommendations-batch.html,
  also the Trending-Now page); Next-Best-Action gets none either (the project's reference notes,
  ``shared/reference/aws-and-mparticle-apis.md``: **not verified** against a page); batch segment jobs
  need a USER_SEGMENTATION recipe
  (https://docs.aws.amazon.com/personalize/latest/dg/creating-batch-seg-job.html); input lines per
  recipe type: https://docs.aws.amazon.com/personalize/latest/dg/batch-data-upload.html and
  https://docs.aws.amazon.com/personalize/latest/dg/prepare-input-data-user-segment.html
  (Item-Affinity: ``itemId`` lines, at most 500; Item-Attribute-Affinity: ``itemAttributes`` queries,
  at most 10).
* ``themes``: botocore ``CreateBatchInferenceJobRequest.batchInferenceJobMode`` /
  ``themeGenerationConfig``; "Batch recommendations with themes from Content Generator": themes are
  for the Similar-Items recipe,
  https://docs.aws.amazon.com/personalize/latest/dg/themed-batch-recommendations.html
* ``filters``: "Filter expressions": item filters (``ItemID``) for item recommendations, user filters
  (``UserID``) for user segments; "Interactions filters can't be used with the Item-Attribute-Affinity
  recipe"; "Amazon Personalize considers up to 100 of the most recent interactions per user per event
  type" (adjustable quota),
  https://docs.aws.amazon.com/personalize/latest/dg/filter-expressions.html
* each recipe's own page (required datasets), linked in its row.

Legacy HRNN recipes (``aws-hrnn``, ``aws-hrnn-metadata``, ``aws-hrnn-coldstart``) "are no longer
available" (https://docs.aws.amazon.com/personalize/latest/dg/legacy-user-personalization-recipes.html):
:data:`LEGACY_RECIPES`, rejected with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

RECIPE_ARN_PREFIX = "arn:aws:personalize:::recipe/"

# Recipe types ("Choosing a recipe")
USER_PERSONALIZATION = "USER_PERSONALIZATION"
POPULAR_ITEMS = "POPULAR_ITEMS"
PERSONALIZED_RANKING = "PERSONALIZED_RANKING"
RELATED_ITEMS = "RELATED_ITEMS"
PERSONALIZED_ACTIONS = "PERSONALIZED_ACTIONS"
USER_SEGMENTATION = "USER_SEGMENTATION"

# GetSolutionMetrics keys ("Evaluating a solution version with metrics"; see the module docstring)
RANKING_METRICS: tuple[str, ...] = (
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
)
SEGMENTATION_METRICS: tuple[str, ...] = ("hit", "recall")
ACTION_METRICS: tuple[str, ...] = (*RANKING_METRICS, "average_rewards_at_k")

# Filter kinds ("Filter expressions")
ITEM_FILTER = "ItemID"  # filters items out of (or into) item recommendations
USER_FILTER = "UserID"  # filters users out of (or into) user segments
ACTION_FILTER = "ActionID"  # Next-Best-Action

#: Batch jobs' ``numResults``: "The maximum number of users per segment is 5 million" (botocore
#: ``CreateBatchSegmentJobRequest.numResults``). Batch inference: the model gives no maximum;
#: **assumption**: the real-time ceiling, "Otherwise, the maximum is 500" (botocore
#: personalize-runtime ``GetRecommendationsRequest.numResults``).
MAX_BATCH_INFERENCE_RESULTS = 500
MAX_BATCH_SEGMENT_RESULTS = 5_000_000

#: Personalize filters consider this many of a user's most recent interactions per event type.
FILTER_RECENT_INTERACTIONS_PER_EVENT_TYPE = 100

#: The recipe AWS recommends as the baseline of offline metrics ("To generate a baseline for
#: comparison purposes, we recommend using the Popularity-Count recipe", metrics page).
BASELINE_RECIPE = "aws-popularity-count"

_DOCS = "https://docs.aws.amazon.com/personalize/latest/dg/"


@dataclass(frozen=True)
class Recipe:
    """
    One built-in custom recipe.

    :param name: The recipe name (``arn:aws:personalize:::recipe/<name>``).
    :param recipe_type: Its type ("Choosing a recipe").
    :param metrics: The ``GetSolutionMetrics`` keys a version of it reports.
    :param default_gate_metric: The metric the quality gate uses unless the config names another.
    :param training_modes: ``CreateSolutionVersion.trainingMode`` values it accepts.
    :param incremental_update: Whether ``CreateSolution.performIncrementalUpdate`` is allowed.
    :param batch_inference: Whether batch inference jobs can use its versions.
    :param batch_segment: Whether batch segment jobs can use its versions.
    :param theme_generation: Whether ``batchInferenceJobMode=THEME_GENERATION`` is allowed.
    :param required_datasets: Dataset types a solution version needs (imported data).
    :param optional_datasets: Dataset types it uses when present.
    :param filter_kinds: Filter expression kinds its batch jobs take.
    :param interaction_filters: Whether those filters may test the Interactions dataset.
    :param batch_input: The keys of one batch input line.
    :param max_batch_input_lines: AWS's limit on batch segment input lines, when there is one.
    :param source: The recipe's AWS page.
    """

    name: str
    recipe_type: str
    metrics: tuple[str, ...]
    default_gate_metric: str
    training_modes: tuple[str, ...]
    incremental_update: bool
    batch_inference: bool
    batch_segment: bool
    theme_generation: bool
    required_datasets: tuple[str, ...]
    optional_datasets: tuple[str, ...]
    filter_kinds: tuple[str, ...]
    interaction_filters: bool
    batch_input: tuple[str, ...]
    max_batch_input_lines: int | None
    source: str

    @property
    def arn(self) -> str:
        return RECIPE_ARN_PREFIX + self.name

    def accepts_training_mode(self, mode: str) -> bool:
        return mode in self.training_modes


_NDCG10 = "normalized_discounted_cumulative_gain_at_10"


def _item_recipe(
    name: str,
    recipe_type: str,
    page: str,
    *,
    training_modes: tuple[str, ...] = ("FULL",),
    batch_inference: bool = True,
    batch_input: tuple[str, ...] = ("userId",),
    required: tuple[str, ...] = ("INTERACTIONS",),
    optional: tuple[str, ...] = ("ITEMS", "USERS"),
    incremental_update: bool = False,
    theme_generation: bool = False,
    metrics: tuple[str, ...] = RANKING_METRICS,
) -> Recipe:
    return Recipe(
        name=name,
        recipe_type=recipe_type,
        metrics=metrics,
        default_gate_metric=_NDCG10,
        training_modes=training_modes,
        incremental_update=incremental_update,
        batch_inference=batch_inference,
        batch_segment=False,
        theme_generation=theme_generation,
        required_datasets=required,
        optional_datasets=optional,
        filter_kinds=(ITEM_FILTER,),
        interaction_filters=True,
        batch_input=batch_input if batch_inference else (),
        max_batch_input_lines=None,
        source=_DOCS + page,
    )


_ROWS: tuple[Recipe, ...] = (
    _item_recipe(
        "aws-user-personalization",
        USER_PERSONALIZATION,
        "native-recipe-new-item-USER_PERSONALIZATION.html",
        training_modes=("FULL", "UPDATE"),
    ),
    _item_recipe(
        "aws-user-personalization-v2", USER_PERSONALIZATION, "native-recipe-user-personalization-v2.html"
    ),
    _item_recipe(
        "aws-popularity-count", POPULAR_ITEMS, "native-recipe-popularity.html", optional=("ITEMS", "USERS")
    ),
    _item_recipe("aws-trending-now", POPULAR_ITEMS, "native-recipe-trending-now.html", batch_inference=False),
    _item_recipe(
        "aws-personalized-ranking",
        PERSONALIZED_RANKING,
        "native-recipe-search.html",
        batch_input=("userId", "itemList"),
    ),
    _item_recipe(
        "aws-personalized-ranking-v2",
        PERSONALIZED_RANKING,
        "native-recipe-personalized-ranking-v2.html",
        batch_input=("userId", "itemList"),
    ),
    _item_recipe("aws-sims", RELATED_ITEMS, "native-recipe-sims.html", batch_input=("itemId",)),
    _item_recipe(
        "aws-similar-items",
        RELATED_ITEMS,
        "native-recipe-similar-items.html",
        batch_input=("itemId",),
        required=("INTERACTIONS", "ITEMS"),
        optional=("USERS",),
        theme_generation=True,
    ),
    _item_recipe(
        "aws-semantic-similarity",
        RELATED_ITEMS,
        "native-recipe-semantic-similarity.html",
        batch_input=("itemId",),
        required=("ITEMS",),
        optional=("INTERACTIONS",),
        incremental_update=True,
    ),
    Recipe(
        name="aws-next-best-action",
        recipe_type=PERSONALIZED_ACTIONS,
        metrics=ACTION_METRICS,
        default_gate_metric=_NDCG10,
        training_modes=("FULL",),
        incremental_update=False,
        batch_inference=False,
        batch_segment=False,
        theme_generation=False,
        required_datasets=("ACTIONS", "ACTION_INTERACTIONS"),
        optional_datasets=("INTERACTIONS", "ITEMS", "USERS"),
        filter_kinds=(ACTION_FILTER,),
        interaction_filters=True,
        batch_input=(),
        max_batch_input_lines=None,
        source=_DOCS + "native-recipe-next-best-action.html",
    ),
    Recipe(
        name="aws-item-affinity",
        recipe_type=USER_SEGMENTATION,
        metrics=SEGMENTATION_METRICS,
        default_gate_metric="hit",
        training_modes=("FULL",),
        incremental_update=False,
        batch_inference=False,
        batch_segment=True,
        theme_generation=False,
        required_datasets=("INTERACTIONS",),
        optional_datasets=("ITEMS", "USERS"),
        filter_kinds=(USER_FILTER,),
        interaction_filters=True,
        batch_input=("itemId",),
        max_batch_input_lines=500,
        source=_DOCS + "item-affinity-recipe.html",
    ),
    Recipe(
        name="aws-item-attribute-affinity",
        recipe_type=USER_SEGMENTATION,
        metrics=SEGMENTATION_METRICS,
        default_gate_metric="hit",
        training_modes=("FULL",),
        incremental_update=False,
        batch_inference=False,
        batch_segment=True,
        theme_generation=False,
        required_datasets=("INTERACTIONS", "ITEMS"),
        optional_datasets=("USERS",),
        filter_kinds=(USER_FILTER,),
        interaction_filters=False,
        batch_input=("itemAttributes",),
        max_batch_input_lines=10,
        source=_DOCS + "item-attribute-affinity-recipe.html",
    ),
)

#: Every built-in custom recipe, by name.
RECIPES: dict[str, Recipe] = {row.name: row for row in _ROWS}

#: Recipes AWS retired, with the reason an error gives.
LEGACY_RECIPES: dict[str, str] = {
    name: (
        "legacy HRNN recipes are no longer available ("
        + _DOCS
        + "legacy-user-personalization-recipes.html); "
        "use aws-user-personalization-v2"
    )
    for name in ("aws-hrnn", "aws-hrnn-metadata", "aws-hrnn-coldstart")
}


class UnknownRecipeError(ValueError):
    """A recipe ARN names no built-in custom recipe."""


def recipe_name(recipe_arn: str) -> str:
    """``arn:aws:personalize:::recipe/<name>`` → ``<name>`` (a bare name is returned as given)."""
    return recipe_arn.removeprefix(RECIPE_ARN_PREFIX)


def recipe(recipe_arn: str) -> Recipe:
    """
    The row of a recipe ARN (or bare name).

    :raises UnknownRecipeError: naming the known recipes, or why a legacy one is gone.
    """
    name = recipe_name(recipe_arn)
    row = RECIPES.get(name)
    if row is not None and (recipe_arn == name or recipe_arn.startswith(RECIPE_ARN_PREFIX)):
        return row
    if name in LEGACY_RECIPES:
        raise UnknownRecipeError(f"{recipe_arn}: {LEGACY_RECIPES[name]}")
    known = ", ".join(RECIPE_ARN_PREFIX + n for n in RECIPES)
    raise UnknownRecipeError(f"unknown recipe {recipe_arn!r}; the built-in custom recipes are: {known}")


def training_mode_error(recipe_arn: str, mode: str) -> str | None:
    """Why ``mode`` cannot train a version of ``recipe_arn`` (``None``: it can)."""
    row = recipe(recipe_arn)
    if row.accepts_training_mode(mode):
        return None
    allowed = ", ".join(row.training_modes)
    return (
        f"trainingMode {mode} is not available for the recipe {row.name}: it trains with {allowed} only "
        "(UPDATE is for User-Personalization, per CreateSolutionVersion's trainingMode documentation)"
    )


def metric_error(recipe_arn: str, metric: str) -> str | None:
    """Why ``metric`` is not one ``recipe_arn`` reports (``None``: it is)."""
    row = recipe(recipe_arn)
    if metric in row.metrics:
        return None
    return (
        f"the recipe {row.name} ({row.recipe_type}) does not report {metric!r}; GetSolutionMetrics "
        f"reports: {', '.join(row.metrics)}"
    )
