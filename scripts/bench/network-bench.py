#!/usr/bin/env python3
"""Drives the networking benchmark (scripts/bench-network.sh; stdlib only).

  network-bench.py api   BASE DATA_DIR OVN_DIR PORTS ROUTERS CONCURRENCY
  network-bench.py nbctl OVN_DIR PORTS ROUTERS CONCURRENCY
  network-bench.py fip   BASE DATA_DIR SERVERS

`api`: as admin (quotas lifted for the admin project), a network with a /16 subnet, then
PORTS ports on it by CONCURRENCY clients; then ROUTERS routers, each with its own network,
/24 subnet, a gateway on `public` and an interface on that subnet (4 requests per router,
in order, CONCURRENCY routers at a time). Each phase is timed from its first request until
the Northbound database holds every row and `ovn-nbctl --wait=hv sync` has returned (every
chassis has the flows); per-request latencies by kind, p50/p99.
`nbctl`: the same rows (the switch port columns ML2/OVN writes, port groups with the
default security group's ACLs, DHCP options, metadata ports, routers with gateway chassis,
SNAT and default routes) written by ovn-nbctl alone against the fresh stack in OVN_DIR, one
ovn-nbctl transaction per API request (as ML2/OVN transacts per object), through one
ovn-nbctl daemon (a persistent connection, as Neutron's), CONCURRENCY at a time, timed the
same way; then the ports again as a single batched transaction per 100 ports.
`fip`: SERVERS servers booted on `private` as the demo user, each given a floating IP as
soon as it has a port; time from POST /servers until the floating IP answers ping from
the host.
Prints one JSON object.
"""
import json, os, random, statistics, subprocess, sys, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor


def call(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=120) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else raw), e.headers


