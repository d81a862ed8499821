"""Models of more than one kind: an ONNX model with its own (aligned, colour) preprocessing beside
the LiteRT ones, ensembles across kinds, and distillation from two teachers with unlabelled faces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.cli import main
from fer_core.models import EnsembleClassifier, OnnxClassifier, load_classifier
from fer_core.preprocess import FIVE_POINT_TEMPLATE, Preprocessing, combine_specs, preprocess_face, similarity_transform
from fer_core.registry import ModelError, get_model, write_card
from fer_core.types import Box

ALIGNED = {"size": 16, "margin": 0.0, "align": False, "crop": "five_point", "color": "rgb"}


def tiny_onnx(path: Path, size: int = 16, seed: int = 0) -> None:
    """A real ONNX file: mean colour of the (N, 3, size, size) input, then a dense layer to 7 logits."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(0, 3, (3, 7)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, 7).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["mixed"]),
            helper.make_node("Add", ["mixed", "b"], ["label"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, ["batch", 7])],
        initializer=[weights, bias],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def register_onnx(models: Path, name: str = "tiny-onnx", content: bytes | None = None) -> Path:
    folder = models / name
    folder.mkdir()
    if content is None:
        tiny_onnx(folder / "model.onnx")
    else:
        (folder / "model.onnx").write_bytes(content)
    card = {
        "name": name,
        "runtime": "onnx",
        "architecture": "tiny onnx",
        "parameters": None,  # as a model made elsewhere may have it
        "input_size": 16,
        "preprocessing": ALIGNED,
        "input": {"layout": "NCHW", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }
    write_card(folder, card)
    return folder


def test_five_points_land_on_the_template_within_a_pixel():
    rng = np.random.default_rng(4)
    angle, scale, shift = np.radians(17.0), 2.7, np.array([40.0, 25.0])
    turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = FIVE_POINT_TEMPLATE @ turn.T + shift + rng.normal(0, 0.3, (5, 2))  # a face turned 17 degrees
    matrix = similarity_transform(points, FIVE_POINT_TEMPLATE)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - FIVE_POINT_TEMPLATE).max() < 1.0
    # and the warp really moves pixels there: a dot on each landmark ends up on the template point
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 4, (255, 255, 255), -1)
    box = Box(0, 0, 400, 400, landmarks=tuple(map(tuple, points)))
    crop = preprocess_face(image, box, Preprocessing(**{**ALIGNED, "size": 112}))
    assert crop.shape == (112, 112, 3)
    for x, y in FIVE_POINT_TEMPLATE:
        assert crop[int(round(y)), int(round(x))].max() > 100


