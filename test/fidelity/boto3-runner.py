"""Send the differential test's cases through boto3 (a client no one here wrote) to each endpoint given.

Reads {"endpoints": {"name": url}, "account": "…", "region": "…", "cases": [{"id", "service", "operation",
"input"}]} as JSON on stdin; writes {"name": {"case id": {"status", "code", "keys"}}} as JSON on stdout. The
operation is the API's name (DescribeImages); boto3 calls it by its snake_case method. One attempt per call.
"""

import json
import re
import sys

import boto3
import boto3.session
import botocore.config
import botocore.exceptions


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def main() -> None:
    request = json.load(sys.stdin)
    config = botocore.config.Config(
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"},
        connect_timeout=5,
        read_timeout=10,
    )
    out = {}
    for name, url in request["endpoints"].items():
        results = {}
        session = boto3.session.Session(
            region_name=request["region"], aws_access_key_id=request["account"], aws_secret_access_key="sandbox"
        )
        clients = {}
        for case in request["cases"]:
            if case["service"] not in clients:
                clients[case["service"]] = session.client(case["service"], endpoint_url=url, config=config)
            client = clients[case["service"]]
            try:
                answer = getattr(client, snake(case["operation"]))(**case["input"])
                keys = sorted(k for k, v in answer.items() if k != "ResponseMetadata" and v is not None)
                results[case["id"]] = {"status": answer["ResponseMetadata"]["HTTPStatusCode"], "code": None, "keys": keys}
            except botocore.exceptions.ClientError as error:
                results[case["id"]] = {
                    "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
                    "code": error.response["Error"].get("Code"),
                    "keys": [],
                }
            except (botocore.exceptions.BotoCoreError, ValueError) as error:  # no answer, or one boto3 cannot read
                results[case["id"]] = {"status": 0, "code": type(error).__name__, "keys": []}
        out[name] = results
    json.dump(out, sys.stdout)


main()
