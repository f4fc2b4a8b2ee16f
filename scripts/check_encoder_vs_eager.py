#!/usr/bin/env python3
"""The native encoder against plain PyTorch eager at real model shapes.

For each shape, writes a random sentence-transformers checkpoint (safetensors
written by hand, the bert-base-chinese vocabulary from tests/data, mean
pooling, optional Dense, Normalize), runs `embeval tokenize` and `embeval
embed` on a text file, then recomputes every vector one text at a time (no
padding) with torch.nn.functional written from transformers' BertModel and
sentence-transformers' Pooling / Dense / Normalize, on embeval's token ids
(tokenizer parity is tested on its own against Hugging Face's ids). Prints
the minimum cosine per shape and fails below --min-cosine (0.99999, the
bar for fp32).

The xlmr shape is an XLM-R checkpoint (bge-m3's family at a small size):
model_type xlm-roberta, positions numbered from pad_token_id + 1 as
transformers' create_position_ids_from_input_ids does, one token type,
layer_norm_eps 1e-5, and a SentencePiece tokenizer trained here on the
texts (needs python3-sentencepiece).

Needs Debian's python3-torch: run with /usr/bin/python3.

  /usr/bin/python3 scripts/check_encoder_vs_eager.py [--shapes bge_small,bert_base,conan,xlmr] \\
      [--texts tests/data/checkpoints/texts.jsonl] [--embeval build/embeval] [--work /tmp/embeval-check]

With --model DIR it checks an existing BERT folder instead (mean pooling and
Normalize, no Dense; float16 or float32 safetensors, read here by hand), e.g.
the bundled default model:

  /usr/bin/python3 scripts/check_encoder_vs_eager.py --model models/embeval-small-zh
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# hidden, layers, heads, ffn, dense_out (0: none)
SHAPES = {"bge_small": (512, 4, 8, 2048, 0), "bert_base": (768, 12, 12, 3072, 0), "conan": (1024, 24, 16, 4096, 1792),
          "xlmr": (384, 6, 12, 1536, 0)}
VOCAB = 21128
XLMR_PAD, XLMR_EPS = 1, 1e-5


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = a.astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def train_sentencepiece(d, texts):
    """sentencepiece.bpe.model (a unigram model, as XLM-R's is) trained on the texts; returns the vocab size in
    fairseq ids: <s> <pad> </s> <unk>, pieces shifted by one, <mask>."""
    import sentencepiece as spm
    corpus = os.path.join(d, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(t.replace("\n", " ") + "\n")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(d, "spm"), vocab_size=2000,
                                   hard_vocab_limit=False, model_type="unigram", character_coverage=0.9995,
                                   num_threads=1, minloglevel=2)
    os.rename(os.path.join(d, "spm.model"), os.path.join(d, "sentencepiece.bpe.model"))
    os.remove(os.path.join(d, "spm.vocab"))
    os.remove(corpus)
    json.dump({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512},
              open(os.path.join(d, "tokenizer_config.json"), "w"))
    return spm.SentencePieceProcessor(model_file=os.path.join(d, "sentencepiece.bpe.model")).get_piece_size() + 2


def make_checkpoint(d, hidden, layers, heads, ffn, dense_out, seed, texts, xlmr=False):
    rng = np.random.default_rng(seed)
    w = {}

    def add(name, shape, std, mean=0.0):
        w[name] = rng.standard_normal(shape, dtype=np.float32) * std + mean

    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    vocab = train_sentencepiece(d, texts) if xlmr else VOCAB
    positions = 514 if xlmr else 512  # XLM-R: 512 tokens after pad_token_id + 1
    add("embeddings.word_embeddings.weight", (vocab, hidden), 1.0)
    add("embeddings.position_embeddings.weight", (positions, hidden), 0.5)
    add("embeddings.token_type_embeddings.weight", (1 if xlmr else 2, hidden), 0.5)
    add("embeddings.LayerNorm.weight", (hidden,), 0.1, 1.0)
    add("embeddings.LayerNorm.bias", (hidden,), 0.1)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for m in ("query", "key", "value"):
            add(p + f"attention.self.{m}.weight", (hidden, hidden), hidden ** -0.5)
            add(p + f"attention.self.{m}.bias", (hidden,), 0.1)
        add(p + "attention.output.dense.weight", (hidden, hidden), hidden ** -0.5)
        add(p + "attention.output.dense.bias", (hidden,), 0.1)
        add(p + "attention.output.LayerNorm.weight", (hidden,), 0.1, 1.0)
        add(p + "attention.output.LayerNorm.bias", (hidden,), 0.1)
        add(p + "intermediate.dense.weight", (ffn, hidden), hidden ** -0.5)
        add(p + "intermediate.dense.bias", (ffn,), 0.1)
        add(p + "output.dense.weight", (hidden, ffn), ffn ** -0.5)
        add(p + "output.dense.bias", (hidden,), 0.1)
        add(p + "output.LayerNorm.weight", (hidden,), 0.1, 1.0)
        add(p + "output.LayerNorm.bias", (hidden,), 0.1)
    write_safetensors(os.path.join(d, "model.safetensors"), w)
    config = {"model_type": "bert", "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": ffn, "max_position_embeddings": positions,
              "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0}
    if xlmr:
        config.update(model_type="xlm-roberta", type_vocab_size=1, layer_norm_eps=XLMR_EPS, pad_token_id=XLMR_PAD)
    else:
        shutil.copy(os.path.join(ROOT, "tests/data/checkpoints/tiny-mean-dense-normalize/vocab.txt"), d)
    json.dump(config, open(os.path.join(d, "config.json"), "w"))
    json.dump({"max_seq_length": 512, "do_lower_case": False}, open(os.path.join(d, "sentence_bert_config.json"), "w"))
    json.dump({"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True},
              open(os.path.join(d, "1_Pooling/config.json"), "w"))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    dense = None
    if dense_out:
        os.makedirs(os.path.join(d, "2_Dense"), exist_ok=True)
        dense = {"linear.weight": rng.standard_normal((dense_out, hidden), dtype=np.float32) * hidden ** -0.5,
                 "linear.bias": rng.standard_normal((dense_out,), dtype=np.float32) * 0.1}
        write_safetensors(os.path.join(d, "2_Dense/model.safetensors"), dense)
        json.dump({"in_features": hidden, "out_features": dense_out, "bias": True,
                   "activation_function": "torch.nn.modules.linear.Identity"},
                  open(os.path.join(d, "2_Dense/config.json"), "w"))
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    json.dump(modules, open(os.path.join(d, "modules.json"), "w"))
    return {k: torch.from_numpy(v) for k, v in w.items()}, (
        {k: torch.from_numpy(v) for k, v in dense.items()} if dense else None)


def read_safetensors(path):
    """Tensors of a .safetensors file as float32 (the format: u64 header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F16": np.float16, "F32": np.float32, "BF16": None}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = e["data_offsets"]
        if kinds.get(e["dtype"]) is None:
            raise SystemExit(f"{path}: {name}: dtype {e['dtype']} not handled here")
        a = np.frombuffer(data[b0:b1], dtype=kinds[e["dtype"]]).reshape(e["shape"])
        out[name[5:] if name.startswith("bert.") else name] = torch.from_numpy(a.astype(np.float32))
    return out


def check_folder(a, text_file, n_texts):
    """embeval embed on a folder against the eager forward on embeval's ids."""
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    w = read_safetensors(os.path.join(a.model, "model.safetensors"))
    ids_file, npy = os.path.join(a.work, "model.ids.jsonl"), os.path.join(a.work, "model.npy")
    subprocess.run([a.embeval, "tokenize", "--model", a.model, "--input", text_file, "--output", ids_file], check=True,
                   capture_output=True)
    subprocess.run([a.embeval, "embed", "--model", a.model, "--input", text_file, "--output", npy], check=True,
                   capture_output=True)
    got = torch.from_numpy(np.load(npy)).double()
    worst = 1.0
    with torch.inference_mode():
        for i, line in enumerate(open(ids_file)):
            want = eager_vector(w, None, json.loads(line)["input_ids"], cfg["num_hidden_layers"],
                                cfg["num_attention_heads"]).double()
            worst = min(worst, float(torch.dot(want, got[i]) / (want.norm() * got[i].norm())))
    ok = worst >= a.min_cosine
    print(f"{a.model} ({cfg['hidden_size']} x {cfg['num_hidden_layers']}, {n_texts} texts): min cosine {worst:.10f} "
          f"(1 - cos {1 - worst:.1e}) {'ok' if ok else 'BELOW ' + str(a.min_cosine)}", flush=True)
    return ok


def eager_vector(w, dense, ids, layers, heads, xlmr=False):
    t = len(ids)
    h = w["embeddings.word_embeddings.weight"].shape[1]
    d = h // heads
    eps = XLMR_EPS if xlmr else 1e-12
    x_ids = torch.tensor([ids])
    # XLM-R (create_position_ids_from_input_ids): non-pad tokens count from pad_token_id + 1.
    pos = torch.cumsum(x_ids.ne(XLMR_PAD).long(), 1) * x_ids.ne(XLMR_PAD).long() + XLMR_PAD if xlmr else torch.arange(t)[None]
    x = (F.embedding(x_ids, w["embeddings.word_embeddings.weight"]) + w["embeddings.token_type_embeddings.weight"][0]
         + F.embedding(pos, w["embeddings.position_embeddings.weight"]))
    x = F.layer_norm(x, (h,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(layers):
        g = lambda s: w[f"encoder.layer.{i}.{s}"]  # noqa: E731
        heads_of = lambda y: y.view(1, t, heads, d).transpose(1, 2)  # noqa: E731
        q = heads_of(F.linear(x, g("attention.self.query.weight"), g("attention.self.query.bias")))
        k = heads_of(F.linear(x, g("attention.self.key.weight"), g("attention.self.key.bias")))
        v = heads_of(F.linear(x, g("attention.self.value.weight"), g("attention.self.value.bias")))
        c = torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d), -1), v)
        c = c.transpose(1, 2).reshape(1, t, h)
        x = F.layer_norm(F.linear(c, g("attention.output.dense.weight"), g("attention.output.dense.bias")) + x, (h,),
                         g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"), eps)
        y = F.linear(F.gelu(F.linear(x, g("intermediate.dense.weight"), g("intermediate.dense.bias"))),
                     g("output.dense.weight"), g("output.dense.bias"))
        x = F.layer_norm(y + x, (h,), g("output.LayerNorm.weight"), g("output.LayerNorm.bias"), eps)
    v = x[0].mean(0)
    if dense is not None:
        v = F.linear(v, dense["linear.weight"], dense["linear.bias"])
    return v / v.norm()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bge_small,bert_base,conan,xlmr")
    ap.add_argument("--texts", default=os.path.join(ROOT, "tests/data/checkpoints/texts.jsonl"))
    ap.add_argument("--embeval", default=os.path.join(ROOT, "build/embeval"))
    ap.add_argument("--work", default="/tmp/embeval-check")
    ap.add_argument("--min-cosine", type=float, default=0.99999)
    ap.add_argument("--model", default="", help="check this BERT folder instead of random shapes")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    # Plain-string texts only (the reference file also holds non-string fuzz rows),
    # plus three long ones that reach the 512-token limit.
    texts = []
    for line in open(a.texts, encoding="utf-8"):
        t = json.loads(line).get("text")
        if isinstance(t, str):
            texts.append(t)
    joined = "".join(texts)
    texts += [joined[:300], joined[:700], joined[:2000]]
    text_file = os.path.join(a.work, "texts.jsonl")
    with open(text_file, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if a.model:
        sys.exit(0 if check_folder(a, text_file, len(texts)) else 1)
    failed = False
    for seed, name in enumerate(a.shapes.split(",")):
        hidden, layers, heads, ffn, dense_out = SHAPES[name]
        d = os.path.join(a.work, name)
        xlmr = name == "xlmr"
        w, dense = make_checkpoint(d, hidden, layers, heads, ffn, dense_out, seed, texts, xlmr)
        ids_file, npy = os.path.join(a.work, name + ".ids.jsonl"), os.path.join(a.work, name + ".npy")
        subprocess.run([a.embeval, "tokenize", "--model", d, "--input", text_file, "--output", ids_file], check=True,
                       capture_output=True)
        subprocess.run([a.embeval, "embed", "--model", d, "--input", text_file, "--output", npy], check=True,
                       capture_output=True)
        got = torch.from_numpy(np.load(npy)).double()
        worst = 1.0
        with torch.inference_mode():
            for i, line in enumerate(open(ids_file)):
                want = eager_vector(w, dense, json.loads(line)["input_ids"], layers, heads, xlmr).double()
                worst = min(worst, float(torch.dot(want, got[i]) / (want.norm() * got[i].norm())))
        ok = worst >= a.min_cosine
        failed |= not ok
        print(f"{name} ({'XLM-R, ' if xlmr else ''}{hidden} x {layers}, FFN {ffn}{f', Dense -> {dense_out}' if dense_out else ''}): "
              f"{len(texts)} texts, min cosine {worst:.10f} (1 - cos {1 - worst:.1e}) {'ok' if ok else 'BELOW ' + str(a.min_cosine)}", flush=True)
        shutil.rmtree(d)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
