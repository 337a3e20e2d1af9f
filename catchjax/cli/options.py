"""What the command groups share: argument types, the process flags, --debug and
the defaults shown in --help."""

from __future__ import annotations

import argparse
import math

from catchjax.errors import CatchjaxError


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


MAX_SEEDS = 1024


def no_budget_setting(args) -> None:
    """sweep and ask have --budget; a --set budget=N beside it would be a second source."""
    if any(name == "budget" for name, _ in args.set):
        raise CatchjaxError("the budget is --budget, not a --set setting")


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def parse_setting(text):
    """``--set NAME=VALUE`` -> (NAME, VALUE as typed); the method's config parses VALUE by
    the field's declared type (:func:`catchjax.methods.parse_value`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    if not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def version() -> str:
    import importlib.metadata as md

    try:
        return md.version("catchjax")
    except md.PackageNotFoundError:
        return "unknown (not installed)"


def add_process_flags(parser) -> None:
    hosts = parser.add_argument_group(
        "several processes or hosts (jax.distributed; each process runs the same command "
        "with its own --process-id, process 0 writes the results)")
    hosts.add_argument("--coordinator", metavar="HOST:PORT",
                       help="address of process 0, which hosts the coordinator")
    hosts.add_argument("--num-processes", type=positive_int)
    hosts.add_argument("--process-id", type=int)
    hosts.add_argument("--distributed", action="store_true",
                       help="let JAX detect the processes (SLURM, Open MPI, TPU pod, or "
                       "JAX_COORDINATOR_ADDRESS) instead of the three flags above")
    hosts.add_argument("--init-timeout", type=float, default=300,
                       help="seconds to wait for the other processes (default 300)")


def check_process_flags(args) -> bool:
    """Check the process flags (before anything runs); True on a process that is not 0."""
    from catchjax.runs import distributed

    distributed.check(args.coordinator, args.num_processes, args.process_id)
    distributed.check_timeout(args.init_timeout)
    return args.process_id not in (None, 0)


def start_processes(args) -> bool:
    """Join the other processes, if any; True on a process that is not 0."""
    from catchjax.runs import distributed

    # what this process runs, for the check that every process runs the same
    run = {k: v for k, v in vars(args).items()
           if k not in ("process_id", "debug", "no_compile_cache", "init_timeout", "argv")}
    if distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                              args.init_timeout, auto=args.distributed, run=run):
        import jax

        return jax.process_index() != 0
    return False


def show_defaults(parser) -> None:
    """--help shows each option's default where it has one worth showing (not None, a
    flag's False or an empty list) and its help does not already name one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                show_defaults(child)
        default = action.default
        if (not action.option_strings or action.help == argparse.SUPPRESS
                or isinstance(default, bool) or default in (None, argparse.SUPPRESS, [])
                or "default" in (action.help or "")):
            continue
        action.help = f"{action.help} (default: {default})" if action.help else \
            f"default: {default}"


def add_debug(parser):
    # --debug is accepted after the command too; SUPPRESS keeps the top-level value.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_debug(child)
