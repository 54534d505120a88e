"""Where the host's CPU really is: cgroup and /proc parsing, on fixture trees
under tmp_path (no real /sys needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm import cgroups
from ccfarm.cgroups import CpuCgroup, effective_cpus, find_cpu_cgroup, read_usage
from ccfarm.daemon.probe import tree_cpu

V1 = "4:memory:/x\n2:cpu,cpuacct:/farm/host1\n1:name=systemd:/\n0::/\n"
V1_SPLIT = "2:cpuacct:/farm/host1\n1:cpu:/farm/host1\n0::/\n"
V2 = "0::/farm/host1\n"


def _files(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


# -- pure parsing --------------------------------------------------------------


def test_proc_cgroup_lines() -> None:
    assert cgroups.parse_proc_cgroup(V1) == {
        "memory": "/x",
        "cpu": "/farm/host1",
        "cpuacct": "/farm/host1",
        "name=systemd": "/",
        "": "/",
    }
    assert cgroups.parse_proc_cgroup(V2) == {"": "/farm/host1"}
    assert cgroups.parse_proc_cgroup("garbage\n3:cpu\n2:cpu:relative\n\x00") == {}


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("max 100000\n", None),
        ("50000 100000\n", 0.5),
        ("250000 100000", 2.5),
        ("0 100000", None),
        ("50000 0", None),
        ("", None),
        ("fifty 100000", None),
        ("1 2 3", None),
    ],
)
def test_cpu_max(text: str, cpus: float | None) -> None:
    assert cgroups.parse_cpu_max(text) == cpus


def test_cfs_quota() -> None:
    assert cgroups.parse_cfs("30000\n", "100000\n") == 0.3
    assert cgroups.parse_cfs("-1\n", "100000\n") is None
    assert cgroups.parse_cfs("x", "100000") is None
    assert cgroups.parse_cfs("30000", "-5") is None


def test_usage_counters() -> None:
    assert cgroups.parse_usage_usec("usage_usec 2500000\nuser_usec 1\n") == 2.5
    assert cgroups.parse_usage_usec("user_usec 1\n") is None
    assert cgroups.parse_usage_usec("usage_usec lots\n") is None
    assert cgroups.parse_cpuacct_usage("1500000000\n") == 1.5
    assert cgroups.parse_cpuacct_usage("-3") is None
    assert cgroups.parse_cpuacct_usage("") is None
    assert cgroups.parse_cpuacct_usage("\u00b2") is None  # a digit to str.isdigit
    assert cgroups.parse_cfs("--5", "100000") is None


def test_proc_stat() -> None:
    stat = "42 (cc1 (x) y) R 7 1 1 0 -1 0 0 0 0 0 150 50 20 30 20 0 1 0 5"
    assert cgroups.parse_proc_stat(stat) == (42, 7, 250)
    assert cgroups.parse_proc_stat("42 (cc1) R 7") is None
    assert cgroups.parse_proc_stat("no parenthesis at all") is None


# -- fixture trees ---------------------------------------------------------------


def test_v2_nested_limit_and_use(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {
            "cpu.stat": "usage_usec 900000000\n",
            "farm/cpu.max": "max 100000\n",
            "farm/cpu.stat": "usage_usec 5000000\n",
            "farm/host1/cpu.max": "30000 100000\n",
            "farm/host1/cpu.stat": "usage_usec 2000000\nuser_usec 1\n",
        },
    )
    cg = find_cpu_cgroup(V2, root)
    assert cg == CpuCgroup(2, 0.3, os.path.join(root, "farm/host1/cpu.stat"))
    assert read_usage(cg) == 2.0
    assert effective_cpus(cg) == 0.3


def test_v2_limit_on_an_ancestor_counts_its_use(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {
            "farm/cpu.max": "50000 100000\n",
            "farm/cpu.stat": "usage_usec 7000000\n",
            "farm/host1/cpu.max": "max 100000\n",
            "farm/host1/cpu.stat": "usage_usec 1000000\n",
        },
    )
    cg = find_cpu_cgroup(V2, root)
    assert cg is not None and cg.limit == 0.5 and read_usage(cg) == 7.0


def test_v2_no_limit_and_missing_files(tmp_path: Path) -> None:
    root = _files(tmp_path, {"farm/host1/cpu.stat": "usage_usec 10\n"})
    assert find_cpu_cgroup(V2, root) == CpuCgroup(2, None, f"{root}/farm/host1/cpu.stat")
    assert find_cpu_cgroup(V2, str(tmp_path / "absent")) is None
    assert find_cpu_cgroup("", root) is None
    assert effective_cpus(CpuCgroup(2, None, "x")) == len(os.sched_getaffinity(0))


def test_v1_joint_mount(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {
            "cpu,cpuacct/farm/cpu.cfs_quota_us": "-1\n",
            "cpu,cpuacct/farm/cpu.cfs_period_us": "100000\n",
            "cpu,cpuacct/farm/host1/cpu.cfs_quota_us": "15000\n",
            "cpu,cpuacct/farm/host1/cpu.cfs_period_us": "100000\n",
            "cpu,cpuacct/farm/host1/cpuacct.usage": "3000000000\n",
        },
    )
    cg = find_cpu_cgroup(V1, root)
    assert cg == CpuCgroup(1, 0.15, f"{root}/cpu,cpuacct/farm/host1/cpuacct.usage")
    assert read_usage(cg) == 3.0


def test_v1_split_mounts(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {
            "cpu/farm/cpu.cfs_quota_us": "75000\n",
            "cpu/farm/cpu.cfs_period_us": "100000\n",
            "cpu/farm/host1/cpu.cfs_quota_us": "-1\n",
            "cpu/farm/host1/cpu.cfs_period_us": "100000\n",
            "cpuacct/cpuacct.usage": "99000000000\n",
            "cpuacct/farm/cpuacct.usage": "4000000000\n",
            "cpuacct/farm/host1/cpuacct.usage": "1000000000\n",
        },
    )
    cg = find_cpu_cgroup(V1_SPLIT, root)  # limited by farm: its use, not host1's
    assert cg == CpuCgroup(1, 0.75, f"{root}/cpuacct/farm/cpuacct.usage")


def test_v1_container_sees_its_cgroup_as_the_root(tmp_path: Path) -> None:
    # /proc/self/cgroup names the machine's path; the mount is the container's
    root = _files(
        tmp_path,
        {
            "cpu/cpu.cfs_quota_us": "200000\n",
            "cpu/cpu.cfs_period_us": "100000\n",
            "cpuacct/cpuacct.usage": "garbage\n",
        },
    )
    cg = find_cpu_cgroup("2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n", root)
    assert cg == CpuCgroup(1, 2.0, f"{root}/cpuacct/cpuacct.usage")
    assert read_usage(cg) is None  # garbage: unreadable now
    assert find_cpu_cgroup("1:cpu:/docker/abc\n", str(tmp_path / "none")) is None


def test_container_markers(tmp_path: Path) -> None:
    assert not cgroups.in_container(str(tmp_path), {})
    assert cgroups.in_container(str(tmp_path), {"container": "podman"})
    (tmp_path / ".dockerenv").write_text("")
    assert cgroups.in_container(str(tmp_path), {})


def test_tree_cpu_sums_live_descendants(tmp_path: Path) -> None:
    hz = os.sysconf("SC_CLK_TCK")

    def proc(pid: int, ppid: int, ticks: int) -> dict[str, str]:
        stat = f"{pid} (p) S {ppid} 0 0 0 0 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 5"
        return {f"{pid}/stat": stat}

    files = {**proc(10, 1, hz), **proc(11, 10, 2 * hz), **proc(12, 11, hz), **proc(13, 1, hz)}
    root = _files(tmp_path, {**files, "self": "", "14/stat": "garbage"})
    assert tree_cpu(10, root) == 4.0
    assert tree_cpu(13, root) == 1.0
    assert tree_cpu(99, root) == 0.0
    assert tree_cpu(10, str(tmp_path / "absent")) == 0.0
    assert tree_cpu() > 0  # this test process, for real


def test_v1_quota_without_accounting_sums_its_processes(tmp_path: Path) -> None:
    # cpu and cpuacct mounted apart, the group made in cpu only: the
    # cpuacct root is the whole machine's and must not be read
    hz = os.sysconf("SC_CLK_TCK")
    stat = "{} (p) S 1 0 0 0 0 0 0 0 0 0 {} 0 {} 0 20 0 1 0 5"
    root = _files(
        tmp_path / "sys",
        {
            "cpu/h1/cpu.cfs_quota_us": "30000\n",
            "cpu/h1/cpu.cfs_period_us": "100000\n",
            "cpu/h1/cgroup.procs": "10\n11\n99\n",
            "cpu/h1/sub/cgroup.procs": "12\n",
            "cpuacct/cpuacct.usage": "99000000000\n",
        },
    )
    proc = _files(
        tmp_path / "proc",
        {
            "10/stat": stat.format(10, hz, hz),  # itself 1 s, its reaped children 1 s
            "11/stat": stat.format(11, 3 * hz, 0),
            "12/stat": stat.format(12, hz, 0),
        },
    )
    cg = find_cpu_cgroup("2:cpuacct:/\n1:cpu:/h1\n", root)
    assert cg == CpuCgroup(1, 0.3, f"{root}/cpu/h1/cgroup.procs")
    assert read_usage(cg, proc) == 6.0
    assert read_usage(CpuCgroup(1, 0.3, f"{root}/cpu/gone/cgroup.procs"), proc) is None


@given(
    st.text(alphabet=st.sampled_from("0123456789- :\n()max_usec\u00b2\u0661"), max_size=60)
    | st.text(max_size=200)
)
def test_parsers_take_any_text(text: str) -> None:
    # a number, a mapping or None: never an exception
    assert isinstance(cgroups.parse_proc_cgroup(text), dict)
    for parse in (cgroups.parse_cpu_max, cgroups.parse_usage_usec, cgroups.parse_cpuacct_usage):
        value = parse(text)
        assert value is None or value >= 0
    assert cgroups.parse_cfs(text, text) is None or cgroups.parse_cfs(text, text) == 1.0
    parsed = cgroups.parse_proc_stat(text)
    assert parsed is None or len(parsed) == 3
