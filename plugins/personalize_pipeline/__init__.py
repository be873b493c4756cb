"""Builds the project's DAGs from the config files in ``include/config/`` (see ``factory``)."""
