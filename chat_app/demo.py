"""Chat phrases and examples of the demo processes (seeded on migrate and by ``manage.py seed_demo``)."""

from __future__ import annotations

from collections.abc import Callable

from chat_app.models import ProcessChatConfig
from executions.models import Process

DEMO_CHAT = {
    "order-processing": {
        "phrases": ["process order", "handle order", "new order", "run order", "place order"],
        "examples": ["process order ORD-2024-001 as high priority", "process order ORD-2024-001"],
    },
    "report-generation": {
        "phrases": ["generate report", "create report", "make report", "run report", "build report"],
        "examples": ["generate this month's sales report", "generate report for last month"],
        "ask_fields": "regionalBreakdown",
    },
    "data-sync": {
        "phrases": ["sync data", "synchronize data", "data synchronization", "sync records"],
        "examples": ["sync data with erp system", "sync data with crm"],
    },
    "monthly-report": {
        "phrases": ["submit monthly report", "monthly kpi", "monthly metrics", "submit kpis", "monthly figures"],
        "examples": ["submit monthly report for sales", "submit monthly report for last month"],
    },
    "failure-demo": {
        "phrases": ["failure demo", "demo failure", "fail on purpose"],
        "examples": ["run the failure demo"],
    },
}


def chat_phrases_seed() -> list[str]:
    """Create the chat phrases of demo processes that have none yet (edits made in admin are kept)."""
    created = []
    for process in Process.objects.filter(slug__in=DEMO_CHAT).exclude(chat_config__isnull=False):
        data = DEMO_CHAT[process.slug]
        ProcessChatConfig.objects.create(process=process, phrases="\n".join(data["phrases"]),
                                         examples="\n".join(data["examples"]),
                                         ask_fields=data.get("ask_fields", ""))
        created.append(process.slug)
    return created


def seed(write: Callable[[str], None], *, reset_passwords: bool = False) -> None:
    created = chat_phrases_seed()
    if created:
        write(f"chat phrases for {', '.join(created)}")
