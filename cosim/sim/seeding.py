"""Named, independent random streams derived from one run seed.

Every random source of a run (SUMO's ``--seed``, the channel, each agent's torch generator,
built-in controllers) gets its own stream, derived from the run seed and a name path such as
``("epoch", 3, "sumo")``. Streams are independent of each other and of the order in which they
are requested, so adding a new consumer never shifts the numbers another one sees.
"""

from __future__ import annotations

import hashlib

import numpy as np

Key = str | int


def _spawn_key(keys: tuple[Key, ...]) -> tuple[int, ...]:
    """Map a name path to integers stably across runs and Python versions (no ``hash()``)."""
    out = []
    for key in keys:
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
        out.append(int.from_bytes(digest, "little"))
    return tuple(out)


def seed_sequence(seed: int, *keys: Key) -> np.random.SeedSequence:
    """The SeedSequence of stream ``keys`` under run seed ``seed``."""
    return np.random.SeedSequence(entropy=seed, spawn_key=_spawn_key(keys))


def rng(seed: int, *keys: Key) -> np.random.Generator:
    """A numpy Generator for stream ``keys`` under run seed ``seed``."""
    return np.random.default_rng(seed_sequence(seed, *keys))


def int_seed(seed: int, *keys: Key, bits: int = 31) -> int:
    """A non-negative integer seed (for SUMO, torch) for stream ``keys``; ``bits`` <= 63."""
    word = seed_sequence(seed, *keys).generate_state(1, dtype=np.uint64)[0]
    return int(word) & ((1 << bits) - 1)
