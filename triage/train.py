"""Train the local ticket classifier and export it as a JSON artifact for ``TextModel``.

    python -m triage.train --data tickets.csv.gz --out model.json [--report docs/report.md]

Training only: needs numpy, scipy and scikit-learn (requirements-dev.txt); the functions never import this.

Method: features from ``textmodel.analyze`` (word 1-2-grams and char_wb 2-5-grams, sublinear TF-IDF,
one L2-normalised block each); a linear model that is the sum of a one-vs-rest NB-SVM (LinearSVC on
naive-Bayes log-count-ratio scaled features, the ratios folded into the weights) and a small share of a
multinomial logistic regression; features pruned to the largest weights and the model refitted;
probabilities are a softmax over the scores with a temperature fitted on a calibration slice of the
training rows, which also selects the hybrid confidence threshold. Test rows are only used for the report.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.svm import LinearSVC

from triage.classify.textmodel import BLOCKS, FORMAT, TextModel, analyze, ticket_text

VERSION = "1"
TABLE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99)


@dataclass(frozen=True)
class Params:
    min_df: int = 2  # a feature must occur in at least this many fitting rows
    max_features: int = 80_000  # kept after pruning by largest |weight|, both blocks together
    svm_c: float = 0.3
    nb_alpha: float = 1.0  # smoothing of the naive-Bayes log-count ratios
    lr_c: float = 20.0
    lr_weight: float = 0.05  # share of the logistic-regression scores in the sum (0 disables it)
    weight_step: float = 1e-4  # weights are stored as integer multiples of this
    target_accuracy: float = 0.98  # hybrid: accuracy wanted on tickets that skip the LLM
    margin: float = 0.005  # asked of the calibration slice on top of the target (its sampling error)
    min_support: int = 30  # calibration rows needed above a threshold to trust its accuracy
    calib_percent: int = 10  # of the training rows, held out to fit temperature and threshold
    holdout_percent: int = 20  # test share when the data has no split column


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    roles: list[str]  # "fit", "calib" or "test"

    def indices(self, *roles: str) -> np.ndarray:
        return np.array([i for i, role in enumerate(self.roles) if role in roles], dtype=np.int64)


@dataclass
class Linear:
    """A fitted linear model over TF-IDF blocks (float weights, before export)."""

    labels: list[str]
    vocabs: list[list[str]]  # per block, in column order
    idfs: list[np.ndarray]
    coef: np.ndarray  # (labels, features of all blocks)
    intercept: np.ndarray


# ---------------------------------------------------------------- data


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _in_bucket(text: str, salt: str, percent: int) -> bool:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def _role(text: str, split: str | None, params: Params) -> str:
    if split is None:
        split = "test" if _in_bucket(text, "holdout", params.holdout_percent) else "train"
    if split == "test":
        return "test"
    if split != "train":
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return "calib" if _in_bucket(text, "calib", params.calib_percent) else "fit"


def _row_text(row: dict[str, str], text_col: str) -> str:
    if text_col in row:
        return (row[text_col] or "").strip()
    if "title" in row or "description" in row:
        return ticket_text(row.get("title"), row.get("description"))
    raise ValueError(f"CSV needs a {text_col!r} column or 'title'/'description' columns")


def load_examples(path: Path, text_col: str, label_col: str, split_col: str, params: Params) -> Examples:
    texts, labels, roles = [], [], []
    with _open_text(path) as fh:
        for row in csv.DictReader(fh):
            text, label = _row_text(row, text_col), (row.get(label_col) or "").strip()
            if not text or not label:
                continue
            split = (row.get(split_col) or "").strip().lower() if split_col in row else None
            texts.append(text)
            labels.append(label)
            roles.append(_role(text, split, params))
    if len(set(labels)) < 2:
        raise ValueError(f"{path}: need at least two labels in column {label_col!r}")
    return Examples(texts, labels, roles)


# ---------------------------------------------------------------- features


def count_blocks(texts: Sequence[str]) -> list[list[dict[str, int]]]:
    """Per block, the raw feature counts of every text (``analyze`` is shared with inference)."""
    analyzed = [analyze(text) for text in texts]
    return [[doc[b] for doc in analyzed] for b in range(len(BLOCKS))]


def build_vocab(
    docs: list[dict[str, int]], rows: np.ndarray, min_df: int
) -> tuple[list[str], sparse.csr_matrix]:
    """Vocabulary of the given rows (features in >= min_df of them) and the count matrix of all docs."""
    vectorizer = DictVectorizer(dtype=np.float64).fit([docs[i] for i in rows])
    counts = vectorizer.transform(docs).tocsc()
    df = np.diff((counts[rows] > 0).tocsc().indptr)
    keep = np.flatnonzero(df >= min_df)
    names = vectorizer.get_feature_names_out()
    return [str(names[j]) for j in keep], counts[:, keep].tocsr()


def idf_of(counts: sparse.csr_matrix) -> np.ndarray:
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.log((1 + counts.shape[0]) / (1 + df)) + 1.0


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear tf * idf, each row L2-normalised (what ``TextModel.scores`` computes per block)."""
    x = counts.astype(np.float64)
    x.data = 1.0 + np.log(x.data)
    x = (x @ sparse.diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.diags(1.0 / norms) @ x


# ---------------------------------------------------------------- model


def fit_nbsvm(
    x: sparse.csr_matrix, y: np.ndarray, n_labels: int, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest LinearSVC on NB-ratio-scaled features; the ratios are folded into the weights."""
    coef, intercept = np.zeros((n_labels, x.shape[1])), np.zeros(n_labels)
    for c in range(n_labels):
        pos = np.asarray(x[y == c].sum(axis=0)).ravel() + params.nb_alpha
        neg = np.asarray(x[y != c].sum(axis=0)).ravel() + params.nb_alpha
        ratio = np.log((pos / pos.sum()) / (neg / neg.sum()))
        svm = LinearSVC(C=params.svm_c, random_state=0).fit(x.multiply(ratio).tocsr(), (y == c).astype(int))
        coef[c], intercept[c] = svm.coef_[0] * ratio, svm.intercept_[0]
    return coef, intercept


def fit_logistic(
    x: sparse.csr_matrix, y: np.ndarray, n_labels: int, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr = LogisticRegression(C=params.lr_c, max_iter=300).fit(x, y)
    if n_labels == 2:  # binary LR has one row of weights: expand to one score per label
        return np.vstack([-lr.coef_[0], lr.coef_[0]]) / 2, np.array([-1.0, 1.0]) * lr.intercept_[0] / 2
    return lr.coef_, lr.intercept_


def fit_linear(
    x: sparse.csr_matrix, y: np.ndarray, n_labels: int, params: Params, *, with_lr: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    coef, intercept = fit_nbsvm(x, y, n_labels, params)
    if with_lr and params.lr_weight > 0:
        lr_coef, lr_intercept = fit_logistic(x, y, n_labels, params)
        coef, intercept = coef + params.lr_weight * lr_coef, intercept + params.lr_weight * lr_intercept
    return coef, intercept


def design(counts: list[sparse.csr_matrix], idfs: list[np.ndarray]) -> sparse.csr_matrix:
    return sparse.hstack([tfidf(c, idf) for c, idf in zip(counts, idfs, strict=True)]).tocsr()


def prune(
    vocabs: list[list[str]], counts: list[sparse.csr_matrix], coef: np.ndarray, k: int
) -> tuple[list[list[str]], list[sparse.csr_matrix]]:
    """Keep the k features with the largest max |weight|, block by block in their original order."""
    order = np.argsort(-np.abs(coef).max(axis=0), kind="stable")[:k]
    start, new_vocabs, new_counts = 0, [], []
    for vocab, block in zip(vocabs, counts, strict=True):
        cols = np.sort(order[(order >= start) & (order < start + len(vocab))]) - start
        new_vocabs.append([vocab[j] for j in cols])
        new_counts.append(block[:, cols])
        start += len(vocab)
    return new_vocabs, new_counts


def fit_pipeline(
    docs: list[list[dict[str, int]]], y: np.ndarray, labels: list[str], rows: np.ndarray, params: Params
) -> tuple[Linear, sparse.csr_matrix]:
    """Fit vocabulary, idf and weights on ``rows``; returns the model and the design matrix of all docs."""
    vocabs, counts = zip(*(build_vocab(block, rows, params.min_df) for block in docs), strict=True)
    vocabs, counts = list(vocabs), list(counts)
    idfs = [idf_of(c[rows]) for c in counts]
    if sum(map(len, vocabs)) > params.max_features:
        x = design(counts, idfs)
        coef, _ = fit_linear(x[rows], y[rows], len(labels), params, with_lr=False)
        vocabs, counts = prune(vocabs, counts, coef, params.max_features)
        idfs = [idf_of(c[rows]) for c in counts]
    x = design(counts, idfs)
    coef, intercept = fit_linear(x[rows], y[rows], len(labels), params)
    return Linear(labels, vocabs, idfs, coef, intercept), x


# ---------------------------------------------------------------- calibration


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the log-loss of softmax(scores / T)."""

    def nll(log_t: float) -> float:
        return float(-log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-7.0, 4.0), method="bounded").x))


