"""A model written by hand that implements the Fourier algorithm for chosen frequencies
(independent of the analyzer code): tests know its key frequencies, clusters and heads.

Layout of the residual stream (d_model = 16, 4 heads of d_head 4): dim 0 is a bias dim
(the `=` token's embedding); dims 1..2K hold (cos w_k x, sin w_k x) of a token x; dims
1+2K..4K the output directions read by the unembedding. Head 0 attends uniformly (zero
query) and copies the Fourier dims (x3, so a + b lands in the residual); heads 1 and 2 have
no output but attend by cos(w_k x) of key k1 and k2 (their pattern is periodic in a and b
with that frequency); head 3 is empty. Neuron (k, j) computes
ReLU(cos(w_k a + phi_j) + cos(w_k b + phi_j)) for J phases phi_j = 2 pi j / J; its output
reads cos(w_k c + 2 phi_j), so the logits are close to sum_k cos(w_k (a + b - c)).
The last neurons are dead (bias -1) and one is always on (bias +1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdw.io.checkpoint import save_checkpoint
from tdw.layout import VariantLayout

J = 16  # phases per key frequency
N_DEAD = 6
D_MODEL, N_HEADS, D_HEAD = 16, 4, 4


def architecture(p: int, keys: tuple[int, ...]) -> dict:
    return {
        "p": p,
        "n_layers": 1,
        "d_model": D_MODEL,
        "n_heads": N_HEADS,
        "d_mlp": len(keys) * J + N_DEAD + 1,
        "act": "relu",
        "layernorm": False,
        "n_ctx": 3,
        "unembed_equals": True,
    }


def fourier_weights(p: int, keys: tuple[int, ...], scale: float = 20.0, attn: float = 2.0) -> dict[str, np.ndarray]:
    arch = architecture(p, keys)
    d, m, n_key = D_MODEL, arch["d_mlp"], len(keys)
    x = np.arange(p)
    w_e = np.zeros((p + 1, d))
    w_e[p, 0] = 1.0
    for i, k in enumerate(keys):
        w_e[:p, 1 + 2 * i] = np.cos(2 * np.pi * k * x / p)
        w_e[:p, 2 + 2 * i] = np.sin(2 * np.pi * k * x / p)
    w_q, w_k, w_v = (np.zeros((N_HEADS, d, D_HEAD)) for _ in range(3))
    w_o = np.zeros((N_HEADS, D_HEAD, d))
    for j in range(2 * n_key):
        w_v[0, 1 + j, j] = 1.0
        w_o[0, j, 1 + j] = 3.0
    for h in (1, 2):  # attend by cos(w_k x) of key h-1: query from the bias dim
        w_q[h, 0, 0] = attn
        w_k[h, 1 + 2 * (h - 1), 0] = np.sqrt(D_HEAD)  # score = attn * cos(w_k x)
    w_in, b_in, w_out = np.zeros((d, m)), np.zeros(m), np.zeros((m, d))
    out0 = 1 + 2 * n_key
    for i in range(n_key):
        for j in range(J):
            n, phi = i * J + j, 2 * np.pi * j / J
            w_in[1 + 2 * i, n], w_in[2 + 2 * i, n] = np.cos(phi), -np.sin(phi)
            w_out[n, out0 + 2 * i], w_out[n, out0 + 2 * i + 1] = scale * np.cos(2 * phi), -scale * np.sin(2 * phi)
    b_in[n_key * J : n_key * J + N_DEAD] = -1.0
    b_in[-1] = 1.0
    w_u = np.zeros((d, p + 1))
    for i, k in enumerate(keys):
        w_u[out0 + 2 * i, :p] = np.cos(2 * np.pi * k * x / p)
        w_u[out0 + 2 * i + 1, :p] = np.sin(2 * np.pi * k * x / p)
    return {
        "embed.W_E": w_e,
        "pos_embed.W_pos": np.zeros((3, d)),
        "blocks.0.attn.W_Q": w_q,
        "blocks.0.attn.W_K": w_k,
        "blocks.0.attn.W_V": w_v,
        "blocks.0.attn.W_O": w_o,
        "blocks.0.mlp.W_in": w_in,
        "blocks.0.mlp.b_in": b_in,
        "blocks.0.mlp.W_out": w_out,
        "blocks.0.mlp.b_out": np.zeros(d),
        "unembed.W_U": w_u,
    }


def run_config(p: int, keys: tuple[int, ...], operation: str = "add", train_frac: float = 0.3, seed: int = 0) -> dict:
    return {
        "family": "modadd",
        "variant": f"handmade_p{p}",
        "task": {"operation": operation, "p": p},
        "seed": seed,
        "architecture": architecture(p, keys),
        "train": {"train_frac": train_frac},
    }


def write_run(out: Path, p: int, keys: tuple[int, ...], epochs: tuple[int, ...] = (0, 10, 20), seed: int = 0) -> list[Path]:
    """Checkpoints that move from noise to the Fourier model: w(t) = t W_fourier + (1 - t) noise
    with t = 0, .., 1 over ``epochs``. Returns their paths."""
    target = fourier_weights(p, keys)
    rng = np.random.default_rng(seed)
    noise = {k: rng.normal(0, 0.3, v.shape) for k, v in target.items()}
    paths = []
    for i, epoch in enumerate(epochs):
        t = i / (len(epochs) - 1)
        weights = {k: t * target[k] + (1 - t) * noise[k] for k in target}
        path = VariantLayout.at(out).checkpoint(epoch)
        save_checkpoint(path, weights, {"epoch": epoch, "config": run_config(p, keys)})
        paths.append(path)
    return paths


CACHE_SPEC = {
    "blocks.0.attn.hook_pattern": {"positions": "last", "dtype": "float32"},
    "blocks.0.hook_resid_mid": {"positions": "last", "dtype": "float32"},
}


def write_caches(checkpoints: list[Path], out: Path, index: np.ndarray | None = None, spec: dict | None = None) -> list[Path]:
    """Forward caches of checkpoints over flat pair indices (default: the full grid), in the
    layout ``tdw.cache.forward`` writes (torch forward of the hooked model)."""
    import torch

    from tdw.cache.forward import forward_cache, hook_dims
    from tdw.io.checkpoint import load_torch, read_metadata
    from tdw.io.h5 import write_h5
    from tdw.models.architecture import ModelConfig
    from tdw.models.build import build_model
    from tdw.tasks.modular import tokens

    paths = []
    for ckpt in checkpoints:
        meta = read_metadata(ckpt)
        cfg = ModelConfig(**meta["config"]["architecture"])
        idx = np.arange(cfg.p**2) if index is None else np.asarray(index)
        model = build_model(cfg, load_torch(ckpt))
        arrays = forward_cache(model, torch.from_numpy(tokens(cfg.p, idx)), spec or CACHE_SPEC)
        datasets = {"pair_index": (idx.astype(np.int32), "batch")}
        datasets |= {k: (v, hook_dims(k, "last")) for k, v in arrays.items()}
        path = out / f"epoch_{meta['epoch']:05d}.h5"
        write_h5(path, datasets, {"epoch": meta["epoch"]})
        paths.append(path)
    return paths


def adam_trained(cfg, steps: int, train_frac: float, seed: int) -> dict[str, np.ndarray]:
    """The model ``cfg`` from its seed-0 initialisation trained ``steps`` full-batch Adam steps
    (lr 2e-2) on the a + b training split of ``train_frac`` under ``seed``: a checkpoint near a
    minimum, through the training fast path's logits."""
    import torch

    from tdw.models.fastpath import last_logits
    from tdw.models.weights import init_params
    from tdw.tasks import modular

    params = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg, 0).items()}
    train, _ = modular.split(cfg.p, train_frac, seed)
    x, y = torch.as_tensor(modular.tokens(cfg.p, train)), torch.as_tensor(modular.labels(cfg.p, train))
    opt = torch.optim.Adam(params.values(), lr=2e-2)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(last_logits(params, cfg, x), y).backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in params.items()}
