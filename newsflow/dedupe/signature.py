"""Signatures: words, shingles, MinHash signatures and LSH band keys (pure: numpy only)."""

from __future__ import annotations

import hashlib
import re
import threading
import zlib

import numpy as np

SHINGLE = 3  # words per shingle
NUM_PERM = 126
# 42 bands of 3 rows: a pair with Jaccard 0.4 becomes a candidate with p = 0.94, one of 0.5
# with p = 0.996, while unrelated news (Jaccard < 0.05) almost never does. Verification, not
# LSH, decides; LSH only has to miss nothing a partial copy could be.
ROWS = 3
BANDS = NUM_PERM // ROWS
_WORD = re.compile(r"\w+")
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def words(text: str) -> list[str]:
    """Lower-case word tokens: punctuation, spacing and case never tell copies apart."""
    return _WORD.findall(text.lower())


class _WordHashes(dict[str, int]):
    """crc32 of each distinct word, shared by every text a process signs: news reuses its
    words, and a dict lookup costs a fifth of encoding and hashing the word again. A word seen
    for the first time is hashed on the lookup itself (__missing__): one pass over a text."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes()
_WORD_CACHE_MAX = 500_000  # entries; the cache starts over past this


def word_hashes(w: list[str]) -> np.ndarray:
    """crc32 of each word, as uint64."""
    if len(_WORD_HASHES) > _WORD_CACHE_MAX:
        _WORD_HASHES.clear()
    return np.fromiter(map(_WORD_HASHES.__getitem__, w), dtype=np.uint64, count=len(w))


def shingles_of(w: list[str]) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word 3-grams of a word list (fewer: one shingle)."""
    if not w:
        return np.empty(0, dtype=np.uint64)
    h = word_hashes(w)
    if len(h) < SHINGLE:
        return np.array([int(h.sum())], dtype=np.uint64)
    # Position-dependent mix of three word hashes; uint64 arithmetic wraps, which is wanted.
    sh = np.sort(h[: -2] * _MIX[0] ^ h[1:-1] * _MIX[1] ^ h[2:])
    # Sorted distinct values: what np.unique returns, without its slower hash-based path.
    keep = np.empty(len(sh), dtype=bool)
    keep[0] = True
    np.not_equal(sh[1:], sh[:-1], out=keep[1:])
    return sh[keep]


def shingle_hashes(text: str) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word 3-grams of text (fewer words: one shingle)."""
    return shingles_of(words(text))


def _identity(x: int) -> int:
    return x


# MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme pre-mixes each input hash.
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35),
           np.uint32(16))


def _affine32_permutations(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's affine32 MinHash for seed: its own draws, in its order.

    Drawn here instead of taken from a datasketch MinHash: `import datasketch` loads scipy,
    redis and more into the flow process (the dedupe's memory peak), for two arrays.
    A test checks signature() against datasketch itself.
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_PERM_A, _PERM_B = _affine32_permutations()
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)  # datasketch's initial hash values


# Shingles hashed per step of signature(): the (shingles x permutations) product is the only big
# array of the dedupe's text work. Made in one piece it passed the CLI's mmap threshold
# (newsflow.runtime.tune_malloc), so each article mapped, faulted in and unmapped it; a reused
# buffer of this many rows stays under it.
_SIGN_ROWS = 256
_SIGN_BUFFER = threading.local()


def signature(shingles: np.ndarray) -> np.ndarray:
    """The datasketch MinHash (affine32 scheme, seed 1) of a shingle set, computed in numpy.

    Equal to MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32").update_batch() of the
    folded shingles (a test checks it), without its per-value Python call, half its time.
    """
    out = _EMPTY.copy()
    if not len(shingles):
        return out
    hv = ((shingles ^ (shingles >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    s1, m1, s2, m2, s3 = _FMIX32
    hv ^= hv >> s1
    hv *= m1
    hv ^= hv >> s2
    hv *= m2
    hv ^= hv >> s3
    buf = getattr(_SIGN_BUFFER, "rows", None)
    if buf is None:
        buf = _SIGN_BUFFER.rows = np.empty((_SIGN_ROWS, NUM_PERM), dtype=np.uint32)
    for start in range(0, len(hv), _SIGN_ROWS):
        part = hv[start:start + _SIGN_ROWS].reshape(-1, 1)
        rows = buf[:len(part)]
        np.multiply(part, _PERM_A, out=rows)  # uint32 arithmetic wraps, as datasketch's
        rows += _PERM_B
        np.minimum(out, rows.min(axis=0), out=out)
    return out


def datasketch_signature(shingles: np.ndarray) -> np.ndarray:
    """The same signature through datasketch itself (what signature() must equal)."""
    from datasketch import MinHash  # tests only: see _affine32_permutations

    m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=_identity, scheme="affine32")
    if len(shingles):
        folded = (shingles ^ (shingles >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
        m.update_batch(folded.tolist())
    return np.asarray(m.hashvalues)


_PERSON = [band.to_bytes(2, "big") for band in range(BANDS)]


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 64-bit bucket key per band (what lsh_bands stores and joins on)."""
    raw = np.ascontiguousarray(sig.astype(np.uint32)).tobytes()
    width = ROWS * 4
    return [int.from_bytes(hashlib.blake2b(raw[band * width:(band + 1) * width], digest_size=8,
                                           person=_PERSON[band]).digest(), "big", signed=True)
            for band in range(BANDS)]


def words_hash(w: list[str]) -> str:
    """Exact-copy key: hash of the word sequence (spacing, case and punctuation ignored)."""
    return hashlib.sha256(" ".join(w).encode()).hexdigest()[:24]
