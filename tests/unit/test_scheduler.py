"""The pure scheduling decision: GPU packing, strategies, restriction, foreign processes,
host memory, group limits, priority order and head-of-queue protection (backfill)."""

from __future__ import annotations

import random
from typing import Any

from gflow.model import Job, Reason, State
from gflow.scheduler import GpuSlot, Plan, Resources, plan, sort_key
from tests.unit.conftest import make_job

NOW = 1_000_000.0
G24 = 24 * 1024


def job(job_id: int, gpus: int = 0, **kw: Any) -> Job:
    return make_job(job_id, user="u", submit_time=NOW, gpus=gpus, **kw)


def running(job_id: int, gpu_ids: tuple[int, ...], started: float = NOW, **kw: Any) -> Job:
    return job(
        job_id,
        len(gpu_ids),
        state=State.RUNNING,
        gpu_ids=gpu_ids,
        start_time=started,
        **kw,
    )


def cards(n: int, mib: int = G24, **per_index: GpuSlot) -> tuple[GpuSlot, ...]:
    return tuple(per_index.get(f"g{i}", GpuSlot(i, mib)) for i in range(n))


def decide(
    candidates: list[Job],
    run: list[Job] | None = None,
    gpus: tuple[GpuSlot, ...] = (),
    *,
    memory_mb: int | None = None,
    max_running: int | None = None,
    limits: dict[int, int] | None = None,
    strategy: str = "sequential",
    rng: random.Random | None = None,
) -> Plan:
    return plan(
        sorted(candidates, key=sort_key),
        run or [],
        Resources(gpus, memory_mb, max_running),
        limits or {},
        NOW,
        strategy=strategy,
        rng=rng,
    )


def started(p: Plan) -> dict[int, tuple[int, ...]]:
    return {s.job_id: s.gpu_ids for s in p.starts}


# ------------------------------------------------------------ exclusive GPUs


def test_cpu_jobs_need_no_gpus() -> None:
    p = decide([job(1), job(2)])
    assert started(p) == {1: (), 2: ()}
    assert p.reasons == {}


def test_exclusive_jobs_pack_sequentially_and_the_rest_wait_for_a_gpu() -> None:
    p = decide([job(1, 1), job(2, 1), job(3, 1)], gpus=cards(2))
    assert started(p) == {1: (0,), 2: (1,)}
    assert p.reasons == {3: Reason.GPU}


def test_exclusive_skips_cards_held_by_running_jobs() -> None:
    p = decide([job(2, 2)], [running(1, (1,))], cards(4))
    assert started(p) == {2: (0, 2)}


def test_multi_gpu_job_takes_the_lowest_free_indices() -> None:
    p = decide([job(1, 3)], gpus=cards(4))
    assert started(p) == {1: (0, 1, 2)}


def test_random_strategy_is_seeded_and_spreads() -> None:
    def pick(seed: int) -> tuple[int, ...]:
        p = decide([job(1, 2)], gpus=cards(8), strategy="random", rng=random.Random(seed))
        return started(p)[1]

    assert pick(7) == pick(7)
    seen = {pick(seed) for seed in range(30)}
    assert len(seen) > 5
    assert all(len(g) == 2 and len(set(g)) == 2 and max(g) < 8 for g in seen)
    sequential = decide([job(1, 2)], gpus=cards(8), rng=random.Random(7))
    assert started(sequential) == {1: (0, 1)}


def test_random_strategy_never_picks_busy_or_restricted_cards() -> None:
    gpus = cards(4, g2=GpuSlot(2, G24, allowed=False))
    for seed in range(20):
        p = decide(
            [job(2, 2)], [running(1, (0,))], gpus, strategy="random", rng=random.Random(seed)
        )
        assert started(p) == {2: (1, 3)}


# ------------------------------------------------------------ shared GPUs


def shared(job_id: int, mib: int, gpus: int = 1, **kw: Any) -> Job:
    return job(job_id, gpus, shared=True, gpu_memory_mb=mib, **kw)


def test_shared_jobs_pack_onto_one_card_while_memory_fits() -> None:
    p = decide([shared(1, 10_000), shared(2, 10_000), shared(3, 10_000)], gpus=cards(2))
    assert started(p) == {1: (0,), 2: (0,), 3: (1,)}


def test_shared_jobs_fill_the_fullest_card_first() -> None:
    run = [running(1, (1,), shared=True, gpu_memory_mb=8000)]
    p = decide([shared(2, 4000)], run, cards(2))
    assert started(p) == {2: (1,)}


