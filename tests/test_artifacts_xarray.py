"""Every artifact, history and cache opens in xarray (``engine="h5netcdf"``) with named
dimensions and coordinates, and still reads by name in plain h5py: every registered analyzer
runs on a p = 13 variant trained for 30 epochs, and ``write_h5``'s netCDF-4 conventions (one
length per axis name, coordinates, bools, strings, attributes, compression) are checked on
hand-built files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

from tdw.analyzers import REGISTRY, get
from tdw.analyzers.base import supports
from tdw.analyzers.runner import run_analyzer
from tdw.cache.forward import cache_checkpoints
from tdw.config import TrainConfig, Variant, load_family
from tdw.io.h5 import load_artifact, read_attrs, read_dataset, write_h5
from tdw.io.history import read_history

# every analyzer that runs on the a + b task (the sequence analyzers have their own tests)
ADD_ANALYZERS = [name for name in REGISTRY if supports(get(name), {"operation": "add"})]

EPOCHS = (0, 10, 20, 30)
# the SGLD measures offered on request, at a few steps (their own modules test them in full)
ON_REQUEST_SGLD = {"chains": 1, "draws": 4, "burn_in": 1}
PARAMS = {"transitions": {"window": 3}}  # a window that fits four checkpoints
PARAMS |= dict.fromkeys(("llc_restricted", "susceptibilities"), ON_REQUEST_SGLD)


@pytest.fixture(scope="module")
def variant(tmp_path_factory) -> dict:
    """A trained p = 13 variant (the modadd model), its caches and every analyzer's artifact."""
    from tdw.train.trainer import TrainJob, train_variant

    family = load_family("modadd")
    v = Variant("p13_seed0", 13, 0, 0.5, EPOCHS)
    out = tmp_path_factory.mktemp("trained") / v.name
    train_variant(TrainJob("modadd", "add", family.model_config(13), TrainConfig(train_frac=0.5), v, out))
    ckpts = [out / "checkpoints" / f"checkpoint_epoch_{e:05d}.safetensors" for e in EPOCHS]
    caches = [out / "cache/full" / f"epoch_{e:05d}.h5" for e in EPOCHS]
    cache_checkpoints(family, v, "full", ckpts, caches)
    artifacts = {}
    for name in ADD_ANALYZERS:
        params = family.spec["analyzers"].get(name, {}).get("params", {}) | PARAMS.get(name, {})
        artifacts[name] = out / "artifacts/full" / f"{name}.h5"
        run_analyzer(name, params, ckpts, caches, artifacts[name], {"variant": v.name}, history=out / "history.h5")
    return {"root": out, "caches": caches, "artifacts": artifacts, "family": family}


def check_opens_like_h5py(path) -> xr.Dataset:
    """Every dataset is an xarray variable with the dims of its ``dims`` attribute and the values
    h5py reads; an axis without a coordinate is named and its h5py dataset is the index."""
    ds = xr.open_dataset(path, engine="h5netcdf")
    with h5py.File(path, "r") as fh:
        plain = {k: v[()] for k, v in fh.items()}  # the README's h5py one-liner
        for name, var in ds.variables.items():
            assert var.dims == tuple(fh[name].attrs["dims"].split()), (path.name, name)
            expected = read_dataset(fh[name])
            if expected.dtype.kind == "S":  # UTF-8 in the file: str in xarray
                assert var.dtype.kind in "OU", (path.name, name)
                expected = np.char.decode(expected)
            else:
                assert var.dtype == expected.dtype, (path.name, name)
            np.testing.assert_array_equal(var.values, expected, err_msg=f"{path.name}: {name}")
        for dim, size in ds.sizes.items():
            if dim not in ds.coords:  # the index, for h5py readers
                np.testing.assert_array_equal(plain[dim], np.arange(size))
                assert fh[dim].attrs["dims"] == dim
        assert set(plain) == set(ds.variables) | set(ds.sizes)
    return ds


def test_every_artifact_opens_in_xarray(variant):
    assert set(variant["artifacts"]) == set(ADD_ANALYZERS)
    family = variant["family"]
    for name, path in variant["artifacts"].items():
        with check_opens_like_h5py(path) as ds:
            assert "epoch" in ds.coords and ds["epoch"].dims == ("epoch",), name
            assert list(ds["epoch"].values) == list(EPOCHS), name
            assert ds.attrs["analyzer"] == name and ds.attrs["variant"] == "p13_seed0" and ds.attrs["p"] == 13
            expected_params = family.spec["analyzers"].get(name, {}).get("params", {}) | PARAMS.get(name, {})
            assert json.loads(ds.attrs["params"]) == expected_params
            assert all(isinstance(v, str | np.number | int | float) for v in ds.attrs.values()), name
            for var in ds.data_vars.values():  # tidy tables: one row per element
                if var.dims:
                    assert len(var.to_dataframe()) == var.size


