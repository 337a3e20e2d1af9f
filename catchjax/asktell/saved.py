"""An ask/tell search kept in a folder that many workers drive at once.

Every ask, tell, load and save holds the folder's lock (``catchjax-search.lock``) for its
whole read-change-write, re-reads the folder under it when another handle has changed it
since, and applies its change to what is there now: a told result is never lost and an id
is never handed out twice. We chose a lock over an append-only journal because the state
is a pytree that only the method's jitted steps can rebuild: replaying a journal would
re-run every step of the search on each load.

The folder itself is never moved. A write puts the new state (Orbax) in
``state-NNNNNN/``, then atomically replaces the manifest ``catchjax-search.json`` (method,
config, domain, seed, every proposal with its reward, the name and SHA-256 of the current
state folder), and only then deletes older generations; a crash at any moment leaves a
manifest that names a complete state (:mod:`catchjax.store.folder` does the writing).
The state is saved packed, one array per dtype (:func:`catchjax.store.folder.pack`: one
Orbax array per leaf made saving and restoring most of a CATCH step's time). Folders of the
earlier formats (one ``state/`` folder replaced as a whole; generations saved leaf by leaf)
still load and are converted on their next write.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import jax

from catchjax import methods, safe_io
from catchjax.asktell.domains import Domain, categorical_domain, domain_by_name
from catchjax.asktell.objectives import check_objectives
from catchjax.core import Method
from catchjax.errors import CatchjaxError
from catchjax.store import folder, provenance

FORMAT = 3
# 1: one state/ folder, replaced with the whole search folder; 2: generations, each state
# saved leaf by leaf; 3: each state saved packed, one array per dtype (folder.pack)
READABLE_FORMATS = (1, 2, 3)
MANIFEST = "catchjax-search.json"
LOCK = "catchjax-search.lock"
KIND = "catchjax ask/tell search"
# what a write may delete inside a search folder: earlier generations of the state, the
# first format's state/, and what a crashed write left (Orbax's and our temporary names)
STALE = re.compile(r"^(state(-\d{6})?(\.orbax-checkpoint-tmp-\d+)?"
                   rf"|\.{re.escape(MANIFEST)}\.{safe_io.TMP_TAG}-\d+-\w+)$")
# what tells two manifests apart as searches (not as moments of one search)
IDENTITY = ("method", "config", "domain", "domain_fingerprint", "seed", "trial")


@dataclasses.dataclass
class SearchFolder:
    """The folder of one search, as one handle sees it: the manifest it last read or
    wrote (its digest and generation), so that a folder another handle changed since is
    re-read before this one changes it."""

    path: Path
    lock_timeout: float = folder.DEFAULT_TIMEOUT
    seen: str | None = None
    generation: int = 0

    @classmethod
    def new(cls, state_dir, lock_timeout) -> SearchFolder:
        """A folder for a new search: it must not exist yet (nothing is written here)."""
        path = real_path(state_dir)
        safe_io.restore_set_aside(path)
        if path.exists():
            raise CatchjaxError(
                f"{path} already exists; continue that search with AskTell.load / "
                f"`catchjax ask --state {path}` (without --method), or pick a new folder"
            )
        safe_io.check_output_dir(path, False, owned=set(), marker=MANIFEST,
                                 what="ask/tell search")
        return cls(path, lock_timeout)

    def hold(self, read_only_ok: bool = False):
        return folder.hold(self.path / LOCK, timeout=self.lock_timeout,
                           what=f"search folder {self.path}", read_only_ok=read_only_ok)

    def _written(self, meta: dict) -> None:
        self.seen, self.generation = meta[folder.DIGEST], meta["generation"]

    def create(self, manifest: dict, state) -> None:
        """Write the new search whole, then move it in; a folder another worker created
        meanwhile is never replaced (:class:`catchjax.store.folder.ExistsAlready`)."""
        path = self.path

        def fill(tmp: Path) -> dict:
            (tmp / LOCK).touch()
            return folder.write_generation(tmp, MANIFEST, state, manifest, 1,
                                           packed=FORMAT >= 3, indent=1, allow_nan=False)

        self._written(folder.create_whole(
            path, fill, f"{path} already exists (another worker started it meanwhile); "
            f"continue that search with AskTell.load / `catchjax ask --state {path}`, or pick "
            f"a new folder"))

    def write(self, manifest: dict, state) -> None:
        """The next generation (the caller holds the lock), then older ones removed."""
        meta = folder.write_generation(self.path, MANIFEST, state, manifest,
                                       self.generation + 1, packed=FORMAT >= 3,
                                       indent=1, allow_nan=False)
        self._written(meta)
        folder.remove_stale(self.path, meta["state_dir"], STALE)  # only now

    def changes(self, mine: dict, method: Method, config, domain: Domain):
        """``(state, log)`` of the folder when another worker moved this search on since
        this handle read it (``mine``: this handle's manifest); None when unchanged."""
        meta = read_manifest(self.path, check_state=False)
        if meta[folder.DIGEST] == self.seen:
            return None
        same = ({k: json.loads(json.dumps(m.get(k))) for k in IDENTITY} for m in (meta, mine))
        if next(same) != next(same):
            raise CatchjaxError(
                f"{self.path} now holds another search (method {meta.get('method')}, "
                f"seed {meta.get('seed')}) than the one this handle opened; load it anew"
            )
        # the same search, moved on: its state and log, with this handle's method, config
        # and domain (not rebuilt: a table domain reloads a table)
        state_name = meta.get("state_dir", "state")
        if folder.state_digest(self.path / state_name) != meta.get(folder.STATE_DIGEST):
            raise CatchjaxError(f"{self.path}: the files under {state_name}/ do not "
                                f"match their checksum; the search folder is damaged")
        state = restore_state(self.path / state_name, method, config, domain,
                              packed=is_packed(meta))
        log = list(meta["proposals"])
        if int(state.ledger.n_asked) != len(log):
            raise CatchjaxError(f"{self.path}: the state and the proposal list "
                                f"disagree; damaged")
        self.seen, self.generation = meta[folder.DIGEST], int(meta.get("generation", 0))
        return state, log

    def check_unchanged(self) -> None:
        """Refuse to save over what another handle wrote since this one read it."""
        if read_manifest(self.path, check_state=False)[folder.DIGEST] != self.seen:
            raise CatchjaxError(
                f"{self.path} was changed by another worker since this handle read "
                f"it; saving would drop their results. AskTell.load it again"
            )


def manifest(search, log) -> dict:
    """The manifest of ``search`` (an :class:`~catchjax.asktell.search.AskTell`) with the
    proposal ``log``: what identifies the search, and every proposal with its reward."""

    return {
        "format": FORMAT, "kind": KIND, "method": search.method,
        "config": dataclasses.asdict(search.config), "domain": search.domain.name,
        "space": search.domain.space.name, "domain_fingerprint": search.domain.fingerprint,
        "seed": search.seed, "trial": search.trial, "agent": search.agent_source,
        "budget": search.config.budget,
        "n_asked": len(log), "n_told": sum(p["reward"] is not None for p in log),
        "proposals": log,
        # several objectives: what a tell gives, and how it becomes the reward
        **({"objectives": [o.to_json() for o in search.objectives],
            "weights": list(search.weights)} if search.objectives else {}),
        **provenance.record(),  # of the process that wrote this generation
    }


def load(state_dir, *, method: str | None, space: str | None, lock_timeout,
         lock: bool = True) -> tuple[dict, SearchFolder]:
    """What :meth:`AskTell.load` builds a search from (its fields), read under the
    folder's lock, and the folder. ``method`` / ``space``: refuse a folder of another
    method or space."""
    path = real_path(state_dir)
    safe_io.restore_set_aside(path)
    lock_timeout = folder.timeout_value(lock_timeout)
    if lock and (path / MANIFEST).is_file():  # another folder gets no lock file from us
        with SearchFolder(path, lock_timeout).hold(read_only_ok=True):
            return load(path, method=method, space=space, lock_timeout=lock_timeout,
                        lock=False)
    meta = read_manifest(path)
    try:
        m = methods.get(meta["method"])
        config = methods.restore(m.name, meta["config"])
        domain_name, seed, log = meta["domain"], int(meta["seed"]), list(meta["proposals"])
        trial = int(meta["trial"])
        generation = int(meta.get("generation", 0))
        goals = check_objectives(meta.get("objectives"))
        weights = tuple(float(w) for w in meta.get("weights", ()))
        if len(weights) != len(goals):
            raise ValueError("the objectives and their weights differ in number")
    except (KeyError, TypeError, ValueError, CatchjaxError) as exc:
        raise CatchjaxError(f"{path / MANIFEST} is damaged or from another version: "
                            f"{exc}") from None
    if method is not None and methods.canonical_name(method) != m.name:
        raise CatchjaxError(f"{path} holds a {m.name} search, not a {method} search")
    if space is not None and str(space).endswith(".json"):
        space = categorical_domain(space).name  # the same declaration, from its file
    if space is not None and space not in (domain_name, meta.get("space")):
        raise CatchjaxError(f"{path} searches {domain_name}, not {space}")
    domain = domain_by_name(domain_name)
    if domain.fingerprint != meta.get("domain_fingerprint"):
        raise CatchjaxError(
            f"{path}: the architectures of {domain_name} differ from those the search was "
            f"started on (another table or catchjax version); start a new search"
        )
    state = restore_state(path / meta.get("state_dir", "state"), m, config, domain,
                          packed=is_packed(meta))
    if int(state.ledger.n_asked) != len(log):
        raise CatchjaxError(f"{path}: the state and the proposal list disagree; damaged")
    fields = dict(method=m.name, config=config, domain=domain, seed=seed, state=state,
                  log=log, agent_source=meta.get("agent"), trial=trial, registered=m,
                  objectives=goals, weights=weights)
    return fields, SearchFolder(path, lock_timeout, meta[folder.DIGEST], generation)


def real_path(state_dir) -> Path:
    """The search folder, a link resolved once: the real folder is what is written."""
    if state_dir is None or str(state_dir).strip() == "":
        raise CatchjaxError("the search folder is empty (''); name a folder")
    if not isinstance(state_dir, (str, os.PathLike)):
        raise CatchjaxError(f"the search folder must be a path, got {state_dir!r}")
    return Path(state_dir).expanduser().resolve()


_SHAPES: dict = {}


def _state_shapes(method: Method, config, domain: Domain):
    """The shapes and dtypes of a search state (what a restore fills), traced once per
    method, config and domain: a worker that catches up before every step does not
    re-trace or initialize an agent for it. The domain is keyed by its name and
    architectures, not the object: a table domain is built anew at every load."""
    key = (method.name, config, domain.name, domain.fingerprint)
    if key not in _SHAPES:
        L, K = domain.space.n_decisions, domain.space.n_choices

        def start():
            agent = method.learner.init(config, jax.random.key(0), L, K) \
                if method.learner else None
            return method.stepper.start(config, jax.random.key(0), domain.arrays, agent)

        if len(_SHAPES) >= 32:  # a long-lived worker with many searches
            _SHAPES.pop(next(iter(_SHAPES)))
        _SHAPES[key] = folder.abstract_of(jax.eval_shape(start))
    return _SHAPES[key]


def is_packed(meta: dict) -> bool:
    """Whether the manifest's state was saved packed (format 3 on)."""
    return int(meta.get("format", 1)) >= 3


def restore_state(state_path: Path, method: Method, config, domain: Domain, *,
                  packed: bool):
    return folder.restore_state(state_path, _state_shapes(method, config, domain),
                                "the search folder is damaged", packed=packed)


def read_manifest(path: Path, *, check_state: bool = True) -> dict:
    """The manifest of a complete search folder, or a clear error (missing, half-written,
    changed after writing). ``check_state``: also check the state files' checksum."""
    path = Path(path).absolute()
    if not path.exists():
        aside = sorted(path.parent.glob(f".{path.name}.{safe_io.OLD_TAG}-*/{path.name}"))
        if aside:
            raise CatchjaxError(
                f"search folder {path} is missing, but a complete earlier copy was set aside "
                f"while it was being replaced (a crash?): {aside[-1]}. Move it back "
                f"(mv {aside[-1]} {path}) and repeat the last ask or tell"
            )
        raise CatchjaxError(f"search folder {path} does not exist; start a search with "
                            f"--method and --space")
    meta_file = path / MANIFEST
    if not meta_file.is_file():
        raise CatchjaxError(
            f"{path} is not a complete catchjax ask/tell search folder (no {MANIFEST}): not "
            f"one catchjax wrote, or its writing did not finish"
        )
    meta = folder.read_json_object(meta_file)
    if meta.get("kind") != KIND or meta.get("format") not in READABLE_FORMATS:
        raise CatchjaxError(f"{path} is not a catchjax ask/tell search folder (format "
                            f"{meta.get('format')}, kind {meta.get('kind')!r})")
    if not folder.is_sealed(meta):
        raise CatchjaxError(f"{meta_file} was changed after it was written (checksum); "
                            f"restore a copy")
    state_name = meta.get("state_dir", "state")
    if not isinstance(state_name, str) or not STALE.match(state_name) or \
            not (path / state_name).is_dir():
        raise CatchjaxError(
            f"{path} is not a complete catchjax ask/tell search folder (no state folder "
            f"{state_name!r}): its writing did not finish or it was damaged"
        )
    if check_state and folder.state_digest(path / state_name) != meta.get(folder.STATE_DIGEST):
        raise CatchjaxError(f"{path}: the files under {state_name}/ do not match their "
                            f"checksum; the search folder is damaged")
    return meta
