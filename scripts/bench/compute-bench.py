#!/usr/bin/env python3
"""Drives the compute benchmarks against a running ferrostack (stdlib only).

  compute-bench.py boot  BASE DATA_DIR IMAGE_ID RUNS         boot latency: bare QEMU vs the API
  compute-bench.py churn BASE COUNT CONCURRENCY DATA_DIR  fake-driver create/delete throughput
  compute-bench.py rally BASE DATA_DIR VENV WORK COUNT CONCURRENCY [REPORT_DIR]
                                                          the same load from Rally

`boot`: for each run, (a) the QEMU command line the driver used for the previous server,
run by hand (same accelerator, devices and image; -daemonize dropped), from process start
to the guest's ready line in its console file; (b) POST /servers to the same ready line
in the server's console file, and POST to the QEMU process start (its pidfile's mtime).
`churn`: COUNT servers created by CONCURRENCY clients, each waiting for ACTIVE, then all
deleted the same way; checks that no allocation and no server is left.
`rally`: Rally (the venv VENV from scripts/bench/rally-venv.sh) runs
NovaServers.boot_and_delete_server COUNT times at CONCURRENCY (rally-boot-and-delete.yaml,
polling settings in rally.conf) as the demo user of the cloud's clouds.yaml, with its
database, environment and reports in WORK (the Rally JSON and HTML reports are also copied
to REPORT_DIR when given); the cloud's own request counts and latencies per route come from
/metrics before and after; then the same leak check as `churn`.
Prints one JSON object.
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

READY = b"ferrostack-guest ready:"


def call(base, method, path, token=None, body=None, version="2.1", headers=None):
    req = urllib.request.Request(base + path, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    req.add_header("OpenStack-API-Version", "compute " + version)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None), e.headers


def token(base, user, password, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
                     "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    st, _, h = call(base, "POST", "/identity/v3/auth/tokens", body=body)
    assert st == 201, st
    return h["X-Subject-Token"]


UPTIME = re.compile(rb"metadata source=.* uptime=([0-9.]+)s")


def guest_uptime(path):
    """The guest's own uptime when it had read its metadata (its init prints it)."""
    m = UPTIME.search(open(path, "rb").read())
    return float(m.group(1)) if m else None


def wait_file(path, needle, t0, timeout=300):
    while True:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return time.monotonic() - t0
        except FileNotFoundError:
            pass
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"no {needle!r} in {path} after {timeout} s")
        time.sleep(0.01)