def test_shared_job_waits_when_no_card_has_room() -> None:
    run = [running(1, (0,), shared=True, gpu_memory_mb=20_000)]
    p = decide([shared(2, 8000)], run, cards(1))
    assert started(p) == {}
    assert p.reasons == {2: Reason.GPU}


def test_shared_and_exclusive_never_mix_on_a_card() -> None:
    run = [running(1, (0,), shared=True, gpu_memory_mb=1000)]
    p = decide([job(2, 1), shared(3, 1000)], run, cards(2))
    assert started(p) == {2: (1,), 3: (0,)}
    run = [running(1, (0,)), running(2, (1,), shared=True, gpu_memory_mb=1000)]
    p = decide([shared(3, 1000), job(4, 1)], run, cards(2))
    assert started(p) == {3: (1,)}
    assert p.reasons == {4: Reason.GPU}


def test_exclusive_job_does_not_take_a_card_a_shared_job_just_got() -> None:
    p = decide([shared(1, 1000), job(2, 1)], gpus=cards(1))
    assert started(p) == {1: (0,)}
    assert p.reasons == {2: Reason.GPU}


def test_multi_gpu_shared_job_needs_room_on_each_card() -> None:
    run = [running(1, (0,), shared=True, gpu_memory_mb=20_000)]
    p = decide([shared(2, 8000, gpus=2)], run, cards(3))
    assert started(p) == {2: (1, 2)}
    p = decide([shared(2, 8000, gpus=2)], run, cards(2))
    assert p.reasons == {2: Reason.GPU}


# ------------------------------------------------------------ restriction, foreign processes


def test_restricted_cards_are_never_handed_out() -> None:
    gpus = cards(3, g0=GpuSlot(0, G24, allowed=False), g2=GpuSlot(2, G24, allowed=False))
    p = decide([job(1, 1), job(2, 1), shared(3, 100)], gpus=gpus)
    assert started(p) == {1: (1,)}
    assert p.reasons == {2: Reason.GPU, 3: Reason.GPU}


def test_exclusive_jobs_avoid_a_card_with_a_foreign_process() -> None:
    foreign = GpuSlot(0, G24, foreign_mib=2000, foreign_pids=(4242,))
    p = decide([job(1, 1), job(2, 1)], gpus=cards(2, g0=foreign))
    assert started(p) == {1: (1,)}
    assert p.reasons == {2: Reason.GPU}


def test_shared_jobs_may_use_the_memory_a_foreign_process_leaves() -> None:
    foreign = GpuSlot(0, G24, foreign_mib=20_000, foreign_pids=(4242,))
    gpus = cards(1, g0=foreign)
    assert started(decide([shared(1, 4000)], gpus=gpus)) == {1: (0,)}
    p = decide([shared(1, 5000)], gpus=gpus)
    assert p.reasons == {1: Reason.GPU}


def test_a_foreign_card_is_not_reserved_for_a_head_that_cannot_use_it() -> None:
    # The 2-GPU head can never start while GPU 0 is foreign-occupied: it protects nothing.
    foreign = GpuSlot(0, G24, foreign_mib=2000, foreign_pids=(4242,))
    p = decide([job(1, 2, priority=50), job(2, 1)], gpus=cards(2, g0=foreign))
    assert started(p) == {2: (1,)}
    assert p.reasons == {1: Reason.GPU}


# ------------------------------------------------------------ memory, limits, order


def test_host_memory_is_not_overcommitted() -> None:
    run = [running(1, (), memory_mb=6000)]
    p = decide([job(2, memory_mb=3000), job(3, memory_mb=2000)], run, memory_mb=8000)
    assert started(p) == {3: ()}
    assert p.reasons == {2: Reason.MEMORY}


def test_jobs_without_memory_request_are_not_held_by_memory() -> None:
    run = [running(1, (), memory_mb=8000)]
    p = decide([job(2), job(3, memory_mb=1)], run, memory_mb=8000)
    assert started(p) == {2: ()}
    assert p.reasons == {3: Reason.MEMORY}


def test_memory_planned_in_the_same_pass_counts() -> None:
    p = decide([job(1, memory_mb=5000), job(2, memory_mb=5000)], memory_mb=8000)
    assert started(p) == {1: ()}
    assert p.reasons == {2: Reason.MEMORY}


