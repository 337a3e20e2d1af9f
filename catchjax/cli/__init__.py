"""The ``catchjax`` command line.

    catchjax sweep --method rea --benchmark nb201 --task cifar10 --trials 500 --budget 50 \
        --seed 0 --out runs/rea-c10
    catchjax train --method catch-meta --benchmark nb201 --task cifar10 --out agents/c10
    catchjax ask --state DIR -k 8 --out proposals.json [--method M --space S]  # ask/tell
    catchjax tell --state DIR results.csv
    catchjax data get nb201|nb201-hw|transnas-micro|transnas-macro|all
    catchjax data import PATH [--kind KIND] [--as FILENAME]
    catchjax data list

Every command is generic over the method registry (:mod:`catchjax.methods`). One module
per command group; each handler translates its arguments into library calls.
"""

from __future__ import annotations

import argparse
import os
import sys

from catchjax.cli import asktell, data, methods, options, studies, sweep
from catchjax.cli.options import parse_setting
from catchjax.errors import CatchjaxError

__all__ = ["build_parser", "main", "parse_setting"]

# in the order --help lists the commands
GROUPS = (methods, sweep, studies, data, asktell)


def build_parser() -> argparse.ArgumentParser:
    # Only light modules here: `catchjax --help` must not wait for jax to import.
    parser = argparse.ArgumentParser(
        prog="catchjax", description="Reinforcement-learning architecture search on NAS benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"catchjax {options.version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not keep compiled functions on disk (default: JAX's "
                        "persistent compilation cache in the user cache folder, or in "
                        "$CATCHJAX_COMPILE_CACHE; 'off' there turns it off too)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    for command in sub.choices.values():
        options.add_debug(command)
        options.show_defaults(command)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in summary.json
    if os.environ.get("CATCHJAX_NATIVE_LOG"):
        from catchjax.runs import distributed

        distributed.route_native_log()
    if (getattr(args, "coordinator", None) or getattr(args, "distributed", False)) and \
            not os.environ.get("CATCHJAX_SUPERVISED") and not args.debug:
        # JAX's runtime aborts a process whose peers die or never join; a child process
        # runs the command so that this one can say what happened in one line
        from catchjax.runs import distributed

        try:
            options.check_process_flags(args)
        except CatchjaxError as exc:
            print(f"catchjax: error: {exc}", file=sys.stderr)
            return 2
        return distributed.supervise(sys.argv[1:] if argv is None else list(argv),
                                     args.init_timeout, args.process_id)
    commands = {name: cmd for group in GROUPS for name, cmd in group.COMMANDS.items()}
    try:
        if args.command not in ("methods", "data", "report"):  # the commands that compile
            from catchjax.runs import compile_cache

            compile_cache.settle(compile_cache.resolve(args.no_compile_cache))
        return commands[args.command](args)
    except CatchjaxError as exc:
        if args.debug:
            raise
        print(f"catchjax: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("catchjax: interrupted. A sweep keeps its finished chunks: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`catchjax methods dqn | head`)
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug or an environment problem: one line, not 150
        if args.debug:
            raise
        print(f"catchjax: unexpected {type(exc).__name__}: {str(exc)[:300]} (run again with "
              f"--debug for the traceback)", file=sys.stderr)
        return 1
