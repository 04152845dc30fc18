"""The local text model: pure-Python inference, shared text processing, training CLI, shipped default."""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from triage import train
from triage.classify import textmodel
from triage.classify.textmodel import TextModel, analyze, normalize, ticket_text

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "triage" / "models" / "default.json"

_WORDS = {
    "IT": "laptop printer toner password vpn monitor keyboard wifi outlook screen",
    "HR": "payslip salary leave holiday pension contract onboarding manager overtime bonus",
    "Facilities": "heating leak elevator toilet lights window ceiling radiator door carpet",
    "filler": "please help today urgent since morning floor team the my we need issue",
}
POOLS = {label: words.split() for label, words in _WORDS.items() if label != "filler"}
FILLER = _WORDS["filler"].split()


def _synthetic_rows(n_per_label: int = 50, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, pool in POOLS.items():
        for i in range(n_per_label):
            title = " ".join(rng.sample(pool, 2))
            words = rng.sample(pool, 4) + rng.sample(FILLER, 5)
            rng.shuffle(words)
            rows.append({"title": f"{title} {i}", "description": " ".join(words), "label": label})
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model trained through the CLI on a synthetic title/description CSV without a split column."""
    tmp = tmp_path_factory.mktemp("train")
    data = _write_csv(tmp / "tickets.csv", _synthetic_rows())
    out, report = tmp / "model.json", tmp / "report.md"
    assert train.main(["--data", str(data), "--out", str(out), "--report", str(report)]) == 0
    return out, report


@pytest.fixture(scope="module")
def default_model() -> TextModel:
    return TextModel.load(DEFAULT_MODEL)


# ---------------------------------------------------------------- normalisation


def test_normalize_folds_case_and_masks_noise() -> None:
    text = "VPN  Down!! see https://status.example.com/x or mail IT-Help@Example.COM, ticket #12345"
    assert normalize(text) == "vpn down see url or mail email ticket 0"


def test_normalize_caps_length_at_a_word_boundary() -> None:
    text = normalize("word " * 2000)
    assert len(text) <= textmodel.MAX_CHARS
    assert text.split() == ["word"] * len(text.split())


def test_ticket_text_matches_title_newline_description() -> None:
    # the classify stage passes f"{title}\n{description}"; both must give the same features
    assert analyze(ticket_text(" Printer jammed ", "Tray 2\n")) == analyze("Printer jammed\nTray 2")
    assert ticket_text("Only a title", None) == "Only a title"


def test_analyze_counts_words_bigrams_and_char_ngrams() -> None:
    words, chars = analyze("VPN vpn down")
    assert words == {"vpn": 2, "down": 1, "vpn vpn": 1, "vpn down": 1}
    assert chars[" vpn "] == 2 and chars["vp"] == 2 and chars[" d"] == 1
    assert all(2 <= len(gram) <= 5 for gram in chars)


def test_trainer_uses_the_runtime_text_processing() -> None:
    assert train.analyze is textmodel.analyze
    text = "Outlook keeps asking for my password"
    assert [block[0] for block in train.count_blocks([text])] == list(analyze(text))


def test_trainer_tfidf_equals_sklearn_sublinear_tfidf() -> None:
    from sklearn.feature_extraction.text import TfidfTransformer

    counts = train.sparse.csr_matrix(np.array([[3, 0, 1, 0], [0, 2, 0, 0], [1, 1, 1, 5], [0, 0, 0, 0]]))
    ours = train.tfidf(counts, train.idf_of(counts)).toarray()
    theirs = TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
    assert np.allclose(ours, theirs)


def test_trainer_and_runtime_compute_the_same_scores() -> None:
    rows = _synthetic_rows(30, seed=1)
    texts = [ticket_text(r["title"], r["description"]) for r in rows]
    labels = sorted(POOLS)
    y = np.array([labels.index(r["label"]) for r in rows])
    docs = train.count_blocks(texts)
    params = train.Params(max_features=400)  # also exercises pruning and refitting
    model, x = train.fit_pipeline(docs, y, labels, np.arange(len(rows)), params)
    runtime = TextModel(train.to_artifact(model, 1.0, {}, params))
    expected = x @ model.coef.T + model.intercept
    for i in (0, 17, 45, 89):
        assert runtime.scores(texts[i]) == pytest.approx(expected[i].tolist(), abs=1e-3)


# ---------------------------------------------------------------- inference


def test_probabilities_sum_to_one_and_are_deterministic(default_model: TextModel) -> None:
    text = "My laptop does not start after the update"
    first = default_model.predict_proba(text)
    assert set(first) == set(default_model.labels)
    assert math.isclose(sum(first.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in first.values())
    assert TextModel.load(DEFAULT_MODEL).predict_proba(text) == first == default_model.predict_proba(text)
    label, p = default_model.predict(text)
    assert p == max(first.values()) and first[label] == p


def test_empty_and_unknown_text_still_gives_a_distribution(default_model: TextModel) -> None:
    for text in ("", "   ", "zzqx qqvv"):
        proba = default_model.predict_proba(text)
        assert math.isclose(sum(proba.values()), 1.0, abs_tol=1e-9)


def test_loads_gzipped_artifact(tmp_path: Path, default_model: TextModel) -> None:
    packed = tmp_path / "model.json.gz"
    packed.write_bytes(gzip.compress(DEFAULT_MODEL.read_bytes()))
    text = "Invoice from our supplier is still unpaid"
    assert TextModel.load(packed).predict_proba(text) == default_model.predict_proba(text)


def test_rejects_unknown_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else/9"}))
    with pytest.raises(ValueError, match="unsupported model format"):
        TextModel.load(bad)


def test_runtime_does_not_import_numpy_or_sklearn() -> None:
    code = (
        "import sys\n"
        "from triage.classify.textmodel import TextModel\n"
        f"m = TextModel.load({str(DEFAULT_MODEL)!r})\n"
        "m.predict('printer is jammed')\n"
        "heavy = sorted(n for n in ('numpy', 'scipy', 'sklearn') if n in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- training


def test_trained_model_classifies_obvious_examples(trained: tuple[Path, Path]) -> None:
    model = TextModel.load(trained[0])
    assert model.labels == ("Facilities", "HR", "IT")
    assert model.predict("printer out of toner and laptop screen flickers")[0] == "IT"
    assert model.predict("payslip is missing my overtime and bonus")[0] == "HR"
    assert model.predict("water leak from the ceiling near the radiator")[0] == "Facilities"
    assert 0.5 <= model.metadata["threshold"] <= 0.995


def test_training_report_has_metrics_and_threshold_table(trained: tuple[Path, Path]) -> None:
    report = trained[1].read_text()
    for needle in (
        "accuracy:",
        "macro-F1:",
        "| label | precision | recall | F1 | support |",
        "## Hybrid thresholds",
    ):
        assert needle in report
    assert "label agreement 100.00%" in report


def test_split_column_decides_train_and_test(tmp_path: Path) -> None:
    rows = _synthetic_rows(30, seed=2)
    data = [
        {"text": ticket_text(r["title"], r["description"]), "label": r["label"], "split": split}
        for i, r in enumerate(rows)
        for split in ["test" if i % 4 == 0 else "train"]
    ]
    out = tmp_path / "m.json"
    assert train.main(["--data", str(_write_csv(tmp_path / "d.csv", data)), "--out", str(out)]) == 0
    trained_on = TextModel.load(out).metadata["trained_on"]
    n_train = sum(d["split"] == "train" for d in data)
    assert trained_on["rows"] == len(data)
    assert 0.8 * n_train <= trained_on["fit_rows"] < n_train  # the calibration slice is held out too


def test_csv_without_text_columns_is_rejected(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "bad.csv", [{"body": "x", "label": "IT"}, {"body": "y", "label": "HR"}])
    with pytest.raises(ValueError, match="title"):
        train.main(["--data", str(data), "--out", str(tmp_path / "m.json")])


# ---------------------------------------------------------------- shipped default model


@pytest.mark.parametrize(
    ("text", "department"),
    [
        ("VPN not connecting\nThe VPN client fails every time I try from home", "IT"),
        ("Payslip missing overtime\nLast month's overtime hours are not on my payslip", "HR"),
        (
            "Suspicious phishing email\nA mail asks me to confirm my password via a strange link",
            "Security",
        ),
        ("Air conditioning broken on floor 3\nIt is far too hot, the AC stopped working", "Facilities"),
        (
            "NDA review for new vendor\nPlease review their non-disclosure agreement first",
            "Legal",
        ),
        ("Expense report reimbursement\nMy travel expense claim has not been reimbursed yet", "Finance"),
        ("Visitor tomorrow\nTwo guests arrive at 10, please prepare visitor badges at reception", "General"),
    ],
)
def test_default_model_routes_clear_tickets(default_model: TextModel, text: str, department: str) -> None:
    proba = default_model.predict_proba(text)
    by_department: dict[str, float] = {}
    for label, p in proba.items():
        by_department[label.split("/")[0]] = by_department.get(label.split("/")[0], 0.0) + p
    assert max(by_department, key=by_department.__getitem__) == department


def test_default_model_labels_are_department_slash_team(default_model: TextModel) -> None:
    departments = {label.split("/")[0] for label in default_model.labels}
    assert departments == {"IT", "HR", "Finance", "Facilities", "Security", "Legal", "General"}
    assert all(label.count("/") == 1 for label in default_model.labels)
    assert DEFAULT_MODEL.stat().st_size < 2_000_000
