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