def test_group_limit() -> None:
    run = [running(1, (), group_id=1, task_id=1)]
    members = [job(i, group_id=1, task_id=i) for i in (2, 3, 4)]
    p = decide([*members, job(5)], run, limits={1: 2})
    assert started(p) == {2: (), 5: ()}
    assert p.reasons == {3: Reason.GROUP_LIMIT, 4: Reason.GROUP_LIMIT}


def test_max_running_cap_gives_resources() -> None:
    p = decide([job(1), job(2), job(3)], [running(9, ())], max_running=2)
    assert started(p) == {1: ()}
    assert p.reasons == {2: Reason.RESOURCES, 3: Reason.RESOURCES}


def test_priority_then_submission_order() -> None:
    jobs = [job(1, 1), job(2, 1, priority=20), job(3, 1, priority=20), job(4, 1)]
    p = decide(jobs, gpus=cards(2))
    assert started(p) == {2: (0,), 3: (1,)}
    assert p.reasons == {1: Reason.GPU, 4: Reason.GPU}


# ------------------------------------------------------------ head-of-queue protection


def test_small_untimed_job_may_not_take_the_gpu_the_head_waits_for() -> None:
    # GPU 1 is idle, GPU 0 busy until an unknown time: the 2-GPU head needs both.
    run = [running(1, (0,))]
    p = decide([job(2, 2, priority=50), job(3, 1)], run, cards(2))
    assert started(p) == {}
    assert p.reasons == {2: Reason.GPU, 3: Reason.PRIORITY}


def test_small_job_ending_before_the_shadow_time_backfills() -> None:
    # GPU 0 is freed at NOW+3600 at the latest (time limit): the head starts then.
    run = [running(1, (0,), time_limit=3600)]
    head = job(2, 2, priority=50)
    p = decide([head, job(3, 1, time_limit=600)], run, cards(2))
    assert started(p) == {3: (1,)}
    assert p.reasons == {2: Reason.GPU}
    p = decide([head, job(4, 1, time_limit=7200)], run, cards(2))
    assert p.reasons == {2: Reason.GPU, 4: Reason.PRIORITY}
    p = decide([head, job(5, 1)], run, cards(2))
    assert p.reasons == {2: Reason.GPU, 5: Reason.PRIORITY}


def test_shadow_time_counts_from_the_holder_start() -> None:
    run = [running(1, (0,), started=NOW - 3000, time_limit=3600)]  # ends NOW+600
    head = job(2, 2, priority=50)
    p = decide([head, job(3, 1, time_limit=500)], run, cards(2))
    assert started(p) == {3: (1,)}
    p = decide([head, job(3, 1, time_limit=700)], run, cards(2))
    assert p.reasons[3] == Reason.PRIORITY


def test_unknown_shadow_time_allows_no_timed_backfill_on_needed_cards() -> None:
    run = [running(1, (0,))]  # no time limit: the head's start time is unknown
    p = decide([job(2, 2, priority=50), job(3, 1, time_limit=60)], run, cards(2))
    assert p.reasons == {2: Reason.GPU, 3: Reason.PRIORITY}


def test_small_job_on_gpus_the_head_does_not_need_backfills() -> None:
    # GPUs 0-2 busy until NOW+100 (time limits), GPU 3 idle.
    run = [
        running(1, (0,), time_limit=100),
        running(2, (1,), time_limit=100),
        running(3, (2,), time_limit=100),
    ]
    # A 4-GPU head needs every usable card, GPU 3 included: nothing may take it.
    gpus = cards(5, g4=GpuSlot(4, G24, allowed=False))
    p = decide([job(4, 4, priority=50), job(5, 1), job(6, 1)], run, gpus)
    assert started(p) == {}
    assert p.reasons == {4: Reason.GPU, 5: Reason.PRIORITY, 6: Reason.PRIORITY}
    # A 2-GPU head starts at NOW+100 on two of GPUs 0-2 whatever runs on GPU 3: an
    # untimed job may take GPU 3; the next finds no free card at all.
    p = decide([job(4, 2, priority=50), job(5, 1), job(6, 1)], run, cards(4))
    assert started(p) == {5: (3,)}
    assert p.reasons == {4: Reason.GPU, 6: Reason.GPU}


def test_spare_cards_are_shared_out_once() -> None:
    # GPU 0 and 1 busy until NOW+100; GPUs 2, 3 idle; head wants 3 -> at NOW+100 four
    # are free, one spare: one untimed 1-GPU job may go, the next may not.
    run = [running(1, (0,), time_limit=100), running(2, (1,), time_limit=100)]
    p = decide([job(3, 3, priority=50), job(4, 1), job(5, 1)], run, cards(4))
    assert started(p) == {4: (2,)}
    assert p.reasons == {3: Reason.GPU, 5: Reason.PRIORITY}


