"""Run ansible-playbook on a deployment directory, with live progress and a summary.

The command line is built by a pure function (`build_command`); `run_deploy`
is the side-effect edge: it starts ansible-playbook with an argument list,
sends its whole output to `<deploy dir>/logs/deploy-<UTC timestamp>.log`, and
follows the events that the `osdeploy_events` callback plugin appends to
`deploy-<UTC timestamp>.events.jsonl` next to it (path in $OSDEPLOY_EVENTS).
A plain file, read by offset, is used rather than a pipe: it needs no reader
thread, cannot fill up and block ansible, sees no EOF problems with forked
workers or ssh ControlPersist masters, and stays behind as a record of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from osdeploy import PROJECT_ROOT
from osdeploy.errors import OsdeployError
from osdeploy.progress import (
    Failure,
    Progress,
    Summary,
    make_display,
    print_summary,
    read_new_events,
    summarize,
    summary_json,
)

if TYPE_CHECKING:
    from osdeploy.plan import Plan

__all__ = [
    "DeployOptions",
    "Summary",
    "build_command",
    "build_env",
    "deployment_lock",
    "exit_code",
    "inputs_fingerprint",
    "redact_command",
    "run_deploy",
    "summarize",
]

CALLBACK_NAME = "osdeploy_events"
#: Extra variable the gather play reads to run only some services (architecture.md).
RUN_SERVICES_VAR = "osdeploy_run_services"
#: Extra variable of the converged-host skip (architecture.md, "Converged hosts").
FINGERPRINT_VAR = "osdeploy_converged_fingerprint"
#: What a run's outcome depends on in the source tree (Molecule scenarios
#: and READMEs left out: they do not reach a host).
FINGERPRINT_SOURCES = ("ansible.cfg", "playbooks", "plugins", "roles")
#: How often the events file is read while ansible runs.
POLL_SECONDS = 0.2
#: How long an interrupted ansible-playbook gets to stop before it is terminated.
INTERRUPT_GRACE_SECONDS = 20
LOG_TAIL_LINES = 15
#: The lock file of a deployment directory, and how long a run waits for it.
LOCK_NAME = ".deploy.lock"
LOCK_WAIT_SECONDS = 120
#: prctl(2): the signal a child gets when its parent dies.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class DeployOptions:
    services: tuple[str, ...] = ()
    limit: str | None = None
    tags: str | None = None
    check: bool = False
    diff: bool = False
    extra_vars: tuple[str, ...] = ()
    verbose: int = 0
    json: bool = False
    #: Run every step on every host, converged or not.
    recheck: bool = False


def ansible_playbook_path() -> str:
    """ansible-playbook of the venv running osdeploy, else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ansible-playbook")
    return found or "ansible-playbook"


def services_extra_var(services: Sequence[str]) -> str:
    return json.dumps({RUN_SERVICES_VAR: list(services)})


def _counts_for_fingerprint(relative: Path) -> bool:
    parts = relative.parts
    return "molecule" not in parts and "__pycache__" not in parts and relative.suffix != ".md"


