"""Run commands on a configured host over SSH, logged in as Ansible will be.

The config's ssh user, key and port, paramiko as the client. `precheck` logs
in through here to gather facts; `osdeploy.verify` runs its on-host probes
(ping from a network host, `virsh list` on a compute host) with `run_on_host`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko

    from osdeploy.config import Config, Host, SshSettings

SSH_TIMEOUT = 10.0
COMMAND_TIMEOUT = 20.0


def key_path(config: Config) -> Path:
    """The config's ssh.key; a relative one is taken from the config file's folder."""
    key = Path(config.ssh.key)
    return key if key.is_absolute() else config.path.parent / key


def connect(host: Host, ssh: SshSettings, key: Path) -> paramiko.SSHClient:
    """Log in to a host as Ansible will; paramiko's errors are the caller's to explain."""
    import paramiko

    client = paramiko.SSHClient()
    if ssh.host_key_checking:
        client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 (ssh.host_key_checking: false)
    client.connect(
        host.address,
        port=ssh.port,
        username=ssh.user,
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=True,
        timeout=SSH_TIMEOUT,
        banner_timeout=SSH_TIMEOUT,
        auth_timeout=SSH_TIMEOUT,
    )
    return client


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    """One shell command on a logged-in host: (exit code, stdout, stderr)."""
    _stdin, stdout, stderr = client.exec_command(command, timeout=COMMAND_TIMEOUT, environment=None)
    out = stdout.read().decode("utf-8", errors="replace")
    err = stderr.read().decode("utf-8", errors="replace")
    return stdout.channel.recv_exit_status(), out, err


def run_on_host(config: Config, name: str, command: str) -> tuple[int, str, str]:
    """Run a shell command on a configured host over SSH: (exit code, stdout, stderr)."""
    client = connect(config.host(name), config.ssh, key_path(config))
    try:
        return run(client, command)
    finally:
        client.close()
