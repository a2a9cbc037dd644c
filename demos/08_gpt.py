"""A GPT in scalar Values, trained on words at array speed with `compile`.

    python3 demos/08_gpt.py [--steps 300] [--out DIR] [--overwrite]

1. The corpus: Debian's word list (/usr/share/dict/words, package `wamerican`) when it is
   installed; otherwise made-up words from fixed rules (`mg.data.make_words`: one to three
   syllables, each an onset consonant or cluster, a vowel or vowel pair, and sometimes a
   closing consonant). Each word is a sequence BOS, letters..., BOS.
2. The model: microgradnn.models.GPT, 1 layer, 4 heads, 16 dimensions (read it in
   microgradnn/models.py). `model.loss(tokens)` is a Value; backward works as anywhere.
3. Training: `mg.compile(model.loss)` records the loss once per word length and replays it
   over each batch with numpy; Adam updates the parameter Values.
4. Sampling words, drawing one position's graph with each module as one box, and checking
   every gradient of the model at once with the directional gradient check.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import microgradnn as mg
from microgradnn.cli import positive
from microgradnn.models import GPT


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=positive, default=300, help="training steps (batches of 32 words)")
parser.add_argument("--out", default="out", help="folder for gpt_position.svg (default out/, the demos' own)")
parser.add_argument("--overwrite", action="store_true", help="replace it if there (always, in out/)")
args = parser.parse_args()
path = Path(args.out) / "gpt_position.svg"
if refused := mg.viz.files.refusal(args.out, [path.name], args.overwrite):  # before training; out/ is always replaced
    parser.error(refused)
path.parent.mkdir(parents=True, exist_ok=True)

# 1. the corpus and its tokens
words, source = mg.data.words(max_len=15, seed=0)
tok = mg.data.CharTokenizer(words)
print(f"{len(words)} words from {source}; vocabulary: {tok}")
rng = np.random.default_rng(0)

# 2. the model
model = GPT(tok.vocab_size, n_embd=16, n_head=4, n_layer=1, block_size=16, seed=0)
print(model)

# 3. training, compiled: one recording per word length, replayed over every batch
step = mg.compile(model.loss)
opt = mg.optim.Adam(model.parameters(), lr=1e-2, betas=(0.85, 0.99))
schedule = mg.optim.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=args.steps)
start, running = time.perf_counter(), None
for i in range(1, args.steps + 1):
    batch = [tok.encode(words[j]) for j in rng.integers(len(words), size=32)]
    result = step(batch)
    opt.zero_grad()
    result.backward()
    opt.step()
    schedule.step()
    running = result.data if running is None else 0.9 * running + 0.1 * result.data
    if i == 1 or i % max(1, args.steps // 10) == 0:
        print(f"step {i:4d}  loss {result.data:.3f}  (running mean {running:.3f})  {time.perf_counter() - start:5.1f}s")
print(f"{step}")

# 4a. sampling: start at BOS, stop at BOS; lower temperatures give likelier letters
for temperature in (1.0, 0.5):
    samples = [tok.decode(model.generate([tok.BOS], temperature=temperature, stop=tok.BOS, seed=s)) for s in range(8)]
    print(f"temperature {temperature}: {', '.join(map(repr, samples))}")

# 4b. one position's graph: the loss of predicting the 3rd letter of "cat" after "ca",
# with the embeddings, norms, attention, MLP and head each drawn as one box
tokens = tok.encode("cat")
cache = model.new_cache()
with mg.nn.tag_modules():  # each module tags the nodes it makes, for draw_modules
    for pos, t in enumerate(tokens[:3]):
        logits = model(t, pos, cache)
    loss = mg.losses.cross_entropy([logits], [tokens[3]])
loss.label = "loss"
model.zero_grad()
loss.backward()
block = model.blocks[0]
picture = mg.viz.draw_modules(loss, [model.token_embedding, model.position_embedding, block.norm1, block.attn,
                                     block.norm2, block.mlp, model.head, block, model],
                              view="backward", title="the loss at position 2 of BOS c a t (earlier positions reach it "
                                                     "through the key/value cache)")
mg.viz.save(picture, path, overwrite=True)
print(f"wrote {path}")

# 4c. every gradient of the whole model at once: the directional check compares v·grad (from
# backward) with the finite-difference slope of the loss along a random direction v over all
# parameters, a few forward passes however many parameters there are; on a mismatch it halves
# the parameters until it names the wrong ones. The loss: three words of different lengths.
# (X is empty: the loss reads the model itself.)
check_words = [tok.encode(w) for w in ("gpt", "micrograd", "autograd")]
report = mg.testing.directional_check(
    model, lambda outputs, y: sum(model.loss(t) for t in check_words) / len(check_words), np.zeros((0, 0)), None)
print(report)
print("gradient check:", "passed" if report else "FAILED")
