"""Train one fastText model and export its vectors: `python -m hatbot.pipeline.fasttext_worker JOB`.

Runs in a fresh interpreter that imports nothing but fastText and NumPy, started by
`hatbot.pipeline.train` with zeroed allocations: fastText 0.9.3 leaves most of its input
matrix uninitialised, and memory a process used before makes it end in `Encountered NaN`
(docs/PIPELINE.md, "Failure is safe").
JOB is a JSON file: {"corpus", "args", "out", "queries" (a words file or null), "keep_bin",
"parent" (the pid of the pipeline process, or null)}. With subwords and queries, it also
writes `joined.npy`: each query word's character n-gram rows, summed, as it occurs between
spaces (what the word adds to fastText's vector of hints joined into one string).
"""

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

PR_SET_PDEATHSIG = 1


def _die_with(parent: int | None) -> bool:
    """Ask Linux to kill this worker when its parent dies (even by SIGKILL), so no orphan
    keeps training into a scratch folder; False when the parent is already gone."""
    if parent is None:
        return True
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to arrange
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return os.getppid() == parent


def joined_rows(model: Any, words: list[str], args: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Per word, the sum of the input rows of the character n-grams of " word " (lengths
    minn..maxn): fastText's vector of a string it does not know is the mean of its n-grams'
    rows, and a hint inside joined hints has spaces, not "<" and ">", around it."""
    minn, maxn = args.get("minn", 3), args["maxn"]
    rows: list[int] = []
    ends = []
    for word in words:
        padded = f" {word} "
        for i in range(len(padded)):
            for n in range(minn, min(maxn, len(padded) - i) + 1):
                rows.append(model.get_subword_id(padded[i : i + n]))
        ends.append(len(rows))
    unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
    table = np.stack([model.get_input_vector(int(r)) for r in unique]).astype(np.float32)
    sums = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    owner = np.repeat(np.arange(len(words)), np.diff(np.asarray([0, *ends])))
    np.add.at(sums, owner, table[inverse])
    return sums


def main(job_path: str) -> int:
    started = time.monotonic()
    job = json.loads(Path(job_path).read_text())
    out = Path(job["out"])
    if not _die_with(job.get("parent")):
        (out / "error.txt").write_text("the pipeline process ended before training started\n")
        return 1
    try:
        import fasttext

        model = fasttext.train_unsupervised(job["corpus"], verbose=0, **job["args"])
        words, counts = model.get_words(include_freq=True)
        vectors = np.stack([model.get_word_vector(w) for w in words]).astype(np.float32)
        if not np.isfinite(vectors).all():
            raise RuntimeError("fastText produced non-finite vectors")
        (out / "words.txt").write_text("\n".join(words) + "\n")
        np.save(out / "counts.npy", np.asarray(counts, dtype=np.int64))
        np.save(out / "vectors.npy", vectors)
        if job.get("queries"):
            queries = Path(job["queries"]).read_text().split("\n")[:-1]
            matrix = np.stack([model.get_word_vector(w) for w in queries]).astype(np.float32)
            np.save(out / "queries.npy", matrix)
            if job["args"].get("maxn", 0) > 0:
                np.save(out / "joined.npy", joined_rows(model, queries, job["args"]))
        if job.get("keep_bin"):
            model.save_model(str(out / "model.bin"))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        done = {
            "args": job["args"],
            "words": len(words),
            "wall_s": round(time.monotonic() - started, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        }
        (out / "done.json").write_text(json.dumps(done))
    except BaseException:
        (out / "error.txt").write_text(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
