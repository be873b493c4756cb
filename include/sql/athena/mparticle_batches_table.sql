-- mParticle's batches as they land in S3 (export.mparticle.sourcePrefix: dt=YYYY-MM-DD/ folders of
-- newline-delimited JSON, gzip by the .gz extension), one row per batch. Only the fields the export
-- reads are declared: the JSON SerDe skips the others. mpid is a signed 64-bit integer, so BIGINT
-- holds every mpid exactly (negative and above 2^53 included).
--
-- Partitions: partition projection on dt (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html):
-- no ALTER TABLE ADD PARTITION / MSCK REPAIR TABLE per interval; a query's dt = / IN literals name
-- the folders it reads. ignore.malformed.json: a line that is not JSON reads as a row of NULLs
-- instead of failing the query (OpenX JSON SerDe,
-- https://docs.aws.amazon.com/athena/latest/ug/openx-json-serde.html); the export counts them.
-- IF NOT EXISTS: a table already there is kept as it is (change its definition by dropping it).
-- task.location: export.mparticle.sourcePrefix, rendered by AthenaTableOperator (it may be a template).
CREATE EXTERNAL TABLE IF NOT EXISTS `{{ params.database }}`.`{{ params.table }}` (
  mpid BIGINT,
  user_identities STRUCT<customer_id: STRING>,
  events ARRAY<STRUCT<
    event_type: STRING,
    data: STRUCT<
      timestamp_unixtime_ms: BIGINT,
      product_action: STRUCT<
        action: STRING,
        products: ARRAY<STRUCT<id: STRING, sku: STRING, price: DOUBLE>>
      >
    >
  >>
)
PARTITIONED BY (dt STRING)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION '{{ task.location }}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2000-01-01,NOW+1DAYS',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = '{{ task.location }}dt=${dt}/'
)