def fingerprint_files(deploy_dir: Path, root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """The files a run's outcome depends on: the source tree's Ansible content and the
    deployment's inventory (passwords.yml through its link), ``{name: content}``."""
    files: dict[str, bytes] = {}
    for source in FINGERPRINT_SOURCES:
        path = root / source
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for item in found:
            relative = item.relative_to(root)
            if _counts_for_fingerprint(relative):
                files[f"source/{relative}"] = item.read_bytes()
    inventory = deploy_dir / "inventory"
    for item in sorted(p for p in inventory.rglob("*") if p.is_file()):
        files[f"inventory/{item.relative_to(inventory)}"] = item.read_bytes()
    return files


def inputs_fingerprint(files: Mapping[str, bytes], opts: DeployOptions, ansible: str) -> str:
    """A hash of everything a run's outcome depends on: ``files`` (fingerprint_files),
    the services and extra variables of the run, and the ansible-core version.

    Check, diff, verbosity and the host limit change no host's outcome and stay out."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    options = {"services": list(opts.services), "extra_vars": list(opts.extra_vars)}
    digest.update(json.dumps({"options": options, "ansible": ansible}, sort_keys=True).encode())
    return digest.hexdigest()


def build_command(
    deploy_dir: Path, opts: DeployOptions, playbook: str = "site.yml", fingerprint: str = ""
) -> list[str]:
    """The ansible-playbook argument list for a run (no shell involved).

    ``fingerprint`` (inputs_fingerprint) turns the converged-host skip on."""
    cmd = [
        ansible_playbook_path(),
        "-i",
        str(deploy_dir / "inventory"),
        str(PROJECT_ROOT / "playbooks" / playbook),
    ]
    if opts.limit:
        cmd += ["-l", opts.limit]
    if opts.tags:
        cmd += ["-t", opts.tags]
    if opts.check:
        cmd.append("-C")
    if opts.diff:
        cmd.append("-D")
    if opts.services:
        cmd += ["-e", services_extra_var(opts.services)]
    for extra in opts.extra_vars:
        cmd += ["-e", extra]
    if fingerprint:
        cmd += ["-e", f"{FINGERPRINT_VAR}={fingerprint}"]
    if opts.verbose > 0:
        cmd.append("-" + "v" * min(opts.verbose, 6))
    return cmd


def build_env(events_path: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of ansible-playbook: project config, no colour, events plugin on."""
    env = dict(base)
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    if CALLBACK_NAME not in enabled:
        enabled.append(CALLBACK_NAME)
    env.update(
        ANSIBLE_CONFIG=str(PROJECT_ROOT / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED=",".join(enabled),
        OSDEPLOY_EVENTS=str(events_path),
        PYTHONUNBUFFERED="1",
    )
    return env


def redact_command(cmd: Sequence[str]) -> str:
    """The command for the log, with user extra-vars hidden (they may hold secrets)."""
    shown: list[str] = []
    hide_next = False
    for arg in cmd:
        if hide_next:
            ours = arg.startswith((f'{{"{RUN_SERVICES_VAR}"', f"{FINGERPRINT_VAR}="))
            shown.append(arg if ours else "<hidden>")
            hide_next = False
            continue
        shown.append(arg)
        hide_next = arg == "-e"
    return " ".join(shown)


def exit_code(ansible_rc: int) -> int:
    """ansible-playbook's exit code (0 ok, 2 failed hosts, 4 unreachable, ...) as 0/1."""
    return 0 if ansible_rc == 0 else 1


def log_paths(deploy_dir: Path, now: float) -> tuple[Path, Path]:
    """The log and events file names of a run started at `now` (UTC)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    logs = deploy_dir / "logs"
    return logs / f"deploy-{stamp}.log", logs / f"deploy-{stamp}.events.jsonl"


def _check_inputs(deploy_dir: Path, plan: Plan, opts: DeployOptions, playbook: str) -> None:
    inventory = deploy_dir / "inventory"
    if not inventory.is_dir():
        raise OsdeployError(
            f"{inventory}: no inventory; render it first (osdeploy deploy renders it)"
        )
    planned = [service.name for service in plan.services]
    unknown = [s for s in opts.services if s not in planned]
    if unknown:
        raise OsdeployError(
            f"--services: {', '.join(unknown)} not in this deployment's plan; "
            f"planned: {', '.join(planned)}"
        )
    book = PROJECT_ROOT / "playbooks" / playbook
    if not book.is_file():
        raise OsdeployError(f"{book}: playbook not found; is the osdeploy source tree complete?")


def _open_private(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    return os.open(path, flags, 0o600)


def _create_run_files(deploy_dir: Path) -> tuple[Path, Path, int]:
    logs = deploy_dir / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    logs.chmod(0o700)
    now = time.time()
    while True:
        log_path, events_path = log_paths(deploy_dir, now)
        try:
            log_fd = _open_private(log_path)
        except FileExistsError:
            now += 1  # two runs in the same second: take the next name
            continue
        os.close(_open_private(events_path))
        return log_path, events_path, log_fd


@contextlib.contextmanager
def deployment_lock(deploy_dir: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[int]:
    """Hold the deployment's lock (an flock on <dir>/.deploy.lock) for one run.

    Yields the lock's file descriptor: run_deploy hands it to ansible-playbook,
    whose workers inherit it, so the lock stays held until the last of them
    has exited, even when osdeploy itself was killed. A second run waits up to
    ``wait`` seconds for it (a killed run's workers finishing their task),
    then stops with what to do."""
    deploy_dir.mkdir(parents=True, exist_ok=True)
    path = deploy_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OsdeployError(
                        f"another deploy of {deploy_dir} is still running (the processes "
                        f"holding {path}: fuser -v {path}); wait until it ends, or stop it"
                    ) from None
                if not told:
                    print(
                        f"osdeploy: another deploy of this directory is still running; "
                        f"waiting up to {wait:.0f} s for it to end",
                        file=sys.stderr,
                    )
                    told = True
                time.sleep(1)
        yield fd
    finally:
        os.close(fd)


def _die_with_parent() -> None:
    """In ansible-playbook before exec: get SIGTERM when osdeploy dies, so a killed
    osdeploy does not leave it running on its own.

    Not SIGINT: ansible-playbook turns SIGINT into a KeyboardInterrupt, and one
    raised inside a fork hook (logging's _releaseLock) is printed as "Exception
    ignored" and lost: the e2e saw a playbook run on to the end after osdeploy
    was killed. On SIGTERM ansible passes the signal to its workers and dies
    by the default action, which nothing can swallow."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # osdeploy died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    body = [line for line in text.splitlines() if line.strip()]
    return "\n".join(body[-lines:])


def _wait_interrupted(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C reached ansible-playbook too (same process group): let it stop cleanly;
    remind it with SIGINT, then terminate, then kill if it does not."""
    for step in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            proc.wait(timeout=INTERRUPT_GRACE_SECONDS / 2)
            return
        except subprocess.TimeoutExpired:
            proc.send_signal(step)
    proc.wait()


def _follow(
    proc: subprocess.Popen[bytes], events_path: Path, progress: Progress, console: Console
) -> None:
    display = make_display(console)
    offset = 0
    display.start()
    try:
        while True:
            running = proc.poll() is None
            events, offset = read_new_events(events_path, offset)
            for event in events:
                display.update(progress, progress.apply(event))
            display.update(progress, None)
            if not running:
                break
            time.sleep(POLL_SECONDS)
    finally:
        display.stop()


def run_deploy(
    deploy_dir: Path,
    plan: Plan,
    opts: DeployOptions,
    playbook: str = "site.yml",
    lock_fd: int | None = None,
) -> int:
    """Run a playbook on the deployment; 0 when every host succeeded, else 1.

    ``lock_fd`` (from deployment_lock) is inherited by ansible-playbook."""
    deploy_dir = deploy_dir.resolve()
    _check_inputs(deploy_dir, plan, opts, playbook)
    # A run limited by tags runs only part of each role: it neither skips
    # converged hosts nor records them.
    skip_converged = not (opts.recheck or opts.tags)
    fingerprint = (
        inputs_fingerprint(
            fingerprint_files(deploy_dir), opts, importlib.metadata.version("ansible-core")
        )
        if skip_converged
        else ""
    )
    cmd = build_command(deploy_dir, opts, playbook, fingerprint)
    log_path, events_path, log_fd = _create_run_files(deploy_dir)
    env = build_env(events_path, os.environ)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    started = time.monotonic()
    progress = Progress()
    interrupted = False
    with os.fdopen(log_fd, "ab") as log:
        log.write(f"osdeploy: {redact_command(cmd)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=deploy_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=() if lock_fd is None else (lock_fd,),
                # Run before any thread of osdeploy starts (the display comes after).
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise OsdeployError(
                f"cannot start {cmd[0]}: {exc.strerror}; install ansible-core in osdeploy's venv"
            ) from exc
        try:
            _follow(proc, events_path, progress, err)
        except KeyboardInterrupt:
            interrupted = True
            err.print("osdeploy: interrupted; waiting for ansible-playbook to stop ...")
            _wait_interrupted(proc)
            progress = Progress()
            for event in load_events(events_path):
                progress.apply(event)
        except BaseException:
            proc.terminate()  # osdeploy itself failed: do not leave ansible running
            _wait_interrupted(proc)
            raise
        rc = proc.wait()
        log.write(f"osdeploy: ansible-playbook exited with code {rc}\n".encode())
    summary = progress.summary(log=str(log_path), total_seconds=time.monotonic() - started)
    if rc != 0 and not summary.failures:
        reason = "interrupted" if interrupted else _log_tail(log_path)
        summary = dataclasses.replace(
            summary,
            failures=(
                Failure(
                    host="-",
                    task="-",
                    role="",
                    play="",
                    kind="error",
                    msg=f"ansible-playbook exited with code {rc}\n{reason}",
                ),
            ),
        )
    if opts.json:
        sys.stdout.write(summary_json(summary) + "\n")
    else:
        print_summary(out, summary)
        verdict = "deploy finished" if rc == 0 else "deploy FAILED"
        out.print(f"osdeploy: {verdict} (ansible-playbook exit code {rc})")
    return exit_code(rc)


def load_events(path: Path) -> list[dict[str, Any]]:
    """All events of a finished run (for tools and tests)."""
    events, _ = read_new_events(path, 0)
    return events
