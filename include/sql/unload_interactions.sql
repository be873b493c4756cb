-- Interactions of one data interval, shaped for Amazon Personalize (header = schema field names).
-- Portable: the export DAG runs it with SqlToInteractionsOperator on the connection of
-- pipeline.export.sql or .redshift (Amazon Redshift, or PostgreSQL as the embedded stand-in); it is
-- also written to run inside UNLOAD (RedshiftUnloadToPartitionOperator, which no generated DAG uses
-- yet): no '' escapes and no $$ (UNLOAD wraps the query in $$...$$). The interval is compared on
-- integer epoch seconds, so there is no time-zone ambiguity: [data_interval_start, data_interval_end).
-- Source table (params.interactions_table, default analytics.interactions):
--   user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, event_value FLOAT (nullable),
--   event_ts BIGINT (epoch seconds, UTC)
-- Redshift: UNLOAD's HEADER writes the column aliases as the session folds them; set
-- enable_case_sensitive_identifier=true for the Airflow user so the header stays upper case
-- (PublishUnloadedPartitionOperator checks it).
SELECT
    CAST(user_id AS VARCHAR(256))   AS "USER_ID",
    CAST(item_id AS VARCHAR(256))   AS "ITEM_ID",
    CAST(event_type AS VARCHAR(256)) AS "EVENT_TYPE",
    CAST(event_ts AS BIGINT)        AS "TIMESTAMP",
    CAST(event_value AS FLOAT)      AS "EVENT_VALUE"
FROM {{ params.get("interactions_table", "analytics.interactions") }}
WHERE event_ts >= {{ data_interval_start.int_timestamp }}
  AND event_ts <  {{ data_interval_end.int_timestamp }}
  AND user_id IS NOT NULL
  AND item_id IS NOT NULL
ORDER BY event_ts, user_id, item_id
