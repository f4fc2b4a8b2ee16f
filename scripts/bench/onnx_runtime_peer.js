#!/usr/bin/env node
// ONNX Runtime peer of scripts/bench_quant_vs_peers.py: runs an exported BERT
// (inputs input_ids, attention_mask int64 [batch, seq]; output
// last_hidden_state) on onnxruntime-node's CPU execution provider and times it.
//
//   node scripts/bench/onnx_runtime_peer.js MODEL.onnx IDS.bin MASK.bin BATCH SEQ THREADS MIN_SECONDS [DUMP.bin] [ROWS]
//
// IDS.bin / MASK.bin: int64 little-endian [BATCH, SEQ] (the benchmark batch).
// Times the first ROWS rows (default BATCH) after one warm-up run, for at
// least MIN_SECONDS; writes that warm-up run's last hidden state (float32
// [ROWS, SEQ, hidden]) to DUMP.bin when given, and prints one JSON line:
// {"ort": version, "rows", "seconds_per_run", "runs", "threads", "output_dims"}.
// Session: intraOpNumThreads THREADS, interOpNumThreads 1, sequential
// execution, graphOptimizationLevel "all" (ORT's fusions: LayerNorm, GELU,
// MatMulIntegerToFloat / DynamicQuantizeMatMul, attention where it matches).
// onnxruntime-node comes from npm (installed by the driver under
// scripts/bench/node_modules with ONNXRUNTIME_NODE_INSTALL=skip: the CPU
// binaries ship in the package; the install script only fetches CUDA ones).
'use strict';

const fs = require('fs');
const path = require('path');

async function main() {
  const [model, idsFile, maskFile, batchS, seqS, threadsS, minS, dump, rowsS] = process.argv.slice(2);
  if (!minS) {
    console.error('usage: onnx_runtime_peer.js MODEL.onnx IDS.bin MASK.bin BATCH SEQ THREADS MIN_SECONDS [DUMP.bin] [ROWS]');
    process.exit(2);
  }
  const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
  const batch = Number(batchS), seq = Number(seqS), threads = Number(threadsS), minSeconds = Number(minS);
  const rows = rowsS ? Number(rowsS) : batch;
  const read = (f) => {
    const b = fs.readFileSync(f);
    const all = new BigInt64Array(b.buffer, b.byteOffset, b.byteLength / 8);
    if (all.length !== batch * seq) throw new Error(`${f}: ${all.length} values, want ${batch} x ${seq}`);
    return all.slice(0, rows * seq);
  };
  const ids = new ort.Tensor('int64', read(idsFile), [rows, seq]);
  const mask = new ort.Tensor('int64', read(maskFile), [rows, seq]);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = { input_ids: ids, attention_mask: mask };
  const first = await session.run(feeds);
  const out = first.last_hidden_state;
  if (dump) fs.writeFileSync(dump, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    await session.run(feeds);
    runs += 1;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (elapsed < minSeconds);
  console.log(JSON.stringify({ ort: ort.env.versions.node || ort.env.versions.common, rows, seconds_per_run: elapsed / runs,
                               runs, threads, output_dims: out.dims }));
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
