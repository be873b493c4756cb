-- Items catalogue as of the end of the data interval (full snapshot: items change slowly).
-- Portable Redshift / PostgreSQL; source table params.items_table (default analytics.items):
--   item_id VARCHAR, title VARCHAR, release_year VARCHAR, genres VARCHAR ('|'-separated),
--   creation_ts BIGINT (epoch seconds)
SELECT
    CAST(item_id AS VARCHAR(256)) AS "ITEM_ID",
    title                         AS "TITLE",
    release_year                  AS "RELEASE_YEAR",
    genres                        AS "GENRES",
    CAST(creation_ts AS BIGINT)   AS "CREATION_TIMESTAMP"
FROM {{ params.get("items_table", "analytics.items") }}
WHERE creation_ts < {{ data_interval_end.int_timestamp }}
  AND item_id IS NOT NULL
ORDER BY item_id
