"""Which members make the best ensemble: every subset of candidate models, chosen on validation.

    .venv/bin/python -m tests.benchmarks.bench_ensembles --models A B C [D ...] [--tta none flip]

Each candidate's logits on the validation split all candidates share (checked as `fer_core
ensemble` checks it) and on FER-2013 `test` are computed once per TTA mode. Every subset of at
least two members then gets weights fitted on the validation split, as `fer_core ensemble
--fit-weights` fits them, and is scored on both sets. Rows are sorted by validation accuracy: the
top row is the choice. `test` is printed beside it, never used to choose. Cost per face is the sum
of the members' in that TTA mode (a batch of 64 crops, one thread, median of 5).

`--combiners` also compares ways of combining all the listed members' logits: the fitted weights
(what an ensemble card ships), the weights plus a per-class bias, and a logistic regression over
every member's logits (stacking), each scored by cross-validation inside the validation split
(5 folds, 3 shuffles) as well as fitted on all of it and scored on `test`.

`--rules N` asks whether the way the top row is chosen matters, without `test`: the validation split
is cut into random halves N times; on one half each rule (the highest accuracy over every subset,
the lowest log-loss over every subset, or all members) picks members and fits weights, and is scored
on the other half, both ways.

Logits are kept in `--cache` (default ~/.cache/fer_core/logits), keyed by the model file's bytes,
the TTA mode and the faces' pixels, so a later run with one more candidate computes only its logits
(crops TTA costs about ten minutes a resnet here); `--cache ""` turns it off.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402

from fer_core.classes import NUM_CLASSES  # noqa: E402
from fer_core.datasets import load_labeled, validation_split  # noqa: E402
from fer_core.ensemble import shared_validation  # noqa: E402
from fer_core.evaluation import classifier_logits, measure_cost_ms  # noqa: E402
from fer_core.metrics import classification_metrics, softmax  # noqa: E402
from fer_core.models import Classifier, LiteRTClassifier  # noqa: E402
from fer_core.models.ensemble import fit_weights  # noqa: E402
from fer_core.preprocess import combine_specs, resize_crops  # noqa: E402
from fer_core.registry import ModelError, get_model  # noqa: E402
from fer_core.tta import TTA_MODES  # noqa: E402


def scores(labels: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """(accuracy, macro-F1) of `logits` against `labels`."""
    metrics = classification_metrics(labels, softmax(logits))
    return metrics["accuracy"], metrics["macro_f1"]


def subset_rows(names: list[str], val: dict, test: dict, val_labels, test_labels, min_size: int) -> list[dict]:
    """One row per subset of `names` (at least `min_size`): fitted weights and both sets' scores.

    `val` and `test` map each name to its logits on that set; single models are rows too, with
    weight 1, so the table shows what each ensemble adds.
    """
    rows = []
    for size in range(min_size, len(names) + 1):
        for subset in itertools.combinations(names, size):
            weights = fit_weights([val[n] for n in subset], val_labels) if size > 1 else [1.0]

            def mix(logits: dict, subset=subset, weights=weights) -> np.ndarray:
                return np.tensordot(np.asarray(weights), np.stack([logits[n] for n in subset]), axes=1)

            val_logits = mix(val)
            val_acc, val_f1 = scores(val_labels, val_logits)
            test_acc, test_f1 = scores(test_labels, mix(test))
            rows.append(
                {
                    "members": list(subset),
                    "weights": weights,
                    "val_accuracy": val_acc,
                    "val_macro_f1": val_f1,
                    "val_log_loss": log_loss(val_labels, softmax(val_logits), labels=list(range(NUM_CLASSES))),
                    "test_accuracy": test_acc,
                    "test_macro_f1": test_f1,
                }
            )
    return sorted(rows, key=lambda r: (r["val_accuracy"], r["val_macro_f1"]), reverse=True)


def describe(row: dict) -> str:
    """A row's members with their weights ("a x0.40 + b x0.60"); a single model by its name alone."""
    if len(row["members"]) == 1:
        return row["members"][0]
    return " + ".join(f"{n} x{w:.2f}" for n, w in zip(row["members"], row["weights"]))


def fit_class_bias(logits: np.ndarray, labels: np.ndarray, steps: int = 500) -> np.ndarray:
    """Per-class offsets added to `logits` that minimise their log-loss on `labels` (gradient descent)."""
    bias = np.zeros(logits.shape[1])
    onehot = np.eye(logits.shape[1])[labels]
    for _ in range(steps):
        bias -= (softmax(logits + bias) - onehot).mean(axis=0)
    return bias


# Ways of combining members' logits; stacking's value is its logistic regression's C (None: not stacking).
COMBINERS: dict[str, float | None] = {
    "fitted weights": None,
    "weights + class bias": None,
    "stacking (C=0.01)": 0.01,
    "stacking (C=0.1)": 0.1,
}


