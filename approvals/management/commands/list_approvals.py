from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus
from executions.management import cli


class Command(cli.HeptoraCommand):
    help = "List approval requests (newest deadline last), with their votes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pending", action="store_true", help="only the requests still waiting for a decision")
        parser.add_argument("--process", help="only this process id")
        parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
        parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise cli.CommandError("--limit must be at least 1.")
        requests = ApprovalRequest.objects.select_related("execution", "execution__process").prefetch_related(
            "votes__approver").order_by("deadline", "pk")
        if options["pending"]:
            requests = requests.filter(status=ApprovalStatus.PENDING)
        if options["process"]:
            requests = requests.filter(execution__process__slug=options["process"])
        now = timezone.now()
        rows = list(requests[: options["limit"]])
        if not rows:
            self.stdout.write("No approval requests." if not options["pending"] else "No pending approval requests.")
            return
        for request in rows:
            votes = [f"{v.approver.get_username()} {v.decision}d" for v in request.votes.all()]
            left = int((request.deadline - now).total_seconds() // 60)
            if options["json"]:
                self.stdout.write(json.dumps({
                    "executionId": request.execution.public_id, "processId": request.execution.process.slug,
                    "status": request.status, "requester": request.execution.actor_label,
                    "deadline": request.deadline.isoformat(), "requiredVotes": request.required_votes,
                    "votes": votes,
                }))
                continue
            when = (f"{left} min left" if left >= 0 else f"overdue by {-left} min") if request.status == "pending" \
                else request.get_status_display().lower()
            self.stdout.write(f"{request.execution.public_id}  {request.execution.process.slug:<22} "
                              f"{request.execution.actor_label:<16} {when:<22} "
                              f"{len([v for v in votes if v.endswith('approved')])}/{request.required_votes} "
                              f"{'; '.join(votes)}")