def test_coordinates_and_types_of_real_artifacts(variant):
    arts = variant["artifacts"]
    with xr.open_dataset(arts["dimensionality"], engine="h5netcdf") as ds:
        assert list(ds["hook"].values) == ["blocks.0.hook_resid_mid", "blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]
        assert ds["centred"].dtype == bool and ds["centred"].dims == ()
        assert ds["stable_rank"].sel(hook="blocks.0.mlp.hook_post").dims == ("epoch",)
    with xr.open_dataset(arts["neuron_clusters"], engine="h5netcdf") as ds:
        assert ds["fve"].dims == ("epoch", "neuron", "frequency") and "neuron" not in ds.coords
        assert list(ds["frequency"].values) == list(range(1, 7))
        assert ds["cluster_size"].dims == ("epoch", "cluster_label")
    with xr.open_dataset(arts["ablations"], engine="h5netcdf") as ds:
        assert ds["dead"].dtype == bool
        assert int(ds["n_dead"][-1]) == int(ds["dead"][-1].sum())
    art = load_artifact(arts["ablations"])  # bools and strings as they were written
    assert art["dead"].dtype == bool and art["mode"].dtype.kind == "S"
    with h5py.File(arts["neuron_clusters"], "r") as fh:
        fve, small = fh["fve"], fh["frequency"]
        assert fve.size > 4096 and (fve.compression, fve.compression_opts, fve.shuffle) == ("gzip", 1, True)
        assert small.compression is None
        assert list(fh) == sorted(fh)  # h5py lists datasets by name, as before


def test_history_and_caches_open_in_xarray(variant):
    history = variant["root"] / "history.h5"
    h = read_history(history)
    with check_opens_like_h5py(history) as ds:
        assert set(ds.coords) == {"train_epoch", "test_epoch"}
        np.testing.assert_array_equal(ds["train_loss"].values, h["train_loss"])
        assert list(ds["train_epoch"].values) == list(range(31))
        frame = ds[["train_loss"]].to_dataframe()
        assert list(frame.index) == list(range(31)) and frame.index.name == "train_epoch"
    for cache in variant["caches"]:
        with check_opens_like_h5py(cache) as ds:
            assert ds["blocks.0.attn.hook_pattern"].dims == ("batch", "head", "key_pos")
            assert ds.sizes["batch"] == 169 and int(ds.attrs["epoch"]) in EPOCHS


def test_axis_names_mean_one_length_per_file(tmp_path):
    with pytest.raises(ValueError, match=r"dimension 'frequency' has length 6 in dataset 'a' and 13 in 'b'"):
        write_h5(tmp_path / "x.h5", {"a": (np.zeros(6), "frequency"), "b": (np.zeros((2, 13)), "epoch frequency")}, {})
    with pytest.raises(ValueError, match=r"dataset 'cluster' has dims 'epoch neuron' but 'cluster' names an axis"):
        write_h5(
            tmp_path / "x.h5",
            {"cluster": (np.zeros((2, 5)), "epoch neuron"), "cluster_size": (np.zeros((2, 3)), "epoch cluster")},
            {},
        )
    assert not (tmp_path / "x.h5").exists()


def test_netcdf_types(tmp_path):
    path = tmp_path / "t.h5"
    write_h5(
        path,
        {
            "epoch": (np.array([0, 10]), "epoch"),
            "hook": (np.array([b"hook_embed", b"blocks.0.mlp.hook_post"]), "hook"),
            "label": (np.array(["b\u00e9ta", "x"]), "hook"),
            "dead": (np.array([[True, False], [False, False]]), "epoch hook"),
            "grokked": (np.array(False), ""),
            "jump": (np.zeros(0, dtype="S1"), "jump"),
            "big": (np.arange(8192.0).reshape(2, 4096), "epoch row"),
        },
        {"p": 13, "params": {"k": [1, 2]}, "synthetic": True, "name": "x", "ratio": 0.5},
        compress=True,
    )
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert list(ds.coords) == ["epoch", "hook", "jump"]
        assert list(ds["hook"].values) == ["hook_embed", "blocks.0.mlp.hook_post"]
        assert list(ds["label"].values) == ["b\u00e9ta", "x"]
        assert ds["dead"].dtype == bool and ds["dead"].values.tolist() == [[True, False], [False, False]]
        assert ds["grokked"].dtype == bool and not ds["grokked"].values
        assert ds.sizes["jump"] == 0 and ds.sizes["row"] == 4096
        assert ds.attrs == {"name": "x", "p": 13, "params": '{"k": [1, 2]}', "ratio": 0.5, "synthetic": 1}
        assert ds["dead"].sel(hook="hook_embed").values.tolist() == [True, False]
    with h5py.File(path, "r") as fh:
        assert fh["dead"].dtype == np.int8 and fh["dead"].attrs["dims"] == "epoch hook"  # netCDF has no bool
        assert (fh["big"].compression, fh["row"].compression) == ("gzip", None)
        assert read_attrs(fh) == {"name": "x", "p": 13, "params": {"k": [1, 2]}, "ratio": 0.5, "synthetic": 1}
        assert read_dataset(fh["hook"]).tolist() == [b"hook_embed", b"blocks.0.mlp.hook_post"]
        grokked = read_dataset(fh["grokked"])
        assert type(grokked) is np.bool_ and not grokked and read_dataset(fh["dead"]).dtype == bool
