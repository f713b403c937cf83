"""The product's example of a process that only runs after a person approves it."""

from __future__ import annotations

from typing import Any

from executions.processes import demo_number, demo_pause
from executions.registry import process


@process(
    "sensitive-report",
    name="Sensitive Report Generation",
    description="A report with salary and margin figures: runs only after a manager approves it.",
    steps=3,
    timeout=600,
    parameters=[
        {"name": "department", "label": "Department", "type": "dropdown", "required": True,
         "choices": ["Sales", "Marketing", "Operations", "Finance"]},
        {"name": "period", "label": "Month", "type": "month", "required": True},
        {"name": "reason", "label": "Why it is needed", "type": "textarea", "required": True, "min_length": 10,
         "max_length": 500},
    ],
    chat_phrases=["sensitive report", "generate sensitive report", "salary report"],
    critical=True,
)
def sensitive_report(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    ctx.step("Collecting payroll and margin figures")
    payroll = 100_000 + demo_number(params["department"] + params["period"], 400_000)
    demo_pause()
    ctx.step("Computing ratios")
    margin = 5 + demo_number(params["period"] + params["department"], 30)
    demo_pause()
    ctx.step("Writing the restricted report")
    demo_pause()
    return {"department": params["department"], "period": params["period"], "payroll": payroll,
            "marginPercent": margin,
            "summary": f"{params['department']} {params['period']}: payroll ${payroll:,}, margin {margin}%."}
