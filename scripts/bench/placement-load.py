#!/usr/bin/env python3
"""Load driver for scripts/bench-placement.sh: fills a Placement service with compute-node
resource providers, then times the two calls a scheduler makes per server boot.

    placement-load.py fill    --url BASE --token TOKEN --from 0 --to 1000
    placement-load.py measure --url BASE --token TOKEN [--requests 100] [--claims 200]

BASE is the Placement endpoint (http://127.0.0.1:PORT for upstream served at the root,
http://127.0.0.1:PORT/placement for ferrostack). TOKEN goes in X-Auth-Token: a Keystone
token, or `admin` for upstream with [api] auth_strategy = noauth2.

fill creates providers FROM..TO-1 (so a fill of 0..1000 and a later one of 1000..10000
give 10,000), each like a nova compute node: inventories VCPU 32 (allocation ratio 16),
MEMORY_MB 131072 (1.5, 4096 reserved), DISK_GB 2000 (1.0); traits (HW_CPU_X86_AVX2,
HW_CPU_X86_SSE42, COMPUTE_VOLUME_MULTI_ATTACH, one CUSTOM_RACK_n of 10, and
COMPUTE_STATUS_DISABLED on 1 in 20); one of 10 aggregates; two running instances each
(VCPU 4, MEMORY_MB 8192, DISK_GB 80), and on another 1 in 20 a big consumer that leaves
too little disk for the measured flavor, so those drop out of the candidates too. Per
provider it sends POST /resource_providers, PUT .../inventories, PUT .../traits and
PUT .../aggregates (there is no bulk call for these an admin may use: POST /reshaper, which
sets many providers' inventories at once, is for the service role only), and the
instances go in batches through POST /allocations. The per-provider requests run on
--concurrency keep-alive connections (default 2, the upstream worker count); the
batches one after the other. Prints a JSON line with the
time it took.

measure times, one request at a time on one keep-alive connection, after --warmup
untimed ones:
  - GET /allocation_candidates?resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40
        &required=!COMPUTE_STATUS_DISABLED&limit=1000   (--requests times)
  - the same without limit                               (--requests-unlimited times)
  - PUT /allocations/{new uuid}: the claim of that flavor on a provider picked at random
    from the candidates, 1.39 body with consumer_generation null and consumer_type
    INSTANCE (--claims times)
and prints one JSON line with p50/p90/p99/mean/min/max in milliseconds for each, and how
many candidates came back. Every request sends OpenStack-API-Version: placement 1.39.
A wrong status stops it with the body in the message.
"""

import argparse
import concurrent.futures
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
import uuid

MICROVERSION = "placement 1.39"
NS = uuid.UUID("6f1c8a3e-1b7d-4c52-9a0e-4d1a4f6b2c10")  # names -> stable uuids
RACKS = 10
AGGREGATES = 10
PROJECT = uuid.uuid5(NS, "project").hex
USER = uuid.uuid5(NS, "user").hex
FLAVOR = {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 40}
QUERY = "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED"
INVENTORIES = {
    "VCPU": {"total": 32, "allocation_ratio": 16.0, "reserved": 0,
             "min_unit": 1, "max_unit": 32, "step_size": 1},
    "MEMORY_MB": {"total": 131072, "allocation_ratio": 1.5, "reserved": 4096,
                  "min_unit": 1, "max_unit": 131072, "step_size": 1},
    "DISK_GB": {"total": 2000, "allocation_ratio": 1.0, "reserved": 0,
                "min_unit": 1, "max_unit": 2000, "step_size": 1},
}


def rp_uuid(i):
    return str(uuid.uuid5(NS, f"cn-{i}"))


def agg_uuid(a):
    return str(uuid.uuid5(NS, f"agg-{a}"))


def traits_of(i):
    t = ["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE42", "COMPUTE_VOLUME_MULTI_ATTACH",
         f"CUSTOM_RACK_{i % RACKS}"]
    if i % 20 == 3:
        t.append("COMPUTE_STATUS_DISABLED")
    return t


