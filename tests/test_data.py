import os

import numpy as np
import pytest

from conftest import names_huge_ints_by_size
from microgradnn import data


@pytest.mark.parametrize("make, k", [(data.make_moons, 2), (data.make_circles, 2), (data.make_blobs, 3),
                                     (lambda n, seed: data.make_spiral(n, classes=4, seed=seed), 4)])
def test_shapes_labels_and_seeds(make, k):
    X, y = make(101, seed=3)
    X2, y2 = make(101, seed=3)
    X3, _ = make(101, seed=4)
    assert X.shape == (101, 2) and X.dtype == float and y.shape == (101,) and y.dtype.kind == "i"
    assert sorted(set(y.tolist())) == list(range(k))
    assert np.array_equal(X, X2) and np.array_equal(y, y2) and not np.array_equal(X, X3)


def test_moons_geometry_without_noise():
    X, y = data.make_moons(200, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)


def _rows(X):
    return X[np.lexsort(X.T[::-1])]


def test_moons_are_scikit_learns_points_without_noise():
    # the radius test above passes a lower moon drawn upside down (0.5 + sin t) over the upper one
    X, y = data.make_moons(11, seed=0)
    t0, t1 = np.linspace(0, np.pi, 5), np.linspace(0, np.pi, 6)  # scikit-learn's: n // 2 outer, the rest inner
    assert np.allclose(_rows(X[y == 0]), _rows(np.c_[np.cos(t0), np.sin(t0)]), rtol=0, atol=1e-15)
    assert np.allclose(_rows(X[y == 1]), _rows(np.c_[1 - np.cos(t1), 1 - np.sin(t1) - 0.5]), rtol=0, atol=1e-15)


def test_circles_are_scikit_learns_points_without_noise():
    X, y = data.make_circles(11, factor=0.3, seed=0)
    t0, t1 = np.linspace(0, 2 * np.pi, 5, endpoint=False), np.linspace(0, 2 * np.pi, 6, endpoint=False)
    assert np.allclose(_rows(X[y == 0]), _rows(np.c_[np.cos(t0), np.sin(t0)]), rtol=0, atol=1e-15)
    assert np.allclose(_rows(X[y == 1]), _rows(0.3 * np.c_[np.cos(t1), np.sin(t1)]), rtol=0, atol=1e-15)


def test_spiral_arms_are_the_cs231n_spiral_without_noise():
    X, y = data.make_spiral(13, classes=3, noise=0.0, seed=0)
    for c, m in enumerate((5, 4, 4)):  # samples dealt to classes in turn
        r = np.linspace(0.0, 1.0, m)
        theta = np.linspace(c * 4, (c + 1) * 4, m)  # CS231n: linspace(4c, 4(c + 1), m), plus noise
        assert np.allclose(_rows(X[y == c]), _rows(np.c_[r * np.sin(theta), r * np.cos(theta)]), rtol=0, atol=1e-14)


@pytest.mark.parametrize("make", [lambda noise: data.make_moons(20000, noise=noise, seed=1),
                                  lambda noise: data.make_circles(20000, noise=noise, seed=1),
                                  lambda noise: data.xor(20000, noise=noise, seed=1)])
def test_noise_is_centred_with_the_given_std(make):
    # Gaussian noise of mean 0 added to every coordinate: the points' mean stays, their variance grows by noise**2
    clean, _ = make(None)
    noisy, _ = make(0.1)
    assert np.abs(noisy.mean(axis=0) - clean.mean(axis=0)).max() < 0.005  # (the mean's own std: 0.0007)
    assert np.allclose(noisy.var(axis=0) - clean.var(axis=0), 0.01, rtol=0.1)


def test_blob_centres_fill_scikit_learns_box():
    X, y = data.make_blobs(4000, centers=4000, cluster_std=1e-12, seed=0)  # one point at each centre
    assert -10 <= X.min() < -9.9 and 9.9 < X.max() <= 10
    assert abs(X.mean()) < 0.3  # uniform in [-10, 10]^2: mean 0, its std 0.09


