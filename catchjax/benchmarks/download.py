"""``catchjax data get``: download pinned public files, check them, build compact tables.

Each file of :mod:`public_sources` is fetched once into the download cache
(``<user cache>/catchjax/downloads/<first 16 hex digits of its SHA-256>-<name>``),
resuming a partial download with an HTTP range request, and kept only if its size and
SHA-256 are the pinned ones. The table
is then built from the checked files and written (write, then rename) into the data
folder, with a ``<table>.sources.json`` beside it naming each source, its commit and
licence. Nothing is ever downloaded in tests: they point :data:`URL_ENV` at a local
server.
"""

from __future__ import annotations

import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from catchjax import safe_io
from catchjax.benchmarks import importers, public_sources, tables
from catchjax.benchmarks.public_sources import FILES, TABLES, SourceFile
from catchjax.errors import CatchjaxError

URL_ENV = "CATCHJAX_DATA_URL"  # another server with the same <repo>/<commit>/<path> layout
CHUNK = 1 << 16
TIMEOUT_S = 30


def downloads_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("catchjax")) / "downloads"


def _verified(path: Path, source: SourceFile) -> bool:
    return path.exists() and path.stat().st_size == source.size and \
        safe_io.sha256_file(path) == source.sha256


def _refuse(part: Path, source: SourceFile, url: str, why: str):
    part.unlink(missing_ok=True)  # the partial file is ours; a wrong one must not be resumed
    raise CatchjaxError(
        f"{url}: {why}, so it is not the pinned file (SHA-256 {source.sha256[:16]}…, "
        f"{source.size:,} bytes); nothing was kept. If {URL_ENV} points at a mirror, it "
        f"serves another version"
    )


