#!/usr/bin/env bash
# Start (or confirm) the single-node SLURM cluster the slurm-marked tests submit to, with
# accounting (slurmdbd), so that `sacct`, which the Snakemake plugin polls, works, and one
# fake GPU (gres/gpu backed by /dev/null) so that a GPU request can be scheduled.
# Uses the shared script beside the checkout (../shared/slurm/ from the repository root);
# TDW_SLURM_SCRIPTS points elsewhere. Root only; idempotent. About 30 s on a fresh Debian 12
# machine (20-25 s of it apt-get), about 1 s when the cluster already runs, about 3 s when
# it runs with another configuration (e.g. started without the fake GPU: daemons restart).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS=${TDW_SLURM_SCRIPTS:-$REPO/../shared/slurm}
if [ ! -x "$SCRIPTS/start_local_slurm.sh" ]; then
  echo "tests/slurm/start.sh: $SCRIPTS/start_local_slurm.sh not found (set TDW_SLURM_SCRIPTS)" >&2
  exit 2
fi
export SLURM_LOCAL_FAKE_GPUS=${SLURM_LOCAL_FAKE_GPUS:-1}
SLURM_LOCAL_ACCOUNTING=1 exec "$SCRIPTS/start_local_slurm.sh" "$@"