def boot(base, data, image, runs):
    pw = open(os.path.join(data, "demo-password")).read().strip()
    tok = token(base, "demo", pw, "demo")
    api, api_spawn, bare, api_up, bare_up = [], [], [], [], []
    for i in range(runs):
        t0 = time.monotonic()
        wall0 = time.time()
        st, body, _ = call(base, "POST", "/compute/v2.1/servers", tok, {"server": {"name": f"bench-{i}", "imageRef": image, "flavorRef": "42", "networks": "none"}}, "2.37")
        assert st == 202, body
        sid = body["server"]["id"]
        vm = os.path.join(data, "instances", sid)
        api.append(wait_file(os.path.join(vm, "console.log"), READY, t0))
        api_up.append(guest_uptime(os.path.join(vm, "console.log")))
        api_spawn.append(os.stat(os.path.join(vm, "qemu.pid")).st_mtime - wall0)
        # The same VM by hand: its command line, without -daemonize, on copies of its disk
        # overlay (fresh) and config drive, with the console in a new file.
        pid = int(open(os.path.join(vm, "qemu.pid")).read())
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        args = [a.decode() for a in args]
        work = tempfile.mkdtemp(prefix="bench-bare-")
        spec = json.load(open(os.path.join(vm, "spec.json")))
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", spec["root_disk"]["base_image"], os.path.join(work, "disk.qcow2")], check=True)
        shutil.copy(spec["config_drive"], os.path.join(work, "config.iso"))
        call(base, "DELETE", f"/compute/v2.1/servers/{sid}", tok)
        out, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a in ("-daemonize",):
                continue
            if a == "-pidfile":
                skip = True
                continue
            if a == "-S":
                continue
            a = a.replace(vm, work).replace(spec["config_drive"], os.path.join(work, "config.iso"))
            out.append(a)
        t0 = time.monotonic()
        p = subprocess.Popen(out, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bare.append(wait_file(os.path.join(work, "console.log"), READY, t0))
        bare_up.append(guest_uptime(os.path.join(work, "console.log")))
        p.kill()
        p.wait()
        shutil.rmtree(work)
        # Let the delete finish before the next boot.
        for _ in range(600):
            if call(base, "GET", f"/compute/v2.1/servers/{sid}", tok)[0] == 404:
                break
            time.sleep(0.05)
    med = statistics.median
    return {"runs": runs, "api_to_ready_median_s": med(api), "bare_qemu_to_ready_median_s": med(bare),
            "ratio": med(api) / med(bare), "post_to_qemu_started_median_ms": med(api_spawn) * 1000,
            "api_all": api, "bare_all": bare, "api_guest_uptime_all": api_up, "bare_guest_uptime_all": bare_up}


def churn(base, count, conc, data):
    pw = open(os.path.join(data, "admin-password")).read().strip()
    tok = token(base, "admin", pw, "admin")
    st, body, _ = call(base, "GET", "/image/v2/images?name=ferrostack-guest", tok)
    image = body["images"][0]["id"]

    def wait(sid, want):
        while True:
            st, body, _ = call(base, "GET", f"/compute/v2.1/servers/{sid}", tok)
            if want == "DELETED" and st == 404:
                return
            s = body["server"]["status"] if st == 200 else None
            if s == want and body["server"]["OS-EXT-STS:task_state"] is None:
                return
            if s == "ERROR":
                raise SystemExit(f"{sid} went to ERROR: {body['server'].get('fault')}")
            time.sleep(0.02)

    def create(i):
        st, body, _ = call(base, "POST", "/compute/v2.1/servers", tok, {"server": {"name": f"churn-{i}", "imageRef": image, "flavorRef": "42", "networks": "none"}}, "2.37")
        assert st == 202, body
        sid = body["server"]["id"]
        wait(sid, "ACTIVE")
        return sid

    def delete(sid):
        st, _, _ = call(base, "DELETE", f"/compute/v2.1/servers/{sid}", tok)
        assert st == 204, st
        wait(sid, "DELETED")

    t0 = time.monotonic()
    with ThreadPoolExecutor(conc) as ex:
        ids = list(ex.map(create, range(count)))
    boot_s = time.monotonic() - t0
    pid = int(subprocess.run(["pgrep", "-f", f"ferrostack up --data-dir {data}"], capture_output=True, text=True).stdout.split()[0])
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) // 1024
    t1 = time.monotonic()
    with ThreadPoolExecutor(conc) as ex:
        list(ex.map(delete, ids))
    delete_s = time.monotonic() - t1
    left, used = leftovers(base, tok)
    return {"servers": count, "concurrency": conc, "boots_per_s": count / boot_s, "deletes_per_s": count / delete_s,
            "boot_and_delete_per_s": count / (boot_s + delete_s), "rss_mib_with_servers": rss,
            "servers_left": left, "allocations_left": used}


def leftovers(base, tok):
    """Servers left in any project and units still allocated in Placement (admin token)."""
    st, body, _ = call(base, "GET", "/compute/v2.1/servers?all_tenants=1", tok)
    left = len(body["servers"])
    st, rps, _ = call(base, "GET", "/placement/resource_providers", tok, headers={"OpenStack-API-Version": "placement 1.39"})
    used = 0
    for rp in rps["resource_providers"]:
        _, u, _ = call(base, "GET", f"/placement/resource_providers/{rp['uuid']}/usages", tok)
        used += sum(u["usages"].values())
    return left, used


METRIC = re.compile(r'ferrostack_http_request_duration_seconds_(sum|count)\{method="(\w+)",route="([^"]+)",status="(\d+)"\} (\S+)')


