#!/usr/bin/env python3
"""Reads the lake's Delta tables with engines that share no code with gpustream.

    read_lake.py LAKE_URL [TABLE ...]

LAKE_URL is a directory or an s3://bucket/prefix URL (the endpoint and credentials come
from the usual AWS_* variables, as for gpustream). For every table (default: every
directory under the lake that holds a `_delta_log`, or the names given) it prints one
JSON object per line:

    {"table": "samples", "deltalake": 43200, "polars": 43200, "version": 12,
     "files": 8, "distinct_keys": 43200}

`deltalake` counts rows through delta-rs' Python bindings and pyarrow, `polars` through
polars' own Delta scan; `distinct_keys` is polars' count of distinct `event_id` in
`samples` and `anomalies` (absent for other tables), so a duplicated row shows even when
the totals agree. Exit status 1 names a table that could
not be read.
"""

import json
import os
import sys

import polars as pl
from deltalake import DeltaTable

KEYS = {"samples": ["event_id"], "anomalies": ["event_id"]}


def storage_options(url):
    if not url.startswith("s3://"):
        return None
    env = os.environ
    options = {
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
    }
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
    if env.get("AWS_ALLOW_HTTP", "").lower() == "true":
        options["AWS_ALLOW_HTTP"] = "true"
    return options


def local_tables(root):
    return sorted(
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name, "_delta_log"))
    )


def read(url, table, options):
    path = url.rstrip("/") + "/" + table
    dt = DeltaTable(path, storage_options=options)
    out = {
        "table": table,
        "version": dt.version(),
        "files": len(dt.file_uris()),
        "deltalake": dt.to_pyarrow_dataset().count_rows(),
    }
    scan = pl.scan_delta(path, storage_options=options)
    out["polars"] = scan.select(pl.len()).collect().item()
    keys = KEYS.get(table)
    if keys and all(k in scan.collect_schema().names() for k in keys):
        out["distinct_keys"] = scan.select(keys).unique().select(pl.len()).collect().item()
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = argv[1]
    options = storage_options(url)
    tables = argv[2:]
    if not tables:
        if options is not None:
            print("read_lake.py: name the tables of an s3:// lake", file=sys.stderr)
            return 2
        tables = local_tables(url)
    status = 0
    for table in tables:
        try:
            print(json.dumps(read(url, table, options)), flush=True)
        except Exception as e:  # noqa: BLE001 - report every table, then fail
            print(f"read_lake.py: {url}/{table}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
