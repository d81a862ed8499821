"""The one place that states the emotion classes and their order."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""Class order of every probability vector in the project (FER-2013's label order)."""

NUM_CLASSES = len(EMOTIONS)

_ALIASES = {
    "anger": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "contempt": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "calm": "neutral",
    "none": "neutral",
    "sadness": "sad",
    "unhappy": "sad",
    "surprised": "surprise",
    "surprize": "surprise",
}


def canonical_emotion(name: str) -> str | None:
    """Map a class name or common alias to one of EMOTIONS.

    Args:
        name: a folder or label name such as "Happiness", "anger", "3".

    Returns:
        The canonical emotion name, or None when the name is not recognised.
        A digit string is read as a FER-2013 label index.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key.isdigit():
        index = int(key)
        return EMOTIONS[index] if index < NUM_CLASSES else None
    if key in EMOTIONS:
        return key
    return _ALIASES.get(key)


def emotion_index(name: str) -> int:
    """Index of an emotion (or alias) in EMOTIONS.

    Raises:
        ValueError: the name is not a known emotion or alias.
    """
    canonical = canonical_emotion(name)
    if canonical is None:
        raise ValueError(f"Unknown emotion name. Expected one of {EMOTIONS} or an alias. Received: name={name!r}")
    return EMOTIONS.index(canonical)
