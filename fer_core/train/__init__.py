"""Training: architectures, the tf.data pipeline, run folders, registration and the job manager.

`architectures`, `data`, `export`, `registration` and `run` import TensorFlow; `config`,
`events` and `jobs` do not, so the Train page can start, watch and stop runs (each its own
process) without loading it. Inference code never imports TensorFlow.
"""
