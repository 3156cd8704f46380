"""Models as values from Python: bytes, model directories and pickles round trip; the GIL is
released while a model trains, and two fits at once equal the same fits one after another."""

from __future__ import annotations

import pickle
import tarfile
import io
import threading
import time

import numpy as np
import pytest

import vigil
from conftest import QUICK_CONFIGS


@pytest.fixture(scope="module")
def usad(series):
    train, _, _ = series
    return vigil.Detector("usad", seed=1, **QUICK_CONFIGS["usad"]).fit(train)


def test_bytes_round_trip_to_the_same_bytes_and_scores(usad, series):
    _, test, _ = series
    data = usad.to_bytes()
    again = vigil.Detector.from_bytes(data)
    assert again.to_bytes() == data
    assert again.score(test).total.tobytes() == usad.score(test).total.tobytes()
    # The bytes are a tar archive of the model directory, manifest first.
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert names[0] == "manifest.json" and "calibration.f64" in names


def test_a_model_directory_and_a_pickle_round_trip(usad, series, tmp_path):
    _, test, _ = series
    usad.save(tmp_path / "model")
    loaded = vigil.Detector.load(tmp_path / "model")
    assert loaded.to_bytes() == usad.to_bytes()
    assert loaded.get_params() == vigil.Detector.from_bytes(usad.to_bytes()).get_params()
    unpickled = pickle.loads(pickle.dumps(usad))
    assert unpickled.score(test).total.tobytes() == usad.score(test).total.tobytes()
    assert pickle.loads(pickle.dumps(vigil.Detector("pca"))).model_ is None


def test_the_model_describes_itself(usad):
    manifest = usad.manifest
    assert manifest["detector"] == "usad" and manifest["config"]["window"] == 10
    assert usad.metric_names == ["m0", "m1", "m2"] and usad.window == 10
    assert manifest["threshold"]["method"] == "auto"
    assert len(usad.calibration_scores_) == 400
    assert "usad" in repr(usad) and "fitted on 3 metrics" in repr(usad)


def test_dataframe_like_columns_name_the_metrics(series):
    train, test, _ = series

    class Frame:  # what the package reads of a pandas DataFrame: columns and values
        def __init__(self, values, columns):
            self.values, self.columns = values, columns

        def __array__(self, dtype=None, copy=None):
            return np.asarray(self.values, dtype=dtype)

    detector = vigil.Detector("pca", window=5).fit(Frame(train, ["cpu", "mem", "net"]))
    assert detector.metric_names == ["cpu", "mem", "net"]
    assert len(detector.decision_function(Frame(test, ["cpu", "mem", "net"]))) == 200
    with pytest.raises(ValueError, match=r"same names in another order"):
        detector.score(Frame(test, ["mem", "cpu", "net"]))


def test_parameters_follow_scikit_learns_protocol():
    detector = vigil.Detector("usad", window=7, seed=4)
    assert detector.get_params() == {
        "name": "usad", "seed": 4, "normaliser": "minmax", "missing": "error",
        "calibration_share": 0.0, "threshold": "auto", "window": 7,
    }
    detector.set_params(window=9, seed=5)
    assert detector.config == {"window": 9} and detector.seed == 5
    with pytest.raises(ValueError, match=r"the usad detector has no parameter `windw`; its config keys: .*window"):
        detector.set_params(windw=3)
    # Another detector keeps only the keys it has too.
    detector.set_params(name="iforest", trees=50)
    assert detector.config == {"window": 9, "trees": 50}


def test_a_calibration_share_holds_out_the_end_of_training(series):
    train, _, _ = series
    detector = vigil.Detector("pca", window=5, calibration_share=0.25).fit(train)
    assert len(detector.calibration_scores_) == 100
    assert vigil.Detector.from_bytes(detector.to_bytes()).calibration_share == 0.25


def test_concurrent_fits_equal_sequential_ones(series):
    train, test, _ = series
    config = dict(QUICK_CONFIGS["rnn-vae"], epochs=2)
    sequential = [vigil.Detector("rnn-vae", seed=s, **config).fit(train).score(test).total for s in (1, 2)]
    results = {}

    def fit(seed):
        results[seed] = vigil.Detector("rnn-vae", seed=seed, **config).fit(train).score(test).total

    threads = [threading.Thread(target=fit, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[1].tobytes() == sequential[0].tobytes()
    assert results[2].tobytes() == sequential[1].tobytes()


def test_training_releases_the_gil(series):
    """While a fit runs in another thread, this one keeps running: the longest pause between
    its steps is a small part of the fit. (Were the GIL held, this thread would stand still for
    the whole native call, one pause as long as the fit.)"""
    train, _, _ = series
    config = dict(QUICK_CONFIGS["rnn-vae"], epochs=8)
    fitting = threading.Event()
    took = {}

    def fit():
        fitting.set()
        started = time.perf_counter()
        vigil.Detector("rnn-vae", seed=1, **config).fit(train)
        took["fit"] = time.perf_counter() - started

    thread = threading.Thread(target=fit)
    thread.start()
    fitting.wait()
    longest, last = 0.0, time.perf_counter()
    while thread.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    thread.join()
    assert longest < took["fit"] / 3, f"this thread stood still {longest:.3f} s of a {took['fit']:.3f} s fit"


def test_any_memory_layout_gives_the_scores_of_a_row_major_array(series):
    train, test, _ = series
    detector = vigil.Detector("pca", window=5).fit(train)
    expected = detector.decision_function(test).tobytes()
    assert detector.decision_function(np.asfortranarray(test)).tobytes() == expected
    assert detector.decision_function(np.ascontiguousarray(test.T).T).tobytes() == expected
    assert detector.decision_function(test.astype(">f8")).tobytes() == expected
    reversed_twice = np.ascontiguousarray(test[:, ::-1])[:, ::-1]  # a strided view
    assert detector.decision_function(reversed_twice).tobytes() == expected
    fortran_fit = vigil.Detector("pca", window=5).fit(np.asfortranarray(train))
    assert fortran_fit.decision_function(test).tobytes() == expected
