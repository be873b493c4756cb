"""CustomerProfilesHook at the ``conn`` boundary: paging, finding an upload job, the SSE-C PUT."""

from __future__ import annotations

import base64
from unittest import mock

import pytest

from hooks.customer_profiles import CustomerProfilesHook

A, B = "a" * 32, "b" * 32


def test_find_upload_job_pages_and_skips_failed_jobs(stubber):
    stubber.add_response(
        "list_upload_jobs",
        {"Items": [{"JobId": A, "DisplayName": "S", "Status": "FAILED"}], "NextToken": "t1"},
        {"DomainName": "d", "MaxResults": 500},
    )
    stubber.add_response(
        "list_upload_jobs",
        {
            "Items": [
                {"JobId": B, "DisplayName": "S", "Status": "IN_PROGRESS"},
                {"JobId": A, "DisplayName": "T"},
            ]
        },
        {"DomainName": "d", "MaxResults": 500, "NextToken": "t1"},
    )
    assert CustomerProfilesHook(aws_conn_id=None).find_upload_job("d", "S")["JobId"] == B


def test_a_missing_segment_definition_is_none(stubber):
    stubber.add_client_error("get_segment_definition", "ResourceNotFoundException", http_status_code=404)
    assert CustomerProfilesHook(aws_conn_id=None).get_segment_definition("d", "x") is None


def test_the_put_carries_the_sse_c_headers_and_a_refusal_names_the_status(tmp_path):
    path = tmp_path / "upload.csv"
    path.write_bytes(b"user_id,segment\n1,S\n")
    token = base64.b64encode(b"k" * 32).decode()
    with mock.patch("requests.put") as put:
        put.return_value.status_code = 200
        CustomerProfilesHook(aws_conn_id=None).put_upload_file("https://u", token, path)
        headers = put.call_args.kwargs["headers"]
        assert headers["x-amz-server-side-encryption-customer-key"] == token
        assert headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
        assert headers["Content-Length"] == "20"
        put.return_value.status_code = 403
        put.return_value.text = "<Error><Code>AccessDenied</Code></Error>"
        with pytest.raises(RuntimeError, match="HTTP 403: <Error><Code>AccessDenied"):
            CustomerProfilesHook(aws_conn_id=None).put_upload_file("https://u", token, path)
