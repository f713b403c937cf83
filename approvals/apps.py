from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import services
        from executions import hooks, lifecycle

        hooks.register_approval_gate(services.approval_gate)
        # In the transaction that holds the execution, so a held execution always has its request.
        lifecycle.subscribe(services.approval_request_create, events=[lifecycle.PROCESS_AWAITING_APPROVAL],
                            phase="transaction")
        lifecycle.subscribe(services.approval_request_close_for, events=[lifecycle.PROCESS_CANCELLED],
                            phase="transaction")
