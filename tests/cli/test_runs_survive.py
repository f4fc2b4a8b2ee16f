#!/usr/bin/env python3
"""Runs that survive what real runs meet, checked on the real binary.

1. kill -9: `embeval run` over a multi-task suite is killed with SIGKILL at
   random points of its run (encoding, scoring, between tasks) and, through
   the fault-injection variable EMBEVAL_TEST_KILL_IN_WRITE, inside the
   database write itself; the same command is rerun each time. After every
   kill: PRAGMA integrity_check is ok, no task has two results, every result
   is whole (its scores and timings rows), and the next run skips every task
   recorded before it started. At the end the scores equal an uninterrupted
   run's, exactly.
2. SIGINT / SIGTERM: the run stops with status 128 + signal, says how to
   resume, is marked interrupted, keeps what finished, leaves no claim.
3. Four processes on one database (two models, two processes each) finish
   with every result present once, and no task evaluated by two processes.
4. A full disk (a file-size limit) and a read-only database (as root, run
   as user nobody, for whom the file is read-only): one error line naming
   the file, its content unchanged.

Usage: EMBEVAL=path/to/embeval python3 test_runs_survive.py [--kills N]
Only the standard library; Python's sqlite3 reads the database.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

EMBEVAL = os.environ["EMBEVAL"]
TASKS = "LCQMC-mini,Ocnli-mini,TNews-mini,CMRC2018Retrieval-mini,MedicalDialogueReranking-mini,CLSClusteringS2S-mini"
N_TASKS = len(TASKS.split(","))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def command(db, model="baseline:char-ngram", extra=()):
    return [EMBEVAL, "run", "--model", model, "--suite", "cmteb-mini", "--tasks", TASKS, "--db", db,
            "--latency-samples", "30", *extra]


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return p.returncode, p.stderr


def rows(db, sql):
    """The query's rows; none while the file has no schema yet (a run killed, or
    still busy, before its first transaction committed)."""
    c = sqlite3.connect(db)
    try:
        return c.execute(sql).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        c.close()


def scores(db):
    return dict(rows(db, "SELECT t.name, r.main_score FROM results r JOIN tasks t ON t.id = r.task_id"))


def evaluated(log):
    """Tasks the run evaluated (its progress line gives a score or a failure)."""
    return set(re.findall(r"^\[\d+/\d+\] (\S+) \([A-Za-z]+\): (?!already recorded|being evaluated)", log, re.M))


def skipped(log):
    return set(re.findall(r"^\[\d+/\d+\] (\S+) \([A-Za-z]+\): already recorded, skipped", log, re.M))


def whole(db, what):
    """The database after a kill: intact, no task twice, no result half-written."""
    check(rows(db, "PRAGMA integrity_check") == [("ok",)], f"{what}: integrity_check")
    dup = rows(db, "SELECT model_id, task_id, COUNT(*) FROM results GROUP BY model_id, task_id HAVING COUNT(*) > 1")
    check(not dup, f"{what}: a task recorded twice: {dup}")
    half = rows(db, "SELECT r.id FROM results r WHERE NOT EXISTS (SELECT 1 FROM timings m WHERE m.result_id = r.id) "
                    "OR NOT EXISTS (SELECT 1 FROM scores s WHERE s.result_id = r.id)")
    check(not half, f"{what}: results without their scores or timings: {half}")


def kill_minus_nine(work, kills):
    ref = os.path.join(work, "ref.sqlite")
    t0 = time.monotonic()
    rc, log = run(command(ref))
    full = time.monotonic() - t0
    check(rc == 0, f"uninterrupted run failed: {log}")
    reference = scores(ref)
    check(len(reference) == N_TASKS, f"reference has {len(reference)} results")

    rng = random.Random(1234)
    killed = in_write = attempts = rounds = 0
    db = os.path.join(work, "crash0.sqlite")
    # Kill until `kills` processes died of SIGKILL; a database whose suite is
    # complete is checked against the reference and a fresh one started, so
    # the kills keep landing in real work.
    while killed < kills and attempts < 4 * kills:
        attempts += 1
        before = set(scores(db)) if os.path.exists(db) else set()
        env = dict(os.environ)
        self_kill = attempts % 4 == 0
        if self_kill:  # the process kills itself inside its n-th result write
            env["EMBEVAL_TEST_KILL_IN_WRITE"] = str(rng.randint(1, 2))
        p = subprocess.Popen(command(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if not self_kill:
            time.sleep(rng.uniform(0.02, full * (N_TASKS - len(before)) / N_TASKS))
            p.send_signal(signal.SIGKILL)
        _, log = p.communicate()
        if p.returncode == -signal.SIGKILL:
            killed += 1
            in_write += self_kill
        if os.path.exists(db):
            whole(db, f"attempt {attempts}")
            redone = evaluated(log) & before
            check(not redone, f"attempt {attempts}: finished tasks evaluated again: {sorted(redone)}")
            if len(scores(db)) == N_TASKS:
                check(scores(db) == reference, f"round {rounds}: scores differ from an uninterrupted run")
                rounds += 1
                db = os.path.join(work, f"crash{rounds}.sqlite")
    check(killed >= kills, f"only {killed} of {attempts} runs were killed")
    rc, log = run(command(db))
    check(rc == 0, f"final rerun failed: {log}")
    whole(db, "after the final rerun")
    final = scores(db)
    check(final == reference, f"scores after the kills differ from an uninterrupted run: {final} vs {reference}")
    check(in_write >= kills // 8, f"only {in_write} kills landed inside the database write")
    check(rows(db, "SELECT COUNT(*) FROM task_claims") == [(0,)], "claims left after the final run")
    print(f"kill -9: {killed} kills in {attempts} runs ({in_write} inside the write), {rounds + 1} suites completed, "
          f"uninterrupted run {full:.1f} s; every completed suite scored as the uninterrupted run")


def interrupt(work, model):
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        db = os.path.join(work, f"{name}.sqlite")
        # The neural model: slow enough that the signal lands mid-suite.
        p = subprocess.Popen(command(db, model), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Wait until one task is recorded, then signal during the next ones.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            if os.path.exists(db) and rows(db, "SELECT COUNT(*) FROM results") not in ([], [(0,)]):
                break
            time.sleep(0.05)
        p.send_signal(sig)
        _, log = p.communicate()
        check(p.returncode == 128 + sig, f"{name}: exit status {p.returncode}, expected {128 + sig}: {log}")
        last = log.strip().splitlines()[-1] if log.strip() else ""
        check(f"interrupted by {name}" in last and "rerun the same command to resume" in last,
              f"{name}: last line does not say how to resume: {last}")
        check(rows(db, "SELECT status FROM runs ORDER BY id DESC LIMIT 1") == [("interrupted",)],
              f"{name}: run not marked interrupted")
        check(rows(db, "SELECT COUNT(*) FROM task_claims") == [(0,)], f"{name}: claims left behind")
        whole(db, name)
        kept = set(scores(db))
        rc, log = run(command(db, model))
        check(rc == 0 and skipped(log) == kept and len(scores(db)) == N_TASKS, f"{name}: resuming failed: {log}")
    print("SIGINT / SIGTERM: interrupted, resumable, nothing lost")


def several_writers(work, model):
    db = os.path.join(work, "shared.sqlite")
    models = ["baseline:char-ngram", "baseline:char-ngram", model, model]
    procs = [subprocess.Popen(command(db, m, ("--threads", "1")), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for m in models]
    logs = []
    for p in procs:
        _, log = p.communicate()
        logs.append(log)
        check(p.returncode == 0, f"writer failed: {log}")
    whole(db, "four writers")
    n = rows(db, "SELECT COUNT(*) FROM results")[0][0]
    check(n == 2 * N_TASKS, f"four writers: {n} results, expected {2 * N_TASKS}")
    for pair in ((0, 1), (2, 3)):
        both = evaluated(logs[pair[0]]) & evaluated(logs[pair[1]])
        check(not both, f"tasks evaluated by two processes of one model: {sorted(both)}")
        check(len(evaluated(logs[pair[0]]) | evaluated(logs[pair[1]])) == N_TASKS, "a task evaluated by no process")
    print("four writers: every result once, no task evaluated twice")


def dump(db):
    c = sqlite3.connect(db)
    try:
        return "\n".join(c.iterdump())
    finally:
        c.close()


def unwritable(work):
    """A database that cannot be written: one error line naming it, its content unchanged."""
    base = os.path.join(work, "base.sqlite")
    rc, log = run(command(base, extra=("--tasks", "LCQMC-mini")))
    check(rc == 0, f"setup run failed: {log}")
    cases = []
    # Disk full, as a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored): a
    # write past 1 KiB of any file (the WAL's first frame is 4 KiB) fails with
    # EFBIG, the way a full disk fails it.
    def limited():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
    cases.append(("full.sqlite", limited))
    # A read-only file (0444) in a writable folder. Root writes one anyway, so
    # as root the run is made as user nobody (the folders on the way only
    # need to be searchable by it).
    as_nobody = None
    if os.geteuid() == 0:
        os.chmod(work, 0o711)
        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)
    ro_dir = os.path.join(work, "ro")
    os.mkdir(ro_dir)
    os.chmod(ro_dir, 0o777)
    cases.append((os.path.join("ro", "ro.sqlite"), as_nobody))  # None: run as we are
    for name, preexec in cases:
        db = os.path.join(work, name)
        shutil.copy(base, db)
        read_only = name.startswith("ro")
        if read_only:
            os.chmod(db, 0o444)
        before = dump(db)
        p = subprocess.run(command(db, extra=("--force",)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=preexec)
        errors = [l for l in p.stderr.splitlines() if "error:" in l]
        check(p.returncode == 2 and len(errors) == 1 and db in errors[0],
              f"{name}: rc {p.returncode}, expected 2 and one error line naming the file: {p.stderr}")
        if read_only:
            check(len(errors) == 1 and "read-only" in errors[0], f"{name}: the error does not say read-only: {errors}")
            os.chmod(db, 0o644)
        check(dump(db) == before, f"{name}: the database changed")
        print(f"{name}: {errors[0] if errors else '(no error line)'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--model", default="", help="the neural model of the signal and writers tests (default: the bundled one)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="embeval-survive-")
    try:
        model = a.model or "hf:" + os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                  "../../models/embeval-small-zh"))
        kill_minus_nine(work, a.kills)
        interrupt(work, model)
        several_writers(work, model)
        unwritable(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
