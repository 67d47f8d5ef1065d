"""IAM on a private moto server, for tests that take S3 permissions away mid-run.

    s3_iam.py setup ENDPOINT BUCKET          -> {"admin": [id, secret], "writer": [id, secret]}
    s3_iam.py deny  ENDPOINT ADMIN_ID ADMIN_SECRET BUCKET ACTION
    s3_iam.py allow ENDPOINT ADMIN_ID ADMIN_SECRET

`setup` runs while the server still skips authentication: it creates the bucket, an
`admin` user allowed everything and a `lake-writer` user allowed `s3:*` on the bucket,
then turns authentication on (`/moto-api/reset-auth` 0): from then on moto checks every
request's signature and the IAM policies of its key. `deny` adds an explicit Deny of
ACTION (e.g. `s3:PutObject`) on the bucket to `lake-writer`, as the admin; `allow`
removes it. Run with the moto venv's python (boto3).
"""

import json
import sys
import urllib.request

import boto3

WRITER = "lake-writer"
REVOKED = "revoked"


def client(endpoint, service, key="test", secret="test"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def policy(effect, action, resources):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Action": action, "Resource": resources}],
        }
    )


def user(iam, name, document):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="grant", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return [key["AccessKeyId"], key["SecretAccessKey"]]


def bucket_arns(bucket):
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def setup(endpoint, bucket):
    client(endpoint, "s3").create_bucket(Bucket=bucket)
    iam = client(endpoint, "iam")
    keys = {
        "admin": user(iam, "admin", policy("Allow", "*", "*")),
        "writer": user(iam, WRITER, policy("Allow", "s3:*", bucket_arns(bucket))),
    }
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=30).read()
    print(json.dumps(keys))


def main(argv):
    command, endpoint = argv[1], argv[2]
    if command == "setup":
        setup(endpoint, argv[3])
        return
    iam = client(endpoint, "iam", argv[3], argv[4])
    if command == "deny":
        iam.put_user_policy(
            UserName=WRITER,
            PolicyName=REVOKED,
            PolicyDocument=policy("Deny", argv[6], bucket_arns(argv[5])),
        )
    elif command == "allow":
        iam.delete_user_policy(UserName=WRITER, PolicyName=REVOKED)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
