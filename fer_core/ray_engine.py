"""`label --engine ray`: the same labelling as `label_folder`, as a Ray Data pipeline.

The pipeline: the folder's top-level parts (its own files, then each sub-folder) -> a
`flat_map` that walks each part lazily on the workers (`folder_entries`, the local engine's
walk, so the same photos in the same order; for a URI such as s3://bucket/prefix the same walk
through a pyarrow file system, and the actors read the photos through it) -> `map_batches` over a pool of actors, each
loading the detector and the model once and labelling `CHUNK` photos at a time with the
local engine's code -> Parquet shards (`fer_core.outputs.row_schema`) in the output folder.

What reaches the workers: the `fer_core` package travels in Ray's runtime environment, and the
model's card and LiteRT file (every member's, for an ensemble) travel through Ray's object
store, so a worker needs only the Python packages (requirements.txt and requirements-ray.txt)
and the photos: at the same path as on the driver (a shared or mounted file system), or in an
object store the workers can reach (a URI; credentials as pyarrow finds them, e.g. AWS_* variables).

Resuming: photos already in the output folder's shards are skipped, so re-running the same
command after an interruption labels only the rest; what a killed run may have left incomplete
is mended first (`fer_core.outputs.parquet_done_keys`).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_core.labeling import (
    CHUNK,
    _label_chunk,
    display_name,
    file_source,
    folder_entries,
    is_photo_name,
    iter_folder_images,
)
from fer_core.outputs import (
    name_key,
    parquet_done_keys,
    parquet_folder_lock,
    prepare_parquet_folder,
    row_schema,
    rows_table,
)
from fer_core.recognizer import RecognizerSpec
from fer_core.registry import CARD_FILE, get_model
from fer_core.rows import STATUSES

PACKAGE = Path(__file__).resolve().parent
ROWS_PER_FILE = 5000
"""At least this many rows per Parquet file Ray writes (fewer in the last)."""
BLOCK_BYTES = 16384
"""Ray Data block size: about a hundred listed photos, so a big folder spreads over every actor."""
INSTALL_HINT = "the Ray engine needs Ray: pip install -r requirements-ray.txt"


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ValueError(INSTALL_HINT) from e
    return ray


def model_files(spec: RecognizerSpec) -> dict[str, bytes]:
    """The files a worker needs to load `spec.model`: {"NAME/FILE": bytes}, members included,
    plus "active.txt" naming it (so a spec without a model name finds the same model)."""
    info = get_model(spec.model)
    info.verify()
    infos = [info, *(member for member, _ in info.members())] if info.is_ensemble else [info]
    files = {"active.txt": info.name.encode()}
    for each in infos:
        for filename in (CARD_FILE, each.weights_file):  # the runtime's file: LiteRT or ONNX
            path = each.folder / filename
            if path.exists():
                files[f"{each.name}/{filename}"] = path.read_bytes()
    return files


def is_uri(root: str | Path) -> bool:
    """Whether `root` names a folder through a file-system URI (s3://, gs://, file://, ...)."""
    return "://" in str(root)


def _filesystem(root: str):
    """(pyarrow file system, path in it) of a URI such as s3://bucket/prefix."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(root)
    except Exception as e:  # an unknown scheme, missing credentials, no such bucket
        raise ValueError(f"cannot open {root}: {e}") from e


def uri_entries(filesystem, folder: str) -> tuple[list[str], list[str]]:
    """Like `folder_entries`, for a folder (or object-store prefix) of a pyarrow file system:
    its photo files and sub-folders, each sorted by name, hidden ones skipped."""
    from pyarrow import fs

    infos = filesystem.get_file_info(fs.FileSelector(folder, recursive=False, allow_not_found=True))
    files, subfolders = [], []
    for info in sorted(infos, key=lambda i: i.base_name):
        if info.base_name.startswith("."):
            continue
        if info.type == fs.FileType.Directory:
            subfolders.append(info.path)
        elif is_photo_name(info.base_name):
            files.append(info.path)
    return files, subfolders


def _iter_uri_images(filesystem, folder: str):
    stack = [folder]
    while stack:
        files, subfolders = uri_entries(filesystem, stack.pop())
        yield from files
        stack.extend(reversed(subfolders))


def folder_parts(root: str | Path) -> list[dict]:
    """The walk of `root` cut into parts that, listed one after another, give `iter_folder_images`'s
    order: the root's own files, then each sub-folder with everything below it."""
    if is_uri(root):
        filesystem, base = _filesystem(str(root))
        subfolders = uri_entries(filesystem, base)[1]
    else:
        base, subfolders = str(root), [str(s) for s in folder_entries(Path(root))[1]]
    return [{"folder": base, "below": False}] + [{"folder": s, "below": True} for s in subfolders]


def _value(x):
    """An object-store reference's value (Ray Data passes references in arguments as they are)."""
    import ray

    return ray.get(x) if isinstance(x, ray.ObjectRef) else x


def list_part(part: dict, root: str, done) -> list[dict]:
    """The photos of one part still to label: {"name", "path"} rows in walk order.

    `root`: the folder or URI being labelled; `done`: sorted keys (`name_key`) of photos already
    labelled, or a reference to them.
    """
    done = _value(done)
    if is_uri(root):
        filesystem, base = _filesystem(root)
        if part["below"]:
            paths = _iter_uri_images(filesystem, part["folder"])
        else:
            paths = iter(uri_entries(filesystem, part["folder"])[0])
        relative = lambda path: path[len(base.rstrip("/")) + 1 :]  # noqa: E731
    else:
        folder = Path(part["folder"])
        paths = (str(p) for p in (iter_folder_images(folder) if part["below"] else folder_entries(folder)[0]))
        relative = lambda path: Path(path).relative_to(root).as_posix()  # noqa: E731
    out = []
    for path in paths:
        name = display_name(relative(path))
        key = np.uint64(name_key(name))
        i = np.searchsorted(done, key)
        if i < len(done) and done[i] == key:
            continue
        out.append({"name": name, "path": str(path)})
    return out


class PhotoLabeller:
    """A Ray actor's labeller: loads the model once from the shipped files, labels batches."""

    def __init__(self, spec: tuple, files, root: str = ""):
        import cv2

        files = _value(files)
        self._filesystem = _filesystem(root)[0] if is_uri(root) else None
        cv2.setNumThreads(1)  # one actor per CPU: OpenCV's own threads would only compete
        self._registry = tempfile.TemporaryDirectory(prefix="fer-ray-models-")
        for relative, data in files.items():
            target = Path(self._registry.name, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.environ["FER_MODELS_DIR"] = self._registry.name
        self._recognizer = RecognizerSpec(*spec).build()

    def __call__(self, batch: dict) -> object:
        chunk = [(str(name), str(path)) for name, path in zip(batch["name"], batch["path"])]
        labelled = _label_chunk(chunk, self._recognizer, self._source if self._filesystem else None)
        return rows_table(row for _, rows in labelled for row in rows)

    def _source(self, path: str):
        def read() -> bytes:
            with self._filesystem.open_input_stream(path) as f:
                return f.read()

        return file_source(Path(path), read)


def _run_files(run: str):
    """A Ray file-name provider naming a run's Parquet files `ray-RUN-WRITE-TASK.parquet`, so a
    resume knows which run wrote them (`parquet_done_keys`)."""
    from ray.data.datasource import FilenameProvider

    class RunFiles(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"ray-{run}-{write_uuid}-{task_index:06d}.parquet"

    return RunFiles()


def check_cluster_address(address: str | None, timeout: float = 3.0) -> None:
    """Fail in seconds, with a message, where Ray would retry for minutes: a HOST:PORT nobody answers
    on, or "auto" with no cluster started on this machine.

    Raises:
        ValueError: the cluster cannot be reached.
    """
    if not address:
        return
    if address == "auto":
        if not Path("/tmp/ray/ray_current_cluster").is_file() and not os.environ.get("RAY_ADDRESS"):
            raise ValueError(
                "--address auto: no Ray cluster is running on this machine (start one with `ray start --head`)"
            )
        return
    host, _, port = address.rpartition(":")
    host = host.removeprefix("ray://")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be HOST:PORT or auto. Received: {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from e


def label_folder_ray(
    root: Path | str,
    out: Path,
    spec: RecognizerSpec,
    workers: int | None = None,
    address: str | None = None,
) -> dict[str, int]:
    """Label every photo below `root` into Parquet shards in the folder `out`, on Ray.

    Args:
        root: a folder, or a file-system URI (s3://bucket/prefix, gs://..., file:///...) the
            workers list and read through pyarrow.
        spec: the model, detector and TTA mode every actor builds.
        workers: actors labelling at once (default: one per CPU of the cluster).
        address: a running cluster to join; None starts Ray on this machine with `workers` CPUs.

    Returns:
        Counts of rows written this time, per status.

    Raises:
        ValueError: Ray is not installed, `out` is not a folder of its own (`prepare_parquet_folder`),
            or another run is writing it.
    """
    ray = _import_ray()
    prepare_parquet_folder(out)
    with parquet_folder_lock(out):  # never beside a local run (or another Ray run) writing `out`
        return _label_on_ray(ray, root, out, spec, workers, address)


def _label_on_ray(ray, root, out: Path, spec: RecognizerSpec, workers: int | None, address: str | None) -> dict:
    done = np.array(sorted(parquet_done_keys(out)), dtype=np.uint64)
    files = model_files(spec)
    started_here = not ray.is_initialized()
    if started_here:
        check_cluster_address(address)
        ray.init(
            address=address,
            num_cpus=None if address else (workers or os.cpu_count()),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"py_modules": [str(PACKAGE)]},
        )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows in walk order, as the local engine
        context.enable_progress_bars = sys.stderr.isatty()  # Ray Data's own bars: rows per stage
        # Small blocks, so the listing of one big folder is spread over every actor at once
        # (a stage that re-cut the blocks would need a CPU of its own, which the actors hold).
        context.target_max_block_size = BLOCK_BYTES
        pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        photos = ray.data.from_items(folder_parts(root), override_num_blocks=1).flat_map(
            list_part, fn_kwargs={"root": str(root), "done": ray.put(done)}, num_cpus=0
        )
        rows = photos.map_batches(
            PhotoLabeller,
            fn_constructor_kwargs={
                "spec": (spec.model, spec.detector, spec.tta),
                "files": ray.put(files),
                "root": str(root),
            },
            batch_size=CHUNK,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1,
        )
        run = f"{time.time_ns():020d}"  # names sort by run, so a resumed run's rows come after the first's
        rows.write_parquet(
            str(out), schema=row_schema(), min_rows_per_file=ROWS_PER_FILE, filename_provider=_run_files(run)
        )
        (out / f".finished-{run}").touch()
        return _counts(set(out.glob(f"ray-{run}-*.parquet")))
    finally:
        if started_here:
            ray.shutdown()


def _counts(shards: set[Path]) -> dict[str, int]:
    import pyarrow.parquet as pq

    counts = dict.fromkeys(STATUSES, 0)
    for shard in shards:
        for status in pq.read_table(shard, columns=["status"]).column("status").to_pylist():
            counts[status] += 1
    return counts
