"""Exact and elastic resume: state_dict / Loader(state=...), in one process and across a SIGKILL."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fpload.errors import LoaderStateError
from fpload.load import Loader

pytestmark = pytest.mark.usefixtures("plugin")


def _samples(batches):
    """(index, sha256 of the pixels) of every sample of the batches, in order."""
    return [(int(k), hashlib.sha256(img.numpy().tobytes()).hexdigest())
            for x, _, i in batches for img, k in zip(x, i)]


def _kw(**extra):
    return dict(split="train", batch_size=3, device="cpu", seed=9, num_threads=2, **extra)


@pytest.mark.parametrize("stop", [0, 1, 5, 8])
@pytest.mark.parametrize("shuffle", ["global", "buffer"])
def test_resume_equals_an_uninterrupted_run_sample_and_pixel(packed, stop, shuffle):
    path = packed["raw"].path
    ref = Loader(path, shuffle=shuffle, **_kw())
    full = _samples(list(ref)) + _samples(list(ref))  # epochs 0 and 1, augmented (fpload operators)
    a = Loader(path, shuffle=shuffle, **_kw())
    first = _samples(list(a))
    it = iter(a)
    first += _samples([next(it) for _ in range(stop)])
    state = json.loads(json.dumps(a.state_dict()))  # JSON round trip
    assert state["epoch"] == 1 and state["consumed"] == min(3 * stop, packed["raw"].counts["train"])
    b = Loader(path, shuffle=shuffle, state=state, **_kw())
    rest = _samples(list(b))
    assert first + rest == full
    assert b.epoch == 2


def test_a_state_of_another_config_or_version_is_refused(packed):
    loader = Loader(packed["raw"].path, **_kw())
    state = loader.state_dict()
    with pytest.raises(LoaderStateError, match="config_hash .*another the loader config"):
        Loader(packed["raw"].path, state=state, **{**_kw(), "seed": 10})
    with pytest.raises(LoaderStateError, match="version_id"):
        Loader(packed["raw-lz4"].path, state=state, **_kw())
    with pytest.raises(LoaderStateError, match="split 'train'"):
        Loader(packed["raw"].path, state=state, **{**_kw(), "split": "val"})
    with pytest.raises(LoaderStateError, match="format_version 99"):
        loader.load_state_dict({**state, "format_version": 99})
    with pytest.raises(LoaderStateError, match="consumed 1000 is not an integer 0..24"):
        loader.load_state_dict({**state, "consumed": 1000})
    with pytest.raises(LoaderStateError, match="not an fpload loader state"):
        loader.load_state_dict({"epoch": 1})
    # another device, thread count or prefetch depth resumes: they change no batch
    Loader(packed["raw"].path, state=state, **{**_kw(), "num_threads": 1, "prefetch": 3})


@pytest.mark.parametrize("before,after", [(2, 3), (4, 1), (1, 4)])
@pytest.mark.parametrize("steps", [1, 2])
def test_elastic_resume_reads_each_unconsumed_sample_once(packed, before, after, steps):
    path = packed["raw"].path
    n = packed["raw"].counts["train"]
    kw = _kw(augment=False)
    ranks = [Loader(path, rank=r, world_size=before, **kw) for r in range(before)]
    its = [iter(r) for r in ranks]
    read = [int(k) for it in its for _ in range(steps) for k in next(it)[2]]
    states = [r.state_dict() for r in ranks]
    assert all(s == states[0] for s in states)  # lock step: every rank's state is the job's
    assert states[0]["consumed"] == len(read) and sum(states[0]["rank_consumed"]) == len(read)
    new = [Loader(path, rank=r, world_size=after, state=states[0], **kw) for r in range(after)]
    rest = [int(k) for loader in new for _, _, i in loader for k in i]
    assert sorted(read + rest) == list(range_of_train(packed)) and len(read + rest) == n
    # the rest follows the same epoch order: the read samples are its prefix
    order = [int(k) for _, _, i in Loader(path, **kw) for k in i]
    assert set(read) == set(order[:len(read)])


def range_of_train(packed):
    import pyarrow.parquet as pq

    rows = pq.read_table(packed["raw"].path / "samples.parquet").to_pylist()
    return [r["index"] for r in rows if r["split"] == "train"]


_TRAIN = r"""
import hashlib, json, os, sys, time
from fpload.load import Loader
path, ckpt, mode = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(split="train", batch_size=3, device="cpu", seed=9, num_threads=2)
if mode == "fresh":
    loader, log = Loader(path, **kw), []
else:
    with open(ckpt) as fh:
        saved = json.load(fh)
    loader, log = Loader(path, state=saved["state"], **kw), saved["log"]
while loader.epoch < 2:
    for x, _, i in loader:
        log += [[int(k), hashlib.sha256(img.numpy().tobytes()).hexdigest()] for img, k in zip(x, i)]
        tmp = ckpt + ".tmp"   # a training step, then the checkpoint, written atomically
        with open(tmp, "w") as fh:
            json.dump({"state": loader.state_dict(), "log": log}, fh)
        os.replace(tmp, ckpt)
        if mode == "fresh" and loader.epoch == 1 and len(log) >= 24 + 6:
            print("checkpointed", flush=True)
            # keeps training slowly until killed, never past the middle of epoch 1
            time.sleep(0.2 if len(log) < 24 + 15 else 3600)
print(json.dumps(log))
"""


def test_sigkill_mid_epoch_then_resume_in_a_new_process(packed, tmp_path):
    path = str(packed["raw"].path)
    ref = Loader(path, **_kw())
    want = [list(s) for s in _samples(list(ref)) + _samples(list(ref))]
    script = tmp_path / "train.py"
    script.write_text(_TRAIN)
    ckpt = str(tmp_path / "ckpt.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, str(script), path, ckpt, "fresh"], stdout=subprocess.PIPE,
                          text=True, env=env) as child:
        try:
            assert child.stdout.readline().strip() == "checkpointed"
            time.sleep(0.3)   # somewhere mid-epoch, maybe mid-step
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=60) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    saved = json.loads((tmp_path / "ckpt.json").read_text())
    assert saved["state"]["epoch"] == 1 and 0 < saved["state"]["consumed"] < 24
    out = subprocess.run([sys.executable, str(script), path, ckpt, "resume"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == want
