"""The ``osdeploy`` command line: thin; each command loads its inputs and calls one module.

Exit codes: 0 success, 1 failure, 2 bad input (nothing was touched), 130 interrupted.
The side-effect modules (runner, precheck, verify, openrc, lab) are imported
lazily inside their commands.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from osdeploy import PROJECT_ROOT, __version__
from osdeploy.catalog import HOST_ROLES, Catalog, load_catalog
from osdeploy.config import CONFIG_NAME, NAME_RE, Config, load_config
from osdeploy.errors import InputError, OsdeployError, ProblemsError, suggest
from osdeploy.inventory import load_defaults, render_files, write_inventory
from osdeploy.plan import Plan, build_plan, format_plan
from osdeploy.secrets import ensure_passwords

EXAMPLES_DIR = PROJECT_ROOT / "inventory" / "examples"
DIR_ENV = "OSDEPLOY_DIR"

Command = Callable[[argparse.Namespace], int]


# -- helpers -------------------------------------------------------------------


def deploy_dir(args: argparse.Namespace) -> Path:
    """``--dir``, else ``$OSDEPLOY_DIR``, else the current directory."""
    return Path(args.dir or os.environ.get(DIR_ENV) or Path.cwd()).absolute()


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else deploy_dir(args) / CONFIG_NAME


def service_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_host_spec(spec: str, option: str) -> tuple[str, tuple[str, ...]]:
    """``ctl1:control,network`` -> ``("ctl1", ("control", "network"))``."""
    name, sep, roles_text = spec.partition(":")
    roles = tuple(service_list(roles_text))
    if not sep or not roles:
        raise InputError(f"{option} {spec}: write NAME:ROLE[,ROLE...], e.g. ctl1:control,network")
    if not NAME_RE.match(name):
        raise InputError(
            f"{option} {spec}: invalid host name {name!r}; use lowercase letters, digits and '-'"
        )
    for role in roles:
        if role not in HOST_ROLES:
            hint = suggest(role, HOST_ROLES, "host roles are")
            raise InputError(f"{option} {spec}: unknown host role {role}; {hint}")
    return name, tuple(role for role in HOST_ROLES if role in roles)


def parse_host_specs(specs: Sequence[str], option: str) -> list[tuple[str, tuple[str, ...]]]:
    hosts = [parse_host_spec(spec, option) for spec in specs]
    names = [name for name, _ in hosts]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"{option}: host {name} is given twice; give each host once")
    return hosts


def load(args: argparse.Namespace) -> tuple[Config, Catalog, Plan]:
    """Config, catalog and plan; ``--services`` (when the command has it) restricts the run."""
    catalog = load_catalog()
    config = load_config(config_path(args), catalog)
    plan = build_plan(config, catalog, getattr(args, "services", None))
    return config, catalog, plan


def render(args: argparse.Namespace, config: Config, catalog: Catalog, plan: Plan) -> list[Path]:
    """Passwords for every planned service, then the inventory; returns files written."""
    directory = deploy_dir(args)
    ensure_passwords(directory, plan.secrets)
    files = render_files(config, plan, catalog, load_defaults())
    return write_inventory(directory, files)


# -- commands ------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    target = config_path(args)
    if target.exists() and not args.force:
        raise InputError(f"{target} already exists; edit it, or pass --force to overwrite it")
    example = EXAMPLES_DIR / ("lab.yml" if args.lab else "three-node.yml")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target}; edit hosts: and services:, then run `osdeploy validate`")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    config, _, plan = load(args)
    print(f"{config_path(args)}: valid; {len(config.hosts)} hosts, plan: {', '.join(plan.names())}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from osdeploy import state

    _, _, plan = load(args)
    print(format_plan(plan, state.load_deployed(deploy_dir(args))))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    config, catalog, plan = load(args)
    written = render(args, config, catalog, plan)
    inventory = deploy_dir(args) / "inventory"
    print(f"{inventory}: {len(written) or 'no'} files updated")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    config, catalog, plan = load(args)
    from osdeploy import runner

    # One run at a time per directory, from rendering the inventory to
    # recording what was deployed (a killed run's ansible holds it until it ends).
    with runner.deployment_lock(deploy_dir(args)) as lock_fd:
        return _deploy_locked(args, config, catalog, plan, lock_fd)


def _deploy_locked(
    args: argparse.Namespace, config: Config, catalog: Catalog, plan: Plan, lock_fd: int
) -> int:
    render(args, config, catalog, plan)
    directory = deploy_dir(args)
    if not args.skip_precheck:
        from osdeploy import precheck

        # With --json, stdout carries only the JSON summary.
        code = precheck.run_precheck(config, plan, stream=sys.stderr if args.json else None)
        if code:
            return code
    from osdeploy import runner

    opts = runner.DeployOptions(
        services=plan.run if plan.restricted else (),
        limit=args.limit,
        tags=args.tags,
        check=args.check,
        diff=args.diff,
        extra_vars=tuple(args.extra_vars),
        verbose=args.verbose,
        json=args.json,
        recheck=args.recheck,
    )
    code = runner.run_deploy(directory, plan, opts, lock_fd=lock_fd)
    if code == 0 and not args.check:
        from osdeploy import openrc, state

        hosts = state.limit_hosts(args.limit, (h.name for h in config.hosts))
        state.save_deployed(directory, state.after_run(state.load_deployed(directory), plan, hosts))

        paths = openrc.write_openrc(directory, config, plan)
        out = sys.stderr if args.json else sys.stdout
        if paths:
            print(f"credentials: {', '.join(str(path) for path in paths)}", file=out)
        _print_dashboard(config, plan, out)
    return code


def _print_dashboard(config: Config, plan: Plan, out: TextIO) -> None:
    from osdeploy.cloud import dashboard_url

    url = dashboard_url(config, plan, load_catalog())
    if url:
        print(f"dashboard: {url} (user admin, or demo once verify ran; passwords.yml)", file=out)


def cmd_precheck(args: argparse.Namespace) -> int:
    from osdeploy import precheck

    config, _, plan = load(args)
    return precheck.run_precheck(config, plan)


def cmd_verify(args: argparse.Namespace) -> int:
    from osdeploy import verify

    config, _, plan = load(args)
    return verify.run_verify(deploy_dir(args), config, plan, skip=args.skip)


def cmd_openrc(args: argparse.Namespace) -> int:
    from osdeploy import openrc

    config, _, plan = load(args)
    for path in openrc.write_openrc(deploy_dir(args), config, plan):
        print(f"wrote {path}")
    _print_dashboard(config, plan, sys.stdout)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from osdeploy import usage

    config, catalog, plan = load(args)
    return usage.run_usage(
        deploy_dir(args), config, plan, catalog, args.project, args.since, args.until
    )


def cmd_lab_up(args: argparse.Namespace) -> int:
    from osdeploy import lab

    specs, option = (args.add, "--add") if args.add else (args.hosts or [], "--hosts")
    hosts = parse_host_specs(specs, option)
    return lab.cmd_up(deploy_dir(args), hosts, bool(args.add), args.services)


def cmd_lab_down(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_down(deploy_dir(args))


def cmd_lab_status(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_status(deploy_dir(args))


def cmd_lab_restart(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_restart(deploy_dir(args), args.hosts)


def cmd_lab_start(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_restart(deploy_dir(args), args.hosts, start_only=True)


def cmd_lab_stop(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_stop(deploy_dir(args), args.hosts)


def cmd_lab_ssh(args: argparse.Namespace) -> int:
    from osdeploy import lab

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return lab.cmd_ssh(deploy_dir(args), args.host, command)


def cmd_lab_image(args: argparse.Namespace) -> int:
    from osdeploy import lab

    return lab.cmd_image(args.force)


def cmd_lab_testimage(args: argparse.Namespace) -> int:
    from osdeploy import testimage

    return testimage.cmd_testimage(args.force)


# -- parser --------------------------------------------------------------------


def _common(default: str | None) -> argparse.ArgumentParser:
    """--dir and -c, accepted before or after the command name.

    The main parser and the commands need separate actions: the commands'
    defaults are SUPPRESS so they never overwrite a value given before the command.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        default=default,
        help=f"deployment directory (default: ${DIR_ENV}, else the current directory)",
    )
    common.add_argument(
        "-c",
        "--config",
        default=default,
        help=f"config file (default: DIR/{CONFIG_NAME})",
    )
    return common


