"""Each shipped family's analyzer and figure parameters as the family files stated them in full
before families extended one another and parameters were declared in the modules: the resolved
families must give exactly these values (tests/test_families.py)."""

MODADD_ANALYZERS = {
    "embedding_frequencies": {"dominant_fraction": 0.3},
    "neuron_activations": {"neurons": None, "per_cluster": 2, "first_k": 4, "threshold": 0.85, "max_grid_epochs": 100},
    "neuron_clusters": {"threshold": 0.85},
    "progress_measures": {"key_frequencies": "final", "key_fraction": 0.3},
    "attention": {},
    "dimensionality": {
        "hooks": ["blocks.{last}.hook_resid_mid", "blocks.{last}.hook_resid_post", "blocks.{last}.mlp.hook_post"],
        "centred": True,
        "energy": 0.9,
        "n_singular_values": 16,
    },
    "transitions": {"window": 10, "z_threshold": 5.0, "min_fraction": 0.1, "onset": 0.1, "done": 0.9, "min_drop": 1.0},
    "geometry": {"key_frequencies": "final", "key_fraction": 0.3, "n_components": 4},
    "ablations": {"threshold": 0.85, "top_neurons": 5, "max_checkpoints": 40, "compare": None},
    # added with the analyzer (no earlier family file stated it)
    "llc": {
        "epsilon": 3e-5,
        "gamma": 1000.0,
        "nbeta": "n",
        "chains": 4,
        "draws": 100,
        "burn_in": 50,
        "steps_between_draws": 1,
        "batch_size": 128,
        "seed": 0,
        "divergence_rise": None,  # added later: the default margin, ln(classes)
    },
}

MODADD_FIGURES = {
    "loss_curves": {
        "source": "history",
        "params": {"train_color": "#1f77b4", "test_color": "#d62728", "width": 900, "height": 450, "log_y": True},
    },
    "embedding_frequencies": {
        "source": "embedding_frequencies",
        "params": {"colorscale": "Viridis", "line_color": "#2c3e50", "width": 900, "height": 650, "highlight_threshold": 0.3},
    },
    "neuron_activations": {
        "source": "neuron_activations",
        "params": {
            "neuron": None,
            "colorscale": "RdBu",
            "fourier_colorscale": "Viridis",
            "max_frames": 20,
            "width": 1000,
            "height": 480,
        },
    },
    "neuron_clusters": {
        "source": "neuron_clusters",
        "params": {"colorscale": "Viridis", "max_frames": 10, "width": 900, "height": 700},
    },
    "progress_losses": {
        "source": "progress_measures",
        "params": {
            "train_color": "#1f77b4",
            "test_color": "#d62728",
            "restricted_color": "#2ca02c",
            "excluded_color": "#9467bd",
            "width": 900,
            "height": 450,
            "log_y": True,
        },
    },
    "progress_weights": {
        "source": "progress_measures",
        "params": {"embed_color": "#1f77b4", "unembed_color": "#ff7f0e", "norm_color": "#333333", "width": 900, "height": 400},
    },
    "attention": {"source": "attention", "params": {"colorscale": "Blues", "width": 900, "height": 400}},
    "dimensionality": {
        "source": "dimensionality",
        "params": {"metrics": ["participation_ratio", "effective_rank"], "width": 900, "height": 420},
    },
    "transitions": {"source": "transitions", "params": {"line_color": "#2c3e50", "width": 900, "height": 550}},
    "geometry": {
        "source": "geometry",
        "params": {"colorscale": "HSV", "marker_size": 5, "max_keys": 4, "max_frames": 100, "width": 1000, "height": 560},
    },
    "ablations": {"source": "ablations", "params": {"mode": "mean", "subset": "test", "width": 950, "height": 450}},
    "llc": {
        "source": "llc",
        "params": {"color": "#1f77b4", "diverged_color": "#d62728", "log_y": False, "width": 950, "height": 420},
    },
}