def test_an_onnx_model_registers_loads_evaluates_and_joins_a_litert_ensemble(use_models, pattern_dataset, capsys):
    folder = register_onnx(use_models)
    info = get_model("tiny-onnx")
    assert info.runtime == "onnx" and info.verify() == folder / "model.onnx"
    classifier = load_classifier(info)
    assert isinstance(classifier, OnnxClassifier) and classifier.crop_shape == (16, 16, 3)
    crops = np.random.default_rng(0).integers(0, 255, (70, 16, 16, 3), dtype=np.uint8)  # more than one batch
    logits = classifier.logits(crops)
    x = (crops.astype(np.float32) / 255 - 0.5) / 0.5
    import onnx
    from onnx import numpy_helper

    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(folder / "model.onnx")).graph.initializer}
    np.testing.assert_allclose(logits, x.mean(axis=(1, 2)) @ weights["w"] + weights["b"], rtol=1e-4, atol=1e-4)
    # it evaluates through the CLI like any model, each face cropped its own way
    assert main(["evaluate", "--data", str(pattern_dataset), "--model", "tiny-onnx", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 210
    # an ensemble of the ONNX model and a LiteRT one crops each face once per way
    assert (
        main(
            [
                "ensemble",
                "mixed-kinds",
                "--members",
                "tiny-test",
                "tiny-onnx",
                "--fit-weights",
                "--fit-data",
                "validation",
                str(pattern_dataset),
            ]
        )
        == 0
    ), capsys.readouterr().err
    mixed = get_model("mixed-kinds")
    assert len(mixed.preprocessing.parts) == 2 and mixed.card["parameters"] is None
    assert set(mixed.card["cross_validation"]) == {"folds", "validation", str(pattern_dataset)}
    ensemble = load_classifier(mixed)
    assert isinstance(ensemble, EnsembleClassifier)
    photo = np.random.default_rng(1).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    box = Box(30, 20, 50, 50)
    packed = preprocess_face(photo, box, mixed.preprocessing)[None]
    expected = sum(
        m["weight"]
        * load_classifier(m["name"]).logits(preprocess_face(photo, box, get_model(m["name"]).preprocessing)[None])
        / m["temperature"]
        for m in mixed.card["members"]
    )
    np.testing.assert_allclose(ensemble.logits(packed), expected, rtol=1e-3, atol=1e-3)
    assert combine_specs([get_model("tiny-test").preprocessing, info.preprocessing]) == mixed.preprocessing


def test_models_measure_times_an_onnx_model_beside_litert_ones(use_models, capsys):
    register_onnx(use_models)
    assert main(["models", "--measure", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny-onnx"]["here_ms_per_face"] > 0 and rows["tiny-onnx"]["multiply_adds"] is None
    assert rows["tiny-test"]["multiply_adds"] > 0
    assert main(["models", "--measure"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "tiny-onnx" in x)
    assert line.split()[-1] == "-"  # no multiply-adds counted for ONNX


def test_a_corrupt_onnx_file_names_itself_and_the_app_stays_up(use_models, monkeypatch, capsys):
    register_onnx(use_models, "broken-onnx", b"not an onnx model" * 20)  # the card's hash matches: it loads
    with pytest.raises(ModelError, match="broken-onnx/model.onnx: not a loadable ONNX model"):
        load_classifier("broken-onnx")
    assert main(["evaluate", "--data", str(use_models), "--model", "broken-onnx"]) == 2
    assert "model.onnx: not a loadable ONNX model" in capsys.readouterr().err
    from streamlit.testing.v1 import AppTest

    (use_models / "active.txt").write_text("broken-onnx\n")
    monkeypatch.delenv("FER_DEMO_MODE", raising=False)
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    for page in ("pages/home.py", "pages/live.py", "pages/batch.py"):
        at = AppTest.from_file(app, default_timeout=120)
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, at.exception)
        if page == "pages/batch.py":
            png = cv2.imencode(".png", np.zeros((60, 60, 3), np.uint8))[1].tobytes()
            at.file_uploader(key="batch_upload_Photos").set_value([("a.png", png, "image/png")])
            at.run()
            at.button(key="batch_start").click()
            at.run()
            assert not at.exception, (page, at.exception)
        if page != "pages/home.py":
            shown = [e.value for e in at.error]
            assert any("model.onnx: not a loadable ONNX model" in text for text in shown), (page, shown)


def _student_args(data: Path, run_dir: Path, unlabelled: Path, epochs: int, *more: str) -> list[str]:
    """`train` arguments of a tiny student of tiny-test and tiny-onnx with unlabelled faces."""
    args = ["train", "--data", str(data), "--architecture", "tiny", "--epochs", str(epochs), "--run-dir", str(run_dir)]
    args += ["--teacher", "tiny-test", "--teacher-tta", "none", "--second-teacher", "tiny-onnx"]
    args += ["--unlabeled", str(unlabelled), "--learning-rate", "0.05", "--warmup-epochs", "0", "--batch-size", "32"]
    return [*args, "--precision", "float32", *more]


@pytest.mark.slow
def test_distilling_two_teachers_with_unlabelled_faces_lowers_the_loss(use_models, pattern_dataset, tmp_path, capsys):
    from fer_core.train.events import read_events

    register_onnx(use_models)
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    faces = cv2.imread(str(Path(__file__).resolve().parents[2] / "shared/datasets/faces_in_photos/2009_004587.jpg"))
    if faces is None:
        pytest.skip("shared photos not present")
    for i in range(6):
        cv2.imwrite(str(unlabelled / f"u{i}.jpg"), np.roll(faces, 11 * i, axis=1))
    run_dir = tmp_path / "student"
    args = _student_args(pattern_dataset, run_dir, unlabelled, 4, "--second-teacher-weight", "0.3")
    args += ["--aug-blur", "0.3", "--aug-rescale", "0.3", "--aug-jpeg", "0.3"]
    assert main(args) == 0, capsys.readouterr().err
    events = read_events(run_dir)
    unl = next(e for e in events if e["type"] == "unlabelled")
    assert unl["faces"] >= 4  # faces found in the unlabelled photos joined the training faces
    started = next(e for e in events if e["type"] == "started")
    logits = np.load(run_dir / "teacher_logits.npy")
    assert logits.shape == (2, sum(started["train_counts"].values()) + unl["faces"], 7)  # one set per teacher
    losses = [e["loss"] for e in events if e["type"] == "epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    # Another run with other shares reuses those logits instead of asking the teachers again; a
    # run on other faces may not.
    again = tmp_path / "student-2"
    shares = ["--second-teacher-weight", "0.0", "--second-teacher-weight-unlabeled", "0.6", "--epochs", "1"]
    borrowed = [*args, "--run-dir", str(again), *shares, "--teacher-logits-from", str(run_dir)]
    assert main(borrowed) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(np.load(again / "teacher_logits.npy"), logits)
    other = [*borrowed, "--run-dir", str(tmp_path / "student-3"), "--seed", "7"]
    assert main(other) == 1
    assert "seed 42 there, 7 here" in capsys.readouterr().err
    assert not (tmp_path / "student-3").exists()
    # A student whose smaller gray crops would change the gray teacher's crops may not borrow either.
    smaller = [*borrowed, "--run-dir", str(tmp_path / "student-3b"), "--input-size", "40"]
    assert main(smaller) == 1
    assert "its teachers saw other crops" in capsys.readouterr().err
    # A run that adds a folder of unlabelled faces after the other's reuses their logits and lets
    # the teachers label only the added faces; one that leaves a folder out may not borrow.
    added = tmp_path / "added"
    added.mkdir()
    for i in range(3):
        cv2.imwrite(str(added / f"a{i}.jpg"), np.roll(faces, -17 * (i + 1), axis=1))
    more = tmp_path / "student-4"
    extended = [*borrowed, "--run-dir", str(more), "--unlabeled", f"{unlabelled}{os.pathsep}{added}"]
    assert main(extended) == 0, capsys.readouterr().err
    assert "teachers labelling " in capsys.readouterr().out
    grown = np.load(more / "teacher_logits.npy")
    assert grown.shape[1] > logits.shape[1]
    np.testing.assert_array_equal(grown[:, : logits.shape[1]], logits)
    fewer = [*borrowed, "--run-dir", str(tmp_path / "student-5"), "--teacher-logits-from", str(more)]
    assert main([*fewer, "--unlabeled", str(unlabelled)]) == 1
    assert "labelled other faces" in capsys.readouterr().err


@pytest.mark.slow
def test_consistent_teacher_with_a_fixed_second_teacher(use_models, pattern_dataset, tmp_path, capsys):
    """The first teacher judges each augmented batch; the second's calibrated logits stay fixed,
    mixed in at their share (another on unlabelled faces)."""
    from fer_core.metrics import softmax
    from fer_core.train.events import read_events
    from fer_core.train.run import TrainingRun

    register_onnx(use_models)
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for i in range(4):
        face = np.full((96, 96, 3), 40 * i + 60, np.uint8)
        cv2.circle(face, (48, 48), 30, (200, 180, 160), -1)
        cv2.imwrite(str(unlabelled / f"u{i}.jpg"), face)
    run_dir = tmp_path / "student"
    args = _student_args(pattern_dataset, run_dir, unlabelled, 3, "--teacher-mode", "consistent")
    args += ["--second-teacher-weight", "0.25", "--second-teacher-weight-unlabeled", "0.75"]
    assert main(args) == 0, capsys.readouterr().err
    events = read_events(run_dir)
    losses = [e["loss"] for e in events if e["type"] == "epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    parts = np.load(run_dir / "teacher_logits.npy")  # the fixed parts: both teachers on the faces as they are
    assert parts.shape[0] == 2
    run = TrainingRun(run_dir)  # the finished run, as a resume would read it
    labelled = parts.shape[1] - next(e["faces"] for e in events if e["type"] == "unlabelled")
    judge, fixed = run.consistent_teacher(parts, labelled)
    assert fixed.shape == (parts.shape[1], 8)
    assert np.allclose(fixed[:labelled, 0], 0.25) and np.allclose(fixed[labelled:, 0], 0.75)
    first = get_model("tiny-test")
    crops = np.random.default_rng(0).uniform(0, 255, (5, 48, 48)).astype(np.float32)
    own = load_classifier(first, "none").logits(crops) / first.temperature_for("none")
    expected = softmax(0.75 * own + fixed[:5, 1:], 2.0)
    assert np.allclose(judge(crops, fixed[:5]), expected, atol=1e-5)
    # A first teacher that crops faces otherwise is refused before anything is trained.
    wrong = [*args, "--run-dir", str(tmp_path / "wrong"), "--input-size", "40"]
    assert main(wrong) == 1
    assert "a consistent teacher judges the student's own crops" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()


def test_an_imported_onnx_network_gives_the_onnx_files_logits():
    """The shipped RAF-DB model (int8 QLinearConv, PRelu, QLinearAdd, QLinearMatMul) rebuilt in Keras
    with dequantized weights: it agrees with ONNX Runtime up to the int8 activations' rounding."""
    from fer_core.train.onnx_import import import_onnx_classifier

    info = get_model("raf-mobilefacenet")
    contract = info.card["input"]
    net = import_onnx_classifier(info.verify(), 112, 3, contract["mean"], contract["std"])
    rng = np.random.default_rng(0)
    samples = [p for p in sorted((Path(__file__).resolve().parents[2] / "shared/datasets/wild_dev").glob("*/*"))][::97]
    photos = [cv2.imread(str(p)) for p in samples[:24]] or [rng.integers(0, 255, (120, 120, 3), np.uint8)] * 8
    crops = np.stack([preprocess_face(photo, None, info.preprocessing) for photo in photos])
    expected = load_classifier(info).logits(crops)
    got = np.asarray(net(crops.astype(np.float32)))
    assert got.shape == expected.shape
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.97
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.8
    assert net.count_params() > 1_000_000  # the whole MobileFaceNet, not a stand-in


def test_an_unsupported_onnx_operator_is_refused_by_name(tmp_path):
    from onnx import TensorProto, helper, save

    from fer_core.train.onnx_import import OnnxImportError, import_onnx_classifier

    graph = helper.make_graph(
        [helper.make_node("Softsign", ["data"], ["label"])],
        "odd",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("label", TensorProto.FLOAT, ["batch", 7])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "odd.onnx"))
    with pytest.raises(OnnxImportError, match="operator Softsign"):
        import_onnx_classifier(tmp_path / "odd.onnx", 8, 3, 0.5, 0.5)


@pytest.mark.slow
def test_finetuning_an_onnx_model_trains_its_own_network_on_its_own_crops(
    use_models, pattern_dataset, tmp_path, capsys
):
    """`--architecture imported` rebuilds an ONNX model's network, trains it on colour aligned crops
    (as its card says), and registers a LiteRT model that crops and evaluates the same way."""
    import io
    import zipfile

    import h5py

    from fer_core.train.events import read_events
    from fer_core.train.onnx_import import import_onnx_classifier

    register_onnx(use_models)
    source = get_model("tiny-onnx")
    crops = np.random.default_rng(1).integers(0, 255, (6, 16, 16, 3)).astype(np.uint8)
    net = import_onnx_classifier(source.verify(), 16, 3, 0.5, 0.5)
    np.testing.assert_allclose(
        np.asarray(net(crops.astype(np.float32))), load_classifier(source).logits(crops), atol=1e-4
    )
    run_dir = tmp_path / "imported"
    args = ["train", "--data", str(pattern_dataset), "--architecture", "imported", "--finetune-from", "tiny-onnx"]
    args += ["--epochs", "3", "--run-dir", str(run_dir), "--learning-rate", "0.05", "--warmup-epochs", "0"]
    args += ["--batch-size", "32", "--precision", "float32", "--register-as", "tiny-imported", "--aug-blur", "0.3"]
    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    losses = [e["loss"] for e in read_events(run_dir) if e["type"] == "epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    info = get_model("tiny-imported")
    assert info.card["architecture"] == "imported" and info.card["input_size"] == 16
    assert info.preprocessing == source.preprocessing  # the source's own crops: aligned, colour
    model = load_classifier(info)
    assert model.crop_shape == (16, 16, 3) and model.logits(crops).shape == (6, 7)
    with zipfile.ZipFile(info.keras_path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        assert "optimizer" not in h5  # the network only: no training state ships
    assert main(["evaluate", "--data", str(pattern_dataset), "--model", "tiny-imported", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0
    # It can be fine-tuned again (from its Keras file); a model of another architecture cannot.
    again = [*args, "--run-dir", str(tmp_path / "again"), "--finetune-from", "tiny-imported", "--epochs", "1"]
    assert main([*again, "--register-as", "tiny-imported-2"]) == 0, capsys.readouterr().err
    assert get_model("tiny-imported-2").preprocessing == source.preprocessing
    wrong = [*args, "--run-dir", str(tmp_path / "wrong"), "--finetune-from", "tiny-test", "--register-as", "x"]
    assert main(wrong) == 1
    assert "cannot fine-tune from 'tiny-test'" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()


@pytest.mark.slow
def test_train_page_fine_tunes_an_onnx_model_as_an_imported_network(use_models, pattern_dataset, tmp_path, monkeypatch):
    """The Train page offers an ONNX model as a source, asks for architecture 'imported', says how the
    imported network crops faces, and a run started there trains and registers it."""
    import time

    from streamlit.testing.v1 import AppTest

    from fer_core.train.jobs import JobManager

    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    register_onnx(use_models)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert any(o.startswith("tiny-onnx") for o in at.selectbox(key="t_ft").options)
    at.text_input(key="train_path").set_value(str(pattern_dataset))
    at.selectbox(key="t_arch").set_value("compact")
    at.selectbox(key="t_ft").set_value("tiny-onnx")
    at.text_input(key="t_name").set_value("page-imported")
    at.run()
    assert any("fine-tune it with architecture 'imported'" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="t_start").disabled
    at.selectbox(key="t_arch").set_value("imported")
    at.number_input(key="t_epochs").set_value(1)
    at.run()
    assert not at.error and not at.button(key="t_start").disabled
    assert any("tiny-onnx's own crops: 16 px colour, aligned on five landmarks" in c.value for c in at.caption)
    at.button(key="t_start").click()
    at.run()
    assert not at.exception, at.exception
    manager = JobManager(tmp_path / "runs")
    deadline = time.time() + 180
    while manager.active() is not None and time.time() < deadline:
        time.sleep(0.5)
    assert manager.active() is None, "the run did not finish"
    info = get_model("page-imported")
    assert info.card["architecture"] == "imported" and info.preprocessing.crop == "five_point"
