"""fer_core: facial emotion recognition without Streamlit, usable from a notebook or the CLI.

Main entry points:

- `fer_core.recognizer.EmotionRecognizer`: image -> faces with emotion probabilities.
- `fer_core.labeling.label_folder` / `label_sources`: many photos -> result rows.
- `fer_core.live.LiveProcessor`: video frames -> tracked, smoothed, annotated frames.
- `fer_core.evaluation`, `fer_core.metrics`: metrics on labelled face crops.
- `fer_core.ensemble`: several registered models averaged into one.
- `fer_core.train.run.run_training`: a training run (imports TensorFlow, as does the optional
  `mtcnn` detector; nothing else here does).
- `python -m fer_core --help`: the command line.

The class order of every probability vector is `fer_core.classes.EMOTIONS`.
"""
