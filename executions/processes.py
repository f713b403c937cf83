"""The demo processes that ship with Heptora, mirroring the product's examples.

They do real (small) work with real progress so that a new user sees executions move. Each step waits
``HEPTORA_DEMO_STEP_DELAY`` seconds (0.4 by default; tests set 0) so a person can watch the progress.
"""

from __future__ import annotations

import csv
import hashlib
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from executions.registry import process

PRIORITIES = ["Low", "Medium", "High"]


def demo_pause() -> None:
    if settings.HEPTORA_DEMO_STEP_DELAY:
        time.sleep(settings.HEPTORA_DEMO_STEP_DELAY)


def demo_number(seed: str, modulo: int) -> int:
    """A stable pseudo-random number derived from ``seed`` (demo data that is the same every run)."""
    return int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16) % modulo


ORDER_FIELDS = [
    {"name": "orderId", "label": "Order ID", "type": "text", "required": True, "min_length": 10,
     "max_length": 15, "regex": r"^ORD-", "regex_message": 'Must start with "ORD-".', "placeholder": "ORD-2024-001"},
    {"name": "priority", "label": "Priority", "type": "dropdown", "required": True, "choices": PRIORITIES},
    {"name": "customerName", "label": "Customer Name", "type": "text", "max_length": 200},
    {"name": "customerId", "label": "Customer ID", "type": "text", "max_length": 50},
    {"name": "amount", "label": "Amount", "type": "number", "min": 0, "decimal_places": 2, "prefix": "$"},
    {"name": "specialInstructions", "label": "Special Instructions", "type": "textarea", "max_length": 1000,
     "show_if": {"priority": "High"}},
    {"name": "emailNotification", "label": "Email notification", "type": "checkbox"},
    {"name": "metadata", "label": "Metadata", "type": "object"},
]


