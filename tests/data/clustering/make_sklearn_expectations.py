"""Dev-time generator of the sklearn expectations used by the clustering tests.

Not run by the tests (they need no Python). Run with numpy 1.24 + sklearn 1.2.1:
    /usr/bin/python3 tests/data/clustering/make_sklearn_expectations.py
It writes minibatch_kmeans_sklearn.json next to itself and prints the
plugin-level v_measures that tests/test_clustering_parity.cpp hard-codes.

Data are drawn from np.random.RandomState with random_sample/randint only,
which tasks/metrics/numpy_random.h reproduces bit for bit, so the C++ tests
rebuild the same float32 inputs without reading any vectors.
"""
import json
import os
import sys

import numpy as np
import sklearn
import sklearn.cluster
import sklearn.cluster._kmeans as K
import sklearn.metrics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def make_blobs(seed, n, dim, k_true, spread, noise):
    """X[i] = spread * U(0,1)^dim center of a random class + noise * (U(0,1) - 0.5), in float64, then float32."""
    rs = np.random.RandomState(seed)
    centers = rs.random_sample((k_true, dim)) * spread
    y = rs.randint(0, k_true, n)
    u = rs.random_sample((n, dim))
    return (centers[y] + (u - 0.5) * noise).astype(np.float32), y


# sklearn 1.3-1.6's _kmeans_plusplus with unit sample weights, transcribed
# (its only change to the random stream: the first center is
# random_state.choice(n, p=w / w.sum()) instead of random_state.randint(n)).
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from sklearn_releases import kmeans_plusplus_1_3 as kmeans_plusplus_sklearn_1_3  # noqa: E402


ORIGINAL_PP = K._kmeans_plusplus


def fit(X, protocol, **kw):
    K._kmeans_plusplus = ORIGINAL_PP if protocol == "sklearn_1_2" else kmeans_plusplus_sklearn_1_3
    try:
        m = sklearn.cluster.MiniBatchKMeans(**{"n_init": "auto", **kw})
        m.fit(X)
    finally:
        K._kmeans_plusplus = ORIGINAL_PP
    return m


# (name, data, params, protocol). Seeds for the fit: RandomState(fit_seed) passed as random_state.
CASES = [
    ("small_batch_is_all", dict(seed=1, n=100, dim=16, k_true=6, spread=1.0, noise=0.8),
     dict(n_clusters=6, batch_size=500), "sklearn_1_2", 42),
    ("init_subsample_many_steps", dict(seed=2, n=3000, dim=32, k_true=12, spread=1.0, noise=1.5),
     dict(n_clusters=20, batch_size=500), "sklearn_1_2", 42),
    ("many_small_clusters_reassigned", dict(seed=3, n=400, dim=8, k_true=5, spread=1.0, noise=1.0),
     dict(n_clusters=16, batch_size=20), "sklearn_1_2", 7),
    # More than half a batch of small clusters: exercises the argsort cap.
    ("reassign_more_than_half_batch", dict(seed=5, n=200, dim=6, k_true=4, spread=1.0, noise=1.0),
     dict(n_clusters=12, batch_size=10), "sklearn_1_2", 7),
    ("no_early_stop", dict(seed=4, n=150, dim=4, k_true=3, spread=1.0, noise=2.0),
     dict(n_clusters=5, batch_size=40, max_iter=20, max_no_improvement=None), "sklearn_1_2", 0),
    # Edge cases: all rows identical (every distance ties), one cluster, one point per cluster.
    # With identical rows every batch inertia is float32 rounding noise, so where the
    # smoothed inertia stops improving (n_steps_, hence the draws consumed) depends on
    # sklearn's float32 sums and OpenMP thread count: that case checks labels only.
    ("identical_points", dict(seed=6, n=50, dim=5, k_true=1, spread=1.0, noise=0.0),
     dict(n_clusters=3, batch_size=20), "sklearn_1_2", 1),
    ("one_cluster", dict(seed=7, n=60, dim=3, k_true=2, spread=1.0, noise=1.0),
     dict(n_clusters=1, batch_size=500), "sklearn_1_2", 2),
    ("k_equals_n", dict(seed=8, n=12, dim=4, k_true=3, spread=1.0, noise=1.0),
     dict(n_clusters=12, batch_size=500), "sklearn_1_2", 3),
    # Several inits: the best by inertia on the validation subset is kept.
    ("three_inits", dict(seed=9, n=600, dim=10, k_true=5, spread=1.0, noise=1.5),
     dict(n_clusters=7, batch_size=100, n_init=3), "sklearn_1_2", 5),
    ("sklearn_1_3_first_center", dict(seed=2, n=3000, dim=32, k_true=12, spread=1.0, noise=1.5),
     dict(n_clusters=20, batch_size=500), "sklearn_1_3", 42),
    ("sklearn_1_3_small", dict(seed=1, n=100, dim=16, k_true=6, spread=1.0, noise=0.8),
     dict(n_clusters=6, batch_size=500), "sklearn_1_3", 42),
]