def consumers_of(i):
    """(consumer uuid, resources) of the instances already running on provider i."""
    out = [(str(uuid.uuid5(NS, f"vm-{i}-{k}")), {"VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 80})
           for k in range(2)]
    if i % 20 == 7:  # leaves 2000 - 160 - 1830 = 10 GB of disk: too little for the flavor
        out.append((str(uuid.uuid5(NS, f"big-{i}")), {"VCPU": 8, "MEMORY_MB": 16384, "DISK_GB": 1830}))
    return out


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server has closed it."""

    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http":
            raise SystemExit(f"only http:// URLs: {base}")
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.headers = {"X-Auth-Token": token, "OpenStack-API-Version": MICROVERSION,
                        "Accept": "application/json"}
        self.conn = None

    def request(self, method, path, body=None):
        """Returns (status, body bytes, seconds from send to the last byte read)."""
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
                self.conn.connect()
            try:
                t0 = time.perf_counter()
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                t1 = time.perf_counter()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                # The server closed an idle keep-alive connection: a new one, once more.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.getheader("connection", "").lower() == "close" or resp.will_close:
                self.conn.close()
                self.conn = None
            return resp.status, payload, t1 - t0
        raise AssertionError("unreachable")

    def call(self, method, path, body=None, expect=(200,), retry=(), tries=20):
        """Like request, but checks the status; statuses in retry are tried again (SQLite's
        'database is locked' answers 500 when two writers collide)."""
        for n in range(tries):
            status, payload, secs = self.request(method, path, body)
            if status in expect:
                return payload, secs
            if status in retry and n + 1 < tries:
                time.sleep(0.05 * (n + 1))
                continue
            raise SystemExit(f"{method} {path}: {status} (expected {expect}): {payload[:600]!r}")
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, expect=(200,), retry=()):
        payload, _ = self.call(method, path, body, expect, retry)
        return json.loads(payload) if payload else None


def run_parallel(args, items, fn):
    """fn(client, item) for every item, on args.concurrency connections."""
    local = threading.local()

    def work(item):
        if not hasattr(local, "client"):
            local.client = Client(args.url, args.token)
        return fn(local.client, item)

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        for _ in pool.map(work, items):
            pass


def generation(c, u):
    return c.json("GET", f"/resource_providers/{u}")["generation"]


def fill(args):
    t_start = time.perf_counter()
    c = Client(args.url, args.token)
    rng = range(args.start, args.stop)
    for r in range(RACKS):
        c.call("PUT", f"/traits/CUSTOM_RACK_{r}", expect=(201, 204))

    # 1. providers, their inventories, traits and aggregate (generation 0 -> 1 -> 2 -> 3).
    def provider(cl, i):
        u = rp_uuid(i)
        status, payload, _ = cl.request("POST", "/resource_providers", {"name": f"cn-{i:05d}", "uuid": u})
        if status == 409:  # there from an earlier, interrupted fill
            gen = generation(cl, u)
        elif status == 200:
            gen = json.loads(payload)["generation"]
        else:
            raise SystemExit(f"POST /resource_providers: {status}: {payload[:600]!r}")
        for path, body in (("inventories", {"inventories": INVENTORIES}),
                           ("traits", {"traits": traits_of(i)}),
                           ("aggregates", {"aggregates": [agg_uuid((i // 100) % AGGREGATES)]})):
            for n in range(50):
                body["resource_provider_generation"] = gen
                status, payload, _ = cl.request("PUT", f"/resource_providers/{u}/{path}", body)
                if status == 200:
                    gen = json.loads(payload)["resource_provider_generation"]
                    break
                if status in (409, 500) and n < 49:  # a generation or lock conflict: again
                    time.sleep(0.05)
                    gen = generation(cl, u)
                    continue
                raise SystemExit(f"PUT {path} of {u}: {status}: {payload[:600]!r}")

    run_parallel(args, rng, provider)
    t_providers = time.perf_counter()

    batches = [list(rng[k:k + args.batch]) for k in range(0, len(rng), args.batch)]

    # 2. the running instances, in batches through POST /allocations (1.13+).
    def allocate(cl, batch):
        body = {}
        for i in batch:
            for consumer, resources in consumers_of(i):
                body[consumer] = {"allocations": {rp_uuid(i): {"resources": resources}},
                                  "project_id": PROJECT, "user_id": USER,
                                  "consumer_generation": None, "consumer_type": "INSTANCE"}
        cl.call("POST", "/allocations", body, expect=(204,), retry=(500,))

    # One batch at a time: on SQLite two big writes at once make one of them fail
    # ("database is locked") after doing all its work, and retrying costs more than waiting.
    for batch in batches:
        allocate(c, batch)
    t_end = time.perf_counter()
    print(json.dumps({"providers": len(rng), "fill_s": round(t_end - t_start, 2),
                      "providers_s": round(t_providers - t_start, 2),
                      "allocations_s": round(t_end - t_providers, 2)}))


def stats(samples):
    s = sorted(samples)
    n = len(s)

    def pct(p):  # nearest rank
        return s[max(0, min(n - 1, int(round(p / 100 * n + 0.5)) - 1))]
    ms = lambda v: round(v * 1000, 2)
    return {"n": n, "p50": ms(pct(50)), "p90": ms(pct(90)), "p99": ms(pct(99)),
            "mean": ms(sum(s) / n), "min": ms(s[0]), "max": ms(s[-1])}


def measure(args):
    c = Client(args.url, args.token)
    out = {}

    def candidates(path, count, key):
        body, times, ncand = None, [], 0
        for k in range(args.warmup + count):
            payload, secs = c.call("GET", path)
            if k >= args.warmup:
                times.append(secs)
            body = payload
        doc = json.loads(body)
        ncand = len(doc["allocation_requests"])
        out[key] = stats(times) | {"candidates": ncand, "bytes": len(body)}
        return doc

    doc = candidates(f"/allocation_candidates?{QUERY}&limit={args.limit}", args.requests, "candidates_limit")
    if args.requests_unlimited > 0:
        candidates(f"/allocation_candidates?{QUERY}", args.requests_unlimited, "candidates_all")

    # Claims on providers from the candidates, as the scheduler does after its filtering.
    picks = [list(r["allocations"])[0] for r in doc["allocation_requests"]]
    if not picks:
        raise SystemExit("no allocation candidates came back")
    rnd = random.Random(args.seed)
    times = []
    for k in range(args.warmup + args.claims):
        body = {"allocations": {rnd.choice(picks): {"resources": FLAVOR}},
                "project_id": PROJECT, "user_id": USER,
                "consumer_generation": None, "consumer_type": "INSTANCE"}
        _, secs = c.call("PUT", f"/allocations/{uuid.uuid4()}", body, expect=(204,))
        if k >= args.warmup:
            times.append(secs)
    out["claim"] = stats(times)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["fill", "measure"])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--to", dest="stop", type=int, default=1000)
    p.add_argument("--batch", type=int, default=250, help="providers per POST /allocations")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--requests-unlimited", type=int, default=20)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--claims", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    (fill if args.mode == "fill" else measure)(args)


if __name__ == "__main__":
    sys.exit(main())
