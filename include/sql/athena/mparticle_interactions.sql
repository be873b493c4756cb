-- Interactions of one data interval from the landed mParticle batches, on Athena (export.engine:
-- athena). Header = the Personalize field names. The query result (a CSV file Athena writes in the
-- run folder) is published by the export's manifest, with the header line Personalize reads.
--
-- Mirrors the Python exporter (plugins/personalize_logic/mparticle_interactions.py) on what it
-- writes as rows:
--   * commerce events whose product_action.action is one of params.actions, one row per product;
--   * USER_ID: the batch's mpid as its exact decimal text (BIGINT: negative and > 2^53 exact), not 0,
--     or user_identities.<params.user_id_source>;
--   * ITEM_ID: the first non-empty of the product's id, sku; at most 256 characters, no CR / LF;
--   * TIMESTAMP: timestamp_unixtime_ms // 1000, written so both Trino (Athena) and DuckDB (the
--     embedded stack's emulator) compute an exact integer (no bigint / bigint, whose type differs);
--   * events whose own time is in [data_interval_start, data_interval_end), read from the interval's
--     dt= folder and the next day's (late arrivals).
-- What it does not yet mirror is listed in docs/emulators.md ("Athena export: not yet mirrored").
SELECT
{%- if params.user_id_source == "mpid" %}
    CAST(b.mpid AS VARCHAR) AS "USER_ID",
{%- else %}
    b.user_identities.{{ params.user_id_source }} AS "USER_ID",
{%- endif %}
    COALESCE(NULLIF(p.id, ''), NULLIF(p.sku, '')) AS "ITEM_ID",
    e.data.product_action.action AS "EVENT_TYPE",
    CAST((e.data.timestamp_unixtime_ms - e.data.timestamp_unixtime_ms % 1000) / 1000 AS BIGINT) AS "TIMESTAMP",
    p.price AS "EVENT_VALUE"
FROM "{{ params.database }}"."{{ params.table }}" AS b
CROSS JOIN UNNEST(b.events) AS t (e)
CROSS JOIN UNNEST(e.data.product_action.products) AS u (p)
WHERE b.dt IN ('{{ data_interval_start | ds }}', '{{ macros.ds_add(data_interval_start | ds, 1) }}')
  AND e.event_type = 'commerce_event'
  AND e.data.product_action.action IN (
    {%- for action in params.actions %}'{{ action | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}
  )
  AND e.data.timestamp_unixtime_ms >= {{ data_interval_start.int_timestamp * 1000 }}
  AND e.data.timestamp_unixtime_ms < {{ data_interval_end.int_timestamp * 1000 }}
{%- if params.user_id_source == "mpid" %}
  AND b.mpid IS NOT NULL
  AND b.mpid <> 0
{%- else %}
  AND NULLIF(b.user_identities.{{ params.user_id_source }}, '') IS NOT NULL
{%- endif %}
  AND COALESCE(NULLIF(p.id, ''), NULLIF(p.sku, '')) IS NOT NULL
  AND length(COALESCE(NULLIF(p.id, ''), NULLIF(p.sku, ''))) <= 256
  AND strpos(COALESCE(NULLIF(p.id, ''), NULLIF(p.sku, '')), chr(10)) = 0
  AND strpos(COALESCE(NULLIF(p.id, ''), NULLIF(p.sku, '')), chr(13)) = 0
