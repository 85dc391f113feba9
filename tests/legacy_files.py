"""Legacy files made for tests, in the original code's layout (a pickle of a dict with
``model``, ``train_losses`` and ``test_losses``)."""

import numpy as np
import torch


# Files in the original code's layout with the paper's shapes (p = 7 keeps them small).
def legacy_file(path, n_train=100, n_test=100, p=7, seed=0, **extra):
    gen = torch.Generator().manual_seed(seed)
    shapes = {
        "embed.W_E": (128, p + 1),
        "pos_embed.W_pos": (3, 128),
        "blocks.0.attn.W_K": (4, 32, 128),
        "blocks.0.attn.W_Q": (4, 32, 128),
        "blocks.0.attn.W_V": (4, 32, 128),
        "blocks.0.attn.W_O": (128, 128),
        "blocks.0.attn.mask": (3, 3),
        "blocks.0.mlp.W_in": (512, 128),
        "blocks.0.mlp.b_in": (512,),
        "blocks.0.mlp.W_out": (128, 512),
        "blocks.0.mlp.b_out": (128,),
        "unembed.W_U": (128, p + 1),
    }
    model = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    obj = {"model": model, "train_losses": np.linspace(5, 0, n_train).tolist(), "test_losses": np.linspace(5, 1, n_test).tolist()}
    torch.save(obj | extra, path)
    return path
