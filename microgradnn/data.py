"""Toy datasets made with numpy: `(X, y)` with X of shape (n, 2) and integer labels 0..k-1;
and a character corpus of words with its tokenizer, for the GPT.

make_moons, make_circles and make_blobs are scikit-learn's, with its signatures (noise and the
rest keyword-only), and these differences: `seed` is its `random_state` (an int >= 0; a numpy
Generator, drawn from; a RandomState, which seeds a Generator with one draw; or None, fresh numbers,
never numpy's global state, so np.random.seed does not fix them); the samples are always shuffled
(no `shuffle`); n_samples is an int (not a pair per class), centers a count (not coordinates), X has
2 features, and make_circles' factor defaults to 0.5 (scikit-learn's is 0.8)."""
from __future__ import annotations

import functools
import os
import re
import string
from typing import Callable, Sequence

import numpy as np

from microgradnn._checks import Seed, _is_int, generator_of, integer, number, positive_int, shown
from microgradnn._files import user_path

__all__ = ["make_moons", "make_circles", "make_blobs", "make_spiral", "xor", "DATASETS", "words", "make_words",
           "CharTokenizer", "WORD_LIST"]


MAX_SAMPLES = 10_000_000  # samples (and blobs' centres) per call at most: beyond, memory runs out, not fit's patience


def _at_most_max(n: int, name: str, what: str) -> int:
    n = positive_int(n, name, what)
    if n > MAX_SAMPLES:
        raise ValueError(f"{name}: {what} must be at most {MAX_SAMPLES}, got {shown(n)}")
    return n


def _setup(n_samples, noise, seed, name: str, what: str = "noise") -> np.random.Generator:
    _at_most_max(n_samples, name, "n_samples")
    if noise is not None or what != "noise":  # noise=None: none, scikit-learn's default
        number(noise, name, what, 0.0)
    return generator_of(seed, name)


def _check_finite(X: np.ndarray, noise: float | None, name: str, what: str) -> None:
    """Points so noisy that some are inf or nan are refused, not returned."""
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: {what} {noise:g} is too large: some points are not finite numbers")


def _finish(X: np.ndarray, y: np.ndarray, noise: float | None, rng: np.random.Generator, name: str,
            what: str = "noise") -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(over="ignore", invalid="ignore"):
        X = X + rng.normal(0.0, noise, size=X.shape) if noise else X
    _check_finite(X, noise, name, what)
    order = rng.permutation(len(y))
    return X[order].astype(float), y[order].astype(int)


