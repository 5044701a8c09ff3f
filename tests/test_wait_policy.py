"""The OpenMP wait policy the command line picks: sleep when other work holds the cores, else spin."""

import subprocess
import sys

from fa_compress.machine import busy_cores, choose_wait_policy


def test_a_busy_machine_gets_passive_waiting_and_a_quiet_one_keeps_the_default():
    env = {}
    assert choose_wait_policy(env, busy=lambda: 1.2) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {}
    assert choose_wait_policy(env, busy=lambda: 0.1) is None and env == {}
    env = {}
    assert choose_wait_policy(env, busy=lambda: None) is None and env == {}  # no /proc/stat: leave it


def test_an_explicit_setting_wins():
    for given in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}):
        env = dict(given)
        assert choose_wait_policy(env, busy=lambda: 2.0) is None and env == given


def test_busy_cores_from_two_readings():
    readings = iter([(1000, 600), (1200, 700)])  # 200 jiffies, 100 of them idle: half the time busy
    assert busy_cores(0.0, read=lambda: next(readings), cores=2) == 1.0
    assert busy_cores(0.0, read=lambda: (_ for _ in ()).throw(OSError("no /proc"))) is None


def test_the_cli_leaves_an_explicit_policy_alone():
    code = ("import os; os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'; import fa_compress.cli.app; "
            "print(os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ACTIVE"


def test_the_record_names_the_policy_in_force(monkeypatch):
    from fa_compress.machine import wait_policy_record

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert wait_policy_record()["policy"] == "PASSIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert wait_policy_record()["policy"].startswith("OpenMP default")
