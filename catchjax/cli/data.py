"""``catchjax data get | import | list``: the benchmark tables."""

from __future__ import annotations

from catchjax.errors import CatchjaxError


def add_parsers(sub) -> None:
    """``catchjax data``."""
    data = sub.add_parser("data", help="get, import and list benchmark tables")
    dsub = data.add_subparsers(dest="data_command", required=True)
    get = dsub.add_parser("get", help="download the public files a real table is built from "
                          "(pinned commits, SHA-256 checked) and build it in the data folder")
    get.add_argument("names", nargs="*", metavar="TABLE",  # checked by download.get
                     help="nb201, nb201-hw, transnas-micro, transnas-macro or all")
    get.add_argument("--to", dest="dest", help="folder to write to (default: the data folder)")
    get.add_argument("--from", dest="source_folder", metavar="FOLDER",
                     help="use source files downloaded by hand into FOLDER (see --list) "
                          "instead of the network")
    get.add_argument("--overwrite", action="store_true",
                     help="build a table again although the data folder has it")
    get.add_argument("--list", action="store_true",
                     help="print each table's source files (URL, SHA-256, licence) and exit")
    imp = dsub.add_parser("import", help="import a benchmark file into catchjax's format")
    imp.add_argument("path")
    imp.add_argument("--kind", default="auto",
                     choices=("auto", "npz", "nb201-pth", "nats-topology", "transnas-pth"))
    imp.add_argument("--as", dest="name", help="for a compact .npz: which file it is")
    imp.add_argument("--to", dest="dest", help="folder to write to (default: the data folder)")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace a table of the same name already in the data folder")
    dl = dsub.add_parser("list", help="show which benchmarks are available and their tasks")
    dl.add_argument("--columns", action="store_true",
                    help="also list each available table's columns (what --reward, --report "
                         "and --cost-metric take) with what they measure")



def cmd_data(args) -> int:
    from catchjax.benchmarks import importers, tables

    if args.data_command == "get":
        from catchjax.benchmarks import download

        if args.list:
            print(download.listing())
            return 0
        if not args.names:
            raise CatchjaxError("name the tables to get: nb201, nb201-hw, transnas-micro, "
                                "transnas-macro or all (`catchjax data get --list` shows "
                                "their sources)")
        got = download.get(args.names, args.dest, args.source_folder, overwrite=args.overwrite)
        folder = got[0].parent
        used = folder.resolve() == tables.data_dir().resolve()
        print(f"{len(got)} table(s) in {folder}" + ("" if used else
              f"; catchjax reads {tables.data_dir()}: set {tables.DATA_ENV}={folder} to use them"))
        bench = download.TABLES["nb201" if "all" in args.names else args.names[0]].benchmark
        print(f"try: catchjax sweep --method rea --benchmark {bench} --task "
              f"{next(iter(tables.BENCHMARKS[bench].tasks))} --out runs/rea-{bench}")
        return 0
    if args.data_command == "import":
        for path in importers.import_benchmark(args.path, args.kind, args.dest, args.name,
                                               overwrite=args.overwrite):
            print(f"wrote {path}")
        return 0
    print(f"data folder: {tables.data_dir()} (set {tables.DATA_ENV} to change it)")
    broken = 0
    for name, where in tables.available(check=True).items():
        info = tables.BENCHMARKS[name]
        broken += where.startswith("BROKEN")
        print(f"{name:26s} {where}")
        print(f"{'':26s} tasks: {', '.join(info.tasks)}")
        if args.columns and not where.startswith(("BROKEN", "missing")):
            from catchjax.benchmarks.names import display_name

            table = tables.load_table(name)
            width = max(len(c) for c in table.columns)
            for column in sorted(table.columns):
                print(f"{'':28s}{column:{width}s}  {display_name(column)}")
    return 1 if broken else 0


COMMANDS = {"data": cmd_data}
