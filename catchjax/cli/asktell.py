"""``catchjax ask``, ``tell``, ``meta-ask`` and ``meta-tell``: searches and meta-training
driven by your trainer, through JSON proposals and CSV results."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from catchjax.cli import options
from catchjax.cli.options import parse_setting
from catchjax.errors import CatchjaxError


def add_parsers(sub) -> None:
    add_ask(sub)
    add_meta_ask(sub)
    add_meta_tell(sub)
    add_tell(sub)


def add_ask(sub) -> None:
    """``catchjax ask``."""
    ak = sub.add_parser("ask", help="ask/tell: propose architectures to evaluate (your "
                        "trainer evaluates them, `catchjax tell` hands the rewards back)")
    ak.add_argument("--state", required=True, help="the search folder (created on the "
                    "first ask, with --method and --space; saved after every ask and tell)")
    ak.add_argument("-k", type=options.positive_int, default=1,
                    help="how many proposals to evaluate in parallel (fewer come back when "
                    "the method first needs rewards, e.g. evolution's initial population)")
    ak.add_argument("--out", help="write the proposals to this JSON file (default: stdout)")
    ak.add_argument("--pending", action="store_true",
                    help="ask nothing new: write the proposals still waiting for a reward "
                    "(e.g. after the job that was training them crashed)")
    start = ak.add_argument_group("starting a search (first ask only)")
    start.add_argument("--method", help="a method with ask/tell steps (`catchjax methods`)")
    start.add_argument("--space", help="residual, nb201, transnas-micro or transnas-macro; "
                       "or table:BENCHMARK/TASK for a table's searchable rows")
    start.add_argument("--budget", type=options.positive_int, default=None,
                       help="evaluations in all (default: the method's own, 50; dqn: 11); on "
                       "an existing search only its own value is accepted")
    start.add_argument("--seed", type=int, default=None, help="default 0")
    start.add_argument("--set", type=parse_setting, action="append", default=[],
                       metavar="NAME=VALUE", help="override a method setting")
    start.add_argument("--init", help="a trained agent's checkpoint (catch-meta, dqn)")
    start.add_argument("--objective", action="append", default=None,
                       metavar="NAME:max|min:LOW:HIGH",
                       help="twice or more: a search with several objectives; `catchjax "
                       "tell` then takes a column per NAME instead of reward, scaled over "
                       "LOW..HIGH and scalarized with the search's weights (docs/usage.md)")
    ak.add_argument("--lock-timeout", type=options.seconds, default=120.0, metavar="SECONDS",
                    help="how long to wait for another worker's ask or tell on the same "
                    "search (default 120)")


def add_meta_ask(sub) -> None:
    """``catchjax meta-ask``."""
    ma = sub.add_parser("meta-ask", help="meta-training through ask/tell (CATCH §4.3): "
                        "propose the networks of the current meta-epoch, each with its task")
    ma.add_argument("--state", required=True, help="the meta-training folder (created on "
                    "the first meta-ask, with --space and --tasks)")
    ma.add_argument("-k", type=options.positive_int, default=1,
                    help="how many proposals to train in parallel")
    ma.add_argument("--out", help="write the proposals to this JSON file (default: stdout)")
    ma.add_argument("--agent-out", help="once meta-training is done: save the agent here "
                    "(`sweep/ask --method catch-meta --init` adapts it)")
    ma.add_argument("--pending", action="store_true",
                    help="ask nothing new: write the current meta-epoch's proposals still "
                    "waiting for a reward (e.g. after the jobs training them were lost)")
    mstart = ma.add_argument_group("starting a meta-training (first meta-ask only)")
    mstart.add_argument("--method", default="catch-meta",
                        help="catch-meta (default), catch-zero or catch-random")
    mstart.add_argument("--space", help="residual, nb201, transnas-micro or transnas-macro")
    mstart.add_argument("--tasks", help="the task generator: classes:N:LOW-HIGH (LOW..HIGH "
                        "random classes of N per meta-epoch, e.g. classes:10:3-6) or pool:P")
    mstart.add_argument("--seed", type=int, default=0)
    mstart.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="method setting, e.g. --set meta_epochs=8 "
                        "--set meta_budget=8")
    ma.add_argument("--lock-timeout", type=options.seconds, default=120.0, metavar="SECONDS",
                    help="how long to wait for another worker (default 120)")


def add_meta_tell(sub) -> None:
    """``catchjax meta-tell``."""
    mt_ = sub.add_parser("meta-tell", help="meta-training through ask/tell: hand the rewards "
                         "of a meta-epoch's networks back")
    mt_.add_argument("--state", required=True, help="the meta-training folder")
    mt_.add_argument("results", help="CSV with a header: id (from the proposals) and reward")
    mt_.add_argument("--lock-timeout", type=options.seconds, default=120.0, metavar="SECONDS",
                     help="how long to wait for another worker (default 120)")


def add_tell(sub) -> None:
    """``catchjax tell``."""
    tl = sub.add_parser("tell", help="ask/tell: hand the rewards of asked architectures back")
    tl.add_argument("--state", required=True, help="the search folder")
    tl.add_argument("--lock-timeout", type=options.seconds, default=120.0, metavar="SECONDS",
                    help="how long to wait for another worker's ask or tell on the same "
                    "search (default 120)")
    tl.add_argument("results", help="CSV with a header: reward (a search with objectives: "
                    "one column per objective's NAME instead), and id (from the proposals "
                    "file) or arch; other columns (accuracy, latency, ...) are kept")


def cmd_ask(args) -> int:
    import json

    from catchjax import safe_io
    from catchjax.asktell.search import AskTell

    options.no_budget_setting(args)
    out = Path(args.out) if args.out else None
    if out is not None:  # before the search changes: proposals must reach their file
        check_proposals_file(out)
    search = AskTell.open(args.state, method=args.method, space=args.space,
                          budget=args.budget, seed=args.seed, agent=args.init,
                          settings=dict(args.set), objectives=args.objective,
                          lock_timeout=args.lock_timeout)
    if args.pending:
        proposals = search.pending_proposals()
    else:
        if search.n_asked == 0:  # a new search: say once when its budget is all warm-up
            from catchjax.runs.sweeps import warmup_note

            if (note := warmup_note(search.method, search.config)) is not None:
                print(f"catchjax: {note}", file=sys.stderr)
        proposals = search.ask(args.k)
    doc = {"kind": "catchjax proposals", "state": str(search.state_dir),
           "method": search.method, "space": search.domain.name, "proposals": proposals,
           "pending": search.pending, "asked": search.n_asked, "budget": search.config.budget}
    if len(proposals) < args.k and not args.pending:
        doc["note"] = search.why_not_more()
        print(f"catchjax: {len(proposals)} of {args.k} proposals: {doc['note']}",
              file=sys.stderr)
    text = json.dumps(doc, indent=1)
    if out is None:
        print(text)
    else:
        safe_io.atomic_write_bytes(out, text.encode())
        print(f"{len(proposals)} proposals -> {out} (ids "
              f"{[p['id'] for p in proposals]}); pending: {search.pending}")
    return 0


def check_proposals_file(out: Path) -> None:
    """--out may replace only a proposals file catchjax wrote."""
    import json

    from catchjax import safe_io

    if out.is_dir():
        raise CatchjaxError(f"--out {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise CatchjaxError(f"--out {out}: the folder {out.parent} does not exist; create "
                            f"it first (nothing was asked)")
    safe_io.ensure_writable_parent(out)
    if out.exists():
        try:
            ours = json.loads(out.read_text()).get("kind") == "catchjax proposals"
        except (ValueError, UnicodeDecodeError, AttributeError):
            ours = False
        if not ours:
            raise CatchjaxError(f"--out {out} exists and is not a proposals file catchjax "
                                f"wrote; it is left as it is. Pick another name")


def read_results_csv(path, objectives=()) -> tuple[list, list, list, list]:
    """(ids or None, archs or None, rewards, extras) from a results CSV, or a clear error.
    ``objectives``: the names of a search's objectives, read instead of ``reward`` (each
    result then a dict of their values).
    A UTF-8 byte-order mark (Excel's "CSV UTF-8") and spaces around names and values are
    accepted; a column name that appears twice is refused (which one would count?)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise CatchjaxError(f"results file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f, skipinitialspace=True))
    except UnicodeDecodeError:
        raise CatchjaxError(f"{path} is not UTF-8 text; save it as CSV (UTF-8)") from None
    except csv.Error as exc:
        raise CatchjaxError(f"{path} is not a readable CSV file: {exc}") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2:
        raise CatchjaxError(f"{path} has no results (a header line and one line per result)")
    header = [name.strip() for name in lines[0]]
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise CatchjaxError(f"{path}: the column {', '.join(map(repr, twice))} appears more "
                            f"than once in the header; keep one")
    columns, values = set(header), list(objectives) or ["reward"]
    if not set(values) <= columns or not ({"id", "arch"} & columns):
        needs = (f"the columns {', '.join(map(repr, values))} (one per objective)"
                 if objectives else "a 'reward' column")
        raise CatchjaxError(f"{path} needs {needs} and an 'id' or 'arch' column; it has "
                            f"{sorted(c for c in columns if c)}")
    ids, archs, rewards, extras = [], [], [], []
    for n, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise CatchjaxError(f"{path} line {n}: {len(line)} fields, but the header has "
                                f"{len(header)}")
        row = dict(zip(header, (cell.strip() for cell in line)))
        if "id" in columns:
            if not re.fullmatch(r"[+-]?\d+", row["id"]):
                raise CatchjaxError(f"{path} line {n}: id {row['id']!r} is not an integer")
            ids.append(int(row["id"]))
        archs.append(row.get("arch") or None)
        rewards.append({k: row[k] for k in values} if objectives else row["reward"])
        extra = {}
        for k, v in row.items():
            if k in ("id", "arch", *values) or not k:
                continue
            try:
                extra[k] = float(v)
            except ValueError:
                extra[k] = v
        extras.append(extra)
    if "arch" not in columns or all(a is None for a in archs):
        archs = None
    return (ids if "id" in columns else None), archs, rewards, extras


def cmd_tell(args) -> int:
    from catchjax.asktell.saved import read_manifest, real_path
    from catchjax.asktell.search import AskTell

    names = [o["name"] for o in read_manifest(real_path(args.state), check_state=False)
             .get("objectives", [])]
    ids, archs, rewards, extras = read_results_csv(args.results, names)  # before the lock
    search = AskTell.load(args.state, lock_timeout=args.lock_timeout)
    search.tell(ids, rewards, archs=archs, extras=extras)
    best = search.best()
    told = search.n_asked - len(search.pending)
    so_far = (f"front so far: {len(search.front())} of the told networks" if names else
              f"best so far: {best['arch']} reward {best['reward']:.6g}")
    print(f"told {len(rewards)} results ({told} of {search.config.budget} evaluations); "
          f"{so_far}; pending: {search.pending}")
    return 0


def cmd_meta_ask(args) -> int:
    import json

    from catchjax import safe_io
    from catchjax.asktell.meta import MetaTraining

    out = Path(args.out) if args.out else None
    if out is not None:
        check_proposals_file(out)
    state = Path(args.state)
    if state.exists():
        if args.space or args.tasks or args.set:
            raise CatchjaxError(f"{state} is a meta-training already: leave out --space, "
                                f"--tasks and --set to continue it")
        meta = MetaTraining.load(state, lock_timeout=args.lock_timeout)
    else:
        if not (args.space and args.tasks):
            raise CatchjaxError(f"{state} does not exist: start a meta-training with --space "
                                f"and --tasks (e.g. --space residual --tasks classes:10:3-6)")
        meta = MetaTraining.start(args.space, args.tasks, method=args.method, seed=args.seed,
                                  state_dir=state, lock_timeout=args.lock_timeout,
                                  **dict(args.set))
    proposals = meta.pending_proposals() if args.pending else meta.ask(args.k)
    doc = {"kind": "catchjax proposals", "state": str(meta.state_dir), "method": meta.method,
           "space": meta.domain.name, "proposals": proposals}
    if not proposals and not args.pending:
        doc["note"] = meta.why_not_more()
        print(f"catchjax: no proposals: {doc['note']}", file=sys.stderr)
    if meta.done and args.agent_out:
        from catchjax.runs import agent as agents

        path = agents.save_agent(args.agent_out, meta.trained())
        print(f"meta-trained agent saved in {path}", file=sys.stderr)
    text = json.dumps(doc, indent=1)
    if out is None:
        print(text)
    else:
        safe_io.atomic_write_bytes(out, text.encode())
        print(f"{len(proposals)} proposals -> {out} (ids {[p['id'] for p in proposals]})")
    return 0


def cmd_meta_tell(args) -> int:
    from catchjax.asktell.meta import MetaTraining

    ids, archs, rewards, extras = read_results_csv(args.results)
    if ids is None or len(ids) != len(rewards):  # an arch may be asked in several epochs
        raise CatchjaxError(f"{args.results}: meta-tell needs the id column of the proposals "
                            f"(an arch column alone does not say which meta-epoch it is of)")
    meta = MetaTraining.load(args.state, lock_timeout=args.lock_timeout)
    meta.tell(ids, rewards, extras=extras)
    state = "done: save the agent with `catchjax meta-ask --state ... --agent-out PATH`" \
        if meta.done else f"meta-epoch {len(meta.epochs) - 1} of {meta.config.meta_epochs}"
    print(f"told {len(rewards)} results; {state}")
    return 0


COMMANDS = {"ask": cmd_ask, "tell": cmd_tell, "meta-ask": cmd_meta_ask,
            "meta-tell": cmd_meta_tell}
