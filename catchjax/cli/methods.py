"""``catchjax methods``: the search methods and their settings."""

from __future__ import annotations


def add_parsers(sub) -> None:
    """``catchjax methods [NAME]``."""
    ms = sub.add_parser("methods", help="list the search methods; with a name, describe its "
                        "settings")
    ms.add_argument("method", nargs="?", help="a method name: its settings, defaults and "
                    "what each does")


def cmd_methods(args) -> int:
    from catchjax import methods

    if args.method is None:
        for m in methods.REGISTRY.values():
            fixed = ", ".join(f"{k}={v}" for k, v in m.preset.items())
            print(f"{m.name:14s} {m.help}" + (f" [{fixed}]" if fixed else ""))
        print("\n`catchjax methods NAME` describes a method's settings (--set NAME=VALUE)")
        return 0
    name = methods.canonical_name(args.method)
    m = methods.get(name)
    print(f"{name}: {m.help}")
    if m.preset:
        print("fixed by the name: " + ", ".join(f"{k}={v}" for k, v in m.preset.items()))
    docs = methods.setting_docs(name)
    defaults = methods.setting_defaults(name)
    shown = [k for k in methods.setting_names(name) if k not in m.preset]
    width = max(len(k) for k in shown)
    for k in shown:
        default = defaults[k]
        print(f"  {k:{width}s}  {default!s:>10s}  {docs.get(k, '')}".rstrip())
    if m.ignores:
        print(f"not used by {name}: {', '.join(m.ignores)}")
    return 0


COMMANDS = {"methods": cmd_methods}
