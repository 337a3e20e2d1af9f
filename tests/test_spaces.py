import jax
import jax.numpy as jnp
import numpy as np
import pytest

from catchjax import sampling
from catchjax.benchmarks import spaces
from catchjax.errors import CatchjaxError


def test_macro_enumeration_has_3256_unique_valid_archs():
    archs = spaces.TRANSNAS_MACRO.enumerate()
    assert archs.shape == (3256, 6)
    assert len(np.unique(spaces.TRANSNAS_MACRO.encode(archs))) == 3256
    spaces.TRANSNAS_MACRO.check_actions(archs, "enumeration")
    # the TransNAS API's first two archs
    assert spaces.TRANSNAS_MACRO.to_str(archs[0]) == "64-4111-basic"
    assert spaces.TRANSNAS_MACRO.to_str(archs[1]) == "64-2311-basic"


@pytest.mark.parametrize("space", list(spaces.SPACES.values()), ids=list(spaces.SPACES))
def test_arch_string_round_trip(space):
    archs = space.enumerate()
    for a in archs[:: max(1, len(archs) // 300)]:
        assert np.array_equal(space.from_str(space.to_str(a)), a)
    codes = space.encode(archs)
    assert np.array_equal(space.decode(codes), archs)


def test_bad_arch_strings_are_refused():
    with pytest.raises(CatchjaxError, match="not an architecture string"):
        spaces.NB201.from_str("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(CatchjaxError):
        spaces.TRANSNAS_MACRO.from_str("64-11-basic")  # depth 2 < 4
    with pytest.raises(CatchjaxError):
        spaces.TRANSNAS_MICRO.from_str("64-41414-4_00_000")


def test_macro_masking_samples_only_valid_archs_and_reaches_all(syn_macro):
    arrays = syn_macro.arrays
    # random (strong) logits per step and prefix, so sampling explores everything
    def one(key):
        k1, k2 = jax.random.split(key)
        logits = 3.0 * jax.random.normal(k1, (6, 5))
        actions, logp = sampling.sample_sequence(k2, lambda t, _: logits[t], arrays.prefix_mask)
        return arrays.code_to_row[sampling.sequence_code(actions, 5)], logp

    rows, logp = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 40_000))
    rows = np.asarray(rows)
    assert (rows >= 0).all(), "a masked sampler produced an invalid architecture"
    assert np.isfinite(np.asarray(logp)).all()
    assert len(np.unique(rows)) > 2500  # broad coverage of the 3,256 archs


def test_prefix_masks_enumerate_exactly_the_table():
    archs = spaces.TRANSNAS_MACRO.enumerate()
    mask = spaces.prefix_masks(spaces.TRANSNAS_MACRO, archs)
    # depth-first walk over the masks: the complete sequences are exactly the table
    found, stack = [], [(0, 0, ())]
    while stack:
        t, prefix, seq = stack.pop()
        if t == 6:
            found.append(seq)
            continue
        for a in np.flatnonzero(mask[t, prefix]):
            stack.append((t + 1, prefix * 5 + int(a), seq + (int(a),)))
    assert sorted(found) == sorted(map(tuple, archs.tolist()))


def test_log_prob_matches_sampling_distribution():
    # logits over a tiny masked space: empirical frequencies match exp(log_prob)
    archs = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0], [2, 1, 1, 1, 0, 0]])
    mask = jnp.asarray(spaces.prefix_masks(spaces.TRANSNAS_MACRO, archs))
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)))
    keys = jax.random.split(jax.random.key(1), 20_000)
    acts, logp = jax.vmap(lambda k: sampling.sample_sequence(k, lambda t, _: logits[t], mask))(keys)
    codes = np.asarray(sampling.sequence_code(acts, 5))
    for arch in archs:
        code = spaces.TRANSNAS_MACRO.encode(arch)
        freq = np.mean(codes == code)
        p = float(np.exp(np.asarray(logp)[codes == code][0]))
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / len(keys)) + 1e-3