@process(
    "order-processing",
    name="Order Processing",
    description="Validate an order, reserve stock, charge the payment, fulfil it and confirm it.",
    steps=5,
    timeout=300,
    parameters=ORDER_FIELDS,
    chat_phrases=["process order", "handle order", "order processing"],
    restart_on_worker_lost=False,  # it charges a payment: never run it twice; a lost run fails instead
)
def order_processing(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    order_id = params["orderId"]
    ctx.step("Validating order")
    digits = sum(ord(c) for c in order_id)
    ctx.log(f"Order {order_id} is well-formed (checksum {digits % 97}).")
    demo_pause()

    ctx.step("Checking inventory")
    lines = 1 + demo_number(order_id + "lines", 4)
    stock = {f"SKU-{demo_number(order_id + str(i), 9000) + 1000}": 1 + demo_number(order_id + "qty" + str(i), 3)
             for i in range(lines)}
    ctx.log(f"Reserved {sum(stock.values())} item(s) across {lines} line(s).", items=stock)
    demo_pause()

    ctx.step("Charging payment")
    amount = Decimal(str(params.get("amount", 100 + demo_number(order_id, 900))))
    tax = (amount * Decimal("0.08")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    ctx.log(f"Charged ${amount + tax} (${amount} + ${tax} tax).")
    demo_pause()

    ctx.step("Fulfilling order")
    warehouse = ["US-West", "US-East", "EU-Central"][demo_number(order_id + "wh", 3)]
    if params["priority"] == "High":
        ctx.log("High priority: shipping by express courier.")
    demo_pause()

    ctx.step("Sending confirmation")
    confirmation = f"CONF-{demo_number(order_id + 'conf', 90000) + 10000}"
    demo_pause()
    return {
        "orderId": order_id,
        "status": "processed",
        "confirmationNumber": confirmation,
        "warehouse": warehouse,
        "total": float(amount + tax),
        "summary": f"Order {order_id} processed, shipped from {warehouse}, confirmation {confirmation}.",
    }


@process(
    "report-generation",
    name="Report Generation",
    description="Build a sales report for a period, optionally broken down by region, as a CSV file.",
    steps=4,
    timeout=600,
    parameters=[
        {"name": "reportType", "label": "Report", "type": "dropdown", "choices": ["Sales", "Finance", "Operations"],
         "default": "Sales"},
        {"name": "period", "label": "Period", "type": "dropdown", "required": True,
         "choices": ["This month", "Last month", "Custom"]},
        {"name": "startDate", "label": "From", "type": "date", "required": True, "show_if": {"period": "Custom"}},
        {"name": "endDate", "label": "To", "type": "date", "required": True, "show_if": {"period": "Custom"}},
        {"name": "regionalBreakdown", "label": "Include regional breakdown", "type": "checkbox"},
        {"name": "region", "label": "Region", "type": "dropdown", "choices": ["EMEA", "Americas", "APAC"],
         "show_if": {"regionalBreakdown": True}},
    ],
    chat_phrases=["generate report", "sales report", "generate this month's sales report"],
)
def report_generation(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    today = timezone.localdate()
    ctx.step("Resolving period")
    if params["period"] == "Custom":
        start, end = params["startDate"], params["endDate"]
        if start > end:
            raise ctx.fail("The start date is after the end date.", code="invalid_period")
    else:
        first = today.replace(day=1)
        if params["period"] == "Last month":
            first = (first - timezone.timedelta(days=1)).replace(day=1)
        start = first.isoformat()
        end = today.isoformat() if params["period"] == "This month" else (
            today.replace(day=1) - timezone.timedelta(days=1)).isoformat()
    demo_pause()

    ctx.step("Collecting figures")
    regions = [params["region"]] if params.get("region") else ["EMEA", "Americas", "APAC"]
    rows = []
    for region in regions:
        for product in ("Basic", "Pro", "Enterprise"):
            units = 10 + demo_number(f"{start}{region}{product}", 490)
            rows.append({"region": region, "product": product, "units": units, "revenue": units * 49})
    demo_pause()

    ctx.step("Aggregating")
    total = sum(r["revenue"] for r in rows)
    by_region = {r: sum(x["revenue"] for x in rows if x["region"] == r) for r in regions}
    demo_pause()

    ctx.step("Writing report")
    folder = settings.MEDIA_ROOT / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ctx.execution_id}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["region", "product", "units", "revenue"])
        writer.writeheader()
        writer.writerows(rows)
    result: dict[str, Any] = {"reportType": params.get("reportType", "Sales"), "periodStart": start,
                              "periodEnd": end, "rows": len(rows), "totalRevenue": total, "file": path.name,
                              "summary": f"{params.get('reportType', 'Sales')} report {start}..{end}: ${total:,}."}
    if params.get("regionalBreakdown"):
        result["byRegion"] = by_region
    return result


@process(
    "data-sync",
    name="Data Sync",
    description="Compare records with an external system and apply the differences in batches.",
    steps=3,
    timeout=900,
    parameters=[
        {"name": "system", "label": "System", "type": "dropdown", "required": True,
         "choices": ["ERP", "CRM", "Warehouse"]},
        {"name": "direction", "label": "Direction", "type": "dropdown", "choices": ["Pull", "Push", "Both"],
         "default": "Both"},
        {"name": "fullSync", "label": "Full sync", "type": "checkbox"},
    ],
    chat_phrases=["sync data", "synchronize", "sync data with erp system"],
)
def data_sync(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    system = params["system"]
    ctx.step(f"Reading records from {system}")
    size = 200 if params.get("fullSync") else 60
    local = {f"R{i}": demo_number(f"local{i}", 1000) for i in range(size)}
    remote = {f"R{i}": demo_number(f"{system}{i}", 1000) if i % 7 else local[f"R{i}"] for i in range(size)}
    demo_pause()

    ctx.step("Computing differences")
    changed = sorted(k for k in local if local[k] != remote[k])
    demo_pause()

    ctx.step(f"Applying {len(changed)} change(s)")
    batches = [changed[i:i + 20] for i in range(0, len(changed), 20)] or [[]]
    for number, _batch in enumerate(batches, start=1):
        ctx.progress(66 + int(34 * number / len(batches)), f"Batch {number}/{len(batches)} applied")
    demo_pause()
    return {"system": system, "direction": params.get("direction", "Both"), "recordsCompared": size,
            "recordsUpdated": len(changed), "summary": f"{len(changed)} of {size} records synced with {system}."}


@process(
    "monthly-report",
    name="Monthly Report Submission",
    description="Submit a department's monthly KPI figures.",
    steps=3,
    timeout=300,
    parameters=[
        {"name": "month", "label": "Month Selection", "type": "month", "required": True},
        {"name": "revenue", "label": "Revenue", "type": "number", "required": True, "min": 0, "decimal_places": 2,
         "prefix": "$"},
        {"name": "department", "label": "Department", "type": "dropdown", "required": True,
         "choices": ["Sales", "Marketing", "Operations", "Finance"]},
        {"name": "additionalNotes", "label": "Additional Notes", "type": "textarea", "max_length": 500},
        {"name": "supportingDocument", "label": "Attach supporting document", "type": "file"},
    ],
    chat_phrases=["submit monthly report", "monthly metrics", "monthly kpi"],
)
def monthly_report(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    ctx.step("Checking figures")
    revenue = Decimal(str(params["revenue"]))
    target = Decimal(50000 + demo_number(params["department"], 50000))
    demo_pause()
    ctx.step("Comparing with target")
    ratio = (revenue / target * 100).quantize(Decimal("0.1"))
    demo_pause()
    ctx.step("Recording submission")
    reference = f"MR-{params['month']}-{params['department'][:3].upper()}-{demo_number(ctx.execution_id, 9000) + 1000}"
    demo_pause()
    return {"reference": reference, "month": params["month"], "department": params["department"],
            "revenue": float(revenue), "targetPercent": float(ratio),
            "summary": f"{params['department']} {params['month']}: {ratio}% of target. Reference {reference}."}


@process(
    "failure-demo",
    name="Failure Demo",
    description="Fails on purpose at the chosen step, to show how failures are reported.",
    steps=4,
    timeout=120,
    parameters=[{"name": "failAtStep", "label": "Fail at step", "type": "number", "min": 1, "max": 4, "default": 3}],
    restart_on_worker_lost=False,
)
def failure_demo(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    fail_at = int(params.get("failAtStep", 3))
    for number, name in enumerate(["Connecting", "Reading input", "Calling payment gateway", "Finishing"], 1):
        ctx.step(name)
        demo_pause()
        if number == fail_at:
            raise ctx.fail("The payment gateway declined the request (demo failure).", code="gateway_declined")
    return {"status": "unexpectedly fine"}
