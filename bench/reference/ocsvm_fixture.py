"""Scores of scikit-learn's OneClassSVM on the small fixture of crates/vigil-models/src/detectors/ocsvm.rs
(test `scores_match_scikit_learn`): 40 points on two blobs, nu 0.5, gamma 0.5, tol 1e-6.
Prints -decision_function (vigil's score) of the five test points.

    python3 bench/reference/ocsvm_fixture.py
"""
import numpy as np
import sklearn
from sklearn.svm import OneClassSVM

i = np.arange(40, dtype=np.float32)
t = i * np.float32(0.61)
centre = np.where(i % 2 == 0, 0.0, 2.0).astype(np.float32)
train = np.stack([centre + np.sin(t) * 0.5, centre + np.cos(t * np.float32(1.7)) * 0.5], 1)
test = np.array([[0, 0], [1, 1], [2, 2], [4, -1], [0.3, 0.2]], dtype=np.float32)
model = OneClassSVM(nu=0.5, gamma=0.5, tol=1e-6).fit(train.astype(np.float64))
print("scikit-learn", sklearn.__version__)
print(", ".join(f"{v:.6f}" for v in -model.decision_function(test.astype(np.float64))))
