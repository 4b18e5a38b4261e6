#!/usr/bin/python3
"""make bench, SCIM endpoint rows (issue 13): requests per second of nginx's
seatgate_scim over BENCH_SCIM_USERS (10,000) SCIM users and 20 pools, one
worker pinned to a core, wrk on loopback (BENCH_CONNECTIONS, 32), beside the
same nginx serving a static file (the ceiling):
  GET /Users?filter=userName eq "..."   one Redis script call per request
  PATCH /Users/{id} active false/true   the whole write: the record, the
                                        change log, every pool it matters to
                                        (a disabled person matters to all 20)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from bench_model import Bench, free_port, row  # noqa: E402

USERS = int(os.environ.get("BENCH_SCIM_USERS", "10000"))
POOLS = int(os.environ.get("BENCH_SCIM_POOLS", "20"))
SECS = int(os.environ.get("BENCH_SECONDS", "3"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
TOKEN = "bench-scim-token-0123456789abcdef"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def wrk(url, *args):
    cpu = ["taskset", "-c", "0"] if os.cpu_count() > 1 else []
    p = subprocess.run(cpu + ["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % SECS, "--latency",
                              "-s", os.path.join(ROOT, "tests", "bench", "wrk-scim.lua"),
                              url, "--"] + list(args),
                       stdout=subprocess.PIPE, text=True, check=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", p.stdout).group(1))
    bad = int(re.search(r"non2xx (\d+)", p.stdout).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", p.stdout)
    ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return rps, bad, ms


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    module = os.environ.get("SEATGATE_NGX_MODULE") or os.path.join(build,
                                                                   "ngx_http_seatgate_module.so")
    b = Bench(build)
    tmp = tempfile.mkdtemp(prefix="sg-bench-scim-")
    proc = None
    try:
        for i in range(POOLS):
            b.seatctl("pool", "set", "p%02d" % i, "--floating", "50")
        b.seatctl("pool", "set", "technicians", "--named", str(USERS), "--floating", "100")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN)
        os.chmod(tok, 0o600)
        port = free_port()
        os.makedirs(os.path.join(tmp, "logs"))
        with open(os.path.join(tmp, "index.html"), "w") as f:
            f.write("x" * 200)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""load_module %s;
%s
worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %s/body;
    seatgate_redis %s timeout=1s;
    server {
        listen 127.0.0.1:%d;
        location /scim/v2/ { seatgate_scim map=%s token_file=%s; }
        location = /index.html { root %s; }
    }
}
""" % (module, "user root;" if os.geteuid() == 0 else "", tmp, tmp, tmp, b.url, port,
                os.path.join(ROOT, "conf", "sync-map.conf"), tok, tmp))
        cpu = ["taskset", "-c", "1"] if os.cpu_count() > 1 else []
        proc = subprocess.Popen(cpu + [NGINX, "-p", tmp, "-c", conf, "-e", "stderr"],
                                stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(tmp, "logs", "stderr"), "w"))
        base = "http://127.0.0.1:%d/scim/v2/" % port
        s = requests.Session()
        s.headers.update({"Authorization": "Bearer " + TOKEN,
                          "Content-Type": "application/scim+json"})
        for _ in range(100):
            try:
                s.get(base + "ServiceProviderConfig", timeout=1)
                break
            except requests.exceptions.ConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError("nginx: " + open(os.path.join(tmp, "logs", "stderr")).read())
                time.sleep(0.05)
        ids = os.path.join(tmp, "ids")
        t = time.monotonic()
        with open(ids, "w") as f:
            for i in range(USERS):
                u = "scim%05d" % i
                r = s.post(base + "Users", data=json.dumps({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": u, "active": True,
                    "title": "ITSM-L3" if i % 4 == 0 else "ITSM-L1",
                    "emails": [{"primary": True, "type": "work", "value": u + "@x.example"}]}),
                    timeout=10)
                if r.status_code != 201:
                    raise RuntimeError("POST: %d %s" % (r.status_code, r.text[:300]))
                f.write("%s %s\n" % (r.json()["id"], u))
        made = time.monotonic() - t
        print("SCIM endpoint: %d users, %d pools, 1 worker, wrk %d connections, %d s" % (
            USERS, POOLS + 1, CONNS, SECS))
        row("POST /Users one at a time (the %d users)" % USERS, "%.0f" % (USERS / made),
            "req/s")
        plain, pbad, pms = wrk("http://127.0.0.1:%d/index.html" % port, "static", TOKEN, ids)
        row("static file, same nginx (the ceiling)", "%.0f" % plain, "req/s",
            "p99 %.2f ms, non-2xx %d" % (pms, pbad), pbad == 0)
        for mode, label in (("filter", 'GET /Users?filter=userName eq "..."'),
                            ("patch", "PATCH /Users/{id} active false/true")):
            rps, bad, ms = wrk(base, mode, TOKEN, ids)
            row(label, "%.0f" % rps, "req/s", "%.3f of static, p99 %.2f ms, non-2xx %d" % (
                rps / plain, ms, bad), bad == 0)
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