def combine(method: str, fit_logits: list[np.ndarray], fit_labels: np.ndarray, apply_logits: list[np.ndarray]):
    """Logits of `apply_logits` (one array per member) combined by `method`, fitted on `fit_logits`."""
    from sklearn.linear_model import LogisticRegression

    strength = COMBINERS[method]
    if strength is not None:
        model = LogisticRegression(C=strength, max_iter=2000).fit(np.concatenate(fit_logits, 1), fit_labels)
        return model.decision_function(np.concatenate(apply_logits, 1))
    weights = fit_weights(fit_logits, fit_labels)
    mixed = np.tensordot(np.asarray(weights), np.stack(apply_logits), axes=1)
    if method == "weights + class bias":
        mixed = mixed + fit_class_bias(np.tensordot(np.asarray(weights), np.stack(fit_logits), axes=1), fit_labels)
    return mixed


def combiner_rows(names: list[str], val: dict, test: dict, val_labels, test_labels) -> list[dict]:
    """Each of COMBINERS over all of `names`: cross-validated on the validation split, then fitted on
    all of it and scored on `test`."""
    from sklearn.model_selection import StratifiedKFold

    val_list, test_list = [val[n] for n in names], [test[n] for n in names]
    rows = []
    for method in COMBINERS:
        folds = []
        for seed in range(3):
            for fit, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(val_list[0], val_labels):
                mixed = combine(method, [x[fit] for x in val_list], val_labels[fit], [x[held] for x in val_list])
                folds.append(scores(val_labels[held], mixed))
        test_acc, test_f1 = scores(test_labels, combine(method, val_list, val_labels, test_list))
        cv_acc, cv_f1 = np.mean(folds, axis=0)
        rows.append(
            {
                "method": method,
                "cv_accuracy": cv_acc,
                "cv_macro_f1": cv_f1,
                "test_accuracy": test_acc,
                "test_macro_f1": test_f1,
            }
        )
    return rows


# Ways of choosing members on the validation split, compared by `--rules`: each picks one of
# `subset_rows`' rows (sorted by validation accuracy, then macro-F1).
RULES = {
    "highest accuracy": lambda rows: rows[0],
    "lowest log-loss": lambda rows: min(rows, key=lambda r: r["val_log_loss"]),
    "all members": lambda rows: max(rows, key=lambda r: len(r["members"])),
}


def rule_rows(names: list[str], val: dict, val_labels: np.ndarray, repeats: int) -> list[dict]:
    """Each of RULES scored without `test`: the validation split is cut into random halves `repeats`
    times; a rule chooses members and weights on one half and is scored on the other, both ways."""
    held_out: dict[str, list[float]] = {rule: [] for rule in RULES}
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        order = rng.permutation(len(val_labels))
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        for fit, held in (halves, halves[::-1]):
            fit_val, held_val = ({n: x[part] for n, x in val.items()} for part in (fit, held))
            rows = subset_rows(names, fit_val, held_val, val_labels[fit], val_labels[held], 1)
            for rule, pick in RULES.items():
                held_out[rule].append(pick(rows)["test_accuracy"])  # here "test" is the held-out half
    base = np.asarray(held_out["highest accuracy"])
    rows = []
    for rule, accs in held_out.items():
        diff = np.asarray(accs) - base
        rows.append(
            {
                "rule": rule,
                "held_out_accuracy": float(np.mean(accs)),
                "vs_highest_accuracy": float(diff.mean()),
                "vs_highest_accuracy_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            }
        )
    return rows


def cached_logits(classifier: Classifier, faces, cache: Path | None) -> np.ndarray:
    """`classifier_logits` of `faces`, read from `cache` when the same model, mode and faces were seen."""
    if cache is None:
        return classifier_logits(classifier, faces)
    key = hashlib.sha256()
    key.update(Path(classifier.model_path).read_bytes())
    key.update(classifier.tta.encode())
    key.update(np.ascontiguousarray(faces.images).tobytes())
    path = cache / f"{key.hexdigest()}.npy"
    if path.exists():
        return np.load(path)
    logits = classifier_logits(classifier, faces)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), logits)
    path.with_suffix(".tmp.npy").replace(path)
    return logits


