"""
Failure alerts go through the Amazon provider's SnsNotifier configured from ``pipeline.alerting``;
here the notifier the factory attaches is called as Airflow calls an on_failure_callback, against
moto's SNS (the embedded stack's S3 server is a full moto server), and the message is read back
from an SQS queue subscribed to the topic.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]


def _config_with_alerting(tmp_path: Path, topic_arn: str) -> Path:
    shutil.copy(REPO / "include" / "config" / "bingewatch.json", tmp_path / "bingewatch.json")
    sidecar = json.loads((REPO / "include" / "config" / "bingewatch.pipeline.json").read_text())
    sidecar["pipeline"]["alerting"] = {"snsTopicArn": topic_arn}
    (tmp_path / "bingewatch.pipeline.json").write_text(json.dumps(sidecar))
    return tmp_path / "bingewatch.json"


def test_a_failed_task_publishes_to_sns(local_stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from personalize_pipeline.factory import build_project_dags

    sns, sqs = local_stack.client("sns"), local_stack.client("sqs")
    topic_arn = sns.create_topic(Name="personalize-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    dag = {d.dag_id: d for d in build_project_dags(_config_with_alerting(tmp_path, topic_arn))}[
        "bingewatch_train"
    ]
    task = dag.get_task("import_interactions")
    [notifier] = task.on_failure_callback
    context = {
        "dag": dag,
        "ti": SimpleNamespace(task_id=task.task_id, try_number=2, log_url="http://airflow/log"),
        "run_id": "scheduled__2026-11-21T00:00:00+00:00",
        "task": task,
    }
    notifier(context)  # what Airflow does with an on_failure_callback

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get(
        "Messages", []
    )
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["Subject"] == "airflow-personalize task failed"
    assert "import_interactions" in body["Message"]
    assert "bingewatch_train" in body["Message"]
    assert "scheduled__2026-11-21T00:00:00+00:00" in body["Message"]
