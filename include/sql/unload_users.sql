-- Users as of the end of the data interval (full snapshot). Portable Redshift / PostgreSQL;
-- source table params.users_table (default analytics.users): user_id VARCHAR, age INT, gender VARCHAR,
-- created_ts BIGINT (epoch seconds). No e-mail address: PII stays out of Personalize.
SELECT
    CAST(user_id AS VARCHAR(256)) AS "USER_ID",
    CAST(age AS INTEGER)          AS "AGE",
    gender                        AS "GENDER"
FROM {{ params.get("users_table", "analytics.users") }}
WHERE created_ts < {{ data_interval_end.int_timestamp }}
  AND user_id IS NOT NULL
ORDER BY user_id
