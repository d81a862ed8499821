"""Where `label` writes its rows: a CSV file or a folder of Parquet files, both resumable.

Both keep the row format of `fer_core.rows`. A CSV is appended photo by photo, and a hidden file
beside it (`.NAME.photos-end`) records the size of its whole photos: a photo a killed run cut
between its faces is truncated away when the run resumes, and labelled again. Parquet cannot be appended to, so
its output is a folder of shards (`part-000000.parquet`, ...), each written whole under a
hidden temporary name and renamed into place: a killed run leaves complete shards only, and
the photos of the shard it was filling are labelled again on resume. `pandas.read_parquet(DIR)`
reads the folder as one table, in the order the photos were labelled.

Parquet columns and types (ROW_SCHEMA): `file` string; `face`, `x`, `y`, `w`, `h`, `face_px`
int32; `detector_score`, `confidence` and `p_<emotion>` float64; `emotion`, `status`, `detail`
string. Values a row does not have (the box of a photo without a face, an empty `detail`) are
null, where the CSV has an empty cell. The CSV escapes text cells that a spreadsheet would run
as a formula (`spreadsheet_safe`); Parquet keeps names as they are.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fer_core.rows import COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, from_spreadsheet, spreadsheet_safe, typed

FORMATS = ("csv", "parquet")
SHARD_PHOTOS = 1000
"""Photos per Parquet shard: at most this many are labelled again after a kill."""


def name_key(name: str) -> int:
    """A 64-bit key of a file name as written in results: the resume set holds these, not names,
    so resuming a run over a million photos keeps a few tens of MB."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


def row_schema():
    """The pyarrow schema of result rows (see the module docstring)."""
    import pyarrow as pa

    def kind(column: str):
        if column in INT_COLUMNS:
            return pa.int32()
        if column in FLOAT_COLUMNS:
            return pa.float64()
        return pa.string()

    return pa.schema([(column, kind(column)) for column in COLUMNS])


def rows_table(rows: Iterable[dict]):
    """Result rows as a pyarrow Table of `row_schema()`."""
    import pyarrow as pa

    rows = [typed({c: row.get(c) for c in COLUMNS}) for row in rows]
    return pa.Table.from_pylist(rows, schema=row_schema().with_metadata(SHARD_MARK))


def format_of(out: Path, requested: str | None) -> str:
    """The output format: the one asked for, else from the name (`NAME.parquet`: Parquet)."""
    if requested is not None:
        if requested not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}. Received: {requested}")
        return requested
    return "parquet" if out.suffix == ".parquet" else "csv"


def _lock(handle: IO, out: Path) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        raise ValueError(f"another `label` run is writing {out}; wait for it or choose another --out") from e


