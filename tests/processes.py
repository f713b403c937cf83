"""Processes that exist only for the tests (loaded in the test run and its workers via HEPTORA_PROCESS_MODULES)."""

from __future__ import annotations

import time
from typing import Any

from executions.registry import process

NUMBER = {"type": "number", "min": 0}


@process("test-echo", name="Echo", steps=2, parameters=[{"name": "text", "type": "text", "required": True}])
def echo(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    ctx.step("Reading")
    ctx.log("read the text", length=len(params["text"]))
    ctx.step("Answering")
    return {"echo": params["text"], "attempt": ctx.attempt}


@process("test-steps", name="Many steps", steps=20, parameters=[{"name": "delay", **NUMBER, "default": 0.2}])
def many_steps(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    for number in range(1, 21):
        ctx.step(f"Step number {number}")
        time.sleep(float(params["delay"]))
    return {"steps": 20, "attempt": ctx.attempt}


@process("test-raise", name="Raises", steps=3)
def raises(ctx: Any, params: dict[str, Any]) -> None:
    ctx.step("Preparing")
    ctx.step("Dividing")
    _ = 1 / 0


@process("test-sleep", name="One long step", steps=1, timeout=60,
         parameters=[{"name": "seconds", **NUMBER, "default": 5}])
def one_long_step(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    ctx.step("Sleeping")
    time.sleep(float(params["seconds"]))
    return {"slept": params["seconds"], "attempt": ctx.attempt}


@process("test-once", name="Must not run twice", steps=1, restart_on_worker_lost=False)
def once(ctx: Any, params: dict[str, Any]) -> None:
    ctx.step("Working")
    time.sleep(30)
