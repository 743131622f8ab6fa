"""Drift: live rows binned exactly like the reference histograms, PSI, and the warning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cluster.models.profile import reference_histograms
from cluster.models.tabular import Sample
from serving.drift import EPSILON, FeatureBins, psi
from serving.instances import Batch
from serving.monitor.tracker import AccuracyTracker, MonitorSettings
from serving.schema import InputSchema

RNG = np.random.default_rng(11)
TRAIN = RNG.normal(size=(2000, 4)) * [1, 5, 0.1, 3]
REFERENCE = reference_histograms(
    Sample.from_array(TRAIN, None, list("abcd"), "train"), InputSchema.numbers(list("abcd"))
)


def rows(X: np.ndarray) -> Batch:
    return Batch.of_numbers(np.asarray(X, dtype=np.float32))


def test_bins_match_the_reference_binning() -> None:
    bins = FeatureBins(REFERENCE)
    for chunk in np.array_split(TRAIN, 7):
        bins.add(rows(chunk))
    counts = bins.take()
    assert counts is not None
    for j, feature in enumerate(REFERENCE["features"]):
        expected = np.bincount(
            np.searchsorted(feature["edges"], TRAIN[:, j], side="right"),
            minlength=len(feature["edges"]) + 1,
        )
        assert counts[j][: len(expected)] == expected.tolist()
        assert [c / len(TRAIN) for c in counts[j][: len(expected)]] == pytest.approx(
            feature["fractions"][:-1]  # the last bucket is "missing": none in TRAIN
        )
    assert bins.take() is None  # taken: counting starts again


def test_psi_formula() -> None:
    expected = [0.25, 0.25, 0.5]
    counts = [50, 0, 50]
    manual = sum((a - e) * math.log(a / e) for a, e in ((0.5, 0.25), (EPSILON, 0.25), (0.5, 0.5)))
    assert psi(expected, counts) == pytest.approx(manual)
    assert psi(expected, [0, 0, 0]) is None


def test_tracker_warns_on_shifted_features_only(tmp_path: Path) -> None:
    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=60))
    t.register("1", "classifier", [0, 1], REFERENCE)
    same = FeatureBins(REFERENCE)
    same.add(rows(RNG.normal(size=(3000, 4)) * [1, 5, 0.1, 3]))
    t.add_bins("1", same.take() or [], now=1000.0)
    calm = t.summary(now=1001.0)["versions"]["1"]["drift"]
    assert calm["rows"] == 3000 and calm["max_psi"] < 0.05 and not calm["warning"]
    shifted = FeatureBins(REFERENCE)
    shifted.add(rows(RNG.normal(size=(3000, 4)) * [1, 5, 0.1, 3] + [0, 0, 0, 6]))  # feature d moves
    t.add_bins("1", shifted.take() or [], now=1070.0)  # the calm chunk has left the 60 s window
    drift = t.summary(now=1071.0)["versions"]["1"]["drift"]
    assert drift["warning"] and drift["drifting"] == ["d"] and drift["worst_feature"] == "d"
    assert drift["psi"]["a"] < 0.05


def test_counts_given_back_go_out_with_the_next_take() -> None:
    """A send to an unavailable monitor loses no drift counts."""
    bins = FeatureBins(REFERENCE)
    bins.add(rows(TRAIN[:100]))
    first = bins.take()
    bins.give_back(first)
    bins.add(rows(TRAIN[100:200]))
    both = FeatureBins(REFERENCE)
    both.add(rows(TRAIN[:200]))
    assert bins.take() == both.take()


def test_categories_drift_by_frequency_with_unseen_and_missing_buckets(tmp_path: Path) -> None:
    from serving.schema import Column, Kind, Layout, Unknown

    schema = InputSchema(
        (
            Column("x", nullable=True),
            Column("city", Kind.CATEGORY, True, ("lyon", "nice", "paris"), Unknown.IGNORE),
        ),
        Layout.COLUMNS,
    )
    cities = np.asarray(["lyon"] * 500 + ["nice"] * 300 + ["paris"] * 200, dtype=object)
    x = RNG.normal(size=1000)
    reference = reference_histograms(Sample({"x": x, "city": cities}, None, "t"), schema)
    city = reference["features"][1]
    assert city["fractions"] == [0.5, 0.3, 0.2, 0.0, 0.0]  # categories, unseen, missing

    def live(texts: list[str | None], numbers: np.ndarray) -> Batch:
        return Batch(
            numbers.astype(np.float32).reshape(-1, 1),
            np.asarray(texts, dtype=object).reshape(-1, 1),
        )

    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=60, drift_min_rows=100))
    t.register("1", "classifier", [0, 1], reference)
    bins = FeatureBins(reference)
    bins.add(live(["lyon"] * 50 + ["nice"] * 30 + ["paris"] * 20, RNG.normal(size=100)))
    t.add_bins("1", bins.take() or [], now=1000.0)
    calm = t.summary(now=1001.0)["versions"]["1"]["drift"]
    assert calm["psi"]["city"] < 0.01 and calm["unseen"] == {} and calm["missing"] == {}
    # Later: a fifth of the cities are new ones, a tenth missing, and x is missing a quarter.
    shifted = np.where(RNG.random(100) < 0.25, np.nan, RNG.normal(size=100))
    texts: list[str | None] = ["lyon"] * 50 + ["tokyo"] * 20 + [None] * 10 + ["paris"] * 20
    bins.add(live(texts, shifted))
    t.add_bins("1", bins.take() or [], now=1070.0)
    drift = t.summary(now=1071.0)["versions"]["1"]["drift"]
    assert drift["unseen"] == {"city": 20}
    assert drift["missing"]["city"] == {"reference": 0.0, "live": 0.1}
    assert drift["missing"]["x"]["reference"] == 0.0 and drift["missing"]["x"][
        "live"
    ] == pytest.approx(np.isnan(shifted).mean())
    assert drift["warning"] and set(drift["drifting"]) == {"city", "x"}


def test_no_drift_figure_from_a_handful_of_rows(tmp_path: Path) -> None:
    """15 copies of one row once gave PSI 7 to 8 on every feature: below the minimum there is
    no figure and no warning, and the status says how many rows there are of how many."""
    t = AccuracyTracker(tmp_path / "m.sqlite", MonitorSettings(window_s=60))
    t.register("1", "classifier", [0, 1], REFERENCE)
    bins = FeatureBins(REFERENCE)
    bins.add(rows(np.repeat(TRAIN[:1], 15, axis=0)))
    t.add_bins("1", bins.take() or [], now=1000.0)
    version = t.summary(now=1001.0)["versions"]["1"]
    assert version["drift"] is None
    assert version["drift_status"] == "not enough rows (15 of 200)"
    bins.add(rows(TRAIN[:185]))
    t.add_bins("1", bins.take() or [], now=1002.0)
    version = t.summary(now=1003.0)["versions"]["1"]
    assert version["drift"]["rows"] == 200 and version["drift_status"] == "ok"
