#!/usr/bin/python3
"""Writes small synthetic Classification and Clustering tasks with fixed
vectors (tests/data/synthetic/), for parity checks of the random protocols
against scikit-learn on machines where it is installed. Deterministic:
numpy's legacy RandomState, whose stream is stable across numpy versions.

    /usr/bin/python3 scripts/make_synthetic_tasks.py tests/data/synthetic
"""
import json
import os
import sys

import numpy as np


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def gaussian_blobs(rs, n, centers, spread):
    labels = rs.randint(0, len(centers), n)
    x = centers[labels] + spread * rs.standard_normal((n, centers.shape[1]))
    return x.astype(np.float32), labels


def classification(root, name, n_classes, dim, n_train, n_test, spread, samples_per_label, seed, unseen_every=0):
    rs = np.random.RandomState(seed)
    centers = rs.standard_normal((n_classes, dim))
    xtr, ytr = gaussian_blobs(rs, n_train, centers, spread)
    xte, yte = gaussian_blobs(rs, n_test, centers, spread)
    if unseen_every:
        # A test label that never occurs in training (as in small samples of
        # real tasks): never predicted, yet counted by macro F1.
        yte[::unseen_every] = n_classes
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    write_jsonl(os.path.join(d, "train.jsonl"), ({"text": f"{name}-tr{i}", "label": int(y)} for i, y in enumerate(ytr)))
    write_jsonl(os.path.join(d, "test.jsonl"), ({"text": f"{name}-te{i}", "label": int(y)} for i, y in enumerate(yte)))
    json.dump({"name": name, "type": "Classification", "language": "zh", "main_score": "accuracy",
               "samples_per_label": samples_per_label, "n_experiments": 10,
               "notes": f"synthetic: {n_classes} Gaussian classes in {dim} dims, spread {spread}, RandomState({seed})"},
              open(os.path.join(d, "task.json"), "w"), indent=2)
    vecs = [(f"{name}-tr{i}", v) for i, v in enumerate(xtr)] + [(f"{name}-te{i}", v) for i, v in enumerate(xte)]
    return vecs


def clustering(root, name, n_sets, set_sizes, n_clusters, dim, spread, seed):
    rs = np.random.RandomState(seed)
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    rows, vecs = [], []
    for s in range(n_sets):
        centers = rs.standard_normal((n_clusters, dim))
        x, y = gaussian_blobs(rs, set_sizes[s], centers, spread)
        texts = [f"{name}-s{s}-{i}" for i in range(len(y))]
        rows.append({"sentences": texts, "labels": [f"c{int(v)}" for v in y]})
        vecs += list(zip(texts, x))
    write_jsonl(os.path.join(d, "test.jsonl"), rows)
    json.dump({"name": name, "type": "Clustering", "language": "zh", "main_score": "v_measure", "batch_size": 500,
               "notes": f"synthetic: {n_sets} sets of {n_clusters} Gaussian clusters in {dim} dims, spread {spread}, RandomState({seed})"},
              open(os.path.join(d, "task.json"), "w"), indent=2)
    return vecs


def main(root):
    os.makedirs(root, exist_ok=True)
    tasks = {
        "SynthBinary": classification(root, "SynthBinary", 2, 24, 400, 300, 2.0, 16, 1),
        "SynthMulti": classification(root, "SynthMulti", 7, 32, 600, 400, 1.6, 8, 2, unseen_every=40),
        "SynthClusters": clustering(root, "SynthClusters", 3, [150, 400, 1200], 9, 16, 1.1, 3),
    }
    # Each task's vectors beside it, float32 values written with the shortest
    # decimal that round-trips.
    for name, vecs in tasks.items():
        write_jsonl(os.path.join(root, name, "vectors.jsonl"),
                    ({"text": t, "embedding": [float(np.format_float_positional(f, unique=True)) for f in v]}
                     for t, v in vecs))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/synthetic")
