"""Memory the rules declare per job, and estimates of what a variant's jobs need, so a
config that cannot fit (``sweep: {p: [100003]}``: 10^10 pairs) stops while the DAG is
built instead of exhausting memory in training.

The estimates are peak resident set sizes, calibrated against measured runs on the CPU
(``/usr/bin/time -f %M`` around ``train_variant`` for 2 epochs, torch 2.13, one thread):

- fast path (one layer, no LayerNorm, ReLU; last position only), d_model 128, d_mlp 512:
  p = 113 / train_frac 0.3: 491 MB; 113 / 0.9: 564 MB; 211 / 0.9: 1023 MB; 307 / 0.5:
  1193 MB; 401 / 0.8: 2144 MB; 409 / 0.3: 1893 MB; 509 / 0.5: 2758 MB. The estimate is
  within -5 % / +29 % of each (over by the most for small p).
- hooked forward (two layers, LayerNorm, GELU; every position): p = 113 / 0.3: 1240 MB;
  211 / 0.5: 2317 MB. The estimate is 4 % and 6 % over.
- MLP model (``tdw.models.mlp``; fast path ``mlp_logits``, no transformer_lens), d_model 32,
  d_mlp 128 unless given: p = 13 / 0.5: 259 MB; 113 / 0.3: 299 MB; 211 / 0.9:
  511 MB; 307 / 0.5: 770 MB; 401 / 0.8: 1607 MB; 401 / 0.3: 1403 MB; 211 / 0.9 with d_mlp
  2048: 1251 MB; 307 / 0.5 with d_model 512: 1019 MB; 113 / 0.9 with d_mlp 4096: 879 MB.
  The estimate is within -11 % / +7 % of each.

Per row of the split the forward and backward keep a few copies of the row's activations
(``width`` floats, see ``row_width``): the train rows hold the graph for the backward
pass, the test rows only the no-grad forward of the test loss; AdamW adds four float32
copies of the parameters (value, gradient, two moments); the process itself (torch, and
transformer_lens for the hooked forward) is the base. The MLP model's rows are counted in
two widths, the logits (``d_vocab_out``: logits, log-softmax and their gradients, also for
the test rows, whose forward runs while the train graph is alive) and the hidden layer
(``d_in + 2 d_mlp``: its input, pre- and post-activation), since the logits weigh about
three times as much per float.
"""

from __future__ import annotations

from tdw.errors import ConfigError
from tdw.models.architecture import ModelConfig
from tdw.workbench import Family, Variant

# What rules/train.smk declares for train and train_batch (resources: mem_mb).
TRAIN_MEM_MB = 2000
# The cache rule declares no memory; its jobs are held to the same bound.
CACHE_MEM_MB = 2000

MB = 2**20
FAST = {"base_mb": 560, "train_copies": 3.0, "test_copies": 1.5}
HOOKED = {"base_mb": 920, "train_copies": 1.75, "test_copies": 0.9}
MLP = {"base_mb": 275, "train_logit_copies": 4.6, "train_hidden_copies": 1.3, "test_logit_copies": 3.9}
CACHE_BATCH = 16384  # rows per forward pass of the cache job (tdw.cache.forward.BATCH)


def row_width(cfg: ModelConfig) -> int:
    """Floats of activations per input row: the last position through the MLP and the
    logits for the fast path; every position through every block for the hooked forward."""
    if cfg.is_paper_shape:
        return cfg.d_mlp + cfg.d_model + cfg.d_vocab_out
    return cfg.n_ctx * (cfg.n_layers * (cfg.d_mlp + 4 * cfg.d_model) + cfg.d_vocab_out)


def n_parameters(cfg: ModelConfig) -> int:
    if cfg.is_mlp:  # embedding, hidden layer with bias, unembedding (tdw.models.weights.mlp_param_shapes)
        biases = 2 if cfg.input_bias == "per_operand" else 1
        return cfg.d_vocab * cfg.d_model + cfg.d_in * cfg.d_mlp + biases * cfg.d_mlp + cfg.d_mlp * cfg.d_vocab_out
    block = 4 * cfg.d_model * cfg.d_model + 2 * cfg.d_model * cfg.d_mlp + cfg.d_mlp + cfg.d_model
    return cfg.d_vocab * cfg.d_model + cfg.n_ctx * cfg.d_model + cfg.n_layers * block + cfg.d_model * cfg.d_vocab_out


def train_memory_mb(cfg: ModelConfig, n_train: int, n_test: int, models: int = 1) -> float:
    """Estimated peak MB of a training job over ``models`` stacked variants, each with
    ``n_train`` train and ``n_test`` test rows."""
    if cfg.is_mlp:
        return mlp_train_memory_mb(cfg, n_train, n_test, models)
    k = FAST if cfg.is_paper_shape else HOOKED
    width = 4 * row_width(cfg)  # bytes, float32
    rows = k["train_copies"] * n_train + k["test_copies"] * n_test
    return k["base_mb"] + models * (rows * width + 16 * n_parameters(cfg)) / MB


def mlp_train_memory_mb(cfg: ModelConfig, n_train: int, n_test: int, models: int = 1) -> float:
    """``train_memory_mb`` of the MLP model: per train row its logits and hidden layer, per test
    row its logits (bytes, float32), plus AdamW's four copies of the parameters."""
    logits, hidden = 4 * cfg.d_vocab_out, 4 * (cfg.d_in + 2 * cfg.d_mlp)
    k = MLP
    rows = n_train * (k["train_logit_copies"] * logits + k["train_hidden_copies"] * hidden)
    rows += n_test * k["test_logit_copies"] * logits
    return k["base_mb"] + models * (rows + 16 * n_parameters(cfg)) / MB