def make_moons(n_samples: int = 100, *, noise: float | None = None,
               seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's shape): class 0 on top, class 1 below."""
    rng = _setup(n_samples, noise, seed, "make_moons")
    n0 = n_samples // 2
    n1 = n_samples - n0
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n1)
    X = np.vstack([np.c_[np.cos(t0), np.sin(t0)], np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    return _finish(X, np.r_[np.zeros(n0), np.ones(n1)], noise, rng, "make_moons")


def make_circles(n_samples: int = 100, *, noise: float | None = None, seed: Seed = None,
                 factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A large circle (class 0) around a smaller one (class 1) of radius `factor` in [0, 1)
    (scikit-learn's, whose default factor is 0.8: pass factor=0.8 for its circles)."""
    rng = _setup(n_samples, noise, seed, "make_circles")
    number(factor, "make_circles", "factor", 0.0, 1.0, hi_open=True)
    n0 = n_samples // 2
    n1 = n_samples - n0
    t0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0, 2 * np.pi, n1, endpoint=False)
    X = np.vstack([np.c_[np.cos(t0), np.sin(t0)], factor * np.c_[np.cos(t1), np.sin(t1)]])
    return _finish(X, np.r_[np.zeros(n0), np.ones(n1)], noise, rng, "make_circles")


def make_blobs(n_samples: int = 100, *, centers: int | None = None, cluster_std: float = 1.0,
               seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around `centers` (None: 3) random centres in the box [-10, 10]^2 (scikit-learn's,
    always 2 features: its second positional argument, n_features, is not taken)."""
    rng = _setup(n_samples, cluster_std, seed, "make_blobs", "cluster_std")
    centers = 3 if centers is None else _at_most_max(centers, "make_blobs", "centers")
    middles = rng.uniform(-10, 10, size=(centers, 2))
    y = np.arange(n_samples) % centers
    return _finish(middles[y], y, cluster_std, rng, "make_blobs", "cluster_std")


def make_spiral(n_samples: int = 100, classes: int = 3, noise: float | None = 0.2, *,
                seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """`classes` interleaved spiral arms (the CS231n spiral), radius 0 to 1."""
    rng = _setup(n_samples, noise, seed, "make_spiral")
    k = min(integer(classes, "make_spiral", "classes", at_least=2), n_samples)  # the same labels, in O(n)
    y = np.arange(n_samples) % k
    j, m = np.arange(n_samples) // k, (n_samples - y + k - 1) // k  # place in its class, of how many
    r = np.where(m == 1, 0.0, np.where(j == m - 1, 1.0, j * (1.0 / np.maximum(m - 1, 1))))  # linspace(0, 1, m)[j]
    with np.errstate(over="ignore", invalid="ignore"):
        theta = y * 4.0 + r * 4.0 + rng.normal(0.0, noise or 0.0, n_samples)
        X = np.c_[r * np.sin(theta), r * np.cos(theta)]
    _check_finite(X, noise, "make_spiral", "noise")
    return _finish(X, y, 0.0, rng, "make_spiral")


def xor(n_samples: int = 4, noise: float | None = 0.0, *, seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table on the corners of the unit square (repeated to n_samples), label x1 xor x2."""
    rng = _setup(n_samples, noise, seed, "xor")
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    idx = np.arange(n_samples) % 4
    X, y = corners[idx], np.array([0, 1, 1, 0])[idx]
    if n_samples == 4 and not noise:
        return X, y  # the truth table in its usual order
    return _finish(X, y, noise, rng, "xor")


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "moons": make_moons, "circles": make_circles, "blobs": make_blobs, "spiral": make_spiral, "xor": xor}


# ---- words, for the character-level GPT --------------------------------------------------

# Debian's `wamerican` word list (scripts/setup.sh installs it).
WORD_LIST = "/usr/share/dict/words"
_ONSETS = ["b", "br", "c", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p",
           "pl", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "oo"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]


def make_words(n: int = 5000, *, seed: Seed = None) -> list[str]:
    """n distinct made-up words from fixed rules: 1 to 3 syllables, each an onset consonant
    (cluster), a vowel (pair) and, three times in four, a closing consonant; 3 to 12 letters."""
    positive_int(n, "make_words", "n")
    rng = generator_of(seed, "make_words")
    if n > _made_limit(12):
        raise ValueError(f"make_words: n must be at most {_made_limit(12)}, {_limit_reason(12)}, got {n}")
    return _made_words(n, 12, rng)


MAX_MADE = 20_000  # drawn made-up words per call at most: drawing is slow where few draws fit (10 s at 6 letters)


def _made_limit(max_len: int) -> int:
    """How many distinct words of 3 to max_len letters the rules give in bounded time: all they
    make when few (listed), else MAX_MADE (drawn at random, repeats skipped)."""
    count = _made_count(max_len)
    return count if count <= 200_000 else MAX_MADE


def _limit_reason(max_len: int) -> str:
    count, limit = _made_count(max_len), _made_limit(max_len)
    if limit == count:
        return f"all the distinct words of at most {max_len} letters its rules make"
    return (f"of the {count} distinct words of at most {max_len} letters its rules make (drawing more than "
            f"{MAX_MADE} at random would take too long)")


_PIECES = (frozenset(_ONSETS), frozenset(_VOWELS), frozenset(_CODAS))
_END = (0, 3, "")  # the NFA state "a word may end here"


def _closure(states) -> frozenset:
    """The states of make_words' rules, read letter by letter, reachable without a letter: a
    state is (syllable, piece: onset 0, vowel 1, coda 2, the piece's letters read so far)."""
    todo, out = list(states), set(states)
    while todo:
        k, part, read = todo.pop()
        if part < 3 and read in _PIECES[part]:  # the piece may end here
            for nxt in [(k, part + 1, "")] if part < 2 else [_END] + ([(k + 1, 0, "")] if k < 3 else []):
                if nxt not in out:
                    out.add(nxt)
                    todo.append(nxt)
    return frozenset(out)


@functools.lru_cache(maxsize=None)
def _step(states: frozenset, letter: str) -> frozenset:
    return _closure({(k, part, read + letter) for k, part, read in states
                     if part < 3 and any(p.startswith(read + letter) for p in _PIECES[part])})


@functools.lru_cache(maxsize=None)
def _made_count(max_len: int) -> int:
    """How many distinct words of 3 to max_len letters the rules make (syllables may join into
    the same word: "st|a" and "s|ta"), counted over the rules read as an automaton."""
    now, total = {_closure({(1, 0, "")}): 1}, 0
    for length in range(1, max_len + 1):
        after: dict[frozenset, int] = {}
        for states, count in now.items():
            for letter in string.ascii_lowercase:
                nxt = _step(states, letter)
                if nxt:
                    after[nxt] = after.get(nxt, 0) + count
        now = after
        total += sum(c for states, c in now.items() if _END in states) if length >= 3 else 0
    return total


def _all_made(max_len: int) -> list[str]:
    """Every word of 3 to max_len letters the rules make, in alphabetical order."""
    out: list[str] = []

    def grow(word: str, states: frozenset) -> None:
        if len(word) >= 3 and _END in states:
            out.append(word)
        if len(word) < max_len:
            for letter in string.ascii_lowercase:
                nxt = _step(states, letter)
                if nxt:
                    grow(word + letter, nxt)
    grow("", _closure({(1, 0, "")}))
    return out


def _made_words(n: int, max_len: int, rng: np.random.Generator) -> list[str]:
    """n (at most `_made_limit(max_len)`) distinct words by make_words' rules, of 3 to max_len (>= 3) letters."""
    count = _made_count(max_len)
    if count <= 200_000:  # few: every one of them, n picked at random
        every = _all_made(max_len)
        return [every[i] for i in rng.choice(count, size=n, replace=False).tolist()]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                       for _ in range(rng.integers(1, 4)))
        if 3 <= len(word) <= max_len and word not in seen:
            seen.add(word)
            out.append(word)
    return out


def words(max_len: int = 15, *, path: str | os.PathLike | None = None, n: int | None = None,
          seed: Seed = 0) -> tuple[list[str], str]:
    """Lowercase a-z words of at most `max_len` letters and where they came from: the word list
    at `path`, or by default the system's (WORD_LIST) when it exists, else `make_words`. `n`
    picks that many at random (seeded); fewer there is an error."""
    positive_int(max_len, "words", "max_len")
    if n is not None:
        positive_int(n, "words", "n")
    rng = generator_of(seed, "words")  # checked now, used (once at most) below
    if path is not None:
        path = user_path(path, "words")
        if not os.path.exists(path):
            raise FileNotFoundError(f"words: no such file: {path}")
        if not os.path.isfile(path):  # a folder, or a device or pipe that may never end (/dev/zero)
            raise ValueError(f"words: {path} is not a regular file (a word list, one word per line)")
    path = WORD_LIST if path is None else path
    if os.path.exists(path):
        with open(path, encoding="utf-8-sig", errors="replace") as f:  # (-sig: a BOM is no part of the first word)
            # (max_len is no regex repeat count: one of 2**32 or more overflows it)
            found = sorted({w for w in (line.strip() for line in f) if len(w) <= max_len and re.fullmatch("[a-z]+", w)})
        source = path
    else:
        source = "make_words (rules)"
        made = min(max_len, 12)
        limit = _made_limit(made) if made >= 3 else 0
        if limit and n is not None and n > limit:
            raise ValueError(f"words: n must be at most {limit} from {source}, {_limit_reason(made)}, got {n}")
        found = _made_words(n or min(5000, limit), made, rng) if limit else []
    if not found:
        why = "" if source == path else f" (its words have 3 to 12; there is no word list at {path})"
        raise ValueError(f"words: {source} has no lowercase words of at most {max_len} letters{why}")
    if n is not None and n > len(found):  # fewer words than asked would pass silently
        raise ValueError(f"words: n must be at most the {len(found)} lowercase words of at most {max_len} letters "
                         f"in {source}, got {n}")
    if n is not None and n < len(found):
        found = [found[i] for i in sorted(rng.choice(len(found), size=n, replace=False))]
    return found, source


class CharTokenizer:
    """Characters to token ids and back; id 0 is `BOS`, which marks both ends of a word."""

    BOS = 0

    def __init__(self, texts: Sequence[str]) -> None:
        # one str is a corpus: its characters; a 0-d array (of one str) cannot be iterated
        if not hasattr(texts, "__iter__") or isinstance(texts, (bytes, dict)) or getattr(texts, "ndim", 1) == 0:
            raise TypeError(f"CharTokenizer: texts must be a list of strs, got {type(texts).__name__} {texts!r:.60}")
        texts = list(texts)
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"CharTokenizer: texts must be strs, got {type(text).__name__} {text!r:.60} "
                                f"at position {k}")
        self.chars = sorted(set("".join(texts)))
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        """[BOS, ids of the characters..., BOS]."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: text must be a str, got {type(text).__name__} {text!r:.60}")
        try:
            return [self.BOS, *(self.index[c] for c in text), self.BOS]
        except KeyError:
            k = next(k for k, c in enumerate(text) if c not in self.index)
            vocabulary = "".join(self.chars)
            shown_vocabulary = f"({vocabulary!r})" if len(vocabulary) <= 60 else f"of {len(vocabulary)} characters"
            raise ValueError(f"CharTokenizer.encode: character {text[k]!r} at position {k} is not in the vocabulary "
                             f"{shown_vocabulary}") from None

    def decode(self, ids: Sequence[int]) -> str:
        """The characters of `ids`, BOS left out."""
        if not hasattr(ids, "__iter__") or isinstance(ids, (str, bytes, dict)) or getattr(ids, "ndim", 1) == 0:
            raise TypeError(f"CharTokenizer.decode: ids must be a list of token ids, got {type(ids).__name__} "
                            f"{ids!r:.60}")
        ids = list(ids)
        for k, i in enumerate(ids):
            if not _is_int(i):
                raise TypeError(f"CharTokenizer.decode: token ids must be ints in 0..{self.vocab_size - 1}, "
                                f"got {type(i).__name__} {i!r} at position {k}")
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"CharTokenizer.decode: token ids must be ints in 0..{self.vocab_size - 1}, "
                                 f"got {shown(i)} at position {k}")
        return "".join(self.chars[i - 1] for i in ids if i != self.BOS)

    def __repr__(self) -> str:
        return f"CharTokenizer({self.vocab_size} tokens: BOS + {''.join(self.chars)!r})"
