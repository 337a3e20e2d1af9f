"""The managed-folder store (catchjax.store.folder): checksums, generations, whole-folder
creation, restores, and that nothing else in the package writes such folders by hand."""

import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import catchjax
from catchjax.errors import CatchjaxError
from catchjax.store import folder

STALE = re.compile(r"^state(-\d{6})?$")


def test_a_sealed_manifest_detects_any_change():
    meta = folder.seal({"method": "rea", "config": {"budget": 10}, "proposals": [1, 2]})
    assert folder.is_sealed(meta)
    assert folder.is_sealed(json.loads(json.dumps(meta, indent=3)))  # layout is not content
    for change in ({"method": "random"}, {"config": {"budget": 11}}, {"extra": None}):
        assert not folder.is_sealed({**meta, **change})
    assert not folder.is_sealed({k: v for k, v in meta.items() if k != folder.DIGEST})


def test_generations_replace_each_other_and_leftovers_go_only_after_the_manifest(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "n": jnp.int32(4)}
    first = folder.write_generation(tmp_path, "m.json", state, {"kind": "test"}, 1)
    assert first["state_dir"] == "state-000001" and first["generation"] == 1
    assert first["state_sha256"] == folder.state_digest(tmp_path / "state-000001")
    (tmp_path / "state-000007").mkdir()  # a crashed write's leftover
    (tmp_path / "notes.txt").write_text("the user's")  # not ours: never touched
    second = folder.write_generation(tmp_path, "m.json", {**state, "n": jnp.int32(5)},
                                     {"kind": "test"}, 2)
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk == second and folder.is_sealed(on_disk)
    assert (tmp_path / "state-000001").is_dir()  # still there until cleaned
    folder.remove_stale(tmp_path, second["state_dir"], STALE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "notes.txt", "state-000002"]
    back = folder.restore_state(tmp_path / "state-000002", folder.abstract_of(state), "x")
    assert int(back["n"]) == 5 and np.array_equal(back["w"], state["w"])


def test_a_damaged_state_says_which_folder_and_what_to_do(tmp_path):
    state = {"w": jnp.ones(3)}
    folder.save_state(tmp_path / "s", state)
    abstract = folder.abstract_of({"w": jnp.ones(4)})  # another shape than was saved
    with pytest.raises(CatchjaxError, match=r"cannot restore .*/s .*; the thing is damaged"):
        folder.restore_state(tmp_path / "s", abstract, "the thing is damaged")


def test_a_packed_state_holds_one_array_per_dtype_and_restores_bit_for_bit(tmp_path):
    """What ask/tell folders save: every leaf, a PRNG key array, booleans, a scalar and an
    empty leaf included, comes back with the same bits, dtype and shape; a state of another
    shape is refused, not filled with the wrong numbers."""
    keys = jax.random.split(jax.random.key(3), 4)
    state = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32).reshape(2, 3),
             "b": jnp.float32(np.nan), "n": jnp.int32(-7), "ids": jnp.arange(5),
             "seen": jnp.array([True, False, True]), "none": jnp.zeros((0, 4)),
             "keys": keys, "key": jax.random.key(9)}
    flat = folder.pack(state)
    assert sorted(flat) == ["bool", "float32", "int32", "uint32"]  # zero-size: nothing
    assert flat["float32"].shape == (7,) and flat["uint32"].shape == (10,)
    folder.save_state(tmp_path / "s", state, packed=True)
    shapes = folder.abstract_of(jax.eval_shape(lambda: state))  # as ask/tell restores
    back = folder.restore_state(tmp_path / "s", shapes, "x", packed=True)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    for name in state:
        a, b = state[name], back[name]
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
    assert np.array_equal(jax.random.uniform(back["keys"][2], (3,)),
                          jax.random.uniform(keys[2], (3,)))  # keys that still draw the same
    other = folder.abstract_of(jax.eval_shape(lambda: {**state, "ids": jnp.arange(6)}))
    with pytest.raises(CatchjaxError, match=r"cannot restore .*/s .*; damaged"):
        folder.restore_state(tmp_path / "s", other, "damaged", packed=True)
    with pytest.raises(CatchjaxError, match="cannot restore"):  # read as leaf by leaf
        folder.restore_state(tmp_path / "s", shapes, "damaged")


def test_a_folder_created_whole_never_replaces_one_created_meanwhile(tmp_path):
    path = tmp_path / "search"

    def fill(tmp):
        (tmp / "a").write_text("mine")
        return {"ok": True}

    assert folder.create_whole(path, fill, "taken") == {"ok": True}
    assert (path / "a").read_text() == "mine"
    with pytest.raises(folder.ExistsAlready, match="taken"):
        folder.create_whole(path, lambda tmp: (tmp / "a").write_text("theirs") and {}, "taken")
    assert (path / "a").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search"]  # no temporary left

    def crash(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        folder.create_whole(tmp_path / "other", crash, "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search"]


def test_only_the_store_checksums_checkpoints_and_locks():
    """The store owns manifests, Orbax and the lock: no other module hand-writes them."""
    package = pathlib.Path(catchjax.__file__).parent
    owners = {"StandardCheckpointer(": {"store/folder.py"},
              "locking.hold(": {"store/folder.py"},
              "manifest_digest(": {"store/folder.py", "store/checkpoints.py",
                                   "store/reporting.py"},
              "hashlib.sha256(json.dumps": {"store/folder.py"}}
    for needle, allowed in owners.items():
        users = {str(p.relative_to(package)) for p in package.rglob("*.py")
                 if needle in p.read_text()}
        assert users <= allowed, f"{needle} used in {sorted(users - allowed)}"
