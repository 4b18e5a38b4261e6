"""make install (DESTDIR): what goes where, and the config file's mode
(issue 11: the config may hold a Redis password; PAM refuses it unless it
is root's and not writable by group or others)."""
import os
import stat
import subprocess

import helpers


def make_install(destdir, *extra):
    return subprocess.run(["make", "-s", "-C", helpers.REPO, "install", "DESTDIR=%s" % destdir,
                           "PREFIX=/usr", "B=%s" % os.path.relpath(helpers.BUILD, helpers.REPO)]
                          + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_make_install_puts_the_config_in_place_as_0600(tmp_path):
    d = tmp_path / "root"
    res = make_install(d)
    assert res.returncode == 0, res.stdout
    conf = d / "etc/security/seatgate.conf"
    assert mode(conf) == 0o600
    if os.geteuid() == 0:
        assert os.stat(conf).st_uid == 0
    assert mode(d / "usr/bin/seatctl") == 0o755
    secure = [p for p in d.glob("lib/*/security/pam_seatgate.so")]
    assert len(secure) == 1 and mode(secure[0]) == 0o644, secure
    assert (d / "usr/share/man/man8/pam_seatgate.8").exists()
    assert (d / "usr/share/man/man1/seatctl.1").exists()
    # an existing config is kept (an admin's password in it), made private
    conf.write_text("pool = mine\n")
    conf.chmod(0o644)
    res = make_install(d)
    assert res.returncode == 0, res.stdout
    assert conf.read_text() == "pool = mine\n"
    assert mode(conf) == 0o600
    assert "keeping" in res.stdout


def test_the_shipped_redis_settings_load(tmp_path):
    """conf/redis-seatgate.conf, included as its header says (its aclfile the
    shipped ACL), starts a redis-server with the listpack limits, the roles
    and persistence it promises; the examples install it."""
    import redis
    acl = tmp_path / "seatgate-acl.conf"
    acl.write_text(open(os.path.join(helpers.REPO, "conf", "redis-acl.conf")).read()
                   .replace("CHANGE-ME-admin", helpers.ADMIN_PASSWORD)
                   + "user probe on >probe-pw ~* &* +@all\n")   # the test's, to read CONFIG
    snippet = tmp_path / "seatgate.conf"
    snippet.write_text(open(os.path.join(helpers.REPO, "conf", "redis-seatgate.conf")).read()
                       .replace("/etc/redis/seatgate-acl.conf", str(acl)))
    port = helpers.free_port()
    main = tmp_path / "redis.conf"
    main.write_text("port %d\nbind 127.0.0.1\ndir %s\ninclude %s\n" % (port, tmp_path, snippet))
    proc = subprocess.Popen(["redis-server", str(main)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, username="probe", password="probe-pw",
                        decode_responses=True)
        up = False
        for _ in range(100):
            try:
                up = r.ping()
                break
            except redis.exceptions.ConnectionError:
                import time
                time.sleep(0.05)
        assert up and proc.poll() is None, "redis-server did not start with the snippet"
        cfg = r.config_get("*-max-listpack-entries")
        assert cfg["hash-max-listpack-entries"] == "16", cfg
        assert cfg["zset-max-listpack-entries"] == "16", cfg
        assert r.config_get("appendonly")["appendonly"] == "yes"
        with __import__("pytest").raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port).ping()                 # default is off
        admin = redis.Redis(port=port, username="seatgate-admin",
                            password=helpers.ADMIN_PASSWORD)
        assert admin.ping()
    finally:
        proc.terminate()
        proc.wait()
    d = tmp_path / "root"
    assert make_install(d).returncode == 0
    assert (d / "usr/share/doc/seatgate/examples/redis-seatgate.conf").exists()