def _services_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--services", type=service_list, metavar="A,B", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    common = _common(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="osdeploy",
        description="Install an OpenStack cloud on Debian 13 hosts from one config file.",
        parents=[_common(None)],
    )
    parser.add_argument("--version", action="version", version=f"osdeploy {__version__}")
    commands = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    init = add("init", cmd_init, f"write a commented {CONFIG_NAME} to start from")
    init.add_argument("--lab", action="store_true", help="a config for the podman lab hosts")
    init.add_argument("--force", action="store_true", help=f"overwrite an existing {CONFIG_NAME}")
    add("validate", cmd_validate, f"check {CONFIG_NAME}; one line per problem, exit 2")
    plan = add("plan", cmd_plan, "show the services to deploy, in order, with their hosts")
    _services_option(plan, "show a run of only these planned services")
    add("render", cmd_render, "write passwords.yml and the inventory (for plain ansible)")
    deploy = add("deploy", cmd_deploy, "render, check the hosts, and run the playbooks")
    _services_option(deploy, "deploy only these services (they must be in the plan)")
    deploy.add_argument("-l", "--limit", metavar="HOST", help="only these hosts (ansible -l)")
    deploy.add_argument("-t", "--tags", metavar="TAGS", help="only these tags (ansible -t)")
    deploy.add_argument("-C", "--check", action="store_true", help="dry run (ansible --check)")
    deploy.add_argument("-D", "--diff", action="store_true", help="show changes (ansible --diff)")
    deploy.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="K=V",
        help="extra ansible variable (repeatable)",
    )
    deploy.add_argument("-v", "--verbose", action="count", default=0, help="more ansible output")
    deploy.add_argument("--json", action="store_true", help="machine-readable progress")
    deploy.add_argument("--skip-precheck", action="store_true", help="skip the host checks")
    deploy.add_argument(
        "--recheck",
        action="store_true",
        help="run every step on every host, also on hosts the last run left unchanged",
    )
    add("precheck", cmd_precheck, "check that every host is reachable and ready")
    verify = add("verify", cmd_verify, "check the deployed services with real API calls")
    verify.add_argument(
        "--skip",
        type=service_list,
        default=[],
        metavar="CHECK,...",
        help="leave these checks out (e.g. one that stops servers while a deploy runs)",
    )
    add("openrc", cmd_openrc, "write admin-openrc.sh and clouds.yaml")
    _add_usage(add("usage", cmd_usage, "a project's usage for billing, from Gnocchi (telemetry)"))
    _add_lab(add("lab", _lab_help, "podman lab hosts on this machine"), common)
    return parser