def test_circles_radii():
    X, y = data.make_circles(100, factor=0.3, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.allclose(r[y == 0], 1.0) and np.allclose(r[y == 1], 0.3)


def test_xor_truth_table():
    X, y = data.xor()
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and y.tolist() == [0, 1, 1, 0]
    X, y = data.xor(40, noise=0.05, seed=0)
    assert (y == (np.round(X[:, 0]) != np.round(X[:, 1]))).all()


@pytest.mark.parametrize("call, error, message", [
    (lambda: data.make_moons(0), ValueError, "make_moons: n_samples must be a positive int, got 0"),
    (lambda: data.make_moons(True), TypeError, "make_moons: n_samples must be a positive int, got bool True"),
    (lambda: data.make_moons(2.5), TypeError, "n_samples must be a positive int, got float 2.5"),
    (lambda: data.make_moons(10, noise=-1), ValueError, "noise must be a finite number >= 0, got -1"),
    (lambda: data.make_moons(10, noise="a"), TypeError, "noise must be a finite number >= 0, got str"),
    (lambda: data.make_spiral(10, classes=1), ValueError, "classes must be an int >= 2, got 1"),
    (lambda: data.make_blobs(10, centers=True), TypeError, "centers must be a positive int, got bool"),
    (lambda: data.make_circles(10, factor=1.5), ValueError, r"factor must be a finite number in \[0, 1\), got 1.5"),
])
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_words_come_from_a_list_or_from_rules(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("zebra\nApple\nant\nit's\nbanana\nant\n")
    words, source = data.words(max_len=5, path=path)
    assert words == ["ant", "zebra"] and source == str(path)
    made = data.make_words(50, seed=1)
    assert made == data.make_words(50, seed=1) and all(3 <= len(w) <= 12 and w.isalpha() for w in made)
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.words(path=tmp_path / "missing")


def test_words_takes_any_max_len(tmp_path):
    # max_len went into a regex as a repeat count: 2**32 and more raised "OverflowError: the repetition
    # number is too large" (and so did `microgradnn gpt --block-size 10000000000`)
    path = tmp_path / "w.txt"
    path.write_text("zebra\nant\n")
    assert data.words(max_len=2**32, path=path)[0] == data.words(max_len=10**30, path=path)[0] == ["ant", "zebra"]


def test_words_keeps_the_first_word_of_a_list_saved_with_a_byte_order_mark(tmp_path):
    # the BOM (an editor's "UTF-8 with BOM") was read as part of the first word, which was then no a-z word
    # and silently left out
    path = tmp_path / "w.txt"
    path.write_bytes(b"\xef\xbb\xbfapple\r\nbanana\r\n")
    assert data.words(path=path) == (["apple", "banana"], str(path))


def test_words_refuses_a_path_that_is_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match=r"words: .* is not a regular file"):
        data.words(path=tmp_path)
    if os.path.exists("/dev/zero"):  # one endless line: read, it would fill the memory
        with pytest.raises(ValueError, match=r"words: /dev/zero is not a regular file"):
            data.words(path="/dev/zero")
    with pytest.raises(ValueError, match=r"words: path must not be empty"):
        data.words(path="")


def test_words_gives_n_words_or_says_why_not(tmp_path, monkeypatch):
    # words(n=300, max_len=4) gave 88 made-up words (make_words(300) cut to 4 letters), and n beyond
    # the list's words gave the whole list, silently
    path = tmp_path / "w.txt"
    path.write_text("zebra\nant\nbee\n")
    with pytest.raises(ValueError, match=f"words: n must be at most the 2 lowercase words of at most 3 letters "
                                         f"in {path}, got 5"):
        data.words(max_len=3, path=path, n=5)
    monkeypatch.setattr(data, "WORD_LIST", str(tmp_path / "none"))
    made, source = data.words(max_len=4, n=300, seed=1)
    assert source == "make_words (rules)" and len(made) == 300 and all(3 <= len(w) <= 4 for w in made)
    assert made == data.words(max_len=4, n=300, seed=1)[0]
    assert data.words(n=50, seed=2)[0] == data.make_words(50, seed=2)  # make_words' own words when they fit
    # was: no word of the missing list, nor of the lengths make_words makes, was named
    with pytest.raises(ValueError, match=r"words: make_words \(rules\) has no lowercase words of at most 2 letters "
                                         rf"\(its words have 3 to 12; there is no word list at {tmp_path / 'none'}\)$"):
        data.words(max_len=2)


def test_made_up_words_are_distinct_and_n_beyond_what_the_rules_make_is_refused(monkeypatch):
    # make_words drew words at random with repeats, so words(n=) without a word list repeated words
    made = data.make_words(5000, seed=3)
    assert len(set(made)) == 5000 and made == data.make_words(5000, seed=3)
    monkeypatch.setattr(data, "WORD_LIST", "/no/such/word/list")
    few, _ = data.words(max_len=3, n=600, seed=1)
    assert len(set(few)) == 600 and all(len(w) == 3 for w in few) and few == data.words(max_len=3, n=600, seed=1)[0]
    every, source = data.words(max_len=3)  # no n: all the rules make, fewer than 5000
    assert source == "make_words (rules)" and len(every) == len(set(every)) == 649
    with pytest.raises(ValueError, match=r"words: n must be at most 649 from make_words \(rules\), all the distinct "
                                         r"words of at most 3 letters its rules make, got 650"):
        data.words(max_len=3, n=650)
    with pytest.raises(ValueError, match=r"make_words: n must be at most 20000, of the \d+ distinct words of at "
                                         r"most 12 letters its rules make \(drawing more than 20000"):
        data.make_words(10 ** 9)  # (drawing them one by one took hours and gigabytes)
    with pytest.raises(ValueError, match=r"words: n must be at most 20000 from make_words \(rules\), of the "
                                         r"1432401 distinct words of at most 6 letters"):
        data.words(max_len=6, n=20_001)  # (at the old bound, 358,100, it drew for 5 minutes)


def test_char_tokenizer_round_trips_with_bos_at_both_ends():
    tok = data.CharTokenizer(["cab", "bad"])
    assert tok.vocab_size == 5 and tok.encode("dab") == [0, 4, 1, 2, 0] and tok.decode([0, 4, 1, 2, 0]) == "dab"
    with pytest.raises(ValueError, match="'z' at position 0 is not in the vocabulary"):
        tok.encode("zab")


@pytest.mark.parametrize("call, error, message", [
    (lambda: data.CharTokenizer(["abc"]).decode([1, -1]), ValueError,
     r"CharTokenizer.decode: token ids must be ints in 0..3, got -1 at position 1"),
    (lambda: data.CharTokenizer(["abc"]).decode([99]), ValueError, "token ids must be ints in 0..3, got 99"),
    (lambda: data.CharTokenizer(["abc"]).decode(["a"]), TypeError, "token ids must be ints in 0..3, got str 'a'"),
    (lambda: data.CharTokenizer(["abc", None]), TypeError, "CharTokenizer: texts must be strs, got NoneType None "
                                                           "at position 1"),
    (lambda: data.CharTokenizer(["abc"]).encode(5), TypeError, "CharTokenizer.encode: text must be a str, got int 5"),
    # were raw ("'NoneType' object is not iterable"), or read a str's characters as ids
    (lambda: data.CharTokenizer(None), TypeError, "CharTokenizer: texts must be a list of strs, got NoneType None"),
    (lambda: data.CharTokenizer(["abc"]).decode(None), TypeError,
     "CharTokenizer.decode: ids must be a list of token ids, got NoneType None"),
    (lambda: data.CharTokenizer(["abc"]).decode(3), TypeError,
     "CharTokenizer.decode: ids must be a list of token ids, got int 3"),
    (lambda: data.CharTokenizer(["abc"]).decode("ab"), TypeError,
     "CharTokenizer.decode: ids must be a list of token ids, got str 'ab'"),
    (lambda: data.CharTokenizer(["abc"]).decode(np.array(1)), TypeError,  # was "iteration over a 0-d array"
     r"CharTokenizer.decode: ids must be a list of token ids, got ndarray array\(1\)"),
    (lambda: data.CharTokenizer(np.array("ab")), TypeError,
     r"CharTokenizer: texts must be a list of strs, got ndarray array\('ab', dtype='<U2'\)"),
    (lambda: data.words(0), ValueError, "words: max_len must be a positive int, got 0"),
    (lambda: data.words(n=0), ValueError, "words: n must be a positive int, got 0"),
    (lambda: data.words(n=-1), ValueError, "words: n must be a positive int, got -1"),
    (lambda: data.words(n=2.5), TypeError, "words: n must be a positive int, got float 2.5"),
    (lambda: data.words(seed="x"), TypeError, "words: seed must be an int >= 0, a numpy Generator or RandomState, or None, got str 'x'"),
    (lambda: data.make_moons(10, seed=-1), ValueError, "make_moons: seed must be an int >= 0, got -1"),
    (lambda: data.make_blobs(10, seed=1.5), TypeError, "make_blobs: seed must be an int >= 0, a numpy .*, got float 1.5"),
    (lambda: data.make_words(2.5), TypeError, "make_words: n must be a positive int, got float 2.5"),
])
def test_word_and_seed_arguments_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert data.CharTokenizer(["abc"]).decode([0, 3, 1, 0]) == "ca" and len(data.words(n=3)[0]) == 3


def test_char_tokenizer_encode_names_the_method_and_position_of_an_unknown_character():
    # was: "CharTokenizer: characters not in the vocabulary: 'z'", naming neither encode nor where
    tok = data.CharTokenizer(["cab", "bad"])
    with pytest.raises(ValueError, match=r"^CharTokenizer.encode: character 'z' at position 3 is not in the "
                                         r"vocabulary \('abcd'\)$"):
        tok.encode("dabzz")


def test_make_blobs_takes_centers_by_name_only_as_scikit_learn():
    # make_blobs(100, 2) is 3 blobs in 2 features in scikit-learn (its second argument is
    # n_features); here it silently made 2 blobs
    with pytest.raises(TypeError):
        data.make_blobs(100, 2)
    X, y = data.make_blobs(100, centers=2, seed=0)
    assert X.shape == (100, 2) and set(y.tolist()) == {0, 1}


def test_make_circles_takes_factor_in_scikit_learns_range():
    # scikit-learn's factor is in [0, 1): 0 puts the inner circle at the centre; it was refused
    X, y = data.make_circles(10, factor=0, seed=0)
    assert np.array_equal(X[y == 1], np.zeros((5, 2))) and np.allclose(np.hypot(*X[y == 0].T), 1.0)
    with pytest.raises(ValueError, match=r"make_circles: factor must be a finite number in \[0, 1\), got 1"):
        data.make_circles(10, factor=1)
    assert "0.8" in data.make_circles.__doc__  # scikit-learn's default, not this one's


@pytest.mark.parametrize("call, message", [
    # each took time or memory without bound, then failed deep in numpy or not at all
    (lambda: data.make_moons(10**12), "make_moons: n_samples must be at most 10000000, got 1000000000000"),
    (lambda: data.make_circles(10**20), "make_circles: n_samples must be at most 10000000, got 1"),
    (lambda: data.xor(10**8), "xor: n_samples must be at most 10000000"),
    (lambda: data.make_blobs(5, centers=10**12), "make_blobs: centers must be at most 10000000, got 1"),
])
def test_datasets_refuse_sizes_beyond_max_samples(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_make_spiral_costs_no_more_for_many_classes():
    # the labels of classes >= n_samples are 0..n-1 whatever `classes` is: the spiral took
    # O(classes * n) (5 s for 10**6 classes) and failed with numpy's OverflowError past int64
    X, y = data.make_spiral(10, classes=10**30, seed=0)
    assert np.array_equal(X, data.make_spiral(10, classes=10, seed=0)[0]) and sorted(y.tolist()) == list(range(10))
    X, y = data.make_spiral(30_000, classes=10**6, seed=0)
    assert X.shape == (30_000, 2) and np.isfinite(X).all()


def test_noise_none_is_scikit_learns_no_noise():
    # scikit-learn's default noise is None (no noise); it was a TypeError here
    for make in (data.make_moons, data.make_circles, data.make_spiral, data.xor):
        assert all(np.array_equal(a, b) for a, b in zip(make(10, noise=None, seed=0), make(10, noise=0.0, seed=0)))
    assert "random_state" in data.__doc__ and "shuffle" in data.__doc__  # the differences, written down


@pytest.mark.parametrize("make, sklearn", [
    (data.make_moons, "(n_samples=100, *, shuffle=True, noise=None, random_state=None)"),
    (data.make_circles, "(n_samples=100, *, shuffle=True, noise=None, random_state=None, factor=0.8)"),
    (data.make_blobs, "(n_samples=100, n_features=2, *, centers=None, cluster_std=1.0, center_box=(-10.0, 10.0), "
                      "shuffle=True, random_state=None, return_centers=False)"),
])
def test_dataset_signatures_are_scikit_learns(make, sklearn):
    # make_moons(100, 0.1) was taken; scikit-learn's noise (and all but n_samples) is keyword-only
    import inspect
    theirs = inspect.signature(eval(f"lambda {sklearn[1:-1]}: None")).parameters
    ours = inspect.signature(make).parameters
    assert list(ours)[0] == "n_samples" and ours["n_samples"].default == theirs["n_samples"].default
    for name, p in ours.items():
        if name in theirs and name != "n_samples":
            assert p.kind == inspect.Parameter.KEYWORD_ONLY == theirs[name].kind, name
            assert p.default == theirs[name].default or (make, name) == (data.make_circles, "factor"), name
    assert ours["seed"].kind == inspect.Parameter.KEYWORD_ONLY and ours["seed"].default is None
    with pytest.raises(TypeError, match="positional"):
        make(100, 0.1)
    assert (make(50, seed=1)[0] == make(50, noise=None, seed=1)[0]).all() if make is not data.make_blobs else True


@pytest.mark.parametrize("made", [data.make_moons, data.make_circles, data.make_blobs, data.make_spiral,
                                  lambda **kw: data.xor(40, noise=0.1, **kw), lambda **kw: (data.make_words(20, **kw),),
                                  lambda **kw: (data.words(n=20, **kw)[0],)])
def test_a_numpy_generator_or_random_state_is_taken_as_seed(made):
    # scikit-learn takes a RandomState as random_state; a Generator or RandomState was refused
    def make(seed):
        return made(seed=seed)
    a, b = make(seed=np.random.default_rng(5)), make(seed=np.random.default_rng(5))
    assert np.array_equal(a[0], b[0])  # the same generator state, the same data
    rng = np.random.default_rng(5)
    first, second = make(seed=rng), make(seed=rng)  # drawn from: the generator moves on
    assert np.array_equal(first[0], a[0]) and not np.array_equal(first[0], second[0])
    c, d = make(seed=np.random.RandomState(7)), make(seed=np.random.RandomState(7))
    assert np.array_equal(c[0], d[0])
    state = np.random.RandomState(7)
    assert np.array_equal(make(seed=state)[0], c[0]) and not np.array_equal(make(seed=state)[0], c[0])


@pytest.mark.parametrize("call, message", [
    (lambda n: data.CharTokenizer(["ab"]).decode([n]), r"CharTokenizer.decode: token ids must be ints in 0..2, got "),
    (lambda n: data.make_moons(-n), "make_moons: n_samples must be a positive int, got "),
], ids=["decode", "n_samples"])
def test_an_int_too_long_to_print_is_named_by_its_size(call, message):
    names_huge_ints_by_size(call, message)  # was Python's "Exceeds the limit" error, or 60 digits of another number


@pytest.mark.parametrize("make, what", [(data.make_moons, "noise"), (data.make_circles, "noise"),
                                        (data.make_blobs, "cluster_std"), (data.make_spiral, "noise"),
                                        (data.xor, "noise")])
def test_noise_so_large_that_points_are_not_finite_is_refused(make, what):
    # noise=1e308 gave points of inf and nan, silently (train --noise 1e308 then failed in fit on "X")
    with pytest.raises(ValueError, match=rf"{make.__name__}: {what} 1e\+308 is too large: some points are not finite"):
        make(50, seed=0, **{what: 1e308})
    X, _ = make(50, seed=0, **{what: 1e200})  # huge, but every point a number
    assert np.isfinite(X).all()
