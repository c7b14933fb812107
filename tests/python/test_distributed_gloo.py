"""Context parallelism across real processes: 2 and 4 ranks started here with torch.multiprocessing,
joined by torch.distributed's gloo backend on loopback, each holding a shard of the sequence
(tests/python/cp_worker.py is what every rank runs).

- Each rank rotates its shard by the global positions rotary.distributed gives; gathered, the shards
  equal one process's rotation bit for bit (packed and unpacked, zigzag and contiguous, f32, bf16).
- Ring attention (K/V blocks passed rank to rank with send/recv) over rotary-rotated shards, causal
  within each packed sequence, forward and backward through rotary's torch operator, equals one
  process's attention over the whole sequence.
- After a context-parallel prefill, the rank owning a new token's cache block appends it at its
  global position; decoding with the ranks' partial attentions merged equals one process.

Each check is also run with positions counted within the shard, the usual mistake, and must fail
there: the test of the tests.
"""

import json
import os
import time

import pytest
import torch.multiprocessing as mp

import cp_worker

WORLD_SIZES = (2, 4)
DEADLINE_S = 240  # the whole group, start-up included; about 15 s is usual


def run_ranks(world, directory):
    """Starts `world` ranks, waits for them within the deadline, and returns rank 0's findings."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    context = mp.start_processes(
        cp_worker.run_rank, args=(world, str(directory)), nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=max(0.1, deadline - time.monotonic())):  # a rank's error raises here
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{world} ranks did not finish within {DEADLINE_S} s")
    return json.loads((directory / "facts.json").read_text())


@pytest.fixture(scope="module", params=WORLD_SIZES, ids=lambda world: f"{world}ranks")
def facts(request, tmp_path_factory):
    return run_ranks(request.param, tmp_path_factory.mktemp(f"cp{request.param}"))


def rotation_cases():
    return [(b, s, d) for b in cp_worker.BATCHES for s in ("contiguous", "zigzag") for d in cp_worker.DTYPES]


@pytest.mark.parametrize(("batch", "scheme", "dtype"), rotation_cases())
def test_gathered_shards_equal_the_single_process_rotation(facts, batch, scheme, dtype):
    found = facts[f"rotation/{batch}/{scheme}/{dtype}/global"]
    assert found["covered_once"]
    assert found["equal"]


@pytest.mark.parametrize(("batch", "scheme", "dtype"), rotation_cases())
def test_shards_rotated_by_local_positions_are_caught(facts, batch, scheme, dtype):
    # Every rank but the one holding the sequences' first tokens rotates wrongly.
    assert not facts[f"rotation/{batch}/{scheme}/{dtype}/local"]["equal"]


def ring_cases():
    return [(b, s) for b in cp_worker.BATCHES for s in ("contiguous", "zigzag")]


@pytest.mark.parametrize(("batch", "scheme"), ring_cases())
def test_ring_attention_forward_and_backward_equal_one_process(facts, batch, scheme):
    found = facts[f"ring/{batch}/{scheme}/global"]
    # A float32 ring (online softmax) against a float64 softmax: rounding only (about 2e-6 seen).
    for name in ("out", "grad_q", "grad_k", "grad_v"):
        assert found[name] <= 1e-5 * max(1.0, found[name + "_scale"]), (name, found)


@pytest.mark.parametrize(("batch", "scheme"), ring_cases())
def test_ring_attention_over_local_positions_is_caught(facts, batch, scheme):
    found = facts[f"ring/{batch}/{scheme}/local"]
    assert found["out"] > 1e-2 * found["out_scale"], found


@pytest.mark.parametrize("scheme", ["contiguous", "zigzag"])
def test_decoding_after_a_context_parallel_prefill_equals_one_process(facts, scheme):
    found = facts[f"decode/{scheme}/global"]
    assert len(set(found["owners"])) > 1  # the new tokens' blocks moved between ranks
    assert found["keys_equal"]  # every rank's cache holds its keys rotated as one process would
    assert found["error"] <= 1e-12, found  # float64 parts merged: rounding only


@pytest.mark.parametrize("scheme", ["contiguous", "zigzag"])
def test_a_decoded_token_appended_at_its_local_position_is_caught(facts, scheme):
    found = facts[f"decode/{scheme}/local"]
    assert not found["keys_equal"]
    assert found["error"] > 1e-3, found