def login(base, user, password, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
                     "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    st, b, h = call(base, "POST", "/identity/v3/auth/tokens", body=body)
    assert st == 201, (st, b)
    return h["X-Subject-Token"], b["token"]["project"]["id"]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(lat):
    return {"count": len(lat), "p50_ms": round(pct(lat, 50) * 1000, 2), "p99_ms": round(pct(lat, 99) * 1000, 2),
            "mean_ms": round(statistics.mean(lat) * 1000, 2)}


class Ovn:
    def __init__(self, ovn_dir):
        run = os.path.join(ovn_dir, "run")
        self.env = dict(os.environ, OVN_NB_DB=f"unix:{run}/ovnnb_db.sock", OVN_SB_DB=f"unix:{run}/ovnsb_db.sock", OVN_RUNDIR=run)
        self.env.pop("OVN_NB_DAEMON", None)
        self.run_dir = run

    def nbctl(self, *args, daemon=False):
        env = self.env if not daemon else dict(self.env, OVN_NB_DAEMON=self.daemon_sock)
        out = subprocess.run(["ovn-nbctl", "--timeout=600", *args], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"ovn-nbctl {' '.join(args[:6])}...: {out.stderr.strip()}")
        return out.stdout

    def sbctl(self, *args):
        return subprocess.run(["ovn-sbctl", *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def count(self, table, cond=None):
        args = ["--bare", "--columns=_uuid"] + (["find", table, cond] if cond else ["list", table])
        return len([l for l in self.nbctl(*args).split("\n") if l.strip()])

    def start_daemon(self):
        out = subprocess.run(["ovn-nbctl", "--detach", "--no-chdir", f"--pidfile={self.run_dir}/bench-nbctl.pid",
                              f"--log-file={self.run_dir}/../log/bench-nbctl.log"], env=self.env, capture_output=True, text=True, check=True)
        self.daemon_sock = out.stdout.strip()

    def stop_daemon(self):
        try:
            pid = int(open(f"{self.run_dir}/bench-nbctl.pid").read().strip())
            os.kill(pid, 15)
        except (OSError, ValueError):
            pass

    def wait_rows(self, table, cond, n, timeout=600):
        t0 = time.monotonic()
        while self.count(table, cond) < n:
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"{table} {cond}: fewer than {n} rows after {timeout} s")
            time.sleep(0.05)

    def wait_hv(self):
        t0 = time.monotonic()
        self.nbctl("--wait=sb", "sync")
        sb = time.monotonic() - t0
        self.nbctl("--wait=hv", "sync")
        return sb, time.monotonic() - t0


def timed_pool(conc, jobs):
    """Runs jobs (callables returning a list of (kind, seconds)) on conc threads."""
    lat = {}
    with ThreadPoolExecutor(conc) as ex:
        for res in ex.map(lambda j: j(), jobs):
            for kind, s in res:
                lat.setdefault(kind, []).append(s)
    return lat


def api(base, data, ovn_dir, ports, routers, conc):
    ovn = Ovn(ovn_dir)
    pw = open(os.path.join(data, "admin-password")).read().strip()
    tok, project = login(base, "admin", pw, "admin")
    st, b, _ = call(base, "PUT", f"/networking/v2.0/quotas/{project}", tok,
                    {"quota": {"port": -1, "network": -1, "subnet": -1, "router": -1, "floatingip": -1}})
    assert st == 200, (st, b)
    st, b, _ = call(base, "GET", "/networking/v2.0/networks?name=public", tok)
    public = b["networks"][0]["id"]

    def req(kind, method, path, body, want):
        t0 = time.monotonic()
        st, b, _ = call(base, method, "/networking/v2.0" + path, tok, body)
        dt = time.monotonic() - t0
        if st != want:
            raise SystemExit(f"{method} {path}: {st} {b}")
        return b, (kind, dt)

    st, net, _ = call(base, "POST", "/networking/v2.0/networks", tok, {"network": {"name": "bench-ports"}})
    net = net["network"]["id"]
    st, sub, _ = call(base, "POST", "/networking/v2.0/subnets", tok,
                      {"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.128.0.0/16", "name": "bench-ports"}})
    assert st == 201, sub
    ovn.nbctl("--wait=hv", "sync")
    lsp_before = ovn.count("Logical_Switch_Port")

    def port(i):
        _, l = req("POST /ports", "POST", "/ports", {"port": {"network_id": net, "name": f"bench-{i}"}}, 201)
        return [l]

    t0 = time.monotonic()
    lat_ports = timed_pool(conc, [lambda i=i: port(i) for i in range(ports)])
    t_api = time.monotonic() - t0
    ovn.wait_rows("Logical_Switch_Port", None, lsp_before + ports)
    t_nb = time.monotonic() - t0
    sb, hv = ovn.wait_hv()
    t_ports = time.monotonic() - t0

    lr_before = ovn.count("Logical_Router")
    lrp_before = ovn.count("Logical_Router_Port")

    def router(i):
        out = []
        b, l = req("POST /networks", "POST", "/networks", {"network": {"name": f"bench-r{i}"}}, 201)
        out.append(l)
        n = b["network"]["id"]
        b, l = req("POST /subnets", "POST", "/subnets", {"subnet": {"network_id": n, "ip_version": 4, "name": f"bench-r{i}",
                                                                   "cidr": f"10.{64 + i // 256}.{i % 256}.0/24"}}, 201)
        out.append(l)
        s = b["subnet"]["id"]
        b, l = req("POST /routers", "POST", "/routers", {"router": {"name": f"bench-r{i}", "external_gateway_info": {"network_id": public}}}, 201)
        out.append(l)
        r = b["router"]["id"]
        _, l = req("PUT add_router_interface", "PUT", f"/routers/{r}/add_router_interface", {"subnet_id": s}, 200)
        out.append(l)
        return out

    t1 = time.monotonic()
    lat_routers = timed_pool(conc, [lambda i=i: router(i) for i in range(routers)])
    r_api = time.monotonic() - t1
    ovn.wait_rows("Logical_Router", None, lr_before + routers)
    ovn.wait_rows("Logical_Router_Port", None, lrp_before + 2 * routers)
    r_nb = time.monotonic() - t1
    rsb, rhv = ovn.wait_hv()
    t_routers = time.monotonic() - t1
    all_lat = [x for v in list(lat_ports.values()) + list(lat_routers.values()) for x in v]
    return {
        "ports": ports, "routers": routers, "concurrency": conc,
        "ports_phase": {"api_s": round(t_api, 3), "in_nb_s": round(t_nb, 3), "hv_sync_s": round(hv, 3), "total_s": round(t_ports, 3),
                        "latency": {k: summary(v) for k, v in lat_ports.items()}},
        "routers_phase": {"api_s": round(r_api, 3), "in_nb_s": round(r_nb, 3), "hv_sync_s": round(rhv, 3), "total_s": round(t_routers, 3),
                          "latency": {k: summary(v) for k, v in lat_routers.items()}},
        "all_requests": summary(all_lat),
        "nb_rows": {"Logical_Switch_Port": ovn.count("Logical_Switch_Port"), "Logical_Router": ovn.count("Logical_Router"),
                    "Logical_Router_Port": ovn.count("Logical_Router_Port"), "NAT": ovn.count("NAT"), "ACL": ovn.count("ACL")},
    }


def mac(i):
    return "fa:16:3e:%02x:%02x:%02x" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def ids(d):
    return "{" + ",".join(f'"{k}"="{v}"' for k, v in d.items()) + "}"


def nbctl(ovn_dir, ports, routers, conc):
    ovn = Ovn(ovn_dir)
    chassis = ovn.sbctl("--bare", "--columns=name", "list", "Chassis").split()[0]
    ovn.start_daemon()
    try:
        return _nbctl(ovn, chassis, ports, routers, conc)
    finally:
        ovn.stop_daemon()


def _nbctl(ovn, chassis, ports, routers, conc):
    nb = lambda *a: ovn.nbctl(*a, daemon=True)
    proj = "0" * 32
    # What exists before the measured phases, as ML2/OVN would have it: the drop port group,
    # a default security group's port group with its ACLs, the public network with its
    # localnet port, the ports' network with its DHCP options and metadata port.
    pg, drop = "pg_bench", "neutron_pg_drop"
    nb("pg-add", drop)
    nb("--type=port-group", "acl-add", drop, "to-lport", "1001", f"outport == @{drop} && ip", "drop")
    nb("--type=port-group", "acl-add", drop, "from-lport", "1001", f"inport == @{drop} && ip", "drop")
    nb("pg-add", pg)
    for d, m in [("from-lport", f"inport == @{pg} && ip4"), ("from-lport", f"inport == @{pg} && ip6"),
                 ("to-lport", f"outport == @{pg} && ip4 && ip4.src == ${pg}_ip4"), ("to-lport", f"outport == @{pg} && ip6 && ip6.src == ${pg}_ip6")]:
        nb("--type=port-group", "acl-add", pg, d, "1002", m, "allow-related")
    nb("--", "--id=@ls", "create", "Logical_Switch", "name=neutron-public", 'external_ids={"neutron:network_name"="public"}',
       "--", "--id=@p", "create", "Logical_Switch_Port", "name=provnet-public", "type=localnet", "addresses=unknown",
       "options:network_name=public", "--", "add", "Logical_Switch", "neutron-public", "ports", "@p")
    dhcp_opts = lambda cidr, gw: ("options={" + f'"lease_time"="43200","mtu"="1442","router"="{gw}","server_id"="{gw}",'
                                  f'"server_mac"="fa:16:3e:ff:ff:ff","dns_server"="{{8.8.8.8}}"' + "}")

    def network(name, cidr, gw, meta_ip, i):
        nb("--", "create", "Logical_Switch", f"name=neutron-{name}",
           "external_ids=" + ids({"neutron:network_name": name, "neutron:revision_number": "1"}), "other_config:mcast_snoop=false")
        uuid = nb("--", "create", "DHCP_Options", f"cidr={cidr}", dhcp_opts(cidr, gw),
                  "external_ids=" + ids({"subnet_id": name, "neutron:revision_number": "1"}),
                  "--", "--id=@m", "create", "Logical_Switch_Port", f"name=meta-{name}", "type=localport",
                  f'addresses="{mac(0xf00000 + i)} {meta_ip}"', "external_ids=" + ids({"neutron:device_owner": "network:distributed"}),
                  "--", "add", "Logical_Switch", f"neutron-{name}", "ports", "@m").split()[0]
        return uuid

    dhcp = network("bench-ports", "10.128.0.0/16", "10.128.0.1", "10.128.0.2", 0)
    dhcp2 = None
    ovn.nbctl("--wait=hv", "sync")

    def port_args(i, net="bench-ports", prefix="10.128", ref="@p"):
        ip = f"{prefix}.{(i + 3) // 256}.{(i + 3) % 256}"
        a = f"{mac(i)} {ip}"
        ext = {"neutron:cidrs": f"{ip}/16", "neutron:device_id": "", "neutron:device_owner": "", "neutron:network_name": f"neutron-{net}",
               "neutron:port_name": f"{net}-{i}", "neutron:project_id": proj, "neutron:revision_number": "1", "neutron:security_group_ids": pg}
        return ["--", f"--id={ref}", "create", "Logical_Switch_Port", f"name={net}-port-{i}", f'addresses="{a}"', f'port_security="{a}"',
                f"dhcpv4_options={dhcp if net == 'bench-ports' else dhcp2}", "external_ids=" + ids(ext), "options:mcast_flood_reports=true",
                "--", "add", "Logical_Switch", f"neutron-{net}", "ports", ref,
                "--", "add", "Port_Group", pg, "ports", ref, "--", "add", "Port_Group", drop, "ports", ref]

    def port(i):
        t0 = time.monotonic()
        nb(*port_args(i))
        return [("port transaction", time.monotonic() - t0)]

    t0 = time.monotonic()
    lat_ports = timed_pool(conc, [lambda i=i: port(i) for i in range(ports)])
    t_api = time.monotonic() - t0
    sb, hv = ovn.wait_hv()
    t_ports = time.monotonic() - t0

    def router(i):
        out = []
        name = f"bench-r{i}"
        net = f"10.{64 + i // 256}.{i % 256}"
        j = 10 + i  # the API's gateways come from public's pool, 172.24.4.2 upwards
        gw_ip = f"172.24.{4 + j // 250}.{2 + j % 250}"
        t = time.monotonic()
        nb("--", "create", "Logical_Switch", f"name=neutron-{name}", "external_ids=" + ids({"neutron:network_name": name}), "other_config:mcast_snoop=false")
        out.append(("network", time.monotonic() - t))
        t = time.monotonic()
        network_dhcp = nb("--", "create", "DHCP_Options", f"cidr={net}.0/24", dhcp_opts(net, f"{net}.1"),
                          "external_ids=" + ids({"subnet_id": name}),
                          "--", "--id=@m", "create", "Logical_Switch_Port", f"name=meta-{name}", "type=localport",
                          f'addresses="{mac(0xe00000 + i)} {net}.2"', "--", "add", "Logical_Switch", f"neutron-{name}", "ports", "@m")
        out.append(("subnet", time.monotonic() - t))
        t = time.monotonic()
        nb("--", "--id=@gc", "create", "Gateway_Chassis", f"name=lrp-gw-{i}_{chassis}", f"chassis_name={chassis}", "priority=1",
           "--", "--id=@lrp", "create", "Logical_Router_Port", f"name=lrp-gw-{i}", f"mac=\"{mac(0xd00000 + i)}\"", f'networks="{gw_ip}/24"', "gateway_chassis=@gc",
           "--", "--id=@rt", "create", "Logical_Router_Static_Route", "ip_prefix=\"0.0.0.0/0\"", "nexthop=\"172.24.4.1\"",
           "--", "create", "Logical_Router", f"name=neutron-{name}", "ports=@lrp", "static_routes=@rt", "options:always_learn_from_arp_request=false",
           "options:dynamic_neigh_routers=true", "external_ids=" + ids({"neutron:router_name": name}),
           "--", "--id=@gp", "create", "Logical_Switch_Port", f"name=gw-{i}", "type=router", "addresses=router", f"options:router-port=lrp-gw-{i}",
           "--", "add", "Logical_Switch", "neutron-public", "ports", "@gp")
        out.append(("router with gateway", time.monotonic() - t))
        t = time.monotonic()
        nb("--", "--id=@lrp", "create", "Logical_Router_Port", f"name=lrp-if-{i}", f"mac=\"{mac(0xc00000 + i)}\"", f'networks="{net}.1/24"',
           "--", "add", "Logical_Router", f"neutron-{name}", "ports", "@lrp",
           "--", "--id=@p", "create", "Logical_Switch_Port", f"name=if-{i}", "type=router", "addresses=router", f"options:router-port=lrp-if-{i}",
           "--", "add", "Logical_Switch", f"neutron-{name}", "ports", "@p",
           "--", "--id=@n", "create", "NAT", "type=snat", f"external_ip=\"{gw_ip}\"", f'logical_ip="{net}.0/24"',
           "--", "add", "Logical_Router", f"neutron-{name}", "nat", "@n")
        out.append(("interface", time.monotonic() - t))
        return out

    t1 = time.monotonic()
    lat_routers = timed_pool(conc, [lambda i=i: router(i) for i in range(routers)])
    r_api = time.monotonic() - t1
    rsb, rhv = ovn.wait_hv()
    t_routers = time.monotonic() - t1

    # The ports once more, 100 per transaction, on a second switch (the fastest ovn-nbctl
    # can be told the same thing).
    dhcp2 = network("bench-ports2", "10.129.0.0/16", "10.129.0.1", "10.129.0.2", 1)
    ovn.nbctl("--wait=hv", "sync")
    t2 = time.monotonic()
    for start in range(0, ports, 100):
        args = []
        for i in range(start, min(ports, start + 100)):
            args += port_args(i, "bench-ports2", "10.129", f"@p{i}")
        nb(*args)
    b_api = time.monotonic() - t2
    bsb, bhv = ovn.wait_hv()
    t_batched = time.monotonic() - t2
    all_lat = [x for v in list(lat_ports.values()) + list(lat_routers.values()) for x in v]
    return {
        "ports": ports, "routers": routers, "concurrency": conc,
        "ports_phase": {"written_s": round(t_api, 3), "hv_sync_s": round(hv, 3), "total_s": round(t_ports, 3),
                        "latency": {k: summary(v) for k, v in lat_ports.items()}},
        "routers_phase": {"written_s": round(r_api, 3), "hv_sync_s": round(rhv, 3), "total_s": round(t_routers, 3),
                          "latency": {k: summary(v) for k, v in lat_routers.items()}},
        "ports_batched_100": {"written_s": round(b_api, 3), "hv_sync_s": round(bhv, 3), "total_s": round(t_batched, 3)},
        "all_transactions": summary(all_lat),
        "nb_rows": {"Logical_Switch_Port": ovn.count("Logical_Switch_Port"), "Logical_Router": ovn.count("Logical_Router"),
                    "Logical_Router_Port": ovn.count("Logical_Router_Port"), "NAT": ovn.count("NAT"), "ACL": ovn.count("ACL")},
    }


def fip(base, data, servers):
    pw = open(os.path.join(data, "demo-password")).read().strip()
    tok, project = login(base, "demo", pw, "demo")
    n = lambda m, p, b=None: call(base, m, "/networking/v2.0" + p, tok, b)
    st, b, _ = n("GET", f"/security-groups?name=default&project_id={project}")
    sg = b["security_groups"][0]["id"]
    for rule in [{"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}]:
        st, b, _ = n("POST", "/security-group-rules", {"security_group_rule": dict(rule, direction="ingress", ethertype="IPv4", security_group_id=sg)})
        assert st in (201, 409), (st, b)
    public = n("GET", "/networks?name=public")[1]["networks"][0]["id"]
    private = n("GET", "/networks?name=private")[1]["networks"][0]["id"]
    st, b, _ = call(base, "GET", "/image/v2/images?name=ferrostack-guest", tok)
    image = b["images"][0]["id"]
    results = []
    for k in range(servers):
        t0 = time.monotonic()
        st, b, _ = call(base, "POST", "/compute/v2.1/servers", tok,
                        {"server": {"name": f"bench-fip-{k}", "flavorRef": "42", "imageRef": image, "networks": [{"uuid": private}]}})
        assert st == 202, (st, b)
        sid = b["server"]["id"]
        port = None
        while port is None:
            st, b, _ = n("GET", f"/ports?device_id={sid}")
            port = b["ports"][0]["id"] if b["ports"] else None
            if time.monotonic() - t0 > 120:
                raise SystemExit("no port for the server after 120 s")
            time.sleep(0.05)
        st, b, _ = n("POST", "/floatingips", {"floatingip": {"floating_network_id": public, "port_id": port}})
        assert st == 201, (st, b)
        addr, fid = b["floatingip"]["floating_ip_address"], b["floatingip"]["id"]
        t_fip = time.monotonic() - t0
        active = None
        while True:
            if active is None:
                st, b, _ = call(base, "GET", f"/compute/v2.1/servers/{sid}", tok)
                if b["server"]["status"] == "ACTIVE":
                    active = time.monotonic() - t0
                elif b["server"]["status"] == "ERROR":
                    raise SystemExit(f"server {sid} went to ERROR: {b['server'].get('fault')}")
            if subprocess.run(["ping", "-c1", "-W1", addr], capture_output=True).returncode == 0:
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"{addr} did not answer ping within 600 s")
        reach = time.monotonic() - t0
        results.append({"server_create_to_ping_s": round(reach, 2), "to_active_s": active and round(active, 2), "fip_associated_s": round(t_fip, 2)})
        n("DELETE", f"/floatingips/{fid}")
        call(base, "DELETE", f"/compute/v2.1/servers/{sid}", tok)
        # Gone before the next boot (and before the cloud is stopped, so no QEMU outlives it).
        t_del = time.monotonic()
        while call(base, "GET", f"/compute/v2.1/servers/{sid}", tok)[0] != 404:
            if time.monotonic() - t_del > 120:
                raise SystemExit(f"server {sid} not deleted after 120 s")
            time.sleep(0.1)
    xs = [r["server_create_to_ping_s"] for r in results]
    return {"servers": servers, "runs": results, "median_s": round(statistics.median(xs), 2) if xs else None}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "api":
        out = api(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]))
    elif cmd == "nbctl":
        out = nbctl(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "fip":
        out = fip(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))