# Offered since by modadd and modsub (modadd_2layer removes them): appended after the above.
MODADD_ADDED_ANALYZERS = {"clock_pizza": {"n_triples": 100, "seed": 0, "key_frequencies": "final", "key_fraction": 0.3}}
# Offered by every family extending modadd (modadd_2layer too): appended after clock_pizza.
LLC_CALIBRATION_ANALYZER = {
    "llc_calibration": {
        "epoch": "final",
        "epsilons": [1e-5, 3e-5, 1e-4],
        "nbetas": ["n", "batch"],
        "gamma": 1000.0,
        "chains": 2,
        "draws": 50,
        "burn_in": 20,
        "steps_between_draws": 1,
        "batch_size": 128,
        "seed": 0,
        "divergence_rise": None,  # llc's, added later
    }
}
LLC_CALIBRATION_FIGURE = {
    "llc_calibration": {
        "source": "llc_calibration",
        "params": {
            "color": "#1f77b4",
            "diverged_color": "#d62728",
            "colorscale": "Viridis",
            "log_loss": True,
            "width": 1100,
            "height": 820,
        },
    }
}
# Offered on request by every family extending modadd (modadd_2layer too): after llc_calibration.
LMC_ANALYZER = {"lmc": {"points": 11, "match_residual": False, "partner": ""}}
LMC_FIGURE = {
    "lmc": {
        "source": "lmc",
        "params": {
            "split": "train",
            "naive_color": "#d62728",
            "matched_color": "#1f77b4",
            "log_y": False,
            "width": 950,
            "height": 420,
        },
    }
}
# Offered on request by every family extending modadd: appended after llc_calibration.
SIMILARITY_ANALYZERS = {
    "cka": {"hooks": ["blocks.{last}.hook_resid_post", "blocks.{last}.mlp.hook_post"], "rows": 256, "seed": 0},
    "essential_dynamics": {
        "hook": "logits",
        "rows": 256,
        "seed": 0,
        "components": 4,
        "centre_classes": True,
        "onset": 0.1,
        "done": 0.9,
        "min_drop": 1.0,
    },
}
SIMILARITY_FIGURES = {
    "cka": {
        "source": "cka",
        "params": {"measure": "cka", "colorscale": "Viridis", "max_frames": 100, "width": 1000, "height": 720},
    },
    "essential_dynamics": {
        "source": "essential_dynamics",
        "params": {
            "x_component": 1,
            "y_component": 2,
            "colorscale": "Viridis",
            "max_frames": 200,
            "width": 1000,
            "height": 480,
        },
    },
}
# Offered on request by every family extending modadd: appended after llc_calibration
# (llc_restricted and susceptibilities).
LLC_RESTRICTED_ANALYZER = {
    "llc_restricted": {
        "epsilon": 3e-5,
        "gamma": 1000.0,
        "nbeta": "n",
        "chains": 2,
        "draws": 20,
        "burn_in": 10,
        "steps_between_draws": 1,
        "batch_size": 128,
        "seed": 0,
        "divergence_rise": None,
        "components": ["heads", "mlps"],
    },
    "susceptibilities": {
        "epsilon": 3e-5,
        "gamma": 1000.0,
        "nbeta": "n",
        "chains": 2,
        "draws": 20,
        "burn_in": 10,
        "steps_between_draws": 1,
        "batch_size": 128,
        "seed": 0,
        "divergence_rise": None,
        "components": ["heads", "mlps"],
        "probe": "test",
        "max_rows": 1024,
    },
}
LLC_RESTRICTED_FIGURE = {
    "llc_restricted": {
        "source": "llc_restricted",
        "params": {"show_chains": True, "log_y": False, "width": 950, "height": 460},
    },
    "susceptibilities": {
        "source": "susceptibilities",
        "params": {"colorscale": "RdBu_r", "max_frames": 40, "width": 1100, "height": 480},
    },
}
MODADD_ADDED_FIGURES = {
    "clock_pizza": {
        "source": "clock_pizza",
        "params": {
            "symmetricity_color": "#d62728",
            "irrelevance_color": "#1f77b4",
            "clock_color": "#2ca02c",
            "pizza_color": "#ff7f0e",
            "width": 950,
            "height": 420,
        },
    },
}

TINY_ANALYZERS = {
    "embedding_frequencies": {"dominant_fraction": 0.3},
    "neuron_clusters": {"threshold": 0.85},
    "transitions": {"window": 10, "z_threshold": 5.0, "min_fraction": 0.1, "onset": 0.1, "done": 0.9, "min_drop": 1.0},
    "weight_norms": {},
}

TINY_FIGURES = {
    "loss_curves": {
        "source": "history",
        "params": {"train_color": "#1f77b4", "test_color": "#d62728", "width": 900, "height": 450, "log_y": True},
    },
    "embedding_frequencies": {
        "source": "embedding_frequencies",
        "params": {"colorscale": "Viridis", "line_color": "#2c3e50", "width": 900, "height": 650, "highlight_threshold": 0.3},
    },
    "neuron_clusters": {
        "source": "neuron_clusters",
        "params": {"colorscale": "Viridis", "max_frames": 10, "width": 900, "height": 700},
    },
    "transitions": {"source": "transitions", "params": {"line_color": "#2c3e50", "width": 900, "height": 550}},
    "weight_norms": {"source": "weight_norms", "params": {"log_y": True, "width": 950, "height": 420}},
}

# the curvature and intervention analyzers modadd offers on request (and the families extending it)
CURVATURE_ANALYZERS = {
    "sharpness": {"k": 3, "probes": 10, "tol": 1e-4, "seed": 0, "dtype": "float64"},
    "interventions": {
        "fractions": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0],
        "sigmas": [1e-4, 1e-3, 1e-2, 3e-2, 1e-1],
        "draws": 8,
        "seed": 0,
    },
}
CURVATURE_FIGURES = {
    "sharpness": {"source": "sharpness", "params": {"color": "#1f77b4", "log_y": True, "width": 1150, "height": 420}},
    "interventions": {
        "source": "interventions",
        "params": {"split": "test", "metric": "accuracy", "log_y": True, "width": 1100, "height": 440},
    },
}
