"""A GPT written in scalar Values: read it top to bottom next to `engine.py`.

    tokens -> token embedding + position embedding
           -> n_layer x [ RMSNorm -> causal self-attention -> + residual
                          RMSNorm -> MLP (Linear, ReLU, Linear) -> + residual ]
           -> head (Linear) -> logits, one per vocabulary entry

The model reads one token at a time, as it will when it generates text: each position's keys
and values go into a cache, and attention at position t looks at positions 0..t. No layer has
biases. `GPT.loss(tokens)` is the mean cross-entropy of predicting each next token.
"""
from __future__ import annotations

import math
from typing import Any, NoReturn, Sequence

import numpy as np

from microgradnn.engine import Value, dot, is_sample_float, no_grad
from microgradnn.losses import cross_entropy, softmax
from microgradnn.nn.blocks import Embedding, Linear, RMSNorm, run
from microgradnn.nn.init import check_size, generator
from microgradnn._checks import Seed, _is_int, integer, number, positive_int, shown
from microgradnn.nn.module import _OUTERMOST, Module, _size, as_inputs, tie, tied_names

__all__ = ["GPT", "KVCache", "CausalSelfAttention", "MLPBlock", "Block"]

# Initial weights: N(0, 0.08) for every matrix (small, as tiny GPTs train best).
INIT_STD = 0.08


class KVCache:
    """The keys and values of the positions read so far, one list per layer."""

    def __init__(self, n_layer: int) -> None:
        n_layer = positive_int(n_layer, "KVCache", "n_layer")
        self.keys: list[list[list[Value]]] = [[] for _ in range(n_layer)]
        self.values: list[list[list[Value]]] = [[] for _ in range(n_layer)]
        self.model: "GPT | None" = None  # the model that reads into it (set by its first call)

    def __len__(self) -> int:
        return len(self.keys[0])


