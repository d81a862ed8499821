"""Training: architectures, the tf.data pipeline, run folders, registration and the job manager.

`architectures`, `data`, `export`, `registration` and `run` import TensorFlow; `config`,
`events` and `jobs` do not, so the Train page can start, watch and stop runs (each its own
process) without loading it. Inference code never imports TensorFlow.
"""

import os

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX; on
# the AVX2 machine of tests/benchmarks/BENCHMARKS.md they trained faster ("oneDNN on an AVX2 CPU").
# TensorFlow reads the switch when it loads, so it is set here, before any training module imports
# it (and inherited by the training processes the Train page starts); TF_ENABLE_ONEDNN_OPTS=0 keeps
# them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
