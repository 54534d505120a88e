"""The daemon's settings: each field is a flag and a TOML key of its name,
with distccd's spellings where it has one (see `ccfarm.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from ccfarm.addresses import DAEMON_PORT, STATS_PORT
from ccfarm.cgroups import cpu_slots
from ccfarm.config import (
    secret_file_setting,
    setting,
    tls_ca_setting,
    tls_cert_setting,
    tls_key_setting,
    tls_require_setting,
)

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical")
SANDBOX_MODES = ("auto", "require", "off")
#: the default warm pool: one ready job directory per job slot, at most this many
#: (each is three processes of the daemon's user: see --limit-processes)
MAX_DEFAULT_POOL = 8
#: distccd's --allow-private: the private IPv4 networks, loopback, and
#: IPv6 loopback, unique local and link-local addresses
PRIVATE_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)


@dataclass(frozen=True)
class DaemonConfig:
    """What `ccfarmd` is told by flags and file; read by its service and agent."""

    port: int = setting(DAEMON_PORT, "TCP port", flags=("-p", "--port"))
    listen: str = setting("0.0.0.0", "address to bind", metavar="ADDR", shown="0.0.0.0, all")
    allow: tuple[str, ...] = setting(
        (),
        "allowed client network; none given = nobody allowed",
        flags=("-a", "--allow"),
        metavar="CIDR",
    )
    secret_file: str = secret_file_setting()
    distcc_clients: bool = setting(
        True,
        "with --secret-file or --tls-require: still take plain distcc requests (protocols"
        " 1-3, which cannot authenticate) from --allow networks; --no-distcc-clients"
        " refuses them",
    )
    tls_cert: str = tls_cert_setting(
        "with --tls-key, the port accepts TLS too; with --tls-ca also presented to schedulers"
    )
    tls_key: str = tls_key_setting()
    tls_ca: str = tls_ca_setting(
        "TLS clients must present a certificate it signed, and the host agent connects"
        " to schedulers with TLS, checking theirs"
    )
    tls_require: bool = tls_require_setting(
        "ccfarm's own connections (plain distcc requests from --allow networks are still"
        " served, unless --no-distcc-clients)"
    )
    allow_private: bool = setting(
        False, "allow the private networks too (10/8, 172.16/12, 192.168/16, 127/8, IPv6 ones)"
    )
    jobs: int = setting(
        cpu_slots(),
        "compilers run at once",
        flags=("-j", "--jobs"),
        shown="this host's CPUs: its affinity mask, capped by a cgroup CPU quota, rounded up",
    )
    queue: int = setting(
        0,
        "connections that may wait for a free job slot before new ones are refused",
        shown="0 = 4 x jobs",
    )
    nice: int = setting(0, "niceness increment for compilers", flags=("-N", "--nice"))
    job_lifetime: float = setting(
        300.0, "kill compiles older than S seconds (0 = unlimited)", metavar="S"
    )
    io_timeout: float = setting(
        60.0, "longest wait for each read or write of a job, in seconds", metavar="S"
    )
    idle_timeout: float = setting(
        10.0, "seconds a new connection may take to start its request", metavar="S"
    )
    request_timeout: float = setting(
        300.0, "seconds a whole request may take to arrive", metavar="S"
    )
    max_connections: int = setting(
        512,
        "connections served at once; more are closed at once",
        metavar="N",
        shown="512, fewer if file descriptors are short",
    )
    max_client_connections: int = setting(
        64, "connections served at once from one client address", metavar="N"
    )
    body_memory: int = setting(
        256,
        "MiB of request bodies held in memory at once, all connections together"
        " (the others wait for room)",
        metavar="MIB",
    )
    max_body: int = setting(
        128, "MiB: the largest request body, on the wire and decompressed", metavar="MIB"
    )
    drain_timeout: float = setting(
        600.0, "at shutdown, seconds the running jobs get to finish", metavar="S"
    )
    compilers: tuple[str, ...] = setting(
        (),
        "allow exactly these compiler names",
        flags=("--compiler",),
        metavar="NAME",
        shown="the ones found on the compiler path",
    )
    allow_compiler: tuple[str, ...] = setting(
        (), "allow this compiler name in addition to the defaults", metavar="NAME"
    )
    compiler_path: str = setting(
        "",
        "colon-separated directories searched for compilers",
        metavar="DIRS",
        shown="$PATH",
        env="DISTCCD_PATH",
    )
    tmpdir: str = setting("", "where job directories are made", shown="$TMPDIR")
    scheduler: tuple[str, ...] = setting(
        (), "register with this ccfarm-scheduler", metavar="HOST[:PORT]"
    )
    advertise: str = setting(
        "",
        "address the scheduler hands out for this host",
        metavar="ADDR",
        shown="the address this host uses to reach the scheduler",
    )
    speed: float = setting(
        0.0, "pin the speed score (bigger is faster)", shown="0 = measure at start"
    )
    state_dir: str = setting(
        "",
        "keep the speed probe's result here across restarts (none: probe at each start)",
        metavar="DIR",
        shown="$STATE_DIRECTORY, else /var/lib/ccfarmd as root, else ~/.local/state/ccfarmd",
    )
    heartbeat: float = setting(2.0, "seconds between reports to the scheduler", metavar="S")
    desktop_activity: str = setting(
        "none",
        "where the time of the last desktop input comes from:"
        " none, file:PATH (its mtime), command:CMD",
        metavar="SPEC",
    )
    desktop_idle: float = setting(
        300.0, "input within S seconds means the desktop is in use", metavar="S"
    )
    detach: bool = setting(True, "run in the background (--no-detach: stay in the foreground)")
    log_file: str = setting("", "write the log to FILE", metavar="FILE", shown="stderr")
    log_stderr: bool = setting(False, "log to stderr as well as to --log-file")
    log_level: str = setting("info", "least severe message logged", choices=LOG_LEVELS)
    stats: bool = setting(False, "serve a read-only status page (distccd's) on --stats-port")
    stats_port: int = setting(STATS_PORT, "TCP port of the --stats page", metavar="PORT")
    pid_file: str = setting(
        "",
        "write the daemon's pid to FILE while it runs",
        flags=("-P", "--pid-file"),
        metavar="FILE",
    )

    user: str = setting(
        "",
        "started as root, run as this user",
        metavar="NAME",
        shown="ccfarmd, else distcc, else nobody",
    )
    sandbox: str = setting(
        "auto",
        "run each compiler in a bubblewrap sandbox: auto (if it works here; else"
        " refuse protocol-3 and exact-mode jobs), require (refuse to start without"
        " it), off (compilers unconfined, every job served)",
        choices=SANDBOX_MODES,
    )
    sandbox_path: tuple[str, ...] = setting(
        (), "a directory the sandboxed compilers may read, besides /usr", metavar="DIR"
    )
    warm_pool: int = setting(
        -1,
        "job directories made ahead, each with its sandbox started and waiting for"
        " its compiler, so that a job does not wait for a sandbox to start"
        " (0 = none: a job's starts when its request arrives)",
        metavar="N",
        shown="-1 = the job slots, at most 8",
    )
    limit_cpu: int = setting(300, "CPU seconds of each compiler process (0 = unlimited)")
    limit_memory: int = setting(
        4096, "address space of each compiler process, MiB (0 = unlimited)", metavar="MIB"
    )
    limit_file_size: int = setting(
        1024, "largest file a compiler may write, MiB (0 = unlimited)", metavar="MIB"
    )
    limit_processes: int = setting(
        256, "processes of the daemon's user at once, for a compiler to fork (0 = unlimited)"
    )

    @property
    def queue_limit(self) -> int:
        return self.queue or 4 * self.jobs

    @property
    def warm_pool_size(self) -> int:
        """Ready job directories kept (`warm_pool`, its default resolved)."""
        if self.warm_pool < 0:
            return min(self.jobs, MAX_DEFAULT_POOL)
        return self.warm_pool