USAGE_EPILOG = """\
One row per instance, volume, image and Swift account/container of the
project that lived in the window, then a total. Computed from Gnocchi
(what Ceilometer metered), as the admin user `osdeploy openrc` writes:

  hours      part of the resource's life in the window: an instance from
             launched_at to deleted_at (else Gnocchi's started_at/ended_at,
             set when Ceilometer first saw it and at its delete), others
             from started_at to ended_at; still alive: to --until
  vCPU-h     vcpus x hours          RAM GB-h   memory (MiB) / 1024 x hours
  CPU s      CPU time used in the window (the cpu counter's increase)
  disk GB-h  volume.size x hours
  bytes      image.size; Swift: storage.containers.objects.size per
             container, else the account's storage.objects.size

Values are Gnocchi's aggregates (POST /v1/aggregates, mean per point at the
finest granularity kept; Ceilometer's policies: 5 minutes), as fresh as
the last polling interval. docs/telemetry.md says more.
"""


def _add_usage(usage: argparse.ArgumentParser) -> None:
    usage.formatter_class = argparse.RawDescriptionHelpFormatter
    usage.epilog = USAGE_EPILOG
    usage.add_argument("--project", required=True, metavar="NAME", help="project name or id")
    usage.add_argument(
        "--since",
        required=True,
        metavar="WHEN",
        help="start of the window: a duration before now (30m, 1h, 2d, 1h30m) or a UTC time",
    )
    usage.add_argument(
        "--until", metavar="WHEN", help="end of the window, written like --since (default: now)"
    )


def _lab_help(args: argparse.Namespace) -> int:
    raise InputError("lab: name a command: up, down, status, restart, ssh or image")


def _add_lab(lab: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    up = add("up", cmd_lab_up, "create the lab hosts and write osdeploy.yml")
    hosts = up.add_mutually_exclusive_group()
    hosts.add_argument("--hosts", nargs="+", metavar="NAME:ROLES", help="e.g. ctl1:control,network")
    hosts.add_argument("--add", nargs="+", metavar="NAME:ROLES", help="add hosts to a running lab")
    _services_option(up, "services for the new osdeploy.yml")
    add("down", cmd_lab_down, "remove the lab hosts (keeps config, passwords, image)")
    add("status", cmd_lab_status, "show the lab hosts")
    restart = add("restart", cmd_lab_restart, "restart lab hosts, as a reboot of them would")
    restart.add_argument("hosts", nargs="*", metavar="HOST", help="default: every host")
    stop = add("stop", cmd_lab_stop, "shut lab hosts down, as a power-off would after shutdown")
    stop.add_argument("hosts", nargs="*", metavar="HOST", help="default: every host")
    start = add("start", cmd_lab_start, "boot stopped lab hosts")
    start.add_argument("hosts", nargs="*", metavar="HOST", help="default: every host")
    ssh = add("ssh", cmd_lab_ssh, "open a shell, or run a command, on a lab host")
    ssh.add_argument("host")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run")
    image = add("image", cmd_lab_image, "build the lab host image")
    image.add_argument("--force", action="store_true", help="rebuild even if current")
    testimage = add("testimage", cmd_lab_testimage, "build the guest image verify boots (cached)")
    testimage.add_argument("--force", action="store_true", help="rebuild even if cached")


# -- entry point ---------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ProblemsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_code
    except OsdeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
