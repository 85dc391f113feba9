"""The workbench dashboard: a Gradio app that configures and launches
sweeps through Snakemake and shows their sweep pages, triggers analysis, and browses a
variant's views with the global checkpoint slider. Run ``python -m tdw dashboard`` (binds 127.0.0.1:7860)."""