class CsvOutput:
    """Rows appended to a CSV file, photo by photo; locked while open."""

    def __init__(self, path: Path):
        if path.is_dir():
            raise ValueError(
                f"--out {path} is a folder; give a CSV file name, or NAME.parquet for a folder of Parquet shards"
            )
        if not path.parent.is_dir():
            raise ValueError(f"--out {path}: the folder {path.parent} does not exist")
        self.path = path
        self._guard = path.open("a+b")
        try:
            _lock(self._guard, path)
            self._done = self._resume_point()
        except Exception:
            self._guard.close()
            raise
        self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if self.path.stat().st_size == 0:
            self._writer.writeheader()

    def done_keys(self) -> set[int]:
        """Keys (`key`) of the photos the file already has."""
        return self._done

    @staticmethod
    def key(name: str) -> int:
        # the file holds names as written (spreadsheet-safe), so keys are of that form
        return name_key(spreadsheet_safe({"file": name})["file"])

    def write(self, rows: list[dict]) -> None:
        """Append one photo's rows (in one write), then record where the file's whole photos end."""
        self._writer.writerows(map(spreadsheet_safe, rows))
        self._file.flush()
        self._mark.seek(0)
        self._mark.write(f"{os.fstat(self._file.fileno()).st_size:020d}\n".encode())
        self._mark.flush()

    def close(self) -> None:
        self._file.close()
        self._mark.close()
        self._guard.close()

    @property
    def mark_path(self) -> Path:
        """The hidden file beside the CSV that holds the byte size of its whole photos."""
        return self.path.with_name(f".{self.path.name}.photos-end")

    def _read_mark(self) -> int | None:
        try:
            return int(self.mark_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _resume_point(self) -> set[int]:
        """Keys of the photos in the file, read row by row (memory: the keys only).

        Only a file of our own (it starts with our header) is ever resumed; anything else is
        refused before a byte changes. A photo is whole or absent afterwards: the rows of one photo
        past the size recorded after the last whole photo (a kill between its faces), or the last
        photo of a file cut shorter than that size, are truncated away and the photo is labelled
        again; without that record (a file written by an older version), only a row cut off by a
        crash is.
        """
        whole_end = self._read_mark()
        done, end, last, last_start, photos_after = set(), 0, None, 0, 0
        with self.path.open("rb") as f:
            if not _starts_with_header(f):
                raise ValueError(
                    f"--out {self.path} exists and is not a results file of `label` (its first line is not our "
                    "header); nothing was written: choose another --out"
                )
            f.seek(0)
            for row, row_end in complete_csv_rows(f):
                if end and row[0] != last:
                    if last is not None:
                        done.add(name_key(last))
                    last, last_start = row[0], end
                    photos_after += whole_end is not None and end >= whole_end
                end = row_end
        cut = end
        if last is not None:
            # cut short after the last record (the last photo may have lost faces), or one photo
            # past the record (a kill between its faces): that photo goes and is labelled again
            if whole_end is not None and (whole_end > end or photos_after == 1):
                cut = last_start
            else:
                done.add(name_key(last))
        if cut < self.path.stat().st_size:
            self._guard.truncate(cut)
        self._mark = self.mark_path.open("wb")
        self._mark.write(f"{cut:020d}\n".encode())
        self._mark.flush()
        return done


HEADER_LINES = tuple((",".join(COLUMNS) + ending).encode() for ending in ("\r\n", "\n"))
"""The first line of our CSV (as csv writes it, and as an editor that saved it with plain line ends)."""


def _starts_with_header(f: IO[bytes]) -> bool:
    """Whether a CSV file opened in binary is empty or begins with our header line."""
    head = f.read(len(HEADER_LINES[0]))
    if head == b"" or any(head.startswith(h) for h in HEADER_LINES):
        return True
    # a header cut off by a kill while it was written: the file holds nothing but its start
    return f.read(1) == b"" and any(h.startswith(head) for h in HEADER_LINES)


def complete_csv_rows(f: IO[bytes]) -> Iterator[tuple[list[str], int]]:
    """The complete rows of a CSV file opened in binary, each with the byte offset where it ends.

    Parsed as CSV (not split into lines), so names holding line breaks of any kind stay
    whole; the first row cut off by a crash (missing fields or its line end) ends the rows.
    """
    consumed, whole = 0, True

    def lines() -> Iterator[str]:
        nonlocal consumed, whole
        for raw in f:
            consumed += len(raw)
            whole = raw.endswith(b"\n")
            yield raw.decode("utf-8", "surrogateescape")

    try:
        for row in csv.reader(lines()):
            if len(row) != len(COLUMNS) or not whole:
                return
            yield row, consumed
    except csv.Error:
        return  # a quoted field cut off at the end of the file


SHARD_GLOB = "part-*.parquet"
# Our files in a Parquet output folder, and nothing else: the local engine's shards, the Ray
# engine's (`ray-RUN-...`), and the hidden files of both (lock, run markers, shards being
# written, torn shards set aside). A folder holding anything else is not ours to write into.
_OUR_SHARD = re.compile(r"(part-\d{6}|ray-[^-]+-.+)\.parquet")
_OUR_HIDDEN = (".lock", ".finished-", ".part-", ".torn-", ".ray-")
SHARD_MARK = {b"fer_core": b"label rows"}
"""Schema metadata of the shards the local engine writes."""


def is_our_shard(path: Path) -> bool:
    """Whether a file is a shard of a `label` output, by its name."""
    return _OUR_SHARD.fullmatch(path.name) is not None


def our_shards(folder: Path) -> list[Path]:
    """The shards of a Parquet output folder, in the order they were written."""
    return sorted(p for p in folder.glob("*.parquet") if is_our_shard(p) and p.is_file())


def parquet_done_keys(folder: Path) -> set[int]:
    """Keys of the photos in a folder's Parquet shards, whichever engine wrote them, after
    mending what a killed run left (reads the `file` column, shard by shard).

    A torn shard (cut off mid-write) is set aside as `.torn-NAME`, its photos to be labelled
    again. The Ray engine names its shards `ray-RUN-...` and marks a finished run with
    `.finished-RUN`; it may cut one photo's rows into two shards, so in the shards of a run
    without that marker the photo of each shard's last row is removed from them (and labelled
    again). The local engine's shards always hold whole photos.

    Raises:
        ValueError: a shard has other columns than `row_schema()`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names: dict[Path, pa.ChunkedArray] = {}
    for shard in our_shards(folder):
        try:
            columns = pq.read_schema(shard).names
            if columns == COLUMNS:
                names[shard] = pq.read_table(shard, columns=["file"]).column("file")
        except (pa.ArrowInvalid, OSError):
            shard.rename(shard.with_name(f".torn-{shard.name}"))
            continue
        if columns != COLUMNS:
            raise ValueError(f"{shard} has other columns; choose another --out or delete it")
    unfinished: dict[str, list[Path]] = {}
    for shard in names:
        run = shard.name.split("-")[1] if shard.name.startswith("ray-") else None
        if run and not (folder / f".finished-{run}").exists():
            unfinished.setdefault(run, []).append(shard)
    for shards in unfinished.values():
        suspects = pa.array({names[s][-1].as_py() for s in shards if len(names[s])}, pa.string())
        for shard in shards:
            keep = pc.invert(pc.is_in(names[shard], value_set=suspects))
            if not pc.all(keep).as_py():
                whole = pq.read_table(shard).filter(keep)
                temporary = shard.with_name(f".{shard.name}.tmp")
                pq.write_table(whole, temporary)
                os.replace(temporary, shard)
                names[shard] = whole.column("file")
    return {name_key(name) for column in names.values() for name in column.to_pylist()}


def prepare_parquet_folder(folder: Path) -> None:
    """Create the output folder of Parquet shards, or check an existing one holds only shards
    (so results never land among a user's other files).

    Raises:
        ValueError: `folder` is a file, its parent is missing, or it holds other files.
    """
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; Parquet output is a folder of shards")
    if not folder.parent.is_dir():
        raise ValueError(f"--out {folder}: the folder {folder.parent} does not exist")
    folder.mkdir(exist_ok=True)
    others = [
        p.name
        for p in folder.iterdir()
        if not (is_our_shard(p) or p.name.startswith(_OUR_HIDDEN) or p.name == ".DS_Store")
    ]
    if others:
        raise ValueError(
            f"--out {folder} holds other files ({', '.join(sorted(others)[:3])}); "
            "Parquet output needs a folder of its own: give a new name such as results.parquet"
        )


@contextmanager
def parquet_folder_lock(folder: Path) -> Iterator[None]:
    """Hold a Parquet output folder's lock (the one a local `label` run holds) for a whole run.

    Raises:
        ValueError: another run, local or on Ray, is writing the folder.
    """
    with (folder / ".lock").open("a") as guard:
        _lock(guard, folder)
        yield


class ParquetOutput:
    """Rows written to a folder of Parquet shards of `SHARD_PHOTOS` photos; locked while open."""

    def __init__(self, folder: Path, shard_photos: int = SHARD_PHOTOS):
        prepare_parquet_folder(folder)
        self.path = folder
        self.shard_photos = shard_photos
        self._guard = (folder / ".lock").open("a")
        try:
            _lock(self._guard, folder)
            for leftover in folder.glob(".part-*.tmp"):  # a shard a killed run did not finish
                leftover.unlink()
            self._done = parquet_done_keys(folder)
        except Exception:
            self._guard.close()
            raise
        numbers = [int(p.name[5:11]) for p in folder.glob(SHARD_GLOB) if p.name[5:11].isdigit()]
        self._next = max(numbers, default=-1) + 1
        self._rows: list[dict] = []
        self._photos = 0

    def done_keys(self) -> set[int]:
        return self._done

    key = staticmethod(name_key)

    def write(self, rows: list[dict]) -> None:
        """Add one photo's rows; a full shard is written out."""
        self._rows.extend(rows)
        self._photos += 1
        if self._photos >= self.shard_photos:
            self.flush()

    def flush(self) -> None:
        """Write the rows held so far as the next shard."""
        if not self._rows:
            return
        import pyarrow.parquet as pq

        name = f"part-{self._next:06d}.parquet"
        temporary = self.path / f".{name}.tmp"
        pq.write_table(rows_table(self._rows), temporary)
        os.replace(temporary, self.path / name)
        self._next += 1
        self._rows, self._photos = [], 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._guard.close()


def open_output(out: Path, fmt: str | None = None) -> CsvOutput | ParquetOutput:
    """The output for `--out` in `--format` (None: from the name, see `format_of`)."""
    return ParquetOutput(out) if format_of(out, fmt) == "parquet" else CsvOutput(out)


def read_rows(out: Path, limit: int | None = None) -> tuple[list[dict], int]:
    """Rows of a `label` output (CSV file or Parquet folder), typed as `fer_core.rows.typed`.

    Args:
        limit: at most this many rows are returned (None: all).

    Returns:
        (rows, total number of rows in the output).
    """
    rows: list[dict] = []
    total = 0
    if out.is_dir():
        import pyarrow.parquet as pq

        for shard in our_shards(out):
            table = pq.read_table(shard)
            total += table.num_rows
            if limit is None or len(rows) < limit:
                wanted = table if limit is None else table.slice(0, limit - len(rows))
                rows.extend(typed(r) for r in wanted.to_pylist())
        return rows, total
    if not out.exists():
        return rows, 0
    with out.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        for row in csv.DictReader(f):
            total += 1
            if limit is None or len(rows) < limit:
                rows.append(typed(from_spreadsheet(row)))  # names as they are on disk
    return rows, total
