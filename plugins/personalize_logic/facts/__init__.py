"""
AWS and mParticle facts: one module per family of facts, each fact citing its source.

A fact is something the service decides and this project only repeats: a status set, an API's
method and key names, a data rule, a recipe's metrics, a limit. Each lives here exactly once, with
the botocore model, AWS documentation page or sample it comes from; hooks, waiters, sensors,
triggers, operators, destinations, the pre-import validator and the emulators import it from here.
Where the sources are silent, the module says so and names the assumption.

Pure modules: no Airflow import.
"""
