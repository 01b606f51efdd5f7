"""MinHash signatures: the numpy implementation is datasketch's affine32 MinHash, bit for bit."""

from __future__ import annotations

import numpy as np

from newsflow.dedupe.signature import band_keys, datasketch_signature, shingle_hashes, signature


def test_numpy_signature_equals_datasketch(real_texts: dict[str, list[str]]) -> None:
    # Stored LSH band keys were made by datasketch: new ones must land in the same buckets.
    texts = ["\n".join(t) for t in list(real_texts.values())[:5]] + ["one two", "one", ""]
    for text in texts:
        sh = shingle_hashes(text)
        assert np.array_equal(signature(sh), datasketch_signature(sh))
        assert band_keys(signature(sh)) == band_keys(datasketch_signature(sh))


def test_shingles_are_sorted_and_distinct() -> None:
    sh = shingle_hashes("the cat sat on the mat and the cat sat on the mat again")
    assert np.array_equal(sh, np.unique(sh))
    assert len(shingle_hashes("a b")) == 1 and len(shingle_hashes("")) == 0


def test_permutations_are_datasketchs() -> None:
    from datasketch import MinHash

    from newsflow.dedupe.signature import _PERM_A, _PERM_B, NUM_PERM

    a, b = MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32").permutations
    assert np.array_equal(_PERM_A, a) and np.array_equal(_PERM_B, b)


def test_dedupe_does_not_import_datasketch() -> None:
    # datasketch pulls in scipy and redis, memory the flow process would carry at dedupe's peak.
    import subprocess
    import sys

    code = "import sys, flows.dedupe; print('datasketch' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