def kmeans_cases():
    out = []
    for name, data, params, protocol, fit_seed in CASES:
        X, y = make_blobs(**data)
        rs = np.random.RandomState(fit_seed)
        m = fit(X, protocol, random_state=rs, **params)
        out.append({
            "name": name,
            "data": data,
            "params": {k: (-1 if v is None else v) for k, v in params.items()},
            "protocol": protocol,
            "fit_seed": fit_seed,
            "n_steps": int(m.n_steps_),
            "inertia": float(m.inertia_),
            "labels": "".join(chr(ord("A") + int(l)) for l in m.labels_),
            "v_measure_vs_blobs": float(sklearn.metrics.v_measure_score(y, m.labels_)),
            # The generator's next draw: checks that the fit consumed exactly sklearn's draws.
            "next_random_sample": float(rs.random_sample()),
            "steps_are_rounding_noise": name == "identical_points",
        })
        print(name, m.n_steps_, m.inertia_, np.bincount(m.labels_), file=sys.stderr)
    return out


def task_vectors(sets, seed, dim, spread, noise):
    """One vector per distinct text, in first-appearance order over the sets:
    spread * U(0,1)^dim center of its first label (labels numbered in
    first-appearance order) + noise * (U(0,1) - 0.5)."""
    label_id, text_label = {}, {}
    for s in sets:
        for t, l in zip(s["sentences"], s["labels"]):
            label_id.setdefault(str(l), len(label_id))
            text_label.setdefault(t, label_id[str(l)])
    rs = np.random.RandomState(seed)
    centers = rs.random_sample((len(label_id), dim)) * spread
    vecs = {}
    for t, l in text_label.items():
        u = rs.random_sample(dim)
        vecs[t] = (centers[l] + (u - 0.5) * noise).astype(np.float32)
    return vecs


def mteb_clustering(task_dir, vecs, protocol="sklearn_1_2"):
    """MTEB 1.39.7's AbsTaskClustering: per set, np.random.seed(42) (Evaluator.__init__),
    MiniBatchKMeans(n_clusters=len(set(labels)), batch_size, n_init='auto') on the global RandomState."""
    spec = json.load(open(os.path.join(task_dir, "task.json")))
    sets = [json.loads(l) for l in open(os.path.join(task_dir, "test.jsonl"))]
    v = []
    for s in sets:
        np.random.seed(42)
        X = np.asarray([vecs[t] for t in s["sentences"]], dtype=np.float32)
        m = fit(X, protocol, n_clusters=len(set(s["labels"])), batch_size=spec.get("batch_size", 500))
        v.append(sklearn.metrics.cluster.v_measure_score(s["labels"], m.labels_))
    return v, float(np.mean(v)), float(np.std(v))


def main():
    print("sklearn", sklearn.__version__, "numpy", np.__version__, file=sys.stderr)
    with open(os.path.join(HERE, "minibatch_kmeans_sklearn.json"), "w") as f:
        json.dump({"generator": "tests/data/clustering/make_sklearn_expectations.py",
                   "sklearn": sklearn.__version__, "numpy": np.__version__, "cases": kmeans_cases()}, f, indent=1)
        f.write("\n")
    for task, seed, dim in (("ThuNewsClusteringS2S/mini", 11, 24), ("ThuNewsClusteringS2S", 12, 48)):
        d = os.path.join(ROOT, "datasets", "cmteb", task)
        sets = [json.loads(l) for l in open(os.path.join(d, "test.jsonl"))]
        vecs = task_vectors(sets, seed, dim, 1.0, 2.5)
        print(task, "seed", seed, "dim", dim)
        print("  sklearn_1_2", repr(mteb_clustering(d, vecs)))


if __name__ == "__main__":
    main()
