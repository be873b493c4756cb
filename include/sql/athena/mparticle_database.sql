-- The Glue database of the export's Athena table (export.engine: athena). Idempotent: every export run
-- runs it, DDL queries cost nothing in Athena.
CREATE DATABASE IF NOT EXISTS `{{ params.database }}`
