"""Choosing a backend (named, from the environment, auto) and each device backend's equality
with the CPU reference on books of the benchmark's shape."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.engine.auction import Orders, batch_match, build_grid
from qfix.engine.auction.clearing import determine
from qfix.engine.backends import ENV_VAR, BackendUnavailable, availability, load, select


def _random_books(seed: int, n_instruments: int, n_orders: int) -> tuple[Orders, Orders, np.ndarray]:
    """The auction workload's shape (ENGINE.md §10), plus some wide and empty instruments."""
    rng = np.random.default_rng(seed)
    ref = 1_000_000 + 10 * np.arange(n_instruments, dtype=np.int64)
    inst = rng.integers(0, n_instruments, n_orders)
    spread = np.where(inst % 7 == 0, 5_000, 50)  # every 7th instrument has a wide, sparse ladder
    price = ref[inst] + rng.integers(-spread, spread + 1)
    qty = rng.integers(1, 101, n_orders)
    market = rng.random(n_orders) < 0.05
    buy = rng.random(n_orders) < 0.5
    prio = np.arange(n_orders, dtype=np.int64)

    def side(mask: np.ndarray) -> Orders:
        return Orders.from_arrays(inst[mask], price[mask], qty[mask], market[mask], prio[mask])

    return side(buy), side(~buy), ref


def test_unknown_names_and_missing_libraries_are_reported() -> None:
    with pytest.raises(BackendUnavailable, match="choose one of auto, cpu, cupy, mlx"):
        load("metal")
    reasons = availability()
    assert reasons["cpu"] is None
    for name, reason in reasons.items():
        if reason is not None:
            assert "install" in reason or "CUDA" in reason or "load" in reason, (name, reason)


def test_the_environment_names_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "cpu")
    backend, why = select()
    assert backend.name == "cpu"
    assert f"from ${ENV_VAR}" in why


def test_a_named_backend_that_cannot_run_is_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [name for name, reason in availability().items() if reason is not None]
    if not missing:
        pytest.skip("every backend loads here")
    monkeypatch.setenv(ENV_VAR, missing[0])
    with pytest.raises(BackendUnavailable):
        select()
    bids, asks, ref = _random_books(1, 300, 1_000)
    with pytest.raises(BackendUnavailable):
        batch_match(bids, asks, ref, backend=None)


def test_auto_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    backend, why = select()
    assert why.startswith(f"auto chose {backend.name}")
    if backend.name == "cpu":
        assert "cupy:" in why and "mlx:" in why
    bids, asks, ref = _random_books(2, 10, 200)
    assert batch_match(bids, asks, ref).backend == "cpu"  # below the device threshold


def _check_backend_equals_cpu(name: str) -> None:
    try:
        backend = load(name)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    for seed, n_instruments, n_orders in ((3, 1, 5_000), (4, 2_000, 100_000), (5, 50_000, 20_000)):
        bids, asks, ref = _random_books(seed, n_instruments, n_orders)
        grid = build_grid(bids, asks, ref)
        want = determine(*grid.arrays())
        got = backend.determine(grid)
        assert np.array_equal(got.clearing.price, want[0])
        assert np.array_equal(got.clearing.volume, want[1])
        assert np.array_equal(got.clearing.imbalance, want[2])
        assert got.clearing.crossed.sum() > 0
        assert 0 <= got.transfer_s <= got.total_s
        full = batch_match(bids, asks, ref, backend=backend)
        cpu = batch_match(bids, asks, ref, backend="cpu")
        assert np.array_equal(full.bid_filled, cpu.bid_filled)
        assert np.array_equal(full.trades.qty, cpu.trades.qty)


def test_mlx_equals_cpu() -> None:
    _check_backend_equals_cpu("mlx")


@pytest.mark.gpu
def test_cupy_equals_cpu() -> None:
    _check_backend_equals_cpu("cupy")


def test_mlx_falls_back_to_its_cpu_when_the_gpu_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Apple GPUs MLX refuses int64 scatters; the backend must notice when it loads, run
    on MLX's CPU, say why, and never be what auto picks as a GPU."""
    mx = pytest.importorskip("mlx.core")
    gpu = mx.Device(mx.gpu)
    monkeypatch.setattr(mx, "default_device", lambda: gpu)
    if mx.is_available(gpu) if hasattr(mx, "is_available") else False:
        pytest.skip("a real MLX GPU is here: the refusal cannot be provoked")
    backend = load("mlx")
    assert not backend.on_gpu
    assert "the GPU could not run it" in backend.device
    bids, asks, ref = _random_books(6, 300, 3_000)
    want = batch_match(bids, asks, ref, backend="cpu")
    assert batch_match(bids, asks, ref, backend=backend).clearing.equals(want.clearing)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert select("auto")[0].name != "mlx"