def calibrate(
    model: Linear, x: sparse.csr_matrix, y: np.ndarray, rows: np.ndarray, params: Params
) -> tuple[float, float, tuple[np.ndarray, np.ndarray]]:
    """Temperature and hybrid threshold from the calibration rows, plus their (confidence, correct)."""
    if not len(rows):
        return 1.0, 0.995, (np.zeros(0), np.zeros(0, dtype=bool))
    scores = x[rows] @ model.coef.T + model.intercept
    temperature = fit_temperature(scores, y[rows])
    proba = softmax(scores / temperature, axis=1)
    calib = (proba.max(axis=1), proba.argmax(axis=1) == y[rows])
    return temperature, choose_threshold(*calib, params), calib


def coverage_at(conf: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float, int]:
    """(share with confidence >= threshold, accuracy on that share, how many)."""
    kept = conf >= threshold
    n = int(kept.sum())
    return (n / len(conf) if len(conf) else 0.0), (float(correct[kept].mean()) if n else float("nan")), n


def choose_threshold(conf: np.ndarray, correct: np.ndarray, params: Params) -> float:
    """Smallest threshold (0.5 .. 0.995, step 0.005) whose calibration accuracy reaches target + margin."""
    for threshold in np.round(np.arange(0.5, 0.9951, 0.005), 3):
        _, accuracy, n = coverage_at(conf, correct, threshold)
        if n >= params.min_support and accuracy >= round(params.target_accuracy + params.margin, 6):
            return float(threshold)
    return 0.995