def fetch(source: SourceFile, cache: Path | None = None, base_url: str | None = None,
          log=None) -> Path:
    """The checked local copy of ``source``: from the cache, or downloaded (resuming)."""
    cache = Path(cache) if cache is not None else downloads_dir()
    final = cache / f"{source.sha256[:16]}-{source.name}"
    if _verified(final, source):
        return final
    cache.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > source.size:
        part.unlink()
        have = 0
    url = source.url(base_url or os.environ.get(URL_ENV) or public_sources.RAW_URL)
    request = urllib.request.Request(url, headers={"User-Agent": "catchjax"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the range is past the end: start again
            part.unlink()
            return fetch(source, cache, base_url, log)
        raise CatchjaxError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CatchjaxError(
            f"cannot download {url} ({reason}). No network? Download the files that "
            f"`catchjax data get --list` names on a machine that has one and pass "
            f"--from FOLDER"
        ) from None
    with response:
        resumed = have and response.status == 206
        mode = "ab" if resumed else "wb"
        done = have if resumed else 0
        if log:
            log(f"downloading {source.name} ({source.size / 1e6:.1f} MB"
                f"{f', resuming at {done / 1e6:.1f} MB' if resumed else ''}) from {url}")
        try:
            with open(part, mode) as f:
                while block := response.read(CHUNK):
                    done += len(block)
                    if done > source.size:
                        f.close()
                        _refuse(part, source, url, "the server sends more bytes than the file has")
                    f.write(block)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise CatchjaxError(
                f"the download of {url} stopped at {done:,} of {source.size:,} bytes ({exc}); "
                f"run the same command again to resume it"
            ) from None
    if done < source.size:
        raise CatchjaxError(
            f"the download of {url} stopped at {done:,} of {source.size:,} bytes; run the same "
            f"command again to resume it"
        )
    got = safe_io.sha256_file(part)
    if got != source.sha256:
        _refuse(part, source, url, f"its SHA-256 is {got[:16]}…")
    os.replace(part, final)
    return final


def from_folder(source: SourceFile, folder: Path, cache: Path | None = None) -> Path:
    """A file the user downloaded by hand (``--from``), checked and copied into the cache."""
    path = Path(folder) / source.name
    if not path.exists():
        raise CatchjaxError(f"{path}: not there; download {source.url()} into {folder}")
    if path.stat().st_size != source.size or safe_io.sha256_file(path) != source.sha256:
        raise CatchjaxError(
            f"{path}: not the pinned file (expected SHA-256 {source.sha256}, {source.size:,} "
            f"bytes); download it again from {source.url()}"
        )
    cache = Path(cache) if cache is not None else downloads_dir()
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"{source.sha256[:16]}-{source.name}"
    if not _verified(final, source):
        shutil.copyfile(path, final.with_name(final.name + ".part"))
        os.replace(final.with_name(final.name + ".part"), final)
    return final


def _writable(folder: Path, what: str, flag: str) -> None:
    """Refuse a folder that cannot be written, before any download; leaves no trace (the
    folders it had to make for the probe are removed again)."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, suffix=".probe")
        os.close(fd)
        os.unlink(probe)
        for p in missing:  # innermost first
            p.rmdir()
    except OSError as exc:
        raise CatchjaxError(f"cannot write {what} into {folder} ({exc.strerror}); {flag}") \
            from None


def _write(arrays: dict, table: public_sources.PublicTable, dest: Path) -> Path:
    """Validate as catchjax reads tables (and against a companion table already in
    ``dest``), then write it there."""
    info = tables.BENCHMARKS[table.benchmark]
    tables.from_arrays(arrays, table.benchmark, info.space, source=table.filename)
    importers.companions_agree(table.benchmark, table.filename, arrays["ops"], dest)
    return importers.write_npz(arrays, dest, table.filename)


def provenance(table: public_sources.PublicTable) -> dict:
    return {"table": table.filename, "built_by": "catchjax data get " + table.name,
            "sources": [{"repository": f"https://github.com/{s.repo}", "commit": s.commit,
                         "path": s.path, "sha256": s.sha256, "licence": s.licence}
                        for s in (FILES[k] for k in table.sources)]}


def get(names, dest=None, source_folder=None, cache=None, overwrite: bool = False,
        log=None) -> list[Path]:
    """Build the named tables (``nb201``, ``nb201-hw``, ``transnas-micro``,
    ``transnas-macro``; ``all``) into ``dest`` (default: the data folder). A table already
    there is kept unless ``overwrite``. Returns the tables written or kept."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    names = list(TABLES) if "all" in names else list(dict.fromkeys(names))
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise CatchjaxError(f"no public source for {', '.join(map(repr, unknown))}; "
                            f"`catchjax data get` builds {', '.join(TABLES)} (or all)")
    dest = Path(dest) if dest is not None else tables.data_dir()
    if not all((dest / TABLES[n].filename).exists() for n in names) or overwrite:
        _writable(dest, "the tables", f"pass --to a writable folder (or set "
                  f"{tables.DATA_ENV} to one)")
        if not source_folder:
            _writable(Path(cache) if cache is not None else downloads_dir(), "downloads",
                      "set XDG_CACHE_HOME to a writable folder")
    out = []
    for name in names:
        table = TABLES[name]
        target = dest / table.filename
        if target.exists() and not overwrite:
            log(f"{target} is already there (pass --overwrite to build it again)")
            out.append(target)
            continue
        paths = {}
        for key in table.sources:
            source = FILES[key]
            paths[key] = (from_folder(source, source_folder, cache) if source_folder
                          else fetch(source, cache, log=log))
        written = _write(table.build(paths), table, dest)
        record = provenance(table)
        importers.write_sources(dest, table.filename, record["built_by"], record["sources"])
        licences = sorted({FILES[k].licence for k in table.sources})
        log(f"wrote {written} (sources: {', '.join(sorted({FILES[k].repo for k in table.sources}))}"
            f"; licences {', '.join(licences)})")
        out.append(written)
    return out


def listing() -> str:
    """What ``data get`` downloads, for a machine without network (``--list``)."""
    lines = []
    for table in TABLES.values():
        lines.append(f"{table.name} -> {table.filename}:")
        for key in table.sources:
            s = FILES[key]
            lines.append(f"  {s.url()}\n    sha256 {s.sha256}  {s.size:,} bytes  {s.licence}")
    return "\n".join(lines)
