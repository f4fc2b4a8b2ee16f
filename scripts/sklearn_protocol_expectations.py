#!/usr/bin/python3
"""MTEB 1.39.7's Classification and Clustering protocols, run with the
installed numpy/scikit-learn on the synthetic tasks (tests/data/synthetic),
printed as JSON: the expected values of tests/test_synthetic_parity.cpp.

    /usr/bin/python3 scripts/sklearn_protocol_expectations.py tests/data/synthetic > expected.json
    /usr/bin/python3 scripts/sklearn_protocol_expectations.py --release 1.4 tests/data/synthetic > expected_1.4.json

--release 1.3 / 1.4 runs the installed scikit-learn 1.2.1 patched with those
releases' changes to k-means++ and the logistic loss (scripts/sklearn_releases.py):
the expected values of embeval's sklearn-1.3 and sklearn-1.4 protocols.

Protocols, as MTEB's code runs them:
- Classification: one index array over the training split; before each of
  n_experiments, np.random.seed(42) (a new Evaluator) and np.random.shuffle of
  that same array; the first samples_per_label indices per label in shuffled
  order; LogisticRegression(random_state=42, n_jobs=-1, max_iter=100); scores
  on the whole test split; ap only when the training sample is binary.
- Clustering: per set, np.random.seed(42), MiniBatchKMeans(n_clusters=
  distinct labels, batch_size, n_init="auto") fit, v_measure_score.
"""
import json
import sys
from collections import defaultdict

import numpy as np
import sklearn
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklearn_releases  # noqa: E402
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, v_measure_score


def load(root):
    vec = {}
    import glob
    for line in (l for f in sorted(glob.glob(f"{root}/*/vectors.jsonl")) for l in open(f)):
        d = json.loads(line)
        vec[d["text"]] = np.array(d["embedding"], dtype=np.float32)
    return vec


def rows(path):
    return [json.loads(line) for line in open(path)]


def classification(root, name, vec):
    spec = json.load(open(f"{root}/{name}/task.json"))
    tr, te = rows(f"{root}/{name}/train.jsonl"), rows(f"{root}/{name}/test.jsonl")
    X = np.stack([vec[r["text"]] for r in tr])
    y = np.array([r["label"] for r in tr])
    Xt = np.stack([vec[r["text"]] for r in te])
    yt = np.array([r["label"] for r in te])
    idxs = np.arange(len(y))
    experiments = []
    for _ in range(spec["n_experiments"]):
        np.random.seed(42)
        np.random.shuffle(idxs)
        taken, sel = defaultdict(int), []
        for i in idxs:
            if taken[y[i]] < spec["samples_per_label"]:
                sel.append(i)
                taken[y[i]] += 1
        clf = LogisticRegression(random_state=42, n_jobs=-1, max_iter=100).fit(X[sel], y[sel])
        pred = clf.predict(Xt)
        s = {"accuracy": accuracy_score(yt, pred), "f1": f1_score(yt, pred, average="macro"),
             "f1_weighted": f1_score(yt, pred, average="weighted")}
        if len(np.unique(y[sel])) == 2:
            s["ap"] = average_precision_score(yt, pred)
            s["ap_weighted"] = average_precision_score(yt, pred, average="weighted")
        experiments.append(s)
    out = {k: float(np.mean([e[k] for e in experiments])) for k in experiments[0]}
    out["scores_per_experiment"] = experiments
    return out


def clustering(root, name, vec):
    spec = json.load(open(f"{root}/{name}/task.json"))
    v = []
    for s in rows(f"{root}/{name}/test.jsonl"):
        X = np.stack([vec[t] for t in s["sentences"]])
        np.random.seed(42)
        km = MiniBatchKMeans(n_clusters=len(set(s["labels"])), batch_size=spec["batch_size"], n_init="auto").fit(X)
        v.append(v_measure_score(s["labels"], km.labels_))
    return {"v_measure": float(np.mean(v)), "v_measure_std": float(np.std(v)), "v_measures": v}


def main(root, release):
    import warnings
    warnings.simplefilter("ignore")
    vec = load(root)
    patched = "" if release == "1.2" else f", patched to {release}'s numerics (scripts/sklearn_releases.py)"
    with sklearn_releases.release(release):
        out = {"produced_by": f"scripts/sklearn_protocol_expectations.py with numpy {np.__version__}, "
                              f"scikit-learn {sklearn.__version__}{patched}",
               "SynthBinary": classification(root, "SynthBinary", vec),
               "SynthMulti": classification(root, "SynthMulti", vec),
               "SynthClusters": clustering(root, "SynthClusters", vec)}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    args = sys.argv[1:]
    release = "1.2"
    if args[:1] == ["--release"]:
        release, args = args[1], args[2:]
    sklearn_releases.self_check()
    main(args[0] if args else "tests/data/synthetic", release)