def _heads_of(n_embd, n_head, who: str) -> tuple[int, int]:
    """n_embd and n_head as ints (a numpy int kept went into config(), and no JSON file could hold
    it), n_embd a multiple of n_head: else the heads cover n_head * (n_embd // n_head) dimensions."""
    n_embd, n_head = positive_int(n_embd, who, "n_embd"), positive_int(n_head, who, "n_head")
    if n_embd % n_head:
        raise ValueError(f"{who}: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
    return n_embd, n_head


def _position(x, n_embd: int, who: str) -> list:
    """One position's n_embd inputs, checked on the outermost call (a GPT's own calls pass theirs on)."""
    return x if type(x) is list and len(x) == n_embd and _OUTERMOST.get() is not None else as_inputs(x, n_embd, who)


def _check_layer_cache(keys, values, n_embd: int, who: str) -> None:
    """Refuse other than one layer's cache: lists of as many positions, each a list of n_embd
    (another attention's longer keys were read in part, silently)."""
    if type(keys) is not list or type(values) is not list:
        raise TypeError(f"{who}: keys and values must be lists (a layer's cache, cache.keys[i] and cache.values[i]), "
                        f"got {type(keys).__name__} and {type(values).__name__}")
    if len(keys) != len(values):
        raise ValueError(f"{who}: keys and values must hold as many positions, got {len(keys)} and {len(values)}")
    for name, cached in (("keys", keys), ("values", values)):
        for t, kv in enumerate(cached):
            if type(kv) is not list or len(kv) != n_embd:
                got = f"list of {len(kv)} entries" if type(kv) is list else f"{type(kv).__name__} {kv!r:.60}"
                raise (ValueError if type(kv) is list else TypeError)(
                    f"{who}: {name}[{t}] must be a list of n_embd = {n_embd} Values, got {got}")


_NO_BLOCKS = "GPT: blocks is [], so it has no n_head and computes nothing; a GPT needs one Block or more"


class CausalSelfAttention(Module):
    """Multi-head attention of one position over itself and every earlier position."""

    def __init__(self, n_embd: int, n_head: int, *, seed: Seed = None) -> None:
        n_embd, n_head = _heads_of(n_embd, n_head, "CausalSelfAttention")
        self.n_embd, self.n_head, self.head_size = n_embd, n_head, n_embd // n_head
        rng = generator(seed, "CausalSelfAttention")
        self.query, self.key, self.value, self.proj = (Linear(n_embd, n_embd, bias=False, std=INIT_STD, seed=rng)
                                                       for _ in range(4))

    def _named_items(self):
        return [("query", self.query), ("key", self.key), ("value", self.value), ("proj", self.proj)]

    def __call__(self, x: list, keys: list, values: list) -> list[Value]:  # type: ignore[override]
        _check_layer_cache(keys, values, self.n_embd, "CausalSelfAttention")
        return run(self, self.forward, _position(x, self.n_embd, "CausalSelfAttention"), keys, values)

    def forward(self, x: list, keys: list, values: list) -> list[Value]:  # type: ignore[override]
        q, k, v = self.query(x), self.key(x), self.value(x)
        keys.append(k)      # the cache grows by this position; attention sees
        values.append(v)    # positions 0..t, never the future
        scale = 1.0 / math.sqrt(self.head_size)
        out = []
        for h in range(self.n_head):
            s = slice(h * self.head_size, (h + 1) * self.head_size)
            q_h = [qi * scale for qi in q[s]]
            scores = [dot(q_h, k_t[s]) for k_t in keys]                   # how much to look at each position
            weights = softmax(scores)                                     # ... as probabilities
            out += [dot(weights, [v_t[s][j] for v_t in values])           # the weighted mean of their values
                    for j in range(self.head_size)]
        return self.proj(out)


class MLPBlock(Module):
    """Linear (n_embd -> 4 n_embd), ReLU, Linear (back to n_embd)."""

    def __init__(self, n_embd: int, *, seed: Seed = None) -> None:
        n_embd, rng = positive_int(n_embd, "MLPBlock", "n_embd"), generator(seed, "MLPBlock")
        self.fc = Linear(n_embd, 4 * n_embd, bias=False, std=INIT_STD, seed=rng)
        self.proj = Linear(4 * n_embd, n_embd, bias=False, std=INIT_STD, seed=rng)

    def _named_items(self):
        return [("fc", self.fc), ("proj", self.proj)]

    def __call__(self, x: list) -> list[Value]:  # type: ignore[override]
        return run(self, self.forward, _position(x, self.fc.nin, "MLPBlock"))

    def forward(self, x: list) -> list[Value]:
        return self.proj([h.relu() for h in self.fc(x)])


NORM_EPS = 1e-5  # the blocks' RMSNorm eps (to_torch builds its norms with it)


class Block(Module):
    """x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, n_embd: int, n_head: int, *, seed: Seed = None) -> None:
        n_embd, n_head = _heads_of(n_embd, n_head, "Block")
        rng = generator(seed, "Block")
        self.norm1, self.attn = RMSNorm(n_embd, eps=NORM_EPS), CausalSelfAttention(n_embd, n_head, seed=rng)
        self.norm2, self.mlp = RMSNorm(n_embd, eps=NORM_EPS), MLPBlock(n_embd, seed=rng)

    def _named_items(self):
        return [("norm1", self.norm1), ("attn", self.attn), ("norm2", self.norm2), ("mlp", self.mlp)]

    def __call__(self, x: list, keys: list, values: list) -> list[Value]:  # type: ignore[override]
        _check_layer_cache(keys, values, self.norm1.dim, "Block")
        return run(self, self.forward, _position(x, self.norm1.dim, "Block"), keys, values)

    def forward(self, x: list, keys: list, values: list) -> list[Value]:  # type: ignore[override]
        x = [a + b for a, b in zip(x, self.attn(self.norm1(x), keys, values))]
        return [a + b for a, b in zip(x, self.mlp(self.norm2(x)))]



def _check_torch_norms(module, model: "GPT") -> None:
    """Refuse a torch module whose norms compute something other than the GPT's: their eps is
    in no tensor, and a LayerNorm without bias has an RMSNorm's state names."""
    import torch
    for name, norm in model.named_modules():
        if isinstance(norm, RMSNorm):
            theirs = module.get_submodule(name)
            if not isinstance(theirs, torch.nn.RMSNorm) or theirs.eps != norm.eps:
                raise ValueError(f"GPT.from_torch: {name} must be torch.nn.RMSNorm(eps={norm.eps:g}) as in the GPT, "
                                 f"got {theirs!r}")


def _check_torch_outputs(module, model: "GPT") -> None:
    """Refuse a torch module whose logits on a probe sequence differ from the GPT's built from
    it: its config names what no tensor holds (n_head), and it may say other than it computes."""
    from microgradnn.nn.convert import _torch_classes, check_gradients, float64_outputs
    tokens = [i % model.vocab_size for i in range(min(model.block_size, 3))]  # two positions at least: attention
    theirs = float64_outputs(module, [tokens], f"GPT.from_torch: the module failed on the token ids {tokens}",
                             "GPT.from_torch: the module")[0]
    cache = model.new_cache()
    with no_grad():
        ours = np.array([[v.data for v in model(t, pos, cache)] for pos, t in enumerate(tokens)])
    # (both in float64 from the same weights: 1e-15 apart, relative to the largest)
    if theirs.shape != ours.shape or np.abs(theirs - ours).max() > 1e-9 * (np.abs(ours).max() + 1e-12):
        raise ValueError(f"GPT.from_torch: the module's logits on the token ids {tokens} differ from those of the GPT "
                         f"its config and weights describe ({model!r}): its config (n_head={model.n_head}?) must say "
                         "what it computes, and no forward hook change it")
    names = [name for name, _ in module.named_parameters()]
    import torch
    with torch.random.fork_rng(devices=[]):  # (its init draws no number of the user's)
        clean = _torch_classes()["_TorchGPT"](model.config(), NORM_EPS)  # to compute with the module's tensors
    check_gradients(module, clean, [tokens], list(zip(names, names)),
                    f"GPT.from_torch: the module's gradients on the token ids {tokens} differ from those of the GPT "
                    f"its config and weights describe ({model!r})",
                    f"GPT.from_torch: the module failed on the token ids {tokens}", "GPT.from_torch: the module",
                    same_weights=True)


def _heads(n_head, head_size) -> str:
    """'2 heads of 8' (dimensions each)."""
    return f"{shown(n_head)} head{'s' * (n_head != 1)} of {shown(head_size)}"


VOCAB_RULE = "vocab_size (BOS and at least one character)"


class GPT(Module):
    """A character-level GPT: `model(token, pos, cache)` gives the next token's logits.

    `loss(tokens)` is the mean next-token cross-entropy of a sequence (a Value, so
    `loss.backward()` trains it); `generate()` samples new sequences.
    """

    def __init__(self, vocab_size: int, n_embd: int = 16, n_head: int = 4, n_layer: int = 1,
                 block_size: int = 16, *, seed: Seed = None) -> None:
        integer(vocab_size, "GPT", VOCAB_RULE, at_least=2)  # 1: nothing to predict
        for name, size in (("n_embd", n_embd), ("n_head", n_head), ("n_layer", n_layer), ("block_size", block_size)):
            positive_int(size, "GPT", name)
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        sizes = {"vocab_size": vocab_size, "n_embd": n_embd, "n_head": n_head, "n_layer": n_layer,
                 "block_size": block_size}
        check_size(self.config_size(sizes), "GPT", ", ".join(f"{k}={v}" for k, v in sizes.items()))
        rng = generator(seed, "GPT")
        self.token_embedding = Embedding(vocab_size, n_embd, std=INIT_STD, seed=rng)
        self.position_embedding = Embedding(block_size, n_embd, std=INIT_STD, seed=rng)
        self.blocks = [Block(n_embd, n_head, seed=rng) for _ in range(n_layer)]
        self.head = Linear(n_embd, vocab_size, bias=False, std=INIT_STD, seed=rng)

    # The sizes are read from the modules that compute with them, so that `config()` (a file, to_torch)
    # says what this model computes; setting one, which would change nothing else, is refused.
    @property
    def vocab_size(self) -> int:
        return self.token_embedding.num

    @property
    def n_embd(self) -> int:
        return self.token_embedding.dim

    @property
    def n_head(self) -> int:
        if not self.blocks:
            raise ValueError(_NO_BLOCKS)
        return self.blocks[0].attn.n_head

    @property
    def n_layer(self) -> int:
        return len(self.blocks)

    @property
    def block_size(self) -> int:
        return self.position_embedding.num

    def _named_items(self):
        return [("token_embedding", self.token_embedding), ("position_embedding", self.position_embedding),
                *((f"blocks.{i}", b) for i, b in enumerate(self.blocks)), ("head", self.head)]

    def new_cache(self) -> KVCache:
        """An empty key/value cache, for reading a new sequence."""
        if not self.blocks:
            raise ValueError(_NO_BLOCKS)
        return KVCache(self.n_layer)

    def __call__(self, token, pos: int, cache: KVCache) -> list[Value]:  # type: ignore[override]
        """Logits for the token after `token`, which sits at position `pos` (= len(cache))."""
        if not isinstance(cache, KVCache):
            raise TypeError(f"GPT: cache must be a KVCache (from model.new_cache()), got {type(cache).__name__} "
                            f"{cache!r:.60}")
        if cache.model is None and len(cache.keys) == self.n_layer:
            cache.model = self
        if cache.model is not self:  # another model's keys, or too few layers: logits silently wrong
            raise ValueError(f"GPT: cache must be this model's (from model.new_cache()), got a {len(cache.keys)}-layer "
                             f"cache {'of another model' if cache.model is not None else 'for another model'}")
        if len(cache.keys) != self.n_layer:  # blocks added since it was made: they would be skipped
            raise ValueError(f"GPT: cache must have a layer for each of the model's {self.n_layer} blocks, got a "
                             f"{len(cache.keys)}-layer cache made before its blocks changed; start a new one "
                             "(model.new_cache())")
        # named here: the embeddings' "Embedding: index must be an int in 0..15" says neither which nor why
        if not _is_int(pos):  # (0.0 == len(cache) passes the check below)
            raise TypeError(f"GPT: position must be an int, the cache's length ({len(cache)}), got "
                            f"{type(pos).__name__} {shown(pos)}")
        if pos != len(cache) or not 0 <= pos < self.block_size:
            raise ValueError(f"GPT: position {pos} must be the cache's length ({len(cache)}) and below "
                             f"block_size {self.block_size}")
        if type(token) is not Value and not (_is_int(token) and 0 <= token < self.vocab_size):  # (a Value: compile's)
            raise (IndexError if _is_int(token) else TypeError)(  # as torch's
                f"GPT: token must be a token id (an int in 0..{self.vocab_size - 1}), got {type(token).__name__} "
                f"{shown(token)}")
        read = len(cache)
        try:
            return run(self, self.forward, token, pos, cache)
        except BaseException:  # (a Ctrl-C too) the layers read before it had added this position's keys
            for keys, values in zip(cache.keys, cache.values):
                del keys[read:], values[read:]
            raise

    def forward(self, token, pos: int, cache: KVCache) -> list[Value]:  # type: ignore[override]
        x = [t + p for t, p in zip(self.token_embedding(token), self.position_embedding(pos))]
        for block, keys, values in zip(self.blocks, cache.keys, cache.values):
            x = block(x, keys, values)
        return self.head(x)

    def _check_tokens(self, tokens, who: str, what: str) -> list:
        """tokens as a list, each a token id (an int in 0..vocab_size-1) or a Value (compile's)."""
        if isinstance(tokens, (str, bytes, dict, set, frozenset)) or not hasattr(tokens, "__iter__") \
                or getattr(tokens, "ndim", 1) == 0:  # a 0-d array or tensor: one id, which cannot be iterated
            raise TypeError(f"{who}: {what} must be a list of token ids, got {type(tokens).__name__} {tokens!r:.60}")
        tokens = list(tokens)
        for i, t in enumerate(tokens):
            # A Value's range is checked by comparisons, which compile checks for every sample
            # (a sample out of range is recorded on its own, and refused here by name); a float
            # of the sample is refused as the scalar loss refuses the float itself
            floated = type(t) is Value and is_sample_float(t)
            if floated or type(t) is Value and not 0 <= t < self.vocab_size or \
                    type(t) is not Value and not (_is_int(t) and 0 <= t < self.vocab_size):
                raise (IndexError if not floated and (_is_int(t) or type(t) is Value) else TypeError)(  # as torch's
                    f"{who}: {what}[{i}] must be a token id (an int in 0..{self.vocab_size - 1}), got "
                    + (f"float {t!r}" if floated else repr(t) if type(t) is Value  # compile's: the number
                       else f"{type(t).__name__} {shown(t)}"))
        return tokens

    def loss(self, tokens: Sequence) -> Value:
        """Mean cross-entropy of predicting tokens[1:] from the tokens before each."""
        tokens = self._check_tokens(tokens, "GPT.loss", "tokens")
        if not 2 <= len(tokens) <= self.block_size + 1:
            raise ValueError(f"GPT.loss: needs 2 to block_size + 1 = {self.block_size + 1} tokens, got {len(tokens)}")
        cache = self.new_cache()
        logits = [self(token, pos, cache) for pos, token in enumerate(tokens[:-1])]
        return cross_entropy(logits, tokens[1:])

    @no_grad()
    def generate(self, start: Sequence[int], max_new_tokens: int | None = None, temperature: float = 1.0, *,
                 stop: int | None = None, seed: Seed = None) -> list[int]:
        """Sample tokens after `start` until `stop` is drawn, `max_new_tokens` are made (none for
        0) or the block is full; returns the new tokens (without `stop`). Lower temperatures pick
        likelier tokens; temperature 0 always picks the likeliest."""
        temperature = number(temperature, "generate", "temperature", 0.0)
        if stop is not None and not (_is_int(stop) and 0 <= stop < self.vocab_size):  # else it never matches
            raise (ValueError if _is_int(stop) else TypeError)(
                f"generate: stop must be None or a token id (an int in 0..{self.vocab_size - 1}), "
                f"got {type(stop).__name__} {shown(stop)}")
        start = self._check_tokens(start, "generate", "start")
        if not 1 <= len(start) <= self.block_size:
            raise ValueError(f"generate: start needs 1 to block_size = {self.block_size} tokens, got {len(start)}")
        limit = self.block_size - len(start) + 1
        if max_new_tokens is not None:
            limit = min(limit, integer(max_new_tokens, "generate", "max_new_tokens", at_least=0))
        rng = generator(seed, "generate")  # the last check: a RandomState is drawn from
        if limit == 0:  # 0 makes nothing new, as nanoGPT's returns its input as it is
            return []
        cache, new = self.new_cache(), []
        for pos, token in enumerate(start):
            logits = self(token, pos, cache)
        while True:
            z = np.array([v.data for v in logits])
            if temperature == 0:
                token = int(z.argmax())
            else:
                with np.errstate(over="ignore"):  # a tiny temperature sends the unlikely ones to -inf: p 0
                    p = np.exp((z - z.max()) / temperature)
                token = int(rng.choice(len(z), p=p / p.sum()))
            if token == stop:
                break
            new.append(token)
            if len(new) == limit:
                break
            logits = self(token, len(cache), cache)
        return new

    def to_torch(self):
        """An equivalent float64 `torch.nn.Module` with these weights (a frozen one's tensor requires
        no grad, a tensor shared whole is one tensor): `module(idx)` maps token ids of shape (B, T)
        to logits of shape (B, T, vocab_size)."""
        from microgradnn.nn.convert import torch_gpt
        return torch_gpt(self.config(), self.state_dict(), NORM_EPS,
                         {name: p.requires_grad for name, p in self._every_parameter()}, tied_names(self))

    @classmethod
    def from_torch(cls, module) -> "GPT":
        """A GPT with the weights (and requires_grad flags) of a module made by `to_torch` (or one
        with the same state names); a tensor held in two places (tied weights) is one parameter each."""
        from microgradnn.nn.convert import import_torch, state_from_torch
        if not isinstance(module, import_torch("GPT.from_torch").nn.Module):
            raise TypeError(f"GPT.from_torch: expected a torch.nn.Module made by GPT.to_torch, got "
                            f"{type(module).__name__} {module!r:.60}")
        config = getattr(module, "config", None)
        if not isinstance(config, dict) or config.get("type") != "GPT":
            raise ValueError("GPT.from_torch: expected a module made by GPT.to_torch (it has a .config)")
        try:
            size = cls.config_size(config)
        except KeyError as e:
            raise ValueError(f"GPT.from_torch: the module's config has no {e}") from None
        held = sum(t.numel() for t in module.state_dict().values())
        if size > held:  # checked before building: a config's sizes could ask for any amount of memory
            raise ValueError(f"GPT.from_torch: the module's config describes {_size(size)} parameters "
                             f"but its tensors hold {held}")
        model = cls.from_config(config)
        state, requires_grad, tied = state_from_torch(module, model)
        tie(model, tied)
        model.load_state_dict(state)
        for name, p in model._every_parameter():
            p.requires_grad_(requires_grad[name])
        _check_torch_norms(module, model)
        _check_torch_outputs(module, model)
        return model

    def config(self) -> dict:
        self._check_parts()
        return {"type": "GPT", "vocab_size": self.vocab_size, "n_embd": self.n_embd, "n_head": self.n_head,
                "n_layer": self.n_layer, "block_size": self.block_size}

    def _check_parts(self) -> None:
        """Refuse a model one of whose parts is not what its config says (a norm's eps set, a block's
        head count changed, a head with bias put in): save, load and to_torch go by the config."""
        def refuse(name: str, got: str, want: str) -> NoReturn:
            raise ValueError(f"GPT: {name} {got}, but the GPT's config describes {want}: save, load and to_torch "
                             "rebuild a model from its config, which would compute other logits than this one")

        def check(name: str, part: Any, cls: type[Module], want: str = "", config: dict | None = None) -> None:
            if type(part) is not cls or config is not None and part.config() != config:
                refuse(name, f"is {part!r:.80}", want or f"a {cls.__name__}")

        def linear(name: str, part, nin: int, nout: int) -> None:
            config = {"type": "Linear", "nin": nin, "nout": nout, "bias": False}
            check(name, part, Linear, f"Linear({nin} -> {nout}, no bias)", config)

        check("token_embedding", self.token_embedding, Embedding)
        vocab, d = self.token_embedding.num, self.token_embedding.dim
        check("position_embedding", self.position_embedding, Embedding, f"Embedding(... x {d})")
        if self.position_embedding.dim != d:
            refuse("position_embedding", f"is {self.position_embedding!r}", f"Embedding(... x {d})")
        if type(self.blocks) is not list or not self.blocks:
            refuse("blocks", f"is {self.blocks!r:.80}", "a list of one Block or more")
        norm = {"type": "RMSNorm", "dim": d, "eps": NORM_EPS}
        for i, block in enumerate(self.blocks):
            check(f"blocks.{i}", block, Block)
            check(f"blocks.{i}.attn", block.attn, CausalSelfAttention)
            n_head = self.blocks[0].attn.n_head  # the config's
            splits = _is_int(n_head) and n_head > 0 and d % n_head == 0
            heads = (block.attn.n_head, block.attn.head_size)
            if not splits or heads != (n_head, d // n_head):
                refuse(f"blocks.{i}.attn", f"has {_heads(*heads)}",
                       _heads(n_head, d // n_head) if splits else f"n_embd {d} split into equal heads")
            for j in ("norm1", "norm2"):
                check(f"blocks.{i}.{j}", getattr(block, j), RMSNorm, f"RMSNorm({d}, eps={NORM_EPS:g})", norm)
            for j in ("query", "key", "value", "proj"):
                linear(f"blocks.{i}.attn.{j}", getattr(block.attn, j), d, d)
            check(f"blocks.{i}.mlp", block.mlp, MLPBlock)
            linear(f"blocks.{i}.mlp.fc", block.mlp.fc, d, 4 * d)
            linear(f"blocks.{i}.mlp.proj", block.mlp.proj, 4 * d, d)
        linear("head", self.head, d, vocab)

    @classmethod
    def config_size(cls, config: dict) -> int:
        """How many parameters `config` describes, counted without building the model."""
        vocab = integer(config["vocab_size"], "GPT", VOCAB_RULE, at_least=2)
        n_embd, n_head, n_layer, block = (positive_int(config[k], "GPT", k) for k in
                                          ("n_embd", "n_head", "n_layer", "block_size"))
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        per_block = 2 * n_embd + 4 * n_embd * n_embd + 2 * 4 * n_embd * n_embd  # norms, attention, MLP
        return (vocab + block) * n_embd + n_layer * per_block + n_embd * vocab  # embeddings, blocks, head

    @classmethod
    def from_config(cls, config: dict) -> "GPT":
        """A freshly initialised GPT of this architecture."""
        return cls(config["vocab_size"], config["n_embd"], config["n_head"], config["n_layer"],
                   config["block_size"], seed=0)

    def __repr__(self) -> str:
        if not self.blocks:  # (a repr never raises: a REPL shows it)
            return (f"GPT(vocab {self.vocab_size}, n_embd {self.n_embd}, no blocks, block {self.block_size}, "
                    f"{self.num_parameters()} parameters)")
        heads, layers = "s" if self.n_head > 1 else "", "s" if self.n_layer > 1 else ""
        return (f"GPT(vocab {self.vocab_size}, n_embd {self.n_embd}, {self.n_head} head{heads}, {self.n_layer} "
                f"layer{layers}, block {self.block_size}, {self.num_parameters()} parameters)")