def filter_copies(grokfast: dict | None) -> int:
    """Copies of the parameters' gradients a Grokfast filter keeps (``tdw.train.grokfast``):
    the window of past gradients (``ma``), or one running mean (``ema``)."""
    if grokfast is None:
        return 0
    return int(grokfast["window"]) if grokfast["kind"] == "ma" else 1


def hook_width(hook: str, cfg: ModelConfig, positions: str) -> int:
    """Values per row a cached hook keeps (``positions``: last or all)."""
    leaf = hook.rsplit(".", 1)[-1]
    per_pos = {"logits": cfg.d_vocab_out, "hook_pre": cfg.d_mlp, "hook_post": cfg.d_mlp}.get(leaf, cfg.d_model)
    if leaf in ("hook_pattern", "hook_attn_scores"):
        per_pos = cfg.n_heads * cfg.n_ctx
    return per_pos * (cfg.n_ctx if positions == "all" else 1)


def cache_memory_mb(cfg: ModelConfig, rows: int, cache: dict) -> float:
    """Estimated peak MB of a cache job: the kept tensors of every probe row twice (the
    batches and their concatenation) plus one batch's hooked forward."""
    kept = sum(hook_width(h, cfg, s["positions"]) * (2 if s["dtype"] == "float16" else 4) for h, s in cache.items())
    width = 4 * cfg.n_ctx * (cfg.n_layers * (cfg.d_mlp + 4 * cfg.d_model) + cfg.d_vocab_out)
    return HOOKED["base_mb"] + (2 * rows * kept + min(rows, CACHE_BATCH) * width + 4 * n_parameters(cfg)) / MB


def check_variant_sizes(
    family: Family, variants: list[Variant], probe: str, batch_seeds: bool, source: str, frac_key: str = ""
) -> None:
    """Refuse a trained variant whose split has no train or no test pair, and a variant
    whose training or cache job needs more memory than the rules declare
    (``tdw.workflow.resources``), each with its own architecture and train fraction
    (``frac_key``: the config key the train fraction comes from, for messages)."""
    from tdw.tasks import sequence
    from tdw.tasks.modular import probe_indices, split
    from tdw.workflow.plan import batch_key

    seen = set()
    for v in variants:
        cfg = v.model or family.model_config(v.p)
        together = [w for w in variants if not w.is_legacy and batch_key(w) == batch_key(v)]
        models = len(together) if batch_seeds and not v.is_legacy else 1
        copies = filter_copies(v.train.grokfast if v.train is not None else None)
        if (cfg, v.train_frac, v.is_legacy, models, copies) in seen:
            continue  # the sizes do not depend on the seeds
        seen.add((cfg, v.train_frac, v.is_legacy, models, copies))
        key = f"variant {v.name}" if v.is_legacy else "key 'sweep.p'" + (f" / {frac_key!r}" if frac_key else "")
        what = f"{source}: {key}: p = {v.p} with train_frac {v.train_frac}"
        if v.model is not None and v.model != family.model_config(v.p):
            what += f" (variant {v.name}: d_model {cfg.d_model}, d_mlp {cfg.d_mlp}, n_heads {cfg.n_heads})"
        limit = f"the {TRAIN_MEM_MB} MB the train rule declares (tdw.workflow.resources.TRAIN_MEM_MB)"
        sequence_task = family.operation == sequence.OPERATION  # minibatches: no split, no grid of pairs
        if not v.is_legacy and not sequence_task:
            need = train_memory_mb(cfg, 0, v.p * v.p, models)  # every row at the test cost: a lower bound
            if need > TRAIN_MEM_MB:
                raise ConfigError(f"{what}: training {v.p**2} pairs needs at least {need:,.0f} MB, more than {limit}")
            train, test = split(v.p, v.train_frac, v.split_seed, family.operation)
            if len(train) == 0 or len(test) == 0:
                raise ConfigError(
                    f"{what}: the split of the {len(train) + len(test)} pairs has {len(train)} train and {len(test)} test pairs; "
                    "training needs at least one of each (change train_frac or p)"
                )
            need = train_memory_mb(cfg, len(train), len(test), models)
            kept = models * copies * 4 * n_parameters(cfg) / MB  # the Grokfast filter's gradients
            if need + kept > TRAIN_MEM_MB:
                filt = f", {kept:,.0f} MB of it the Grokfast filter's {copies} gradient copies" if kept >= 1 else ""
                raise ConfigError(
                    f"{what}: training needs about {need + kept:,.0f} MB ({models} model(s){filt}), more than {limit}"
                )
        if sequence_task:
            rows = sequence.probe_size(family.spec["probes"][probe], family.root)
        else:
            rows = len(probe_indices(v.p, family.spec["probes"][probe], v.train_frac, v.split_seed, family.operation))
        need = cache_memory_mb(cfg, rows, family.spec["cache"])
        if need > CACHE_MEM_MB:
            raise ConfigError(
                f"{what}: the forward-pass cache of probe {probe!r} ({rows} rows) needs about {need:,.0f} MB, "
                f"more than the {CACHE_MEM_MB} MB a cache job is held to (tdw.workflow.resources.CACHE_MEM_MB)"
            )
