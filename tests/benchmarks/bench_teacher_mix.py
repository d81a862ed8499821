"""What a mix of two teachers knows: accuracy of their mixed logits on FER-2013 validation and on
faces of real people, for each share of the second teacher.

`train --second-teacher` mixes the teachers' calibrated logits (each divided by its card's
temperature) with a share per kind of face; this prints, for shares 0 to 1, what that mix scores
on the first teacher's validation split and on a set of real faces, with the share of smiles found
and of other faces called happy. A student rarely beats its teacher: these figures bound what a
student of that mix can reach.

    .venv/bin/python -m tests.benchmarks.bench_teacher_mix \
        --teacher fer2013-trio --second-teacher raf-mobilefacenet --real ../shared/datasets/wild_dev
"""

from __future__ import annotations

import argparse

import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.datasets import load_labeled, validation_split
from fer_core.ensemble import shared_validation
from fer_core.models import load_classifier
from fer_core.preprocess import combine_specs, convert_crops
from fer_core.registry import get_model


def calibrated_logits(name: str, faces, spec) -> np.ndarray:
    """A teacher's logits on faces cropped by `spec`, divided by its card's temperature (no TTA)."""
    info = get_model(name)
    classifier = load_classifier(info, tta="none")
    crops = convert_crops(faces.images, spec, info.preprocessing)
    logits = np.concatenate([classifier.logits(crops[i : i + 512]) for i in range(0, len(crops), 512)])
    return logits / info.temperature_for("none")


def figures(labels: np.ndarray, logits: np.ndarray) -> dict:
    predicted = logits.argmax(1)
    disgust, happy = EMOTIONS.index("disgust"), EMOTIONS.index("happy")
    kept = labels != disgust
    return {
        "accuracy": float((predicted == labels).mean()),
        "without_disgust": float((predicted[kept] == labels[kept]).mean()),
        "smiles_found": float((predicted[labels == happy] == happy).mean()),
        "others_happy": float((predicted[labels != happy] == happy).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="fer2013-trio")
    parser.add_argument("--second-teacher", default="raf-mobilefacenet")
    parser.add_argument("--real", required=True, help="labelled set of real faces (e.g. wild_dev)")
    parser.add_argument("--steps", type=int, default=10, help="shares 0, 1/steps, ..., 1")
    args = parser.parse_args()
    infos = [get_model(args.teacher), get_model(args.second_teacher)]
    spec = combine_specs([info.preprocessing for info in infos])
    split = shared_validation(infos)
    sets = {
        "FER-2013 validation": validation_split(
            split["data"], split["val_fraction"], split["seed"], spec, split["max_images"]
        ),
        "real": load_labeled(args.real, spec=spec),
    }
    logits = {name: [calibrated_logits(info.name, faces, spec) for info in infos] for name, faces in sets.items()}
    print(f"{args.teacher} + share x {args.second_teacher}; real faces: {args.real}")
    print("share | FER-2013 val | real | real w/o disgust | smiles found | others called happy")
    for step in range(args.steps + 1):
        share = step / args.steps
        fer = figures(
            sets["FER-2013 validation"].labels,
            (1 - share) * logits["FER-2013 validation"][0] + share * logits["FER-2013 validation"][1],
        )
        real = figures(sets["real"].labels, (1 - share) * logits["real"][0] + share * logits["real"][1])
        print(
            f"{share:5.2f} | {fer['accuracy']:12.1%} | {real['accuracy']:4.1%} | {real['without_disgust']:16.1%} | "
            f"{real['smiles_found']:12.1%} | {real['others_happy']:.1%}"
        )


if __name__ == "__main__":
    main()
