"""Training: architectures, the tf.data pipeline, run folders and the job manager.

Everything here imports TensorFlow; inference code never imports this package.
"""
