"""Tabular models as people train them: fitted on DataFrames with named numeric and string
columns and missing values, imported from a CSV sample a user would write, with the input
schema recorded and checked (parity included on the missing values and categories)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cluster.models.churn import make_churn_examples
from cluster.models.errors import ModelError
from cluster.models.importer import import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import infer_schema, read_sample_csv
from serving.onnx_model import OnnxModel
from serving.schema import Kind, Layout, Unknown
from tests.support.tabular import (
    column_transformer_model,
    hist_gradient_boosting_model,
    imputer_model,
    regressor_model,
    save,
    write_sample,
)

MODELS = {
    "people-ct": column_transformer_model,
    "people-hgb": hist_gradient_boosting_model,
    "people-imputer": imputer_model,
    "charges-gbr": regressor_model,
}


def imported(tmp_path: Path, name: str) -> tuple[ModelStore, Any, Any, np.ndarray]:
    model, test, y_test = MODELS[name]()
    source = save(model, tmp_path / f"{name}.skops")
    csv = write_sample(test, y_test, tmp_path / f"{name}.csv")
    store = ModelStore(tmp_path / "store")
    sample = read_sample_csv(csv, infer_schema(model))
    result = import_model(store, source, name, sample)
    assert result.created and result.parity_rows == len(y_test)
    return store, model, test, y_test


def served(store: ModelStore, name: str, test: Any) -> list[Any]:
    """What a replica answers for the holdout's records (parsed as a request would be)."""
    from serving.instances import InstanceParser

    version = store.root / name / "1"
    model = OnnxModel(version)
    records = json.loads((version / "holdout.json").read_text())["X"]
    batch = InstanceParser(model.meta.schema, 10_000).parse({"instances": records})
    return model.predict(batch).labels


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_imports_and_serves_what_scikit_learn_predicts(
    tmp_path: Path, name: str
) -> None:
    store, model, test, _ = imported(tmp_path, name)
    got = np.asarray(served(store, name, test))
    expected = model.predict(test)[: len(got)]  # the holdout keeps the first 500 rows
    if name == "charges-gbr":
        assert np.allclose(got, expected, rtol=1e-4)
    else:
        assert (got == expected).all()


def test_the_schema_records_columns_types_categories_and_missing(tmp_path: Path) -> None:
    store, _, _, _ = imported(tmp_path, "people-ct")
    meta = store.get("people-ct").meta
    columns = {c.name: c for c in meta.schema.columns}
    assert meta.schema.names == ["age", "income", "city"] and meta.schema.layout is Layout.COLUMNS
    assert columns["city"].kind is Kind.CATEGORY and columns["city"].categories == (
        "lyon",
        "nice",
        "paris",
    )
    assert columns["city"].unknown is Unknown.IGNORE
    # StandardScaler passes NaN on to LogisticRegression, which refuses it: no missing number.
    assert not columns["age"].nullable and not columns["income"].nullable
    # OneHotEncoder(handle_unknown="ignore") maps a missing city to no category, in both.
    assert columns["city"].nullable
    raw = meta.raw["input"]["columns"]
    assert raw[2] == {
        "name": "city", "type": "category", "nullable": True,
        "categories": ["lyon", "nice", "paris"], "unknown": "ignore",
    }  # fmt: skip
    for name in ("people-hgb", "people-imputer"):
        (tmp_path / name).mkdir()
        store, _, _, _ = imported(tmp_path / name, name)
        schema = store.get(name).meta.schema
        assert schema.layout is Layout.MATRIX and all(c.nullable for c in schema.columns), name


def test_a_category_the_encoder_refuses_is_recorded_as_an_error(tmp_path: Path) -> None:
    from sklearn.preprocessing import OneHotEncoder

    model, test, y_test = column_transformer_model()
    model.set_params(prepare__city=OneHotEncoder())  # handle_unknown="error", the default
    model.fit(test, y_test)
    store = ModelStore(tmp_path / "store")
    csv = write_sample(test, y_test, tmp_path / "s.csv")
    import_model(
        store,
        save(model, tmp_path / "m.skops"),
        "strict",
        read_sample_csv(csv, infer_schema(model)),
    )
    city = store.get("strict").meta.schema.columns[2]
    assert city.unknown is Unknown.ERROR and not city.nullable


def test_the_drift_reference_covers_categories_and_missing_rates(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    make_churn_examples(store)
    reference = store.get("churn", "1").meta.raw["reference"]["features"]
    by_name = {f["name"]: f for f in reference}
    contract = by_name["contract"]
    assert contract["kind"] == "category"
    assert contract["categories"] == ["month-to-month", "one-year", "two-year"]
    assert len(contract["fractions"]) == 3 + 2 and contract["fractions"][3] == 0.0  # unseen
    charges = by_name["monthly_charges"]
    assert 0.02 < charges["fractions"][-1] < 0.08  # the 5% missing, as a bucket of its own


def test_a_sample_with_text_in_a_numeric_column_names_the_cell(tmp_path: Path) -> None:
    model, test, y_test = column_transformer_model()
    csv = write_sample(test, y_test, tmp_path / "s.csv")
    lines = csv.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[1], "lots", 1)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelError, match=r"s.csv:4: column 'income' is 'lots', not a number"):
        read_sample_csv(csv, infer_schema(model))
    csv.write_text("age,salary,city,label\n30,2,paris,1\n")
    with pytest.raises(ModelError, match="no column named 'income' in the header"):
        read_sample_csv(csv, infer_schema(model))


def test_models_import_prints_our_lines_only(tmp_path: Path) -> None:
    """The GradientBoostingRegressor fitted on a DataFrame made scikit-learn warn twice."""
    model, test, y_test = regressor_model()
    source = save(model, tmp_path / "gbr.skops")
    csv = write_sample(test, y_test, tmp_path / "gbr.csv")
    for path, name in (
        (source, "gbr"),
        (save(hist_gradient_boosting_model()[0], tmp_path / "h.skops"), "hgb"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "console.cli", "models", "--store", str(tmp_path / "store"),
             "import", str(path), "--name", name]
            + (["--sample", str(csv), "--train", str(csv)] if name == "gbr" else []),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "", done.stderr
        assert done.stdout.startswith(f"{name}:1  stored new version"), done.stdout
        assert len(done.stdout.strip().splitlines()) <= 2, done.stdout
    # --train kept the rows beside the version, for a batch update to refit on.
    store = ModelStore(tmp_path / "store")
    assert store.training("gbr", "1") is not None and store.training("hgb", "1") is None