def test_a_job_ending_before_the_shadow_time_uses_no_spare_card() -> None:
    # GPUs 0, 1 busy until NOW+100, GPUs 2-5 idle; the head wants 5: at NOW+100 six
    # cards are free, one spare. Job 4 ends before then and costs nothing; job 5 takes
    # the spare card; job 6 would take a card the head needs.
    run = [running(1, (0,), time_limit=100), running(2, (1,), time_limit=100)]
    jobs = [job(3, 5, priority=50), job(4, 1, time_limit=50), job(5, 1), job(6, 1)]
    p = decide(jobs, run, cards(6))
    assert started(p) == {4: (2,), 5: (3,)}
    assert p.reasons == {3: Reason.GPU, 6: Reason.PRIORITY}


def test_cards_the_head_can_never_use_stay_open() -> None:
    # GPU 1 has a foreign process: the exclusive head cannot use it, a shared job can.
    foreign = GpuSlot(1, G24, foreign_mib=1000, foreign_pids=(99,))
    gpus = cards(3, g1=foreign)
    run = [running(1, (0,))]
    p = decide([job(2, 2, priority=50), shared(3, 2000), job(4, 1)], run, gpus)
    assert started(p) == {3: (1,)}
    assert p.reasons == {2: Reason.GPU, 4: Reason.PRIORITY}


def test_shared_backfill_prefers_cards_the_head_does_not_need() -> None:
    # GPU 0 shared (untimed holder), GPU 1 idle; exclusive head needs 2 cards.
    run = [running(1, (0,), shared=True, gpu_memory_mb=1000)]
    p = decide([job(2, 2, priority=50), shared(3, 1000)], run, cards(2))
    assert p.reasons == {2: Reason.GPU, 3: Reason.PRIORITY}
    # With a known end for GPU 0, GPU 0 is needed by the shadow time as well.
    run = [running(1, (0,), shared=True, gpu_memory_mb=1000, time_limit=100)]
    p = decide([job(2, 2, priority=50), shared(3, 1000, time_limit=50)], run, cards(2))
    assert started(p) == {3: (0,)}


def test_shared_head_is_protected_too() -> None:
    # One card, 20G of 24G declared by an untimed shared job: a 8G shared head waits;
    # a 2G shared job would take room the head needs and must wait behind it.
    run = [running(1, (0,), shared=True, gpu_memory_mb=20_000)]
    p = decide([shared(2, 8000, priority=50), shared(3, 2000)], run, cards(1))
    assert started(p) == {}
    assert p.reasons == {2: Reason.GPU, 3: Reason.PRIORITY}


def test_cpu_jobs_are_never_held_by_the_head() -> None:
    run = [running(1, (0,))]
    p = decide([job(2, 2, priority=50), job(3), job(4, memory_mb=10)], run, cards(2))
    assert started(p) == {3: (), 4: ()}


def test_only_the_first_blocked_gpu_job_is_protected() -> None:
    run = [running(1, (0,), time_limit=100)]
    jobs = [job(2, 2, priority=50), job(3, 2, priority=40), job(4, 1, time_limit=50)]
    p = decide(jobs, run, cards(2))
    assert started(p) == {4: (1,)}
    assert p.reasons == {2: Reason.GPU, 3: Reason.GPU}


def test_jobs_planned_in_the_same_pass_count_for_the_shadow_time() -> None:
    # Job 1 (priority 60) takes GPU 0 with a 100 s limit; head 2 then needs both cards:
    # shadow NOW+100, so a 50 s job fits before it and a 200 s one does not.
    jobs = [job(1, 1, priority=60, time_limit=100), job(2, 2, priority=50)]
    p = decide([*jobs, job(3, 1, time_limit=50)], gpus=cards(2))
    assert started(p) == {1: (0,), 3: (1,)}
    p = decide([*jobs, job(3, 1, time_limit=200)], gpus=cards(2))
    assert started(p) == {1: (0,)}
    assert p.reasons == {2: Reason.GPU, 3: Reason.PRIORITY}


def test_head_that_exceeds_the_allowed_cards_blocks_nothing() -> None:
    gpus = cards(2, g1=GpuSlot(1, G24, allowed=False))
    p = decide([job(1, 2, priority=50), job(2, 1)], gpus=gpus)
    assert started(p) == {2: (0,)}
    assert p.reasons == {1: Reason.GPU}
