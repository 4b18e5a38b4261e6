"""Real Debian nginx with the built seatgate module, for the integration tests.

- NginxServer: one nginx (master + workers, `daemon off`) under a temporary
  prefix, on free loopback ports, loading build/ngx_http_seatgate_module.so
  (or $SEATGATE_NGX_MODULE) with load_module. Every instance checks at stop
  that no worker crashed ("exited on signal"), that nothing was logged at
  [alert]/[crit]/[emerg], and, in a SANITIZE=1 run, that ASan/UBSan reported
  nothing.
- nginx fixture: a factory; instances are stopped (and checked) at teardown.
- http(): a small requests wrapper that never raises on HTTP errors.

Configs are written by the tests: `servers` is the text inside http{} after
the module's directives; {port}, {backend}, {prefix} and {htpasswd} are
substituted.
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

import helpers

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULE = os.environ.get("SEATGATE_NGX_MODULE") or os.path.join(
    helpers.BUILD, "ngx_http_seatgate_module.so")
SANITIZE = os.environ.get("SEATGATE_SANITIZE") == "1"
LUA_MODULES = ["/usr/lib/nginx/modules/ndk_http_module.so",
               "/usr/lib/nginx/modules/ngx_http_lua_module.so"]

# users of the default htpasswd file: name -> password
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw",
         "dave": "dave-pw", "erin": "erin-pw", "frank": "frank-pw",
         "hub": "hub-pw", "mallory": "mallory-pw"}

CRASH = re.compile(r"exited on signal|\[(alert|crit|emerg)\]|segfault|AddressSanitizer|"
                   r"runtime error:")

# every variable of the module in one response header (add_header ... always)
SG_HEADER = ('add_header X-SG "$seatgate_result|$seatgate_reason|$seatgate_user|'
             '$seatgate_seat|$seatgate_pool|$seatgate_on_behalf_of|$seatgate_identity|'
             '$seatgate_cache" always;')


def sanitizer_env(prefix):
    """LD_PRELOAD of the ASan runtime for an nginx that loads a sanitized module."""
    env = {}
    lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    env["LD_PRELOAD"] = os.path.realpath(lib)
    # nginx itself frees little at exit: leak reports would be nginx's, not ours
    env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=1:disable_coredump=1:"
                           "detect_stack_use_after_return=1:"
                           "log_path=%s/logs/asan" % prefix)
    env["UBSAN_OPTIONS"] = ("print_stacktrace=1:halt_on_error=1:"
                            "log_path=%s/logs/ubsan" % prefix)
    return env


class NginxServer:
    def __init__(self, tmpdir, redis_url=None, servers="", workers=1, timeout="500ms",
                 zone="sg:1m", redis_extra="", http_extra="", load_before=(),
                 load_after=(), users=None, main_extra="", redis_line=True):
        self.prefix = str(tmpdir)
        self.port = helpers.free_port()
        self.backend = helpers.free_port()
        self.redis_url = redis_url
        self.servers = servers
        self.workers = workers
        self.timeout = timeout
        self.zone = zone
        self.redis_extra = redis_extra
        self.http_extra = http_extra
        self.load_before = list(load_before)
        self.load_after = list(load_after)
        self.main_extra = main_extra
        self.redis_line = redis_line
        self.users = dict(USERS if users is None else users)
        self.proc = None
        self.htpasswd = os.path.join(self.prefix, "htpasswd")
        self.conf_path = os.path.join(self.prefix, "nginx.conf")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        self.access_log = os.path.join(self.prefix, "logs", "access.log")
        os.makedirs(os.path.join(self.prefix, "logs"), exist_ok=True)
        os.makedirs(os.path.join(self.prefix, "html"), exist_ok=True)
        with open(os.path.join(self.prefix, "html", "index.html"), "w") as f:
            f.write("protected content\n")
        self.write_htpasswd()
        self.write_conf()

    # ---- configuration --------------------------------------------------

    def write_htpasswd(self):
        with open(self.htpasswd, "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (u, p))

    def subst(self, text):
        return (text.replace("{port}", str(self.port))
                    .replace("{backend}", str(self.backend))
                    .replace("{prefix}", self.prefix)
                    .replace("{htpasswd}", self.htpasswd))

    def render(self):
        lines = []
        for m in self.load_before:
            lines.append("load_module %s;" % m)
        lines.append("load_module %s;" % MODULE)
        for m in self.load_after:
            lines.append("load_module %s;" % m)
        if os.geteuid() == 0:
            lines.append("user root;")
        lines += [
            "worker_processes %d;" % self.workers,
            "daemon off;",
            "pid %s/nginx.pid;" % self.prefix,
            "error_log %s info;" % self.error_log,
            self.main_extra,
            "events { worker_connections 2048; }",
            "http {",
            "    log_format sg '$remote_user $status $seatgate_result $seatgate_reason "
            "$seatgate_user $seatgate_seat $seatgate_cache';",
            "    access_log %s sg;" % self.access_log,
            "    client_body_temp_path %s/client_body;" % self.prefix,
            "    proxy_temp_path %s/proxy;" % self.prefix,
            "    fastcgi_temp_path %s/fastcgi;" % self.prefix,
            "    uwsgi_temp_path %s/uwsgi;" % self.prefix,
            "    scgi_temp_path %s/scgi;" % self.prefix,
            "    default_type text/plain;",
        ]
        if self.redis_url and self.redis_line:
            lines.append("    seatgate_redis %s timeout=%s%s;" % (
                self.redis_url, self.timeout, (" " + self.redis_extra) if self.redis_extra else ""))
        if self.zone and self.redis_url:
            lines.append("    seatgate_zone %s;" % self.zone)
        lines.append(self.subst(self.http_extra))
        # a backend that echoes what the protected locations stamp upstream
        lines += [
            "    server {",
            "        listen 127.0.0.1:%d;" % self.backend,
            "        location / {",
            '            return 200 "backend user=$http_x_seatgate_user '
            'obo=$http_x_seatgate_on_behalf_of result=$http_x_seatgate_result '
            'seat=$http_x_seatgate_seat uri=$uri\\n";',
            "        }",
            "        location = /auth {",
            '            if ($http_x_token = "good-alice") { add_header X-User alice; return 200; }',
            '            if ($http_x_token = "good-bob") { add_header X-User bob; return 200; }',
            '            if ($http_x_token = "good-mallory") { add_header X-User mallory; return 200; }',
            "            return 401;",
            "        }",
            "    }",
        ]
        lines.append(self.subst(self.servers))
        lines.append("}")
        return "\n".join(lines) + "\n"

    def write_conf(self):
        with open(self.conf_path, "w") as f:
            f.write(self.render())

    # ---- process --------------------------------------------------------

    def env(self):
        env = dict(os.environ)
        if SANITIZE:
            env.update(sanitizer_env(self.prefix))
        return env

    def test_config(self):
        """nginx -t: (returncode, output)."""
        p = subprocess.run([NGINX, "-t", "-p", self.prefix, "-c", self.conf_path, "-e", "stderr"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=self.env(), timeout=30)
        return p.returncode, p.stdout

    def start(self, wait=True):
        self.stderr = open(os.path.join(self.prefix, "logs", "stderr.log"), "ab")
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", self.conf_path,
                                      "-e", "stderr"],
                                     stdout=self.stderr, stderr=subprocess.STDOUT,
                                     env=self.env())
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s:\n%s" % (
                    self.proc.returncode, self.read_stderr()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                # the workers are up; give their Redis links a moment
                self.wait_workers()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nginx did not listen on %d:\n%s" % (self.port, self.read_stderr()))

    def worker_pids(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             stdout=subprocess.PIPE, text=True).stdout
        return [int(x) for x in out.split()]

    def wait_workers(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.workers:
                time.sleep(0.05)
                return
            time.sleep(0.02)

    def reload(self, timeout=15):
        """SIGHUP and wait until only new workers remain."""
        old = set(self.worker_pids())
        self.write_conf()
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = set(self.worker_pids())
            if pids and not (pids & old) and len(pids) >= self.workers:
                time.sleep(0.1)
                return
            time.sleep(0.05)
        raise RuntimeError("reload did not replace the workers")

    def stop(self, check=True):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                if check:
                    raise AssertionError("nginx did not stop on SIGQUIT:\n" + self.tail())
        self.proc = None
        self.stderr.close()
        if check:
            self.assert_clean()

    def read_stderr(self):
        try:
            with open(os.path.join(self.prefix, "logs", "stderr.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def crash_lines(self):
        lines = [l for l in (self.log() + self.read_stderr()).splitlines() if CRASH.search(l)]
        for path in glob.glob(os.path.join(self.prefix, "logs", "asan*")) + glob.glob(
                os.path.join(self.prefix, "logs", "ubsan*")):
            with open(path, errors="replace") as f:
                lines.append("%s: %s" % (path, f.read()[:4000]))
        return lines

    def assert_clean(self):
        bad = self.crash_lines()
        assert not bad, "nginx crashed or reported errors:\n" + "\n".join(bad)

    # ---- HTTP -----------------------------------------------------------

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, user=None, password=None, headers=None, timeout=10, **kw):
        auth = None
        if user is not None:
            auth = (user, self.users.get(user, "") if password is None else password)
        return requests.get(self.url(path), auth=auth, headers=headers or {},
                            timeout=timeout, allow_redirects=False, **kw)

    def metrics(self, path="/metrics"):
        """Prometheus text -> {"name{labels}": float}."""
        r = requests.get(self.url(path), timeout=10)
        assert r.status_code == 200, r.text
        out = {}
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
        return out


def sg(resp):
    """The X-SG header (every module variable) as a dict."""
    names = ["result", "reason", "user", "seat", "pool", "on_behalf_of", "identity", "cache"]
    raw = resp.headers.get("X-SG")
    assert raw is not None, "no X-SG header: %s %r" % (resp.status_code, resp.text[:200])
    return dict(zip(names, raw.split("|")))


@pytest.fixture
def nginx(tmp_path, redis_server, rdb):
    """nginx(servers=..., **opts) -> a started NginxServer on the session Redis
    (redis_url=None for none). Stopped and checked for crashes at teardown."""
    made = []

    def start(servers="", start=True, **kw):
        kw.setdefault("redis_url", redis_server.decide_url)
        d = tmp_path / ("nginx%d" % len(made))
        d.mkdir()
        n = NginxServer(d, servers=servers, **kw)
        made.append(n)
        if start:
            n.start()
        return n

    yield start
    errors = []
    for n in made:
        try:
            n.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


def wait_for(pred, timeout=5.0, interval=0.05):
    """Polls pred() until truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    v = pred()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = pred()
    return v


class OwnRedis(helpers.RedisServer):
    """A private redis-server (DEBUG enabled) that can be stopped and started
    again on the same port, for the tests that break Redis."""

    def __init__(self, tmpdir, extra_args=()):
        super().__init__(extra_args=["--enable-debug-command", "yes"] + list(extra_args),
                         tmpdir=str(tmpdir))

    def kill(self):
        self._kill()

    def restart(self):
        """Starts again on the same port (empty: no persistence)."""
        import subprocess as sp
        log = open(os.path.join(self.tmpdir, "redis-%d.log" % self.port), "ab")
        self.proc = sp.Popen(
            [helpers.REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", self.tmpdir,
             "--daemonize", "no", "--protected-mode", "no"] + self.extra_args,
            stdout=log, stderr=sp.STDOUT, cwd=self.tmpdir)
        log.close()
        self._wait_ready()
        return self

    def seatctl(self, *args, check=None):
        return helpers.run_seatctl(self.url, *args, check=check)


@pytest.fixture
def own_redis(tmp_path):
    """A private Redis the test may stop, freeze, restart."""
    d = tmp_path / "own-redis"
    d.mkdir()
    srv = OwnRedis(d).start()
    yield srv
    srv.stop()