def candidate_logits(names: list[str], modes: list[str], test_path: Path, cache: Path | None):
    """(validation, test, logits, cost): each candidate's logits per TTA mode on the validation split
    all candidates share and on `test_path`, and its cost per face (ms) in each mode."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    infos = [get_model(name) for name in names]
    if any(info.is_ensemble for info in infos):
        raise SystemExit("list single models; an ensemble's members can be listed instead")
    spec = combine_specs([info.preprocessing for info in infos])
    if len(spec.parts) > 1:
        raise SystemExit("list models that crop faces alike (this search resizes one crop for every member)")
    try:
        split = shared_validation(infos)
    except ModelError as err:
        raise SystemExit(str(err)) from None
    val = validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
    test = load_labeled(test_path, spec=spec)
    print(f"validation {len(val)} faces ({split['data']}), test {len(test)} faces ({test_path})", file=sys.stderr)

    cost: dict[str, dict[str, float]] = {mode: {} for mode in modes}
    logits: dict[str, dict[str, dict]] = {mode: {"val": {}, "test": {}} for mode in modes}
    for info in infos:
        for mode in modes:
            classifier = LiteRTClassifier(info.verify(), tta=mode)
            # the ensemble's crops (the smallest size), resized for this member as the ensemble does
            own_val, own_test = (replace(d, images=resize_crops(d.images, classifier.input_size)) for d in (val, test))
            cost[mode][info.name] = measure_cost_ms(classifier, own_val.images[:64], repeats=5)
            logits[mode]["val"][info.name] = cached_logits(classifier, own_val, cache)
            logits[mode]["test"][info.name] = cached_logits(classifier, own_test, cache)
        print(f"{info.name}: done", file=sys.stderr, flush=True)
    return val, test, logits, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="registered single models (two or more)")
    parser.add_argument("--tta", nargs="+", default=["none", "flip"], choices=sorted(TTA_MODES))
    parser.add_argument("--min-size", type=int, default=1, help="smallest subset shown (1 shows each model alone)")
    parser.add_argument("--test", type=Path, default=Path("../shared/datasets/fer2013/test"))
    parser.add_argument(
        "--combiners", action="store_true", help="also compare ways of combining all the listed members"
    )
    parser.add_argument(
        "--rules",
        type=int,
        default=0,
        metavar="N",
        help="also compare ways of choosing members, on N pairs of validation halves (no test figures)",
    )
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    parser.add_argument(
        "--cache",
        default=str(Path.home() / ".cache" / "fer_core" / "logits"),
        help='folder of computed logits ("" for none)',
    )
    args = parser.parse_args()
    if len(set(args.models)) < 2:
        parser.error("give at least two different models")

    cache = Path(args.cache).expanduser() if args.cache else None
    val, test, logits, cost = candidate_logits(args.models, args.tta, args.test, cache)

    results = {}
    for mode in args.tta:
        rows = subset_rows(
            args.models, logits[mode]["val"], logits[mode]["test"], val.labels, test.labels, args.min_size
        )
        for row in rows:
            row["ms_per_face"] = sum(cost[mode][n] for n in row["members"])
        results[mode] = rows
        print(f"\nTTA {mode} (sorted by validation accuracy; the top row is the choice)\n")
        print("| members (weights fitted on validation) | val acc | val F1 | test acc | test F1 | ms/face |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {describe(r)} | {100 * r['val_accuracy']:.1f}% | {r['val_macro_f1']:.3f} | "
                f"{100 * r['test_accuracy']:.1f}% | {r['test_macro_f1']:.3f} | {r['ms_per_face']:.2f} |"
            )
        if args.combiners:
            rows = combiner_rows(args.models, logits[mode]["val"], logits[mode]["test"], val.labels, test.labels)
            results[f"{mode} combiners"] = rows
            print(f"\nTTA {mode}: ways of combining all {len(args.models)} members\n")
            print("| combiner | val acc (5-fold CV x3) | val F1 (CV) | test acc | test F1 |")
            print("|---|---|---|---|---|")
            for r in rows:
                print(
                    f"| {r['method']} | {100 * r['cv_accuracy']:.2f}% | {r['cv_macro_f1']:.3f} | "
                    f"{100 * r['test_accuracy']:.1f}% | {r['test_macro_f1']:.3f} |"
                )
        if args.rules:
            rows = rule_rows(args.models, logits[mode]["val"], val.labels, args.rules)
            results[f"{mode} rules"] = rows
            print(f"\nTTA {mode}: ways of choosing members, each chosen on one half of validation, scored on the other")
            print(f"({args.rules} random cuts, both ways)\n")
            print("| rule | held-out accuracy | against highest accuracy (standard error) |")
            print("|---|---|---|")
            for r in rows:
                print(
                    f"| {r['rule']} | {100 * r['held_out_accuracy']:.2f}% | "
                    f"{100 * r['vs_highest_accuracy']:+.2f} ({100 * r['vs_highest_accuracy_se']:.2f}) |"
                )
            print(f"\nTTA {mode}: what each rule chooses on the whole validation split\n")
            print("| rule | members (weights) | val acc | val log-loss | test acc | test F1 |")
            print("|---|---|---|---|---|---|")
            for rule, pick in RULES.items():
                r = pick(results[mode])
                print(
                    f"| {rule} | {describe(r)} | {100 * r['val_accuracy']:.1f}% | {r['val_log_loss']:.4f} | "
                    f"{100 * r['test_accuracy']:.1f}% | {r['test_macro_f1']:.3f} |"
                )
    if args.json:
        args.json.write_text(json.dumps({"cost_ms": cost, "tta": results}, indent=1))


if __name__ == "__main__":
    main()