# ---------------------------------------------------------------- export


def _significant(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def to_artifact(model: Linear, temperature: float, metadata: dict, params: Params) -> dict:
    quantised = np.rint(model.coef / params.weight_step).astype(np.int64)
    blocks, start = {}, 0
    for name, vocab, idf in zip(BLOCKS, model.vocabs, model.idfs, strict=True):
        rows = quantised[:, start : start + len(vocab)].T.tolist()
        blocks[name] = {
            "vocab": {f: [*w, round(float(v), 5)] for f, w, v in zip(vocab, rows, idf, strict=True)}
        }
        start += len(vocab)
    return {
        "format": FORMAT,
        "labels": model.labels,
        "intercept": [_significant(b) for b in model.intercept],
        "temperature": _significant(temperature),
        "weight_scale": params.weight_step,
        "blocks": blocks,
        "metadata": metadata,
    }


def write_artifact(artifact: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(artifact, ensure_ascii=False, separators=(",", ":")).encode()
    if out.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    out.write_bytes(data)


# ---------------------------------------------------------------- evaluation and report


@dataclass
class Evaluation:
    labels: list[str]
    y_true: list[str]
    y_pred: list[str]
    conf: np.ndarray
    latencies_ms: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return np.array([a == b for a, b in zip(self.y_true, self.y_pred, strict=True)])


def evaluate(model: TextModel, texts: list[str], labels: list[str]) -> tuple[Evaluation, np.ndarray]:
    """Predictions of the exported artifact (what ships), with per-ticket latency and probabilities."""
    preds, confs, latencies, probas = [], [], [], []
    for text in texts:
        started = time.perf_counter()
        proba = model.predict_proba(text)
        label = max(model.labels, key=proba.__getitem__)
        latencies.append((time.perf_counter() - started) * 1000)
        preds.append(label)
        confs.append(proba[label])
        probas.append([proba[name] for name in model.labels])
    evaluation = Evaluation(list(model.labels), labels, preds, np.array(confs), np.array(latencies))
    return evaluation, np.array(probas)


def _md_table(header: Sequence[str], rows: Iterator[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def per_class_table(ev: Evaluation) -> list[str]:
    p, r, f, s = precision_recall_fscore_support(ev.y_true, ev.y_pred, labels=ev.labels, zero_division=0)
    rows = (
        [name, f"{p[i]:.3f}", f"{r[i]:.3f}", f"{f[i]:.3f}", str(s[i])] for i, name in enumerate(ev.labels)
    )
    return _md_table(["label", "precision", "recall", "F1", "support"], rows)


def threshold_table(
    calib: tuple[np.ndarray, np.ndarray], test: Evaluation | None, chosen: float
) -> list[str]:
    def cells(conf: np.ndarray, correct: np.ndarray, t: float) -> list[str]:
        share, accuracy, _ = coverage_at(conf, correct, t)
        return [f"{share:.1%}", f"{accuracy:.4f}"]

    header = ["threshold", "calib: skip LLM", "calib: accuracy"]
    if test is not None:
        header += ["test: skip LLM", "test: accuracy"]
    rows = (
        [
            f"**{t:g} (chosen)**" if t == chosen else f"{t:.2f}",
            *cells(*calib, t),
            *(cells(test.conf, test.correct, t) if test is not None else []),
        ]
        for t in sorted({*TABLE_THRESHOLDS, chosen})
    )
    return _md_table(header, rows)


def department_accuracy(ev: Evaluation, proba: np.ndarray) -> float | None:
    """For `Department/team` labels: accuracy of the department with the largest summed probability."""
    departments = [label.partition("/")[0] for label in ev.labels]
    if len(set(departments)) == len(departments):
        return None
    names = sorted(set(departments))
    summed = np.stack([proba[:, [d == name for d in departments]].sum(axis=1) for name in names], axis=1)
    predicted = [names[i] for i in summed.argmax(axis=1)]
    truth = [label.partition("/")[0] for label in ev.y_true]
    return float(np.mean([a == b for a, b in zip(predicted, truth, strict=True)]))


def summary(ev: Evaluation, proba: np.ndarray, threshold: float) -> list[str]:
    share, accuracy, _ = coverage_at(ev.conf, ev.correct, threshold)
    macro_f1 = f1_score(ev.y_true, ev.y_pred, labels=ev.labels, average="macro", zero_division=0)
    dept = department_accuracy(ev, proba)
    lat = ev.latencies_ms
    return [
        f"- test rows: {len(ev.y_true)}",
        f"- accuracy: **{ev.correct.mean():.4f}**, macro-F1: **{macro_f1:.4f}**"
        + (f", department-level accuracy {dept:.4f}" if dept is not None else ""),
        f"- hybrid threshold {threshold:.3f}: {share:.1%} of test tickets skip the LLM, "
        f"accuracy on them {accuracy:.4f}",
        f"- predict latency per ticket: mean {lat.mean():.2f} ms, p50 {np.percentile(lat, 50):.2f} ms, "
        f"p95 {np.percentile(lat, 95):.2f} ms",
    ]


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m triage.train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="CSV or CSV.gz with text (or title+description) and label"
    )
    parser.add_argument("--out", type=Path, required=True, help="model artifact to write (.json or .json.gz)")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="label")
    parser.add_argument(
        "--split-col", default="split", help="train/test column; if absent, a 20%% hash holdout"
    )
    parser.add_argument("--report", type=Path, help="also write the evaluation as Markdown here")
    parser.add_argument("--max-features", type=int, default=Params.max_features)
    parser.add_argument(
        "--refit-all",
        action="store_true",
        help="after evaluating, refit on every row (train + calibration + test) for the written artifact",
    )
    return parser.parse_args(argv)


def _log(message: str) -> None:
    print(f"[train] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = Params(max_features=args.max_features)
    started = time.perf_counter()
    ex = load_examples(args.data, args.text_col, args.label_col, args.split_col, params)
    labels = sorted(set(ex.labels))
    y = np.array([labels.index(label) for label in ex.labels])
    fit_rows, calib_rows, test_rows = ex.indices("fit"), ex.indices("calib"), ex.indices("test")
    _log(f"{len(ex.texts)} rows: fit {len(fit_rows)}, calibration {len(calib_rows)}, test {len(test_rows)}")
    docs = count_blocks(ex.texts)
    _log(f"features extracted ({time.perf_counter() - started:.0f} s)")

    model, x = fit_pipeline(docs, y, labels, fit_rows, params)
    temperature, threshold, calib = calibrate(model, x, y, calib_rows, params)
    _log(f"model fitted: {sum(map(len, model.vocabs))} features, T={temperature:.4f}, threshold={threshold}")

    metadata = {
        "version": f"{VERSION}-{datetime.now(UTC):%Y%m%d}",
        "trained_on": {"data": args.data.name, "rows": len(ex.texts), "fit_rows": len(fit_rows)},
        "threshold": threshold,
        "target_accuracy": params.target_accuracy,
    }
    artifact = to_artifact(model, temperature, metadata, params)
    write_artifact(artifact, args.out)
    lines = report_lines(args, params, ex, artifact, model, x, test_rows, calib)

    if args.refit_all:
        model, _ = fit_pipeline(docs, y, labels, np.arange(len(y)), params)
        metadata["trained_on"]["fit_rows"] = len(y)
        metadata["refit_all"] = True
        write_artifact(to_artifact(model, temperature, metadata, params), args.out)
        lines.append(
            f"\nThe written artifact was then refitted on all {len(y)} rows (--refit-all); "
            "the figures above are those of the model before the refit."
        )
    size = args.out.stat().st_size
    lines.append(
        f"\nArtifact: `{args.out.name}`, {size / 1e6:.2f} MB; total training time "
        f"{time.perf_counter() - started:.0f} s."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
    return 0


def report_lines(
    args: argparse.Namespace,
    params: Params,
    ex: Examples,
    artifact: dict,
    model: Linear,
    x: sparse.csr_matrix,
    test_rows: np.ndarray,
    calib: tuple[np.ndarray, np.ndarray],
) -> list[str]:
    threshold = artifact["metadata"]["threshold"]
    lines = [
        f"# Local model report: {args.data.name}",
        "",
        f"Rows: {len(ex.texts)} (fit {ex.roles.count('fit')}, calibration {ex.roles.count('calib')}, "
        f"test {len(test_rows)}); labels: {len(model.labels)}; features: {sum(map(len, model.vocabs))} "
        f"(word {len(model.vocabs[0])}, char {len(model.vocabs[1])}); temperature {artifact['temperature']}; "
        f"recommended hybrid threshold **{threshold}** (smallest with calibration accuracy >= "
        f"{params.target_accuracy} + {params.margin} margin).",
        "",
    ]
    test = None
    if len(test_rows):
        started = time.perf_counter()
        loaded = TextModel.load(args.out)
        load_s = time.perf_counter() - started
        test, proba = evaluate(loaded, [ex.texts[i] for i in test_rows], [ex.labels[i] for i in test_rows])
        reference = softmax((x[test_rows] @ model.coef.T + model.intercept) / artifact["temperature"], axis=1)
        agreement = float((reference.argmax(axis=1) == proba.argmax(axis=1)).mean())
        lines += ["## Test split", "", *summary(test, proba, threshold)]
        lines += [
            f"- artifact load time {load_s * 1000:.0f} ms; artifact vs in-memory (unrounded) model on "
            f"the test rows: label agreement {agreement:.2%}, max probability difference "
            f"{np.abs(reference - proba).max():.1e}",
            "",
            *per_class_table(test),
            "",
        ]
    lines += ["## Hybrid thresholds", "", *threshold_table(calib, test, threshold)]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
