"""Save every object of an S3 endpoint to a directory, or load such a directory back.

    s3_snapshot.py save ENDPOINT DIR   # all buckets and objects -> DIR (replaced atomically)
    s3_snapshot.py load ENDPOINT DIR   # DIR -> buckets and objects (missing DIR: nothing)

scripts/stack.sh uses it to keep the local broker's data across `down` and `up`: the
broker (Tansu) stores its topics, messages and committed offsets in S3, and the S3
server there (moto) keeps objects in memory only. `save` runs while nothing writes (the
broker is stopped). Layout of DIR: `manifest.jsonl` (one line per object: bucket, key,
file, content type, user metadata; one line per bucket, also empty ones) and `objects/N`.
Runs with the moto venv's Python (boto3 comes with moto).
"""

import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

# Parallel GETs/PUTs: a long-running broker leaves many small objects, and each request
# to a local moto costs a few milliseconds.
WORKERS = 8


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=WORKERS),
    )


def save(endpoint, target):
    s3 = client(endpoint)
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "objects"))
    entries = []
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        entries.append({"bucket": name})
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                entries.append({"bucket": name, "key": obj["Key"], "file": str(len(entries))})

    def fetch(entry):
        got = s3.get_object(Bucket=entry["bucket"], Key=entry["key"])
        with open(os.path.join(tmp, "objects", entry["file"]), "wb") as out:
            shutil.copyfileobj(got["Body"], out)
        entry["content_type"] = got.get("ContentType")
        entry["metadata"] = got.get("Metadata", {})

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(fetch, [e for e in entries if "key" in e]))
    with open(os.path.join(tmp, "manifest.jsonl"), "w") as out:
        for entry in entries:
            out.write(json.dumps(entry) + "\n")
        out.flush()
        os.fsync(out.fileno())
    # Replace the previous snapshot only once the new one is complete; `load` falls
    # back to `.old` if a crash lands between the two renames.
    old = target + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(target):
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    objects = sum(1 for e in entries if "key" in e)
    print(f"saved {objects} objects in {len(entries) - objects} buckets to {target}")


def load(endpoint, source):
    if not os.path.exists(os.path.join(source, "manifest.jsonl")):
        source += ".old"
    manifest = os.path.join(source, "manifest.jsonl")
    if not os.path.exists(manifest):
        print("no snapshot: starting empty")
        return
    s3 = client(endpoint)
    with open(manifest) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for entry in entries:
        if "key" not in entry and entry["bucket"] not in existing:
            s3.create_bucket(Bucket=entry["bucket"])
            existing.add(entry["bucket"])

    def put(entry):
        extra = {"Metadata": entry.get("metadata") or {}}
        if entry.get("content_type"):
            extra["ContentType"] = entry["content_type"]
        with open(os.path.join(source, "objects", entry["file"]), "rb") as body:
            s3.put_object(Bucket=entry["bucket"], Key=entry["key"], Body=body.read(), **extra)

    objects = [e for e in entries if "key" in e]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(put, objects))
    print(f"loaded {len(objects)} objects from {source}")


def main(argv):
    if len(argv) != 4 or argv[1] not in ("save", "load"):
        sys.exit(__doc__)
    {"save": save, "load": load}[argv[1]](argv[2], argv[3])


if __name__ == "__main__":
    main(sys.argv)