def route_times(base):
    """{(method, route, status): [count, seconds]} from the cloud's /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=60) as r:
        text = r.read().decode()
    out = {}
    for m in METRIC.finditer(text):
        out.setdefault((m[2], m[3], m[4]), [0, 0.0])[0 if m[1] == "count" else 1] += float(m[5])
    return out


def rally(base, data, venv, work, count, conc, report_dir=None):
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(work, "home"), exist_ok=True)
    # Rally keeps its current environment and task under ~/.rally: a home of its own.
    env = dict(os.environ, HOME=os.path.join(work, "home"))
    with open(os.path.join(work, "db.conf"), "w") as f:
        f.write(f"[database]\nconnection = sqlite:///{os.path.join(work, 'rally.sqlite')}\n")
    log = open(os.path.join(work, "rally.log"), "w")

    def run(*args, ok=(0,)):
        cmd = [os.path.join(venv, "bin", "rally"), "--config-file", os.path.join(here, "rally.conf"),
               "--config-file", os.path.join(work, "db.conf"), *args]
        log.write(f"$ rally {' '.join(args)}\n")
        log.flush()
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.write(p.stdout)
        log.flush()
        if p.returncode not in ok:
            sys.stderr.write(p.stdout[-4000:])
            raise SystemExit(f"rally {args[0]} {args[1]} exited {p.returncode} (log: {log.name})")
        return p.stdout

    # The existing users of `ferrostack up`: its clouds.yaml (admin, and demo as the user
    # that runs the load), read with the venv's PyYAML.
    clouds = json.loads(subprocess.run(
        [os.path.join(venv, "bin", "python"), "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
         os.path.join(data, "clouds.yaml")], check=True, capture_output=True, text=True).stdout)["clouds"]

    def cred(cloud):
        a = cloud["auth"]
        # Rally's spec takes domain names only; the default domain is "Default".
        return {"username": a["username"], "password": a["password"], "project_name": a["project_name"],
                "user_domain_name": "Default", "project_domain_name": "Default"}

    admin, user = clouds["ferrostack-admin"], clouds["ferrostack"]
    spec = {"openstack": {"auth_url": admin["auth"]["auth_url"], "region_name": admin.get("region_name", "RegionOne"),
                          "endpoint_type": admin.get("interface", "public"), "admin": cred(admin), "users": [cred(user)]}}
    with open(os.path.join(work, "env.json"), "w") as f:
        json.dump(spec, f)
    run("db", "create")
    run("env", "create", "--name", "ferrostack", "--spec", os.path.join(work, "env.json"), "--no-use")
    run("env", "check", "--env", "ferrostack")
    before = route_times(base)
    # Exit code 2: an SLA failed (some iteration failed); the report says which.
    out = run("task", "start", os.path.join(here, "rally-boot-and-delete.yaml"), "--env", "ferrostack", "--no-use",
              "--task-args", json.dumps({"times": count, "concurrency": conc}), ok=(0, 2))
    after = route_times(base)
    task = re.search(r"Task +([0-9a-f-]{36}): started", out)[1]
    report = os.path.join(work, "report.json")
    run("task", "report", task, "--json", "--out", report)
    if report_dir:
        os.makedirs(report_dir, exist_ok=True)
        shutil.copy(report, os.path.join(report_dir, "rally-report.json"))
        run("task", "report", task, "--out", os.path.join(report_dir, "rally-report.html"))
    w = json.load(open(report))["tasks"][0]["subtasks"][0]["workloads"][0]

    def stats(d):
        return {"median_s": d["median"], "p90_s": d["90%ile"], "p95_s": d["95%ile"], "max_s": d["max"], "avg_s": d["avg"]}

    durations = w["statistics"]["durations"]
    atomics = {a["name"]: stats(a["data"]) for a in durations["atomics"]}
    errors = [it["error"] for it in w["data"] if it["error"]]
    server_side = {}
    for key, (n, secs) in sorted(after.items()):
        n0, secs0 = before.get(key, [0, 0.0])
        if n > n0 and key[1] != "/metrics":
            server_side[" ".join(key)] = {"count": int(n - n0), "mean_ms": round(1000 * (secs - secs0) / (n - n0), 2)}
    pw = open(os.path.join(data, "admin-password")).read().strip()
    left, used = leftovers(base, token(base, "admin", pw, "admin"))
    return {"scenario": "NovaServers.boot_and_delete_server", "task": task, "iterations": w["total_iteration_count"],
            "failures": w["failed_iteration_count"], "concurrency": conc, "load_duration_s": w["load_duration"],
            "full_duration_s": w["full_duration"], "boots_per_s": w["total_iteration_count"] / w["load_duration"],
            "total": stats(durations["total"]["data"]), "atomics": atomics, "first_errors": errors[:3],
            "server_side": server_side, "servers_left": left, "allocations_left": used}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "boot":
        print(json.dumps(boot(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
    elif mode == "churn":
        print(json.dumps(churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
    else:
        print(json.dumps(rally(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]),
                               sys.argv[8] if len(sys.argv) > 8 else None)))
