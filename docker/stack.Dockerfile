# The embedded local stack (moto S3 + the project's Personalize, Pinpoint, Customer Profiles and
# mParticle emulators):
# `python -m emulators start --foreground`, used by the `local` profile of docker-compose.yaml.
#
# It starts from the same base and runs the same pip instruction as docker/Dockerfile, so the
# emulators run with exactly the pinned versions the tests use and BuildKit reuses the layer that
# the Airflow image already built (no second install). The emulators are not Airflow code: the image
# only replaces the Airflow entrypoint.
#
# Build context: the repository root; docker/stack.Dockerfile.dockerignore trims it.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# The emulators import the pure logic under plugins/personalize_logic (no Airflow import there):
# the Personalize data rules live in plugins/personalize_logic/facts, so plugins/ must be on PYTHONPATH.
WORKDIR /opt/local-stack
COPY --chown=airflow:0 emulators/ ./emulators/
COPY --chown=airflow:0 plugins/ ./plugins/
ENV PYTHONPATH=/opt/local-stack/plugins:/opt/local-stack \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# State (SQLite files of the emulators, S3 objects) lives in /state: docker-compose.yaml mounts a
# named volume there, so a restart loses nothing. The volume is initialised with this ownership.
USER root
RUN mkdir -p /state && chown airflow:0 /state && chmod 0775 /state
USER airflow

# s3, personalize, pinpoint, mparticle, customer-profiles (fixed here; `python -m emulators start`
# picks free ports when no --*-port is given).
EXPOSE 5000 5001 5002 5003 5004

# dumb-init forwards SIGTERM so `docker compose stop` lets the stack shut down cleanly.
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["python", "-m", "emulators", "start", "--host", "0.0.0.0", "--state-dir", "/state", \
     "--s3-port", "5000", "--personalize-port", "5001", "--pinpoint-port", "5002", \
     "--mparticle-port", "5003", "--customer-profiles-port", "5004", "--foreground"]
